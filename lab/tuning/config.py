"""What a training run is: one typed `TrainConfig`, from flags, a TOML file, or code.

The full config is stored in the adapter's manifest and the `training_runs` row, so every
adapter says exactly how it was made.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import tomllib
from ..models import DEFAULT_MODEL


class TrainConfigError(ValueError):
    """A training config that cannot be used; the message names the file and field. `field` and
    `problem` (when one setting is at fault) let a face name the setting in its own words."""

    def __init__(self, message: str, field: str | None = None, problem: str | None = None):
        super().__init__(message)
        self.field, self.problem = field, problem


# The one place that says what suits a machine. A CPU trains a small LoRA on q/v in minutes;
# a CUDA GPU takes 4-bit QLoRA on every linear layer, bigger batches, longer sequences.
# dropout 0 on CUDA: Unsloth's fast LoRA kernels only run without dropout.
_DEVICE_DEFAULTS = {
    "cpu": {
        "method": "lora",
        "rank": 8,
        "alpha": 16.0,
        "dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
        "learning_rate": 1e-3,
        "epochs": 1.0,
        "batch_size": 4,
        "grad_accum": 1,
        "max_seq_len": 512,
    },
    "cuda": {
        "method": "qlora",
        "rank": 16,
        "alpha": 32.0,
        "dropout": 0.0,
        "target_modules": "all-linear",
        "learning_rate": 2e-4,
        "epochs": 2.0,
        "batch_size": 8,
        "grad_accum": 2,
        "max_seq_len": 1024,
        "gradient_checkpointing": True,
    },
}


def training_device(device: str = "auto") -> str:
    """The device a run on `device` trains on: "auto" is this machine's ("cuda" when torch sees a
    GPU, else "cpu"); others are returned as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_defaults(device: str) -> dict:
    """The training settings that suit `device`: "cpu", "cuda" (or "cuda:N"), or "auto" (this machine)."""
    device = training_device(device)
    device_type = device.split(":")[0]
    if device_type not in _DEVICE_DEFAULTS:
        raise TrainConfigError(f"device '{device}': expected cpu, cuda or auto")
    return copy.deepcopy(_DEVICE_DEFAULTS[device_type])


class TrainConfig(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)  # adapters/<name>/
    data: Path  # JSONL: chat, prompt/completion, Alpaca, or the lab's {"input","output"}
    base_model: str = DEFAULT_MODEL  # model id, alias or path (see `lab models`)
    method: Literal["auto", "lora", "qlora"] = "auto"  # auto: qlora on CUDA, lora on CPU
    qlora_engine: Literal["auto", "unsloth", "bitsandbytes"] = "auto"  # auto: Unsloth when installed
    rank: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1)  # set: overrides epochs
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_seq_len: int = Field(512, ge=16)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 0
    val_fraction: float = Field(0.1, ge=0, lt=0.9)
    eval_every: int = Field(10, ge=1)  # validation loss every N optimizer steps (and at the end)
    save_every: int = Field(10, ge=1)  # checkpoint every N optimizer steps
    packing: bool = False  # concatenate short examples into max_seq_len blocks
    gradient_checkpointing: bool | None = None  # None: on for qlora on CUDA, off otherwise
    # CPU threads for torch (None: the lab's n_threads, else the free cores: lab.threads). On a busy
    # machine fewer threads are much faster: spinning threads that wait for each other lose their cores.
    threads: int | None = Field(None, ge=1)
    # System prompt for examples that carry none (and the one the tune arm serves with);
    # for {"input","output"} task files it is the task's instruction.
    instruction: str | None = Field(None, alias="system")
    force: bool = False  # train even on fewer than 20 examples

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("target_modules", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str) and v != "all-linear":
            return [m.strip() for m in v.split(",") if m.strip()]
        return v

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if isinstance(self.target_modules, list) and not self.target_modules:
            raise ValueError("target_modules is empty: give module names (q_proj,v_proj) or 'all-linear'")
        return self

    def to_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=False)

    @classmethod
    def for_device(cls, device: str, source: str = "arguments", **values: Any) -> TrainConfig:
        """A config with `device_defaults(device)` under `values` (given values win; None ones are
        ignored, so CLI flags pass through). Errors as make_config's."""
        return make_config(source, device=device, **values)


def _invalid(e: ValidationError, source: str) -> TrainConfigError:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return TrainConfigError(f"{source}: field '{field}': {err['msg']}", field, err["msg"])


def make_config(source: str = "arguments", device: str | None = None, **values: Any) -> TrainConfig:
    """A TrainConfig from keyword values (None values are ignored, so CLI flags pass through).
    With `device` ("cpu", "cuda", "auto"), that device's defaults fill what is not given."""
    data = device_defaults(device) if device else {}
    data.update({k: v for k, v in values.items() if v is not None})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        raise _invalid(e, source) from e


def load_train_config(path: str | Path, device: str | None = None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a TOML file (top level or a [train] table); flags override it, and it
    overrides `device`'s defaults. A relative `data` path is taken relative to the TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TrainConfigError(f"{path}: not valid TOML: {e}") from e
    data = data.get("train", data)
    if "data" in data and not Path(data["data"]).is_absolute():
        data["data"] = str((path.parent / data["data"]).resolve())
    data.update({k: v for k, v in overrides.items() if v is not None})
    return make_config(str(path), device=device, **data)


# ---- what the settings mean for the model (shared by the float LoRA and the 4-bit paths) -------


def gradient_checkpointing(config: TrainConfig, method: str, device: str) -> bool:
    """The config's setting, else on for qlora on CUDA (memory is what a GPU runs out of)."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    return method == "qlora" and device == "cuda"


def lora_config(config: TrainConfig, targets: list[str]):
    """PEFT's LoraConfig for these settings on the resolved target modules."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
