"""Typed configuration: defaults here, overridden by `lab.toml` in the lab home, then by flags.

Every face (CLI, scripts, app) calls `load_config(home, **flags)`, so a setting means the
same thing everywhere.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

try:  # the one place the lab picks its TOML parser: every other module imports `tomllib` from here
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # Python 3.10: tomli, the package tomllib was made from (a 3.10-only dependency)
    import tomli as tomllib  # type: ignore[no-redef]

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class GenerationOptions(BaseModel):
    """Decoding options shared by every backend. Deterministic by default (greedy, fixed seed)."""

    model_config = ConfigDict(extra="forbid")  # a typo in lab.toml is an error, not a silent default

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    stop: list[str] = Field(default_factory=list)
    json_schema: dict[str, Any] | None = None  # constrain output to this JSON schema
    grammar: str | None = None  # or a GBNF grammar (llama.cpp only)
    choices: list[str] | None = None  # or exactly one of these strings (a label task's labels)


class LabConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_model: str = "smollm2-135m-instruct"
    n_ctx: int = Field(2048, ge=256)  # context window requested from llama.cpp
    n_threads: int | None = None  # None: the physical cores other processes leave free (lab.threads)
    # Layers llama.cpp offloads to the GPU. None: all (-1) when llama.cpp was built with GPU
    # offload (CUDA, Metal, ...), else 0; -1: all; 0: CPU only; N: the first N layers.
    n_gpu_layers: int | None = Field(None, ge=-1)
    embedder: str = "all-MiniLM-L6-v2"
    # Requests the evaluation runner sends at once to a backend that takes them (a server);
    # the local llama.cpp and transformers backends always answer one at a time.
    concurrency: int = Field(8, ge=1, le=256)
    generation: GenerationOptions = Field(default_factory=GenerationOptions)


class ConfigError(ValueError):
    pass


def default_threads() -> int:
    try:
        import psutil

        return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    except Exception:
        return max(1, os.cpu_count() or 1)


def load_config(config_path: Path | None = None, **overrides: Any) -> LabConfig:
    """Defaults < lab.toml < explicit overrides (None values are ignored, so flags can pass through)."""
    data: dict[str, Any] = {}
    if config_path is not None and config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{config_path}: not valid TOML: {e}") from e
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return LabConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = config_path or "config"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown key '{field}'{_did_you_mean(err['loc'])}") from e
        raise ConfigError(f"{where}: field '{field}': {err['msg']}") from e


def _did_you_mean(loc: tuple) -> str:
    """', did you mean 'n_ctx'?' for a misspelt key: the closest valid key at the same level."""
    model: type[BaseModel] = LabConfig
    for part in loc[:-1]:  # walk down to the model the unknown key sits in
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    prefix = ".".join(str(p) for p in loc[:-1])
    valid = ", ".join(model.model_fields)
    return f", did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else f" (valid keys: {valid})"
