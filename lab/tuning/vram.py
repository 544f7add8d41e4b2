"""Will this LoRA / QLoRA run fit on the GPU? Peak memory from config.json alone, no weights loaded.

`plan()` compares the estimate with the GPU (free memory from torch.cuda.mem_get_info) or a given
`vram_gb`, and when it does not fit proposes the nearest settings that do; `plan_for_config` does it
for a TrainConfig, as `lab train --dry-run` shows it. Its parts, one idea each:

  model_shape.py     the model's sizes from config.json or a GGUF header (`model_shape`, `read_model_config`)
  vram_estimate.py   the bytes of one training step, component by component, and the assumptions
                     behind each (`estimate`, `Settings`)
  vram.py            this module: against the GPU, and the nearest settings that fit

The names callers use are importable from here. `vram_gb` is GiB, as GPU makers' "GB" are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import gradient_checkpointing
from .model_shape import ModelShape, VRAMError, lora_params, model_shape, read_model_config
from .vram_estimate import GIB, MemoryEstimate, Settings, estimate, estimate_for, format_gib, make_settings  # noqa: F401

MIN_SEQ_LEN = 16  # TrainConfig.max_seq_len's lower bound


# ---- will it fit? --------------------------------------------------------------------------------


@dataclass
class Plan:
    estimate: MemoryEstimate
    available_bytes: int | None  # None: no GPU visible and no vram_gb given
    available_source: str  # where that figure came from
    fits: bool | None  # None when available_bytes is unknown
    suggestion: dict[str, Any] | None = None  # the settings changed to fit, new values
    suggested: MemoryEstimate | None = None  # the estimate with the suggestion applied
    message: str = ""

    def to_text(self) -> str:
        lines = [self.estimate.to_text(), f"available: {self.available_source}"]
        if self.fits is None:
            lines.append("fits: unknown (no GPU to check against here)")  # each face says how to name one
        elif self.fits:
            headroom = self.available_bytes - self.estimate.total_bytes
            lines.append(f"fits: yes, {format_gib(headroom)} to spare")
        else:
            short = self.estimate.total_bytes - self.available_bytes
            lines.append(f"fits: NO, short by {format_gib(short)}")
        if self.suggestion:
            old = self.estimate.settings.model_dump()
            changes = ", ".join(f"{k} {_show(old[k])} -> {_show(v)}" for k, v in self.suggestion.items())
            lines.append(f"nearest that fits: {changes} (estimate {format_gib(self.suggested.total_bytes)})")
        if self.message:
            lines.append(self.message)
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(value) if isinstance(value, list) else str(value)


def detect_gpu() -> tuple[int, str] | None:
    """(free bytes, description) of the current CUDA device, or None without one. Imports torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    name = torch.cuda.get_device_name()
    return free, f"{name}: {format_gib(free)} free of {format_gib(total)} (torch.cuda.mem_get_info)"


def _available(vram_gb: float | None) -> tuple[int | None, str]:
    if vram_gb is not None:
        if vram_gb <= 0:
            raise VRAMError(f"vram_gb must be positive (got {vram_gb})")
        return int(vram_gb * GIB), f"{vram_gb:g} GiB (given as vram_gb)"
    gpu = detect_gpu()
    if gpu is None:
        return None, "no CUDA GPU visible"
    return gpu


def plan(model_config: dict, *, vram_gb: float | None = None, **settings: Any) -> Plan:
    """Estimate, compare with the GPU (or `vram_gb`, in GiB as GPU makers' "GB" are), and when it does
    not fit propose the nearest settings that do. `settings` are `estimate()`'s keywords."""
    s = make_settings(**settings)
    shape = model_shape(model_config)
    est = estimate_for(shape, s)
    available, source = _available(vram_gb)
    if available is None:
        return Plan(est, None, source, None)
    if est.total_bytes <= available:
        return Plan(est, available, source, True)
    changed = _nearest_fit(shape, s, available)
    if changed is None:
        return Plan(
            est,
            available,
            source,
            False,
            message=(
                "nothing nearby fits (tried gradient checkpointing, batch 1, fewer target modules, "
                f"sequences down to {MIN_SEQ_LEN}, 4-bit): use a smaller model or a bigger GPU"
            ),
        )
    new = s.model_copy(update=changed)
    note = "raise grad_accum to keep the effective batch size" if "batch_size" in changed else ""
    return Plan(est, available, source, False, changed, estimate_for(shape, new), note)


def _fewer_targets(shape: ModelShape, s: Settings) -> list[list[str]]:
    """Smaller target sets to try: attention projections, then the two LoRA paper ones."""
    options = (
        [["qkv_proj", "o_proj"], ["qkv_proj"]]
        if shape.fused
        else [["q_proj", "k_proj", "v_proj", "o_proj"], ["q_proj", "v_proj"]]
    )
    current = lora_params(shape, s.rank, s.target_modules)
    return [o for o in options if lora_params(shape, s.rank, o) < current]


def _nearest_fit(shape: ModelShape, s: Settings, available: int) -> dict[str, Any] | None:
    """Changes in order of what they cost the run: checkpointing (speed only), smaller batches
    (same effective batch with grad_accum), fewer target modules, shorter sequences (cuts the
    data), and last 4-bit weights for a 16-bit LoRA."""

    def fits(x: Settings) -> bool:
        return estimate_for(shape, x).total_bytes <= available

    def changes(x: Settings) -> dict[str, Any]:
        old, new = s.model_dump(), x.model_dump()
        return {k: v for k, v in new.items() if v != old[k]}

    methods = [s.method] + (["qlora"] if s.method == "lora" else [])
    for method in methods:
        x = s.model_copy(update={"method": method})
        if fits(x):
            return changes(x)
        if not x.gradient_checkpointing:
            x = x.model_copy(update={"gradient_checkpointing": True})
            if fits(x):
                return changes(x)
        while x.batch_size > 1:
            x = x.model_copy(update={"batch_size": x.batch_size // 2})
            if fits(x):
                return changes(x)
        candidates = [x] + [x.model_copy(update={"target_modules": t}) for t in _fewer_targets(shape, x)]
        for c in candidates[1:]:
            if fits(c):
                return changes(c)
        for c in candidates:  # the full targets with shorter sequences first
            longest = _max_seq(shape, c, available)
            if longest >= MIN_SEQ_LEN:
                rounded = longest - longest % 64 if longest >= 128 else longest
                return changes(c.model_copy(update={"seq_len": min(rounded, c.seq_len)}))
    return None


def _max_seq(shape: ModelShape, s: Settings, available: int, limit: int = 1 << 24) -> int:
    """The longest seq_len whose estimate fits (memory grows with seq_len), or 0."""

    def fits(n: int) -> bool:
        return estimate_for(shape, s.model_copy(update={"seq_len": n})).total_bytes <= available

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    if hi > limit:
        return limit
    while hi - lo > 1:  # fits(lo) and not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def max_seq_len_that_fits(model_config: dict, *, vram_gb: float | None = None, **settings: Any) -> int:
    """The longest sequence (tokens per example) that fits in `vram_gb` GiB (or the detected GPU's
    free memory) with the other settings as given; 0 when not even one token fits."""
    available, source = _available(vram_gb)
    if available is None:
        raise VRAMError(f"max_seq_len_that_fits: {source}")
    return _max_seq(model_shape(model_config), make_settings(**settings), available)


def plan_for_config(config, model_path: str | Path, *, vram_gb: float | None = None) -> Plan:
    """The plan for a TrainConfig on the model at `model_path` (an HF folder, config.json or GGUF):
    method `auto` means qlora when a GPU is planned for (one is visible, or `vram_gb` is given),
    the engine is Unsloth when it is installed, as `lab train` would choose."""
    import importlib.util

    gpu = vram_gb is not None or detect_gpu() is not None
    method = config.method if config.method != "auto" else ("qlora" if gpu else "lora")
    unsloth = importlib.util.find_spec("unsloth") is not None
    engine = "unsloth" if method == "qlora" and config.qlora_engine != "bitsandbytes" and unsloth else "peft"
    checkpointing = gradient_checkpointing(config, method, "cuda" if gpu else "cpu")  # as the trainer decides
    return plan(
        read_model_config(model_path),
        vram_gb=vram_gb,
        method=method,
        engine=engine,
        rank=config.rank,
        target_modules=config.target_modules,
        seq_len=config.max_seq_len,
        batch_size=config.batch_size,
        gradient_checkpointing=checkpointing,
        dtype="bf16" if gpu else "fp32",
        lora_dropout=config.dropout,
    )
