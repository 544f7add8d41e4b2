"""The lab's engine: the lab home, the run log and the loaded models, shared by every face.

The CLI, the scripts and the Gradio app all hold one `Lab` and call its methods; nothing
else loads models or writes generation rows.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from . import backends, ladder, models
from .backends.base import Generation, OnText
from .config import GenerationOptions, LabConfig, load_config
from .home import LabHome
from .models import ModelInfo
from .store import Store


class Lab:
    def __init__(self, home: str | Path | None = None, config: LabConfig | None = None, **overrides: Any):
        self.home = LabHome.resolve(home).ensure()
        # torch makes a compile-cache folder in the system temp folder when a model loads: the home's
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(self.home.state / "torchinductor"))
        self.config = config or load_config(self.home.config_path, **overrides)
        self.store = Store(self.home.db_path)
        self._backends: dict[tuple[str, str], backends.Backend] = {}
        self._load_lock = threading.Lock()
        self._shas: dict[str, str] = {}

    # -- models ------------------------------------------------------------------------
    def list_models(self) -> tuple[list[ModelInfo], list[str]]:
        return models.list_models(self.home)

    def model_info(self, name: str | None = None) -> ModelInfo:
        return models.resolve(self.home, name or self.config.default_model)

    def backend(self, name: str | None = None, engine: str | None = None) -> backends.Backend:
        """The loaded model `name` on `engine`, the backend that runs it ("llamacpp", "hf", "openai",
        "fake"; default: llama.cpp for GGUF, transformers for HF folders). Loaded once; every arm and
        every caller shares it."""
        name = name or self.config.default_model
        key = (models.ALIASES.get(name, name), engine or "")
        with self._load_lock:  # two threads asking at once load it once
            if key not in self._backends:
                info = self.model_info(name)
                engine = engine or backends.default_backend_for(info)
                cls = backends.backend_class(engine)
                kw: dict[str, Any] = {"n_ctx": self.config.n_ctx}
                if engine == "llamacpp":
                    kw["n_threads"] = self.config.n_threads
                    kw["n_gpu_layers"] = self.config.n_gpu_layers
                if engine == "hf" and info.format == "gguf":
                    kw["cache_dir"] = self.hf_cache_dir(info)
                self._backends[key] = cls(info, **kw)
            return self._backends[key]

    def add_backend(self, backend: backends.Backend, engine: str = "", name: str | None = None) -> None:
        """Register an already-built backend under `name` (default: its id); tests use a
        FakeBackend this way, or a server backend built with their own retry settings."""
        self._backends[(name or backend.info.id, engine)] = backend
        self._shas.setdefault(backend.info.id, "server" if backend.info.format == "openai" else "fake")

    def drop_backend(self, name: str, engine: str = "") -> None:
        """Forget the backend loaded for `name`: a server that was stopped (`lab export --verify`)."""
        with self._load_lock:
            backend = self._backends.pop((models.ALIASES.get(name, name), engine), None)
        close = getattr(getattr(backend, "client", None), "close", None)
        if close:
            close()

    def model_sha(self, info: ModelInfo) -> str:
        if info.id not in self._shas:
            if info.format == "openai":  # weights live on the server: nothing local to hash
                self._shas[info.id] = "server"
            else:
                self._shas[info.id] = info.extra.get("sha256") or models.model_sha256(self.home, info)
        return self._shas[info.id]

    def hf_cache_dir(self, info: ModelInfo) -> Path:
        """Where a GGUF model dequantised for transformers is kept (the HF backend and LoRA
        training share it, so both see the same weights and convert them once)."""
        return self.home.state / "hf" / f"{info.id}-{self.model_sha(info)[:12]}"

    def embedder(self):
        """The retrieval embedder (lab.toml `embedder`), made once; its model loads on first use."""
        with self._load_lock:
            if getattr(self, "_embedder", None) is None:
                from .retrieval.embed import Embedder

                self._embedder = Embedder(self.config.embedder, home=self.home, store=self.store)
            return self._embedder

    def options(self, **overrides: Any) -> GenerationOptions:
        base = self.config.generation.model_dump()
        base.update({k: v for k, v in overrides.items() if v is not None})
        return GenerationOptions.model_validate(base)

    # -- generation ----------------------------------------------------------------------
    def generate(
        self,
        messages: list[dict],
        *,
        arm: str,
        model: str | None = None,
        engine: str | None = None,
        options: GenerationOptions | None = None,
        adapter: str | None = None,
        adapter_sha: str | None = None,
        on_text: OnText | None = None,
        log: dict | None = None,
        adapter_id: str | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[Generation, int]:
        """Run one request and log it. `log` carries the arm's context for the row
        (corpus, index_hash, retrieved, eval_run_id, example_id). `adapter` is the file or
        folder the backend loads, `adapter_sha` its content's sha256 (the backend's cache key);
        `adapter_id` (e.g. the adapter's name) is what the log shows. The row's adapter_sha is
        the one the backend reports it served. Once `cancel` is set the backend stops at the next
        token and the partial answer is logged with finish_reason "cancelled"."""
        ladder.check_logged(arm)  # every generation row is one of the ladder's arms, or a judge's verdict
        backend = self.backend(model, engine)
        options = options or self.options()
        try:
            gen = backend.generate(
                messages, options, on_text=on_text, adapter=adapter, adapter_sha=adapter_sha, cancel=cancel
            )
        except Exception as e:
            self.store.log_error(arm=arm, model_id=backend.info.id, messages=messages, error=f"{type(e).__name__}: {e}")
            raise
        if adapter_id:
            gen.adapter_id = adapter_id
        row_id = self.store.log_generation(
            gen,
            arm=arm,
            messages=messages,
            options=options,
            model_sha=self.model_sha(backend.info),
            adapter_sha=gen.extra.get("adapter_sha256", adapter_sha),
            backend=engine or backends.default_backend_for(backend.info),
            **(log or {}),
        )
        return gen, row_id

    def answer(self, arm: str, question: str, **kw: Any) -> ladder.Answer:
        """`question` through one arm of the ladder, logged: see `lab.ladder.answer` for the
        arguments (task, corpus, adapter, options, on_text...). Every face asks through here."""
        return ladder.answer(self, arm, question, **kw)
