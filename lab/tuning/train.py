"""LoRA training: `train(config, lab) -> AdapterInfo`.

A plain loop (torch AdamW, linear warmup then linear decay, gradient clipping) over the
examples in `datasets.py`, loss on the answer tokens only. Every optimizer step is a row in
`training_steps` (committed as it is written, so the app can draw the curve live) and a tick
of the terminal progress bar. Ctrl-C or SIGTERM stops cleanly at a step boundary and keeps a
checkpoint in `adapters/.runs/<name>/`; `resume=True` continues from it. The finished adapter
is assembled in a temporary folder and renamed to `adapters/<name>/`, manifest written last, so
a killed run never leaves something that looks like a finished adapter.

Methods: `lora` (PEFT, float weights, CPU or GPU) and `qlora` (CUDA only: Unsloth when it is
installed, else PEFT + bitsandbytes 4-bit). For a GGUF base model the float weights are the
GGUF's own, dequantised by transformers (shared with the HF backend's cache), so the adapter
fits the model the llama.cpp arms run; it is exported to `adapter.gguf` as well.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import resource
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from .. import __version__
from ..models import ModelInfo
from ..store import now
from ..models import sha256_of
from .adapters import MANIFEST, AdapterInfo, read_adapter
from .config import TrainConfig
from .datasets import IGNORE, DatasetReport, Encoded, prepare

# Unsloth needs explicit module names; these are the linear layers of Llama-style blocks.
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Settings that may change between a checkpoint and its resumption (how long, how often).
_RESUMABLE_CHANGES = {"max_steps", "epochs", "eval_every", "save_every", "force", "threads"}


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""


class TrainingInterrupted(Exception):
    """Stopped by Ctrl-C / SIGTERM. The last checkpoint is kept; `resume=True` continues."""

    def __init__(self, name: str, step: int, checkpoint: Path | None):
        self.name, self.step, self.checkpoint = name, step, checkpoint
        where = f"checkpoint at step {step} in {checkpoint}" if checkpoint else "no checkpoint yet"
        super().__init__(f"training '{name}' interrupted ({where}); run it again with --resume to continue")


# ---- where things go ----------------------------------------------------------------------------

def runs_dir(lab, name: str) -> Path:
    return lab.home.adapters / ".runs" / name


def checkpoint_dir(lab, name: str) -> Path:
    return runs_dir(lab, name) / "checkpoint"


def _find_checkpoint(lab, name: str) -> Path | None:
    for folder in (checkpoint_dir(lab, name), checkpoint_dir(lab, name).with_name("checkpoint.old")):
        if (folder / "state.json").exists():
            return folder
    return None


# ---- method, device, model ----------------------------------------------------------------------

def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pick_method(method: str, cuda: bool) -> str:
    if method == "auto":
        return "qlora" if cuda else "lora"
    if method == "qlora" and not cuda:
        raise TrainingError("--method qlora needs a CUDA GPU (bitsandbytes 4-bit); none is visible here. "
                            "Use --method lora (or auto) to train on the CPU.")
    return method


def unsloth_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def hf_source(lab, info: ModelInfo) -> Path:
    """An HF folder with the base weights: the model's own, or the GGUF dequantised once."""
    if info.kind == "hf":
        return Path(info.path)
    folder = lab.hf_cache_dir(info)
    if not (folder / "config.json").exists():
        from ..backends.hf import load_hf_model

        load_hf_model(info, cache_dir=folder)  # converts and caches; the copy is dropped
    return folder


def load_tokenizer(lab, info: ModelInfo):
    """The base model's tokenizer (for the dataset report), without loading its weights."""
    from transformers import AutoTokenizer

    folder = lab.hf_cache_dir(info) if info.kind == "gguf" else Path(info.path)
    if (folder / "config.json").exists():
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:  # a GGUF not yet converted: read the tokenizer from the file itself
        tok = AutoTokenizer.from_pretrained(str(Path(info.path).parent), gguf_file=Path(info.path).name,
                                            local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _lora_config(config: TrainConfig, targets):
    from peft import LoraConfig

    return LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM")


def _load_model(lab, info: ModelInfo, config: TrainConfig, method: str, device: str, engine: str):
    """(peft model, tokenizer, engine name) ready to train."""
    import warnings

    import torch
    from peft import get_peft_model

    # peft asks transformers a deprecated question on every wrap; the answer is fine, the noise is not.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    gc = config.gradient_checkpointing if config.gradient_checkpointing is not None else method == "qlora"
    torch.manual_seed(config.seed)  # LoRA A matrices start random: seeded
    if method == "lora":
        from ..backends.hf import load_hf_model

        dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
        model, tok = load_hf_model(info, dtype=dtype, device=device,
                                   cache_dir=lab.hf_cache_dir(info) if info.kind == "gguf" else None)
        if gc:
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()
        model = get_peft_model(model, _lora_config(config, config.target_modules))
        # adapter_config.json names the float weights it was trained on (the HF folder or the
        # converted GGUF), so standard PEFT tools can load it too.
        model.peft_config["default"].base_model_name_or_path = str(
            lab.hf_cache_dir(info) if info.kind == "gguf" else info.path)
        return model, tok, "peft"

    src = hf_source(lab, info)
    if engine in ("auto", "unsloth") and unsloth_available():
        from unsloth import FastLanguageModel  # must come before transformers is used

        model, tok = FastLanguageModel.from_pretrained(model_name=str(src), max_seq_length=config.max_seq_len,
                                                       dtype=None, load_in_4bit=True)
        targets = ALL_LINEAR if config.target_modules == "all-linear" else config.target_modules
        model = FastLanguageModel.get_peft_model(
            model, r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
            target_modules=targets, bias="none", random_state=config.seed,
            use_gradient_checkpointing="unsloth" if gc else False)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return model, tok, "unsloth"
    if engine == "unsloth":
        raise TrainingError("unsloth is not installed: pip install 'ladder-lab[gpu]' (CUDA only), "
                            "or use the PEFT + bitsandbytes path (qlora_engine = 'bitsandbytes')")
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=compute)
    model = AutoModelForCausalLM.from_pretrained(str(src), quantization_config=bnb, dtype=compute,
                                                 device_map={"": 0}, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc)
    return get_peft_model(model, _lora_config(config, config.target_modules)), tok, "peft+bitsandbytes"


# ---- data order ---------------------------------------------------------------------------------

def _pack(examples: list[Encoded], max_seq_len: int, seed: int) -> list[Encoded]:
    """Concatenate examples (seeded order) into blocks of at most max_seq_len tokens. Attention
    is not masked between the examples of a block: cheaper, and usually harmless for short tasks."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    blocks: list[Encoded] = []
    ids: list[int] = []
    labels: list[int] = []
    for i in order:
        e = examples[i]
        if ids and len(ids) + len(e.input_ids) > max_seq_len:
            blocks.append(Encoded(ids, labels, len(ids)))
            ids, labels = [], []
        ids, labels = ids + e.input_ids, labels + e.labels
    if ids:
        blocks.append(Encoded(ids, labels, len(ids)))
    return blocks


def _micro_batch(n: int, batch_size: int, seed: int, index: int) -> list[int]:
    """The example indices of global micro-batch `index`: a seeded shuffle per epoch, so a
    resumed run sees exactly the batches the uninterrupted run would have."""
    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(index, per_epoch)
    order = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return order[pos * batch_size:(pos + 1) * batch_size]


def _collate(items: list[Encoded], pad_id: int, device: str):
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def _loss_tokens(labels) -> int:
    return int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one


def _loss(model, ids, mask, labels, engine: str):
    """Mean cross-entropy over the answer tokens. The vocabulary projection (a fifth of a small
    model's compute, and its biggest activation) runs only where a learned token comes next,
    through transformers' boolean `logits_to_keep`; Unsloth computes its own fused loss."""
    import torch

    if engine == "unsloth":
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                             labels[:, 1:][keep[:, :-1]])


def _val_loss(model, val: list[Encoded], batch_size: int, pad_id: int, device: str,
              engine: str = "peft") -> float | None:
    import torch

    if not val:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(val), batch_size):
            ids, labels, mask = _collate(val[i:i + batch_size], pad_id, device)
            n = _loss_tokens(labels)
            if n:
                total += float(_loss(model, ids, mask, labels, engine)) * n
                count += n
    model.train(was_training)
    return total / count if count else None


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warmup over `warmup` steps, then linear decay towards 0 at `total`."""
    if step < warmup:
        return base * (step + 1) / (warmup + 1)
    return base * max(0.0, (total - step) / max(1, total - warmup))


# ---- bookkeeping --------------------------------------------------------------------------------

class _Peak:
    """Peak memory while training: RSS sampled every step (and the process's own max RSS),
    and torch's peak allocation on CUDA."""

    def __init__(self, device: str):
        import psutil

        self.proc, self.device, self.rss = psutil.Process(), device, 0

    def sample(self) -> None:
        self.rss = max(self.rss, self.proc.memory_info().rss)

    def report(self) -> dict:
        import torch

        self.sample()
        out = {"peak_rss_bytes": self.rss,
               "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        if self.device == "cuda":
            out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
        return out


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (the app's Stop button, a job scheduler) stops training like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _save_checkpoint(model, optimizer, state: dict, folder: Path) -> None:
    """Adapter weights + optimizer + RNG + position, swapped in whole (tmp, then rename)."""
    import torch

    tmp, old = folder.with_name("checkpoint.partial"), folder.with_name("checkpoint.old")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
               tmp / "trainer_state.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in _RESUMABLE_CHANGES}


def validate(lab, config: TrainConfig) -> DatasetReport:
    """The dataset report for `config` with the base model's tokenizer, training nothing."""
    info = lab.model_info(config.base_model)
    prepare(config.data, None, max_seq_len=config.max_seq_len, val_fraction=config.val_fraction,
            seed=config.seed, instruction=config.instruction, force=config.force)  # fail fast, no tokenizer
    return prepare(config.data, load_tokenizer(lab, info), max_seq_len=config.max_seq_len,
                   val_fraction=config.val_fraction, seed=config.seed, instruction=config.instruction,
                   force=config.force).report


# ---- the run ------------------------------------------------------------------------------------

def train(config: TrainConfig, lab, progress: bool = True, on_step: Callable[[dict], None] | None = None,
          resume: bool = False, overwrite: bool = False,
          log: Callable[[str], None] | None = None) -> AdapterInfo:
    """Train the LoRA adapter `config` describes; return the finished adapter.

    Raises DatasetError (bad data: nothing trained), TrainingError (cannot train as asked),
    TrainingInterrupted (Ctrl-C / SIGTERM: checkpoint kept, `resume=True` continues)."""
    import torch

    say = log or (lambda msg: print(msg, file=sys.stderr))
    final_dir = lab.home.adapters / config.name
    if final_dir.exists() and not overwrite:
        raise TrainingError(f"adapter '{config.name}' already exists in {final_dir}: choose another --name "
                            "or pass --overwrite")
    info = lab.model_info(config.base_model)
    base_sha = lab.model_sha(info)
    # Check the file before anything slow: a bad line stops here, and nothing is trained.
    prepare(config.data, None, max_seq_len=config.max_seq_len, val_fraction=config.val_fraction,
            seed=config.seed, instruction=config.instruction, force=config.force)
    cuda = cuda_available()
    method = pick_method(config.method, cuda)
    device = "cuda" if cuda else "cpu"

    ckpt = _find_checkpoint(lab, config.name) if resume else None
    state = json.loads((ckpt / "state.json").read_text()) if ckpt else None
    if resume and ckpt is None:
        say(f"no checkpoint for '{config.name}' to resume: starting from the beginning")
    if state:
        if _comparable(state["config"]) != _comparable(config.to_json()):
            changed = sorted(k for k, v in _comparable(config.to_json()).items() if state["config"].get(k) != v)
            raise TrainingError(f"the checkpoint in {ckpt} was made with different settings ({', '.join(changed)}): "
                                f"resume with the same ones, or delete {runs_dir(lab, config.name)} to start afresh")
        if state["base_sha"] != base_sha or state["dataset_sha"] != sha256_of(Path(config.data)):
            raise TrainingError(f"the base model or the data changed since the checkpoint in {ckpt}: delete "
                                f"{runs_dir(lab, config.name)} to start afresh")
    elif not resume:
        shutil.rmtree(runs_dir(lab, config.name), ignore_errors=True)

    threads = config.threads or lab.config.n_threads
    if threads:
        torch.set_num_threads(threads)
    t_start = time.perf_counter()
    model, tok, engine = _load_model(lab, info, config, method, device, config.qlora_engine)
    data = prepare(config.data, tok, max_seq_len=config.max_seq_len, val_fraction=config.val_fraction,
                   seed=config.seed, instruction=config.instruction, force=config.force)
    say(data.report.summary())
    train_set = _pack(data.train, config.max_seq_len, config.seed) if config.packing else data.train
    steps_per_epoch = math.ceil(math.ceil(len(train_set) / config.batch_size) / config.grad_accum)
    total = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    warmup = int(total * config.warmup_ratio)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    step, wall_before = 0, 0.0
    if state:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors"), device=device))
        saved = torch.load(ckpt / "trainer_state.pt", map_location=device, weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        step, run_id, wall_before = state["step"], state["run_id"], state.get("wall_s", 0.0)
        lab.store.db.execute("delete from training_steps where run_id = ? and step > ?", [run_id, step])
        lab.store.db.conn.commit()
        lab.store.update("training_runs", run_id, {"status": "running", "pid": os.getpid(), "total_steps": total,
                                                   "error": None})
        say(f"resuming '{config.name}' from step {step} of {total}")
    else:
        run_id = lab.store.insert("training_runs", {
            "ts": now(), "adapter_name": config.name, "base_model": info.id, "base_sha": base_sha,
            "dataset_sha": data.report.sha256, "dataset_path": str(Path(config.data).resolve()),
            "config_json": json.dumps(config.to_json()), "status": "running", "device": device,
            "method": method, "engine": engine, "pid": os.getpid(), "total_steps": total})

    peak = _Peak(device)
    last = {"loss": None, "val_loss": None, "first_loss": state.get("first_loss") if state else None}
    ckpt_step = step if state else 0
    tokens_seen = 0
    t_loop = time.perf_counter()
    steps_this_session = 0
    bar = None
    in_update = False

    def checkpoint(at: int) -> None:
        nonlocal ckpt_step
        _save_checkpoint(model, optimizer, {
            "step": at, "run_id": run_id, "config": config.to_json(), "base_sha": base_sha,
            "dataset_sha": data.report.sha256, "first_loss": last["first_loss"],
            "wall_s": wall_before + time.perf_counter() - t_start, "ts": now()}, checkpoint_dir(lab, config.name))
        ckpt_step = at

    try:
        with _sigterm_as_interrupt():
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=step, disable=not progress, desc=config.name, unit="step",
                       dynamic_ncols=True)
            model.train()
            model.config.use_cache = False
            while step < total:
                t0 = time.perf_counter()
                lr = lr_at(step, total, warmup, config.learning_rate)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                micro = [_collate([train_set[i] for i in _micro_batch(len(train_set), config.batch_size,
                                                                         config.seed, step * config.grad_accum + k)],
                                  pad_id, device) for k in range(config.grad_accum)]
                n_step = sum(_loss_tokens(labels) for _, labels, _ in micro)
                step_loss, n_input = 0.0, 0
                for ids, labels, mask in micro:
                    n = _loss_tokens(labels)
                    n_input += int(mask.sum())
                    if not n:
                        continue
                    loss = _loss(model, ids, mask, labels, engine)
                    (loss * (n / n_step)).backward()
                    step_loss += float(loss.detach()) * n / n_step
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                in_update = True  # an interrupt inside the update must not be checkpointed
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                in_update = False

                dt = time.perf_counter() - t0
                tokens_seen += n_input
                steps_this_session += 1
                peak.sample()
                last["loss"] = step_loss
                if last["first_loss"] is None:
                    last["first_loss"] = step_loss
                val = None
                if data.val and (step % config.eval_every == 0 or step == total):
                    val = last["val_loss"] = _val_loss(model, data.val, config.batch_size, pad_id, device, engine)
                eta = (time.perf_counter() - t_loop) / steps_this_session * (total - step)
                row = {"run_id": run_id, "step": step, "loss": step_loss, "val_loss": val, "lr": lr,
                       "tokens_per_s": n_input / dt if dt > 0 else None,
                       "epoch": step / steps_per_epoch, "eta_s": eta, "ts": now()}
                lab.store.upsert("training_steps", row, pk=("run_id", "step"))
                bar.set_postfix({"loss": f"{step_loss:.3f}", "val": "-" if last["val_loss"] is None
                                 else f"{last['val_loss']:.3f}", "lr": f"{lr:.1e}",
                                 "tok/s": f"{row['tokens_per_s'] or 0:.0f}"}, refresh=False)
                bar.update(1)
                if on_step:
                    on_step(dict(row, total_steps=total))
                if step % config.save_every == 0 and step < total:
                    checkpoint(step)
            bar.close()
            model.eval()
            wall = wall_before + time.perf_counter() - t_start
            mem = peak.report()
            adapter = _finish(lab, model, info, base_sha, config, data.report, method, engine, device,
                              run_id, step, last, wall, mem, tokens_seen, time.perf_counter() - t_loop, overwrite)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if step > ckpt_step and not in_update:
            checkpoint(step)
        where = checkpoint_dir(lab, config.name) if ckpt_step else None
        lab.store.update("training_runs", run_id, {"status": "interrupted", "finished_ts": now(),
                                                   "wall_s": wall_before + time.perf_counter() - t_start})
        raise TrainingInterrupted(config.name, ckpt_step, where) from None
    except BaseException as e:
        if bar is not None:
            bar.close()
        lab.store.update("training_runs", run_id, {"status": "failed", "finished_ts": now(),
                                                   "error": f"{type(e).__name__}: {e}"})
        raise
    return adapter


def _finish(lab, model, info, base_sha, config, report, method, engine, device, run_id, steps, last,
            wall, mem, tokens_seen, loop_s, overwrite) -> AdapterInfo:
    """Save PEFT files (+ adapter.gguf) and the manifest in a temporary folder, then rename it
    into place; record the run as done and drop its checkpoint."""
    import peft
    import torch
    import transformers

    final = lab.home.adapters / config.name
    tmp = lab.home.adapters / f".{config.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(tmp))
    files = {"peft": "adapter_model.safetensors"}
    gguf_sha = None
    if info.kind == "gguf":
        from .export_gguf import export_gguf

        gguf_sha = sha256_of(export_gguf(tmp, info.path))
        files["gguf"] = "adapter.gguf"
    manifest = {
        "format": "lab-adapter/1", "name": config.name, "created": now(), "lab_version": __version__,
        "base_model": {"id": info.id, "kind": info.kind, "path": str(info.path), "sha256": base_sha,
                       "architecture": info.architecture},
        "adapter": {"sha256": sha256_of(tmp / "adapter_model.safetensors"), "gguf_sha256": gguf_sha,
                    "files": files, "rank": config.rank, "alpha": config.alpha,
                    "target_modules": config.target_modules},
        "dataset": report.as_dict(), "config": config.to_json(), "method": method, "engine": engine,
        "device": device, "run_id": run_id,
        "metrics": {"steps": steps, "first_loss": last["first_loss"], "train_loss": last["loss"],
                    "val_loss": last["val_loss"], "tokens": tokens_seen,
                    "tokens_per_s": tokens_seen / loop_s if loop_s > 0 else None,
                    "s_per_step": loop_s / max(1, steps)},
        "wall_s": round(wall, 2), "peak_mem_bytes": mem.get("peak_gpu_bytes", mem["peak_rss_bytes"]), **mem,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))  # last: marks it complete
    old = None
    if final.exists():
        if not overwrite:
            raise TrainingError(f"adapter '{config.name}' appeared in {final} while training; kept in {tmp}")
        old = final.with_name(f".{config.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    adapter = read_adapter(final)
    lab.store.update("training_runs", run_id, {
        "status": "done", "finished_ts": now(), "wall_s": manifest["wall_s"], "peak_mem": manifest["peak_mem_bytes"],
        "adapter_path": str(final), "adapter_sha": adapter.sha256, "train_loss": last["loss"],
        "val_loss": last["val_loss"]})
    shutil.rmtree(runs_dir(lab, config.name), ignore_errors=True)
    return adapter
