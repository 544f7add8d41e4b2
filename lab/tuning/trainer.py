"""LoRA training: `train(config, lab) -> AdapterInfo`.

A plain loop (`loop.py`: torch AdamW, linear warmup then linear decay, gradient clipping) over
the examples in `datasets.py`, loss on the answer tokens only. Every optimizer step is a row in
`training_steps` and a tick of the terminal progress bar. Ctrl-C or SIGTERM stops cleanly at a
step boundary and keeps a checkpoint in `adapters/.runs/<name>/` (`checkpoint.py`);
`resume=True` continues from it. The finished adapter is assembled in a temporary folder and
renamed to `adapters/<name>/`, manifest written last (`finish.py`).

Methods (`loading.py`, `qlora.py`): `lora` (PEFT, float weights, CPU or GPU) and `qlora`
(4-bit NF4 base: Unsloth on CUDA when installed, else PEFT + bitsandbytes, on CUDA or the CPU).
For a GGUF base model the float weights are its paired HF folder or the GGUF's own, dequantised
by transformers (shared with the HF backend's cache), so the adapter fits the model the
llama.cpp arms run; it is exported to `adapter.gguf` as well.

Everything one run holds is one `TrainRun` (`run.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..store import now
from ..threads import threads_for_load
from . import trainer_lock
from .adapters import AdapterInfo
from .checkpoint import find_checkpoint, read_resumable, restore_checkpoint, save_checkpoint
from .config import TrainConfig
from .datasets import DatasetReport
from .finish import finish
from .loading import (  # noqa: F401
    check_trainable_base,
    cuda_available,
    hf_source,
    load_model,
    load_tokenizer,
    pick_method,
    pick_precision,
    unsloth_available,
)
from .loop import lr_at, pack, run_loop  # noqa: F401
from .plan import prepared, steps_for
from .qlora import import_unsloth_first, unsloth_wanted
from .run import TrainingError, TrainingInterrupted, TrainRun, checkpoint_dir, process_started, runs_dir  # noqa: F401
from .targets import ALL_LINEAR  # noqa: F401

# bitsandbytes' CPU backend tries to fetch an optional kernel from a hub at import and warns
# "Failed to load CPU gemm_4bit_forward ... pip install kernels" when it cannot: offline, by
# design, and it trains without it; that line must not open every trainer's output.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def validate(lab, config: TrainConfig) -> DatasetReport:
    """The dataset report for `config` with the base model's tokenizer, training nothing."""
    info = lab.model_info(config.base_model)
    _check_data(config)  # fail fast, no tokenizer
    return _prepare(config, load_tokenizer(lab, info)).report


def _prepare(config: TrainConfig, tokenizer):
    return prepared(config, tokenizer)


def _check_data(config: TrainConfig) -> None:
    _prepare(config, None)


@contextlib.contextmanager
def sigterm_as_interrupt():
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


# ---- the stages of a run ------------------------------------------------------------------------


def _check_checkpoint(lab, name: str, resume: bool, restart: bool) -> None:
    """A run's checkpoint is work done: never drop it unasked."""
    if resume and restart:
        raise TrainingError("--resume continues the checkpoint, --restart deletes it: pass one of them")
    ckpt = find_checkpoint(lab, name)
    if ckpt is not None and not (resume or restart):
        step = json.loads((ckpt / "state.json").read_text()).get("step")
        raise TrainingError(
            f"'{name}' has a checkpoint at step {step} in {ckpt}: pass --resume to continue "
            "from it, or --restart to delete it and start from the beginning"
        )


def _start(
    config: TrainConfig, lab, resume: bool, overwrite: bool, say, restart: bool = False
) -> tuple[TrainRun, Path | None, dict]:
    """Check everything cheap before anything slow -> (run, checkpoint to resume or None, its state)."""
    final_dir = lab.home.adapters / config.name
    if final_dir.exists() and not overwrite:
        raise TrainingError(
            f"adapter '{config.name}' already exists in {final_dir}: choose another --name or pass --overwrite"
        )
    _check_checkpoint(lab, config.name, resume, restart)
    info = lab.model_info(config.base_model)
    _check_data(config)  # a bad line stops here, and nothing is trained
    cuda = cuda_available()
    method = pick_method(config.method, cuda)
    if unsloth_wanted(method, config.qlora_engine, cuda):
        import_unsloth_first(lab, say)  # before anything below imports transformers or peft
    check_trainable_base(lab, info)
    run = TrainRun(
        config=config,
        lab=lab,
        info=info,
        base_sha=lab.model_sha(info),
        method=method,
        device="cuda" if cuda else "cpu",
        say=say,
        overwrite=overwrite,
    )
    ckpt = find_checkpoint(lab, config.name) if resume else None
    if resume and ckpt is None:
        say(f"no checkpoint for '{config.name}' to resume: starting from the beginning")
    state = read_resumable(run, ckpt) if ckpt else {}
    if not resume:  # no checkpoint (a partial one at most), or --restart: start afresh
        shutil.rmtree(runs_dir(lab, config.name), ignore_errors=True)
    return run, ckpt, state


def _plan(run: TrainRun) -> None:
    """The data, in order, and the number of steps it makes."""
    cfg = run.config
    run.data = _prepare(cfg, run.tokenizer)
    run.say(run.data.report.summary())
    run.train_set = pack(run.data.train, cfg.max_seq_len, cfg.seed) if cfg.packing else run.data.train
    run.steps_per_epoch = steps_for(len(run.train_set), 1, cfg.batch_size, cfg.grad_accum)
    run.total = cfg.max_steps or steps_for(len(run.train_set), cfg.epochs, cfg.batch_size, cfg.grad_accum)
    run.warmup = int(run.total * cfg.warmup_ratio)
    run.pad_id = run.tokenizer.pad_token_id if run.tokenizer.pad_token_id is not None else 0


def _register(run: TrainRun, ckpt: Path | None, state: dict) -> None:
    """Make the optimizer; continue the checkpoint's run, or log a new one."""
    import torch

    run.params = [p for p in run.model.parameters() if p.requires_grad]
    run.optimizer = torch.optim.AdamW(run.params, lr=run.config.learning_rate, weight_decay=run.config.weight_decay)
    store = run.lab.store
    # who to stop, and (with its start time) how to tell later that it died
    trainer = {"pid": os.getpid(), "pid_started": process_started(os.getpid())}
    if ckpt:
        restore_checkpoint(run, ckpt, state)
        store.drop_training_steps_after(run.run_id, run.step)
        store.training_event(run.run_id, "resumed", run.step)
        store.update_training_run(
            run.run_id, {"status": "running", **trainer, "total_steps": run.total, "error": None, "finished_ts": None}
        )
        run.say(f"resuming '{run.name}' from step {run.step} of {run.total}")
        return
    run.run_id = store.new_training_run(
        {
            "adapter_name": run.name,
            "base_model": run.info.id,
            "base_sha": run.base_sha,
            "dataset_sha": run.data.report.sha256,
            "dataset_path": str(Path(run.config.data).resolve()),
            "config_json": json.dumps(run.config.to_json()),
            "device": run.device,
            "method": run.method,
            "engine": run.engine,
            **trainer,
            "total_steps": run.total,
        }
    )


def _interrupted(run: TrainRun) -> TrainingInterrupted:
    """Keep a checkpoint of the last whole step, mark the run interrupted."""
    if run.step > run.ckpt_step and not run.in_update and run.optimizer is not None:
        save_checkpoint(run)
    where = checkpoint_dir(run.lab, run.name) if run.ckpt_step else None
    run.lab.store.update_training_run(
        run.run_id, {"status": "interrupted", "finished_ts": now(), "wall_s": run.wall_s()}
    )
    run.lab.store.training_event(run.run_id, "stopped", run.ckpt_step)
    return TrainingInterrupted(run.name, run.ckpt_step, where)


# ---- the run ------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    lab,
    progress: bool = True,
    on_step: Callable[[dict], None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    restart: bool = False,
) -> AdapterInfo:
    """Train the LoRA adapter `config` describes; return the finished adapter.

    Raises DatasetError (bad data: nothing trained), TrainingError (cannot train as asked),
    TrainingInterrupted (Ctrl-C / SIGTERM: checkpoint kept, `resume=True` continues).
    A checkpoint of this name is never dropped unasked: `resume=True` continues it,
    `restart=True` deletes it; neither is a TrainingError. A second trainer for the same
    adapter name (another process) is a TrainingError naming the first."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    # one trainer per adapter, held until this process ends or training does (a job names its log)
    lock = trainer_lock.acquire(lab, config.name, log=os.environ.get("LAB_JOB_LOG"))
    try:
        return _train(config, lab, say, progress, on_step, resume, overwrite, restart)
    finally:
        trainer_lock.release(lock)


def _train(
    config: TrainConfig, lab, say, progress: bool, on_step, resume: bool, overwrite: bool, restart: bool
) -> AdapterInfo:
    import torch

    run, ckpt, state = _start(config, lab, resume, overwrite, say, restart)
    run.progress, run.on_step = progress, on_step
    torch.set_num_threads(threads_for_load(config.threads or lab.config.n_threads))  # free cores, unless set
    run.t_start = time.perf_counter()
    run.precision = pick_precision(run.device, run.method)
    load_model(run)
    _plan(run)
    _register(run, ckpt, state)
    try:
        with sigterm_as_interrupt():
            run_loop(run)
            return finish(run)
    except KeyboardInterrupt:
        raise _interrupted(run) from None
    except BaseException as e:
        lab.store.update_training_run(
            run.run_id, {"status": "failed", "finished_ts": now(), "error": f"{type(e).__name__}: {e}"}
        )
        raise
