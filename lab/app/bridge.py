"""The app's one bridge to the engine parts that compose several calls (tasks + arms +
retrieval + tuning). Tabs call the engine directly for one-call jobs; what needs a few calls
in a row lives here, so a shift in an engine API is fixed in one file.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..prompts import ARMS


class AppError(ValueError):
    """Something the user can fix from the page; the message says what."""


def log_app_error(lab, where: str, e: BaseException) -> None:
    try:
        lab.store.log_error(arm=f"app:{where}", model_id=lab.config.default_model, messages=None,
                            error=f"{type(e).__name__}: {e}")
    except Exception:
        pass


# ---- tasks, models, corpora ------------------------------------------------------------------

def task_names() -> list[str]:
    from ..tasks import builtin_tasks

    return builtin_tasks()


def load_task(name_or_path: str):
    from ..tasks import load_task as _load

    return _load(name_or_path)


def model_names(lab) -> list[str]:
    found, _problems = lab.list_models()
    names = [m.id for m in found]
    return names if lab.config.default_model in names else [lab.config.default_model, *names]


def model_id(lab, name: str | None = None) -> str:
    """The canonical id of a model name or alias (a name no file backs, e.g. a test's fake, as is)."""
    from ..models import ModelNotFound

    try:
        return lab.model_info(name).id
    except ModelNotFound:
        return name or lab.config.default_model


def corpus_names(lab) -> list[str]:
    """Folders under <home>/corpora/ (each one a corpus)."""
    root = lab.home.corpora
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def corpora(lab) -> dict[str, str]:
    """name -> what to hand the retrieval API: the home's corpora/<name>, plus the corpus each
    built-in task names (the checkout's sample `acme` when the home has none)."""
    from ..evaluation import arms as A

    refs = {name: name for name in corpus_names(lab)}
    for name in task_names():
        try:
            task = load_task(name)
            if task.corpus and task.corpus not in refs:
                refs[task.corpus] = A.corpus_ref(lab, task)
        except Exception:  # a broken task or a missing corpus shows up where it is used
            continue
    return refs


def corpus_folder(lab, ref: str) -> Path:
    from ..retrieval.corpus import resolve_corpus

    name, folder = resolve_corpus(lab.home, ref, lab.home.indexes)
    if folder is None:
        raise AppError(f"corpus '{name}' has an index but its folder is gone")
    return folder


def index_state(lab, ref: str) -> dict:
    """What the index of a corpus holds and whether its documents changed since it was built."""
    from ..retrieval.corpus import resolve_corpus, scan
    from ..retrieval.index import read_manifest

    name, folder = resolve_corpus(lab.home, ref, lab.home.indexes)
    m = read_manifest(lab.home.indexes / name)
    files, _skipped = scan(folder) if folder else ([], [])
    state = {"corpus": name, "folder": str(folder) if folder else None, "files": len(files)}
    if m is None:
        return {**state, "indexed": False, "chunks": 0, "stale": len(files), "built_at": None, "version": None}
    known = m.get("files", {})
    stale = sum(1 for f in files if f.rel not in known or known[f.rel].get("size") != f.size
                or known[f.rel].get("mtime_ns") != f.mtime_ns)
    stale += sum(1 for rel in known if rel not in {f.rel for f in files})
    return {**state, "indexed": True, "chunks": len(m.get("chunks", {})), "stale": stale,
            "built_at": m.get("built_at"), "version": m.get("version"), "embedder": m.get("embedder"),
            "index_hash": m.get("manifest_hash")}


def default_cost():
    from ..tasks import Cost

    return Cost()


def cost_per_1k(task, gen, device: str = "cpu"):
    from ..evaluation.costs import per_1k_requests

    return per_1k_requests(getattr(task, "cost", None) or default_cost(), gen.prompt_tokens,
                           gen.completion_tokens, gen.total_s, device)


# ---- one question through one arm (Compare) --------------------------------------------------

def answer_one(lab, arm: str, task, question: str, *, model: str | None = None,
               adapter: str | None = None, on_text=None):
    """(Generation, row id, passages or None) for `question` through `arm`, streaming text
    to `on_text`: the evaluation's own arm runner, so Compare answers exactly as Evaluate scores."""
    from ..evaluation import arms as A
    from ..tasks import Example

    if arm not in ARMS:
        raise AppError(f"unknown arm '{arm}'")
    options = lab.options(max_tokens=task.max_tokens)
    shots, the_adapter, corpus = None, None, None
    if arm == "few-shot":
        pool = A.few_shot_pool(task)
        if not pool:
            raise AppError("few-shot needs example answers: pick a task (its few-shot pool is used)")
        shots = A.fit_shots(lab, model, question, A.fixed_shots(pool, task.few_shot_k),
                            task.instruction, task.max_tokens)
    if arm in A.TUNE_ARMS:
        if not adapter:
            raise AppError("no adapter chosen: train one in the Train tab (or the demo adapter), then pick it here")
        the_adapter = A.resolve_adapter(lab, adapter, model)
    if arm in A.RAG_ARMS:
        if not task.corpus:
            raise AppError("no corpus chosen for the RAG arms: pick one (see the Knowledge tab)")
        corpus = A.corpus_ref(lab, task)
    return A.run_arm(lab, arm, task, Example("compare", question, ""), model=model, options=options,
                     shots=shots, adapter=the_adapter, corpus=corpus, on_text=on_text)


# ---- adapters and training --------------------------------------------------------------------

def adapter_names(lab, base_model: str | None = None) -> list[str]:
    """Finished adapters in <home>/adapters/ trained for `base_model` (default: the lab's model)."""
    try:
        from ..tuning.adapters import list_adapters
    except ImportError:
        return []
    base = model_id(lab, base_model)
    found, _problems = list_adapters(lab.home.adapters)
    return [a.name for a in found if a.base_model == base]


def can_train() -> bool:
    """Training runs as `lab train --config FILE` (lab.tuning): both must exist in this build."""
    try:
        from ..cli import cli
        from ..tuning import make_config, train  # noqa: F401
    except ImportError:
        return False
    return "train" in cli.commands


def cuda_available() -> bool:
    try:
        from ..tuning.train import cuda_available as _cuda
    except ImportError:
        return False
    return _cuda()


def device_defaults(cuda: bool | None = None) -> dict:
    """Hyperparameters that suit the machine: a CPU trains a small LoRA on q/v in minutes;
    a CUDA GPU takes QLoRA on every linear layer, bigger batches and longer sequences."""
    cuda = cuda_available() if cuda is None else cuda
    if cuda:
        return {"device": "cuda", "method": "auto", "rank": 16, "alpha": 32.0, "learning_rate": 2e-4,
                "epochs": 2.0, "max_steps": 0, "batch_size": 8, "grad_accum": 2, "max_seq_len": 1024,
                "target_modules": "all-linear"}
    return {"device": "cpu", "method": "lora", "rank": 8, "alpha": 16.0, "learning_rate": 1e-3,
            "epochs": 1.0, "max_steps": 60, "batch_size": 4, "grad_accum": 1, "max_seq_len": 512,
            "target_modules": "q_proj,v_proj"}


def train_datasets() -> list[tuple[str, str, str]]:
    """(label, path, instruction) for the training split of every built-in task."""
    out = []
    for name in task_names():
        try:
            task = load_task(name)
        except Exception:
            continue
        if task.train is not None:
            n = len(task.examples("train"))
            out.append((f"{name}: {task.train.name} ({n} examples)", str(task.train), task.instruction or ""))
    return out


DEMO_TASK = "tickets"  # format and behaviour: where tuning is expected to win (seeds)


def demo_config(lab) -> dict:
    """The built-in demo adapter: the `tickets` scenario's training set, CPU-sized."""
    task = load_task(DEMO_TASK)
    d = device_defaults()
    return {**{k: v for k, v in d.items() if k != "device"}, "name": DEMO_TASK, "data": str(task.train),
            "system": task.instruction or None, "base_model": lab.config.default_model}


def tokens_per_example(path: str | Path, instruction: str | None, max_seq_len: int) -> int:
    """A rough token count of one training example (about 4 characters a token), without
    loading a tokenizer: the estimate must be instant."""
    path = Path(path)
    lines = sum(1 for line in path.open(encoding="utf-8") if line.strip()) or 1
    return min(max_seq_len, int((path.stat().st_size / lines + len(instruction or "")) / 4))


def estimate_seconds(lab, steps: int, batch_size: int, tokens: int) -> tuple[float, str]:
    """How long `steps` steps of `batch_size` examples of ~`tokens` tokens take here: from this
    lab's own CPU runs (tokens/s) when there are any, else from the figure measured for
    SmolLM2-135M (1.5 s per step of 4 x ~100 tokens on 2 cores), scaled to this machine's
    cores. Plus about a minute to load (the first time: convert) the base model."""
    from ..config import default_threads

    rows = lab.store.query(
        "select avg(s.tokens_per_s) as tps from training_steps s join training_runs r on r.id = s.run_id "
        "where r.device = 'cpu' and s.tokens_per_s is not null")
    if rows and rows[0]["tps"]:
        rate, basis = rows[0]["tps"], "from this lab's earlier training runs"
    else:
        rate = 4 * 100 / 1.5 * min(default_threads(), 16) / 2
        basis = "from the CPU figure for this model, scaled to this machine's cores"
    return steps * batch_size * tokens / rate + 60, basis


def demo_training_offer(lab) -> str:
    if not can_train():
        return "Training is **not available yet** in this build (`lab train` is missing), so no demo adapter."
    cfg = demo_config(lab)
    tokens = tokens_per_example(cfg["data"], cfg["system"], int(cfg["max_seq_len"]))
    secs, basis = estimate_seconds(lab, int(cfg["max_steps"] or 60), int(cfg["batch_size"]), tokens)
    return (f"Train the built-in demo adapter **{cfg['name']}** ({cfg['max_steps']} LoRA steps on the "
            f"`{DEMO_TASK}` scenario): about **{max(1, round(secs / 60))} min** on this machine ({basis}). "
            "It runs in the background: you can close the page.")


# ---- training runs as subprocesses -------------------------------------------------------------

_CHILDREN: list = []  # Popen objects, reaped when polled so no zombie is left


def _toml_value(v) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def start_training(lab, config: dict, overwrite: bool = False, resume: bool = False) -> tuple[int, Path]:
    """Start `lab train --config FILE` as its own process (own session: closing the page or
    stopping the app does not stop it); it writes its progress to lab.db, the page polls.
    Returns (pid, log file)."""
    import subprocess
    import time

    from ..tuning.config import make_config

    if not can_train():
        raise AppError("training is not available yet in this build: the `lab train` command is missing")
    values = {k: v for k, v in config.items() if v not in (None, "") and not (k == "max_steps" and not v)}
    cfg = make_config("the Train tab", **values)  # a bad value fails here, named, before any process starts
    folder = lab.home.state / "training"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    toml = folder / f"{cfg.name}-{stamp}.toml"
    data = cfg.to_json()
    data["data"] = str(Path(cfg.data).resolve())
    toml.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in data.items() if v is not None),
                    encoding="utf-8")
    log = folder / f"{cfg.name}-{stamp}.log"
    args = ["train", "--config", str(toml)] + (["--overwrite"] if overwrite else []) + (["--resume"] if resume else [])
    with open(log, "wb") as out:
        proc = subprocess.Popen(lab_command(lab, *args), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(lab.home.root), env=env_for_subprocess(),
                                start_new_session=True)
    _CHILDREN.append(proc)
    return proc.pid, log


def reap() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)


def start_demo_training(lab) -> str:
    if not can_train():
        raise AppError("training is not available yet in this build: the `lab train` command is missing")
    running = [r for r in lab.store.training_runs(5, adapter=DEMO_TASK) if r["status"] == "running"]
    if running:
        return f"The demo adapter is already training (run #{running[0]['id']}): see the Train tab."
    pid, log = start_training(lab, demo_config(lab), overwrite=True)
    return (f"Training the demo adapter in the background (process {pid}). Watch the loss curve in the "
            f"**Train** tab; it appears here when done. Log: `{log}`")


def stop_training(lab, run_id: int) -> str:
    """SIGTERM: the trainer stops at a step boundary and keeps a checkpoint (resumable)."""
    import signal

    run = next((r for r in lab.store.training_runs(200) if r["id"] == run_id), None)
    if run is None:
        raise AppError(f"no training run #{run_id}")
    if run["status"] != "running" or not run.get("pid"):
        return f"Run #{run_id} is not running ({run['status']})."
    try:
        os.kill(int(run["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        lab.store.update("training_runs", run_id, {"status": "failed", "error": "process gone"})
        return f"Run #{run_id}: its process {run['pid']} is gone; marked failed."
    return f"Stopping run #{run_id} at the next step boundary (a checkpoint is kept; start again with resume)."


def lab_command(lab, *args: str) -> list[str]:
    """`lab --home HOME ...` as a subprocess command line (same Python, same lab home)."""
    import sys

    return [sys.executable, "-m", "lab.cli", "--home", str(lab.home.root), *args]


def env_for_subprocess() -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The child imports `lab` from the same place this process did (a checkout or a wheel).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
