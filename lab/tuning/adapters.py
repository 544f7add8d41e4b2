"""The adapters a lab has: `adapters/<name>/` holding PEFT files, `adapter.gguf` (for llama.cpp)
and `lab_adapter.json`, the manifest that says which base model it belongs to and how it was made.

A folder without a manifest is not a finished adapter (training writes the manifest last,
in a temporary folder renamed into place), so it is never listed or served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..models import ModelInfo

MANIFEST = "lab_adapter.json"


class AdapterError(ValueError):
    """An adapter that does not exist, is incomplete, or does not fit the model being served."""


@dataclass
class AdapterInfo:
    name: str
    path: Path  # the adapters/<name>/ folder (PEFT files)
    base_model: str  # model id it was trained on
    base_sha: str  # sha256 of the base model file it was trained on
    sha256: str  # sha256 of adapter_model.safetensors: the adapter's identity in the log
    size_bytes: int = 0
    gguf_path: Path | None = None  # adapter.gguf, when the base model is a GGUF file
    manifest: dict = field(default_factory=dict)

    @property
    def instruction(self) -> str | None:
        """The system prompt it was trained with; the tune arm serves with the same one."""
        return (self.manifest.get("config") or {}).get("instruction")

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics") or {}

    # What the evaluation's cost tables read (training time, where it ran, its log row).
    @property
    def sha(self) -> str:
        return self.sha256

    @property
    def run_id(self) -> int | None:
        return self.manifest.get("run_id")

    @property
    def wall_s(self) -> float | None:
        return self.manifest.get("wall_s")

    @property
    def device(self) -> str | None:
        return self.manifest.get("device")

    def serve_path(self, engine: str) -> str:
        """What `engine` loads: adapter.gguf for llama.cpp, the PEFT folder for transformers."""
        if engine == "llamacpp":
            if self.gguf_path is None or not self.gguf_path.exists():
                raise AdapterError(
                    f"adapter '{self.name}' has no adapter.gguf for llama.cpp: "
                    f"run `lab adapters export {self.name}` or serve it with --backend hf"
                )
            return str(self.gguf_path)
        return str(self.path)

    def as_row(self) -> dict:
        m = self.manifest
        data = m.get("dataset") or {}
        return {
            "name": self.name,
            "base_model": self.base_model,
            "base_sha": self.base_sha[:12],
            "data": Path(data.get("path", "?")).name,
            "examples": data.get("count"),
            "train_loss": self.metrics.get("train_loss"),
            "val_loss": self.metrics.get("val_loss"),
            "steps": self.metrics.get("steps"),
            "size_bytes": self.size_bytes,
            "gguf": self.gguf_path is not None,
            "created": m.get("created"),
            "sha256": self.sha256[:12],
            "path": str(self.path),
        }


def read_adapter(folder: Path) -> AdapterInfo:
    folder = Path(folder)
    man_file = folder / MANIFEST
    if not man_file.exists():
        raise AdapterError(f"{folder} is not a finished adapter (no {MANIFEST})")
    try:
        m = json.loads(man_file.read_text())
    except json.JSONDecodeError as e:
        raise AdapterError(f"{man_file}: not valid JSON: {e}") from e
    gguf = folder / "adapter.gguf"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return AdapterInfo(
        name=folder.name,
        path=folder,
        base_model=m["base_model"]["id"],
        base_sha=m["base_model"]["sha256"],
        sha256=m["adapter"]["sha256"],
        size_bytes=size,
        gguf_path=gguf if gguf.exists() else None,
        manifest=m,
    )


def list_adapters(adapters_dir: Path) -> tuple[list[AdapterInfo], list[str]]:
    """Finished adapters in `adapters_dir`, plus warnings for folders that are not."""
    found, problems = [], []
    if not Path(adapters_dir).is_dir():
        return found, problems
    for p in sorted(Path(adapters_dir).iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            found.append(read_adapter(p))
        except (AdapterError, KeyError, OSError) as e:
            problems.append(f"{p}: skipped ({e})")
    return found, problems


def find_adapter(adapters_dir: Path, name: str) -> AdapterInfo:
    """An adapter by name (or a path to its folder)."""
    as_path = Path(name).expanduser()
    folder = as_path if as_path.is_dir() and (as_path / MANIFEST).exists() else Path(adapters_dir) / name
    if not folder.is_dir():
        known = ", ".join(a.name for a in list_adapters(adapters_dir)[0]) or "none yet: see `lab train`"
        raise AdapterError(f"no adapter '{name}' in {adapters_dir} (known: {known})")
    return read_adapter(folder)


def check_fits(adapter: AdapterInfo, info: ModelInfo, model_sha: str) -> None:
    """Refuse an adapter trained on other weights: it would run, and answer nonsense."""
    if model_sha != adapter.base_sha:
        raise AdapterError(
            f"adapter '{adapter.name}' was trained on {adapter.base_model} (sha256 {adapter.base_sha[:12]}) "
            f"but the model being served is {info.id} (sha256 {model_sha[:12]}): serve it with "
            f"-m {adapter.base_model}, or train an adapter for {info.id}"
        )


def resolve_adapter(lab, name: str, model: str | None = None) -> AdapterInfo:
    """The adapter `name`, checked against the model that will serve it (default: its own base
    model, as resolved in this lab now: a replaced model file is caught by its sha256)."""
    from ..models import ModelNotFound

    adapter = find_adapter(lab.home.adapters, name)
    try:
        info = lab.model_info(model or adapter.base_model)
    except ModelNotFound:
        stored = adapter.manifest["base_model"].get("path")
        if model or not stored:
            raise
        info = lab.model_info(stored)  # a user model given by path when it was trained
    if info.format == "openai":  # the weights live on the server: it checks its base model (name, hash)
        check_served(lab, adapter, model or info.id)
        return adapter
    check_fits(adapter, info, lab.model_sha(info))
    return adapter


def check_served(lab, adapter: AdapterInfo, spec: str) -> None:
    """Refuse an adapter the server at `spec` does not serve, or serves on another base."""
    from ..backends.base import BackendError

    try:
        lab.backend(spec).check_adapter(adapter.name, adapter.base_model, adapter.base_sha)
    except BackendError as e:
        raise AdapterError(str(e)) from e
