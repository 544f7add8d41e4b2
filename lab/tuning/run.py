"""One training run as one object: what `train()` and its parts (loading, the loop, checkpoints,
finishing) read and update, instead of closures and long argument lists."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import ModelInfo
from .config import TrainConfig


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""


class TrainingInterrupted(Exception):
    """Stopped by Ctrl-C / SIGTERM. The last checkpoint is kept; `resume=True` continues."""

    def __init__(self, name: str, step: int, checkpoint: Path | None):
        self.name, self.step, self.checkpoint = name, step, checkpoint
        where = f"checkpoint at step {step} in {checkpoint}" if checkpoint else "no checkpoint yet"
        # No face's words here: the CLI says "--resume", the app its Resume button
        super().__init__(f"training '{name}' interrupted ({where}); resuming continues from there")


def process_started(pid: int) -> float | None:
    """When process `pid` started (psutil's create_time), None if there is none (or only its
    zombie). With the pid it names one process: a pid is reused once its process is gone, a
    start time is not."""
    import psutil

    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def runs_dir(lab, name: str) -> Path:
    return lab.home.adapters / ".runs" / name


def checkpoint_dir(lab, name: str) -> Path:
    return runs_dir(lab, name) / "checkpoint"


@dataclass
class Precision:
    """How the forward pass runs: the dtype the base weights load in, the autocast dtype (None:
    plain float32), and a GradScaler where fp16 gradients need one (CUDA without bf16)."""

    weights: str = "float32"
    autocast: Any = None  # a torch dtype, or None
    scaler: Any = None  # torch.amp.GradScaler, or None

    def context(self, device: str):
        import contextlib

        import torch

        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device, dtype=self.autocast)


@dataclass
class TrainRun:
    """Everything one run holds, from its settings to where it has got to."""

    config: TrainConfig
    lab: Any
    info: ModelInfo
    base_sha: str
    method: str  # "lora" or "qlora"
    device: str  # "cpu" or "cuda"
    say: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
    progress: bool = True
    on_step: Callable[[dict], None] | None = None
    overwrite: bool = False
    # loaded
    model: Any = None
    tokenizer: Any = None
    engine: str = ""  # "peft", "peft+bitsandbytes" or "unsloth"
    targets: list[str] = field(default_factory=list)  # the module names LoRA adapts
    precision: Precision = field(default_factory=Precision)
    data: Any = None  # datasets.PreparedData
    train_set: list = field(default_factory=list)  # encoded (maybe packed) training examples
    pad_id: int = 0
    optimizer: Any = None
    params: list = field(default_factory=list)  # the trainable parameters
    # the plan
    total: int = 0
    warmup: int = 0
    steps_per_epoch: int = 1
    # where it has got to
    run_id: int | None = None
    step: int = 0
    ckpt_step: int = 0  # the step of the last checkpoint written or resumed from (0: none)
    first_loss: float | None = None
    loss: float | None = None
    val_loss: float | None = None
    tokens_seen: int = 0  # input tokens this session
    steps_this_session: int = 0
    val_s: float = 0.0  # seconds of validation passes this session (the ETA counts them)
    val_passes: int = 0
    in_update: bool = False  # inside optimizer.step(): an interrupt there must not be checkpointed
    wall_before: float = 0.0  # wall seconds of earlier sessions (resumed runs)
    t_start: float = field(default_factory=time.perf_counter)
    t_loop: float | None = None  # when this session's loop started
    t_loop_end: float | None = None  # and ended
    peak: Any = None  # loop.Peak

    @property
    def name(self) -> str:
        return self.config.name

    def wall_s(self) -> float:
        return self.wall_before + time.perf_counter() - self.t_start

    def loop_s(self) -> float:
        """Seconds this session's loop has run (ran, once it ended)."""
        if self.t_loop is None:
            return 0.0
        return (self.t_loop_end or time.perf_counter()) - self.t_loop
