"""Model backends behind one interface (`Backend` in base.py), in a small registry.

A backend is a class `Backend(info, n_ctx=..., **kw)`. Adding one (say an OpenAI-compatible
server) is a module plus one `register(...)` line; nothing else in the lab changes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..models import ModelInfo
from .base import Backend, BackendError, ContextTooLong, Generation, stream  # noqa: F401

_REGISTRY: dict[str, Callable[[], type]] = {}


def register(name: str, loader: Callable[[], type]) -> None:
    """`loader` returns the class lazily, so importing the lab never imports torch or llama.cpp."""
    _REGISTRY[name] = loader


def names() -> list[str]:
    return sorted(_REGISTRY)


def backend_class(name: str) -> type:
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend '{name}' (known: {', '.join(names())})")
    return _REGISTRY[name]()


def default_backend_for(info: ModelInfo) -> str:
    return {"gguf": "llamacpp", "hf": "hf", "fake": "fake", "openai": "openai"}.get(info.format, "hf")


def _llamacpp():
    from .llamacpp import LlamaCppBackend

    return LlamaCppBackend


def _hf():
    from .hf import HFBackend

    return HFBackend


def _openai():
    from .openai_compat import OpenAICompatBackend

    return OpenAICompatBackend


def _fake():
    from .fake import FakeBackend

    return FakeBackend


register("llamacpp", _llamacpp)
register("hf", _hf)
register("fake", _fake)
register("openai", _openai)
