"""The offline demo in one go: what a lab home needs so the Compare, Evaluate and Advisor tabs show
the whole ladder at once, planned with this machine's speeds and built resumably.

    steps = plan(lab)                  # [Step(kind, name, what, why, seconds, done, basis, ...)]
    result = prepare(lab)              # does the steps not done yet; Ctrl-C, rerun: it continues

The steps, cheapest first so a stopped run already shows something: the sample corpus's index;
a stored evaluation of each built-in scenario on its prompt (and RAG) arms; a demo adapter per
scenario (the existing trainer, resumed from its checkpoint; an adapter whose data, config and
base model match is reused, and one that does not match is never overwritten: the demo trains
`<scenario>-demo` beside it); then the tune arms joining the same stored evaluations.

Nothing is done twice: every step is recognised as done from the lab home itself (the index's
manifest, the adapter's manifest, the evaluation's rows), so a rerun, or `lab eval`/`lab train`
run by hand, counts. Each run is a `demo_runs` row in lab.db, updated as it goes: the app starts
`lab demo prepare` as a background process (`start_job`) and polls that row.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import ladder
from .evaluation.runner import done_keys, matching_run, run_eval
from .evaluation.sample import held_out as sampled
from .store import now
from .tasks import Task, builtin_tasks, load_task
from .tuning import jobs
from .tuning.checkpoint import comparable_config, find_checkpoint
from .tuning.config import TrainConfig, make_config

# Held-out examples per scenario: enough for a scoreboard to show the ladder's shape, few enough
# that all three scenarios' evaluations take minutes on a 2-core CPU (`--limit` changes it; a
# later `lab eval NAME` without a limit completes the same stored run).
DEFAULT_LIMIT = 12
# The README's adapters: 60 LoRA steps at the CPU defaults (lr 1e-3), ~15 min each for SmolLM2-135M
# on 2 cores. On a CUDA GPU the device defaults train by epochs.
CPU_STEPS = 60
BASE_ARMS, TUNE_ARMS = ("zero-shot", "few-shot", "rag"), ("tune", "tune+rag")
# Config fields that do not change what an adapter learns (where it lives, how often it logs).
_NOT_LEARNED = {"name", "data", "force", "threads", "eval_every", "save_every"}


@dataclass
class Step:
    kind: str  # "index", "eval" or "train"
    name: str  # the corpus, scenario or adapter
    what: str
    why: str
    seconds: float  # estimated time left on this machine (0 once done)
    done: bool
    basis: str = ""  # where the estimate comes from
    state: str = ""  # what is there already ("3 of 12 answered", "checkpoint at step 20")
    task: str | None = None
    arms: list[str] = field(default_factory=list)
    adapter: str | None = None
    todo: int = 0  # answers (eval) or training steps (train) left
    limit: int | None = None  # eval: held-out examples
    corpus: str | None = None  # index: what `ladder.task_corpus` names
    config: TrainConfig | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["config"] = self.config.to_json() if self.config else None
        return d


@dataclass
class PrepareResult:
    status: str  # "done", "cancelled" (cancel set), "interrupted" (Ctrl-C / SIGTERM)
    steps: list[Step]
    wall_s: float
    run_id: int


# ---- the plan -----------------------------------------------------------------------------------

def scenarios(names: list[str] | None = None) -> list[Task]:
    """The built-in scenarios (or those of `names`, which must be built-in ones)."""
    from .tasks import TaskError

    unknown = sorted(set(names or []) - set(builtin_tasks()))
    if unknown:
        raise TaskError(f"not a built-in scenario: {', '.join(unknown)} (choose from {', '.join(builtin_tasks())})")
    return [load_task(name) for name in builtin_tasks() if not names or name in names]


def arms_for(task: Task, tuned: bool) -> list[str]:
    arms = TUNE_ARMS if tuned else BASE_ARMS
    return [a for a in arms if task.corpus or a not in ladder.RAG_ARMS]


def plan(lab, *, limit: int = DEFAULT_LIMIT, train_overrides: dict | None = None, probe: bool = True,
         only: list[str] | None = None) -> list[Step]:
    """What the demo needs, in the order `prepare` does it, each step with its estimate and
    whether it is done. `probe`: with no answer speed in the run log yet, time one short answer
    (loads the model); without it a rough figure stands in. `train_overrides`: TrainConfig
    fields over the demo adapters' (tests train a step or two); `only`: some of the built-in scenarios."""
    tasks = scenarios(only)
    model = _model_info(lab)
    speed = _AnswerSpeed(lab, model.id, probe)
    steps = _index_steps(lab, tasks)
    adapters = {t.name: _adapter_plan(lab, t, model, train_overrides) for t in tasks if t.train is not None}
    steps += [_eval_step(lab, t, arms_for(t, False), None, limit, speed) for t in tasks]
    steps += list(adapters.values())
    steps += [_eval_step(lab, t, arms_for(t, True), adapters[t.name], limit, speed) for t in tasks
              if t.name in adapters]
    return steps


def total_seconds(steps: list[Step]) -> float:
    return sum(s.seconds for s in steps if not s.done)


def needed(lab) -> bool:
    """Cheap (no model, no hashing): a home with no adapter or no stored evaluation, where the
    app offers to prepare the demo."""
    from .tuning.adapters import list_adapters

    found, _problems = list_adapters(lab.home.adapters)
    return not found or not lab.store.query("select id from eval_runs limit 1")


def describe(steps: list[Step]) -> str:
    """The plan as text: one line per step with its estimate, then the total."""
    lines = []
    for i, s in enumerate(steps, 1):
        when = "done" if s.done else f"~{_minutes(s.seconds)}"
        lines.append(f"{i:2}. [{when:>8}] {s.what}" + (f" ({s.state})" if s.state else ""))
        lines.append(f"      why: {s.why}")
        if not s.done and s.basis:
            lines.append(f"      estimate: {s.basis}")
    left = [s for s in steps if not s.done]
    lines.append(f"{len(steps) - len(left)} of {len(steps)} steps done; "
                 + (f"the rest takes about {_minutes(total_seconds(steps))} on this machine" if left
                    else "the demo is ready: `lab serve`"))
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _model_info(lab):
    from .models import ModelNotFound

    try:
        return lab.model_info()
    except ModelNotFound:  # a backend registered by hand (a test's fake)
        return lab.backend().info


def _index_steps(lab, tasks: list[Task]) -> list[Step]:
    from .retrieval import index_state

    steps, seen = [], set()
    for t in tasks:
        if not t.corpus or t.corpus in seen:
            continue
        seen.add(t.corpus)
        ref = ladder.task_corpus(lab, t)
        state = index_state(lab, ref)
        done = state["indexed"] and state["stale"] == 0
        folder = Path(state["folder"] or ref)
        chars = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if not done else 0
        # ~4 characters a token, 128 new tokens a chunk; ~20 chunks/s for all-MiniLM-L6-v2 on 2
        # cores, plus loading it
        seconds = 0.0 if done else 15 + chars / 4 / 128 / 20
        left = "" if done else (f"{state['stale']} files new or changed" if state["indexed"] else "no index yet")
        steps.append(Step("index", state["corpus"], f"index the sample corpus '{state['corpus']}' "
                          f"({state['files']} files)", f"the RAG arms of {t.name} retrieve from it", seconds, done,
                          "a rough figure for the embedder on 2 cores (the embeddings are cached)", left,
                          task=t.name, corpus=ref))
    return steps


# ---- adapters -----------------------------------------------------------------------------------

def train_config(lab, task: Task, overrides: dict | None = None, name: str | None = None) -> TrainConfig:
    """The demo adapter of `task`: its training set and instruction at this machine's training
    defaults (the Train tab's and `lab train --task`'s), CPU_STEPS steps on a CPU."""
    config = make_config("the demo", device="auto", name=name or task.name, data=str(task.train),
                         instruction=task.instruction or None, base_model=lab.config.default_model)
    if config.method == "lora" and config.batch_size == 4:  # the CPU defaults: sized in steps
        config = config.model_copy(update={"max_steps": CPU_STEPS})
    return make_config("the demo", **{**config.to_json(), **(overrides or {})}) if overrides else config


def adapter_matches(adapter, config: TrainConfig, model_sha: str) -> bool:
    """Whether a trained adapter is what `config` would train: same base weights, same data
    (sha256), same settings."""
    from .models import sha256_of

    m = adapter.manifest
    mine = {k: v for k, v in config.to_json().items() if k not in _NOT_LEARNED}
    theirs = {k: v for k, v in (m.get("config") or {}).items() if k not in _NOT_LEARNED}
    return (adapter.base_sha == model_sha and mine == theirs
            and (m.get("dataset") or {}).get("sha256") == sha256_of(Path(config.data)))


def _checkpoint_step(lab, config: TrainConfig, model_sha: str) -> int | None:
    """The step of `config.name`'s checkpoint when it can be resumed with `config`; -1 when there is
    one that cannot (other settings, data or model); None when there is none."""
    from .models import sha256_of

    ckpt = find_checkpoint(lab, config.name)
    if ckpt is None:
        return None
    state = json.loads((ckpt / "state.json").read_text())
    fits = (comparable_config(state["config"]) == comparable_config(config.to_json())
            and state.get("base_sha") == model_sha and state.get("dataset_sha") == sha256_of(Path(config.data)))
    return int(state.get("step") or 0) if fits else -1


def _adapter_plan(lab, task: Task, model, overrides: dict | None) -> Step:
    from .tuning.adapters import AdapterError, read_adapter

    sha = lab.model_sha(model)
    why = f"the tune arms of {task.name} answer with it"
    names = (task.name, f"{task.name}-demo")
    for name in names:  # one trained earlier with the very same data and settings: reuse it
        folder = lab.home.adapters / name
        if (folder / "lab_adapter.json").exists():
            try:
                if adapter_matches(read_adapter(folder), train_config(lab, task, overrides, name), sha):
                    return Step("train", name, f"train the demo adapter '{name}'", why, 0.0, True,
                                state="trained", task=task.name, adapter=name)
            except AdapterError:
                continue
    for name in names:  # the scenario's own name when free; never overwrite someone's adapter
        config = train_config(lab, task, overrides, name)
        ckpt_step = _checkpoint_step(lab, config, sha)
        if not (lab.home.adapters / name).exists() and ckpt_step != -1:
            break
    else:
        ckpt_step = None  # <scenario>-demo is the demo's own: it is retrained in place
    total = config.max_steps or _epoch_steps(task, config)
    left = total - (ckpt_step or 0)
    tokens = jobs.tokens_per_example(config.data, config.instruction, config.max_seq_len)
    seconds, basis = jobs.estimate_seconds(lab, left, config.batch_size * config.grad_accum, tokens)
    state = f"checkpoint at step {ckpt_step} of {total}" if ckpt_step else ""
    if name != task.name:
        state = ", ".join(x for x in (state, f"'{task.name}' holds another adapter or checkpoint: kept") if x)
    return Step("train", name, f"train the demo adapter '{name}' ({total} {config.method} steps on "
                f"{task.name}'s {len(task.examples('train'))} training examples)", why, seconds, False, basis,
                state, task=task.name, adapter=name, todo=left, config=config)


def _epoch_steps(task: Task, config: TrainConfig) -> int:
    n = len(task.examples("train")) * (1 - config.val_fraction)
    return max(1, math.ceil(math.ceil(math.ceil(n / config.batch_size) / config.grad_accum) * config.epochs))


# ---- evaluations --------------------------------------------------------------------------------

class _AnswerSpeed:
    """Seconds one answer takes here, per scenario and arm: the run log's own timings of that
    scenario's answers when there are some, else this model's logged prompt and answer speeds
    (tokens/s), measured with one probe answer when the log has none."""

    def __init__(self, lab, model_id: str, probe: bool):
        self.lab, self.model_id, self.probe = lab, model_id, probe
        self._rates: tuple[float, float, str] | None = None

    def seconds(self, task: Task, arm: str) -> tuple[float, str]:
        rows = self.lab.store.query(
            "select count(*) as n, avg(g.total_s) as s from generations g join eval_runs r on g.eval_run_id = r.id "
            "where r.task = ? and g.arm = ? and g.model_id = ? and g.error is null", [task.name, arm, self.model_id])
        if rows and rows[0]["n"] >= 3:
            return rows[0]["s"], "this lab's earlier answers for the scenario"
        prefill, decode, basis = self.rates()
        return _prompt_tokens(task, arm) / prefill + task.max_tokens / decode, basis

    def rates(self) -> tuple[float, float, str]:
        """(prompt tokens/s, answer tokens/s, basis)."""
        if self._rates is None:
            self._rates = self._logged() or (self._probe() if self.probe else None) or (
                300.0, 30.0, "a rough figure for a 135M model on 2 cores (no answer logged yet)")
        return self._rates

    def _logged(self, basis: str = "this model's logged answer speed") -> tuple[float, float, str] | None:
        """Medians over the model's last 200 answers: a model's first answer after loading is
        slow (warm-up), and a prompt prefix in the KV cache is fast; neither is typical."""
        import statistics

        rows = self.lab.store.query(
            "select prompt_tokens as p, ttft_s as t, completion_tokens as c, total_s - ttft_s as d from generations "
            "where model_id = ? and error is null and completion_tokens > 1 and ttft_s > 0 and total_s > ttft_s "
            "order by id desc limit 200", [self.model_id])
        if not rows:
            return None
        return (statistics.median(r["p"] / r["t"] for r in rows),
                statistics.median((r["c"] - 1) / r["d"] for r in rows), basis)

    def _probe(self) -> tuple[float, float, str] | None:
        """Three short answers (the first one after loading warms up), logged like any other, so
        the next plan reads the speed from the log."""
        task = scenarios()[0]
        for ex in task.examples("eval")[:3]:
            messages = [{"role": "system", "content": task.instruction or ""}, {"role": "user", "content": ex.input}]
            self.lab.generate(messages, arm="zero-shot",
                              options=self.lab.options(max_tokens=24, temperature=0.0, seed=0))
        return self._logged("three probe answers timed just now")


def _prompt_tokens(task: Task, arm: str) -> float:
    """A rough prompt length (about 4 characters a token): instruction, question, and the
    few-shot examples or the retrieved passages the arm adds."""
    held_out = task.examples("eval")
    chars = len(task.instruction or "") + sum(len(e.input) for e in held_out) / max(1, len(held_out))
    if arm == "few-shot":
        chars += sum(len(e.input) + len(e.output) for e in ladder.few_shot_pool(task)[:task.few_shot_k])
    tokens = chars / 4
    if arm in ladder.RAG_ARMS:
        tokens += 4 * 160  # rag_k passages of up to 160 tokens
    return tokens


def _eval_step(lab, task: Task, arms: list[str], adapter_step: Step | None, limit: int, speed) -> Step:
    """Evaluating `arms` of `task` on `limit` held-out examples (`sampled`) into the run `run_eval`
    resumes. The tune arms join the run that holds the prompt arms' rows, unless that run was
    made with another adapter (or another training of it): then run_eval starts a new run, and
    every arm is evaluated again in it, so the scoreboard compares rows of one run."""
    held_out = sampled(task, limit)
    run = matching_run(lab, task)
    adapter = adapter_step.adapter if adapter_step else None
    run_arms, counted = arms, arms  # what run_eval is asked for; what this step must answer
    if adapter:
        run_arms = arms_for(task, False) + arms
        ours = _adapter_record(lab, adapter) if adapter_step.done else None
        if run and (json.loads(run["config_json"] or "{}").get("adapter") or ours) != ours:
            run, counted = None, run_arms  # a new run: the prompt arms are answered again in it
    wanted = {(ex.id, arm, 0) for ex in held_out for arm in counted}
    have = done_keys(lab, run["id"]) & wanted if run else set()
    missing = wanted - have
    seconds, bases = 0.0, set()
    for arm in counted:
        per_answer, basis = speed.seconds(task, arm) if missing else (0.0, "")
        seconds += per_answer * sum(1 for key in missing if key[1] == arm)
        bases.add(basis)
    if missing:
        seconds += 5  # loading the model (and the adapter)
    tuned = f" with '{adapter}'" if adapter else ""
    why = (f"the Evaluate and Advisor tabs show {task.name}'s scoreboard" if not adapter else
           f"{task.name}'s scoreboard gets its tune column (the same stored run)")
    return Step("eval", task.name, f"evaluate {task.name} on {', '.join(arms)}{tuned}: {len(held_out)} held-out "
                f"examples", why, seconds, not missing, "; ".join(sorted(b for b in bases if b)),
                f"{len(wanted) - len(missing)} of {len(wanted)} answered" if have else "",
                task=task.name, arms=run_arms, adapter=adapter, todo=len(missing), limit=limit)


def _adapter_record(lab, name: str) -> dict:
    """How an evaluation run records the adapter its tune rows came from (as run_eval does)."""
    from .tuning.adapters import read_adapter

    return {"name": name, "sha": read_adapter(lab.home.adapters / name).sha256}


# ---- doing it -----------------------------------------------------------------------------------

Progress = Callable[[dict], None]


def prepare(lab, *, cancel: threading.Event | None = None, on_progress: Progress | None = None,
            limit: int = DEFAULT_LIMIT, train_overrides: dict | None = None, progress: bool = False,
            only: list[str] | None = None) -> PrepareResult:
    """Do the steps of `plan` that are not done, recording the run (a `demo_runs` row) as it goes.
    `cancel` (set from another thread) stops at the next answer or training step; Ctrl-C and
    SIGTERM stop the same way. Either way what is finished stays (a checkpoint, the answers so
    far) and the next `prepare` continues. `on_progress(event)` gets {step, steps, kind, name,
    message, fraction, remaining_s, elapsed_s}. `progress`: terminal progress bars."""
    steps = plan(lab, limit=limit, train_overrides=train_overrides, only=only)
    t0 = time.perf_counter()
    run_id = lab.store.insert("demo_runs", {
        "ts": now(), "pid": os.getpid(), "pid_started": jobs.process_started(os.getpid()), "status": "running",
        "step": 0, "steps": len(steps), "estimate_s": total_seconds(steps),
        "plan_json": json.dumps([s.as_dict() for s in steps], default=str)})
    status = "done"

    def report(i: int, step: Step, fraction: float, message: str) -> None:
        left = step.seconds * (1 - fraction) + sum(s.seconds for s in steps[i + 1:] if not s.done)
        event = {"step": i + 1, "steps": len(steps), "kind": step.kind, "name": step.name, "message": message,
                 "fraction": fraction, "remaining_s": left, "elapsed_s": time.perf_counter() - t0}
        lab.store.update("demo_runs", run_id, {"step": i + 1, "message": message, "fraction": fraction,
                                               "estimate_s": left, "wall_s": event["elapsed_s"]})
        if on_progress:
            on_progress(event)

    try:
        for i, step in enumerate(steps):
            if step.done:
                continue
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            report(i, step, 0.0, f"{step.what}...")
            if not _RUNNERS[step.kind](lab, step, cancel, lambda f, msg, i=i, step=step: report(i, step, f, msg),
                                       progress):
                status = "cancelled"
                break
            step.done, step.seconds = True, 0.0
            report(i, step, 1.0, f"done: {step.what}")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside training: the answers so far are kept
        status = "interrupted"
    except BaseException as e:
        lab.store.update("demo_runs", run_id, {"status": "failed", "error": f"{type(e).__name__}: {e}",
                                               "finished_ts": now(), "wall_s": time.perf_counter() - t0})
        raise
    wall = time.perf_counter() - t0
    lab.store.update("demo_runs", run_id, {"status": status, "finished_ts": now(), "wall_s": wall,
                                           "estimate_s": total_seconds(steps)})
    return PrepareResult(status, steps, wall, run_id)


def _run_index(lab, step: Step, cancel, report, progress: bool) -> bool:
    from .retrieval import index_corpus

    r = index_corpus(lab, step.corpus, progress=progress)
    report(1.0, r.summary())
    return True


def _run_eval(lab, step: Step, cancel, report, progress: bool) -> bool:
    answered = [0]

    def on_result(row: dict) -> None:
        answered[0] += 1
        report(min(1.0, answered[0] / max(1, step.todo)),
               f"evaluating {step.name}: {answered[0]} of {step.todo} answers ({row['arm']})")

    run_id = run_eval(lab, step.task, step.arms, limit=step.limit, adapter=step.adapter, progress=progress,
                      cancel=cancel, on_result=on_result)
    return lab.store.eval_run(run_id)["status"] != "cancelled"


def _run_train(lab, step: Step, cancel, report, progress: bool) -> bool:
    from .tuning import TrainingInterrupted, train

    config = step.config
    ckpt_step = _checkpoint_step(lab, config, lab.model_sha(_model_info(lab)))

    def on_step(row: dict) -> None:
        report(row["step"] / max(1, row["total_steps"]),
               f"training '{config.name}': step {row['step']} of {row['total_steps']}, loss {row['loss']:.3f}")
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt  # the trainer keeps a checkpoint of this step and stops

    try:
        train(config, lab, progress=progress, on_step=on_step, resume=ckpt_step is not None and ckpt_step >= 0,
              restart=ckpt_step == -1, overwrite=config.name != step.task,
              log=lambda msg: print(msg, file=sys.stderr) if progress else None)
    except TrainingInterrupted:
        if cancel is not None and cancel.is_set():
            return False
        raise KeyboardInterrupt from None  # Ctrl-C / SIGTERM: the whole run stops
    return True


_RUNNERS = {"index": _run_index, "eval": _run_eval, "train": _run_train}


# ---- as a background job (the app) -------------------------------------------------------------

def start_job(lab, limit: int = DEFAULT_LIMIT) -> subprocess.Popen:
    """Start `lab demo prepare` in its own process session (closing the page does not stop it);
    its output goes to a log file in the home's state folder; the page polls `latest_run`."""
    folder = lab.home.state / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"prepare-{time.strftime('%Y%m%d-%H%M%S')}.log"
    args = [sys.executable, "-m", "lab", "--home", str(lab.home.root), "demo", "prepare", "--limit", str(limit)]
    return jobs.spawn(lab, args, log_path)  # reaped with the training jobs, so no zombie is left


def latest_run(lab) -> dict | None:
    """The newest `demo_runs` row; a "running" one whose process is gone is marked died first."""
    jobs.reap()
    rows = lab.store.query("select * from demo_runs order by id desc limit 1")
    if not rows:
        return None
    run = rows[0]
    if run["status"] == "running" and jobs.trainer_alive(run) is False:
        lab.store.update("demo_runs", run["id"], {"status": "died", "finished_ts": now(),
                                                  "error": f"process {run['pid']} ended without finishing"})
        run = {**run, "status": "died"}
    return run


def stop_job(lab) -> str:
    """SIGTERM to the running prepare: it stops at the next answer or training step, keeping what
    is done (a rerun continues). Only that very process is signalled (pid and start time)."""
    import psutil

    run = latest_run(lab)
    if run is None or run["status"] != "running":
        return "No demo preparation is running."
    try:
        process = psutil.Process(int(run["pid"]))
        if run["pid_started"] is None or abs(process.create_time() - run["pid_started"]) >= 0.01:
            raise psutil.NoSuchProcess(process.pid)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return "The demo preparation has just ended."
    return "Stopping the demo preparation at the next step (what is done is kept; start it again to continue)."
