"""The one interface every model backend implements, and what a generation returns."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..config import GenerationOptions
from ..models import ModelInfo

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}
OnText = Callable[[str], None]


class BackendError(RuntimeError):
    """A model could not be loaded or could not run; the message says which and what to do."""


class ServerUnavailable(BackendError):
    """A model server could not be reached, or kept failing after the retries: nothing was answered.
    The evaluation runner stops on it (a rerun resumes) rather than scoring an empty answer."""


class ContextTooLong(BackendError):
    def __init__(self, prompt_tokens: int, n_ctx: int, model_id: str):
        self.prompt_tokens, self.n_ctx = prompt_tokens, n_ctx
        super().__init__(
            f"the prompt is {prompt_tokens} tokens but {model_id}'s context holds {n_ctx}: "
            "shorten it, use fewer few-shot examples or passages, or raise n_ctx in lab.toml"
        )


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # time to first token
    total_s: float
    prompt_text: str  # exactly what the model saw, after its chat template
    finish_reason: str = "stop"  # "stop" | "length" | "cancelled" (the cancel event was set)
    model_id: str = ""
    adapter_id: str | None = None
    extra: dict = field(default_factory=dict)  # "adapter_sha256": the content the backend served

    @property
    def tokens_per_s(self) -> float:
        gen_time = self.total_s - self.ttft_s
        return self.completion_tokens / gen_time if gen_time > 0 else 0.0


@runtime_checkable
class Backend(Protocol):
    info: ModelInfo
    n_ctx: int

    def generate(
        self,
        messages: list[Message],
        options: GenerationOptions | None = None,
        on_text: OnText | None = None,
        adapter: str | None = None,
        adapter_sha: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Run the chat `messages`; call `on_text(piece)` as text arrives (streaming).
        `adapter_sha` names the adapter's content (the backend hashes the file itself without it);
        once `cancel` is set, generation stops at the next token (finish_reason "cancelled")."""

    def render(self, messages: list[Message]) -> str:
        """The prompt text the model would see for these messages."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with this model's own tokenizer."""


def stream(
    backend: Backend, messages: list[Message], options: GenerationOptions | None = None, adapter: str | None = None
) -> Iterator[str | Generation]:
    """Iterate over text pieces as they are generated; the last item is the `Generation`.
    Runs the backend in a worker thread so callers (the app) can stream without callbacks.
    Leaving the loop early (break, or closing the iterator) cancels the generation, so the
    worker does not hold the model's lock for an answer nobody reads."""
    q: queue.Queue = queue.Queue()
    done = object()
    cancel = threading.Event()

    def work():
        try:
            q.put(backend.generate(messages, options, on_text=q.put, adapter=adapter, cancel=cancel))
        except BaseException as e:  # re-raised in the caller's thread
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()


def cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


# ---- the likelihood of a text (an adapter's side effects: lab.evaluation.side_effects) -----------


def text_nll(backend: Backend, text: str, adapter: str | None = None, adapter_sha: str | None = None) -> list[float]:
    """The negative log-likelihood (nats) of each token of `text` given the tokens before it, the
    text as it stands (no chat template), on the base model or with the adapter at `adapter`.
    Backends that can read it have a `token_nll` method (llama.cpp, transformers); a model server
    does not send its logits, so it is refused with what to do instead."""
    method = getattr(backend, "token_nll", None)
    if method is None:
        raise BackendError(
            f"{backend.info.id} runs on a backend that cannot score a text's likelihood ({type(backend).__name__}): "
            "measure it on a local model (a GGUF through llama.cpp, or an HF folder through transformers)"
        )
    return method(text, adapter=adapter, adapter_sha=adapter_sha)


def nll_of(logits, targets: Sequence[int]) -> list[float]:
    """-log softmax(logits[i])[targets[i]] for each row: the rows' logits each predict the next token."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(x).sum(axis=-1))
    picked = x[np.arange(len(targets)), np.asarray(targets)]
    return (log_z - picked).tolist()


# ---- adapters, cached by content ----------------------------------------------------------------


def _weights_file(path: Path) -> Path:
    """The file whose bytes are the adapter: the file itself, or a PEFT folder's weights."""
    if path.is_dir():
        for name in ("adapter_model.safetensors", "adapter_model.bin"):
            if (path / name).is_file():
                return path / name
    return path


def file_stamp(path: str | Path) -> tuple:
    """(size, mtime_ns, inode) of the adapter's weights: changes when the file is rewritten or replaced."""
    st = _weights_file(Path(path)).stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def content_sha256(path: str | Path) -> str:
    """sha256 of the adapter's weights (for a PEFT folder the same file the adapter manifest hashes)."""
    h = hashlib.sha256()
    with open(_weights_file(Path(path)), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class LoadedAdapter:
    path: str
    sha256: str  # the content it was loaded from: what the log records as served
    stamp: tuple  # file_stamp when loaded
    handle: Any  # the backend's own object (a llama.cpp pointer, a PEFT adapter name)


class AdapterCache:
    """The adapters a backend holds, one version per path, keyed by content: an adapter retrained
    under the same name (same path, new bytes) is loaded anew and the old version freed, so the
    backend never serves stale weights under a new sha. `load(path)` returns the backend's handle,
    `free(entry)` releases one. Not thread-safe: call it under the backend's lock."""

    def __init__(self, load: Callable[[str], Any], free: Callable[[LoadedAdapter], None]):
        self._load, self._free = load, free
        self.entries: dict[str, LoadedAdapter] = {}

    def get(self, path: str, sha: str | None = None) -> LoadedAdapter:
        stamp = file_stamp(path)  # taken before loading: a file replaced meanwhile reloads next time
        old = self.entries.get(path)
        if old is not None and old.stamp == stamp and (sha is None or sha == old.sha256):
            return old
        entry = LoadedAdapter(path, sha or content_sha256(path), stamp, self._load(path))
        self.entries[path] = entry
        if old is not None:  # the new version is in place: release the old one's memory
            self._free(old)
        return entry


def plain_render(messages: list[Message]) -> str:
    """Prompt format for base models without a chat template (e.g. Gemma 3 270M base)."""
    parts = []
    for m in messages:
        if m["role"] == "system":
            parts.append(m["content"].strip() + "\n")
        elif m["role"] == "user":
            parts.append(f"Input: {m['content'].strip()}")
        else:
            parts.append(f"Output: {m['content'].strip()}\n")
    parts.append("Output:")
    return "\n".join(parts)


PLAIN_STOPS = ["\nInput:", "\n\n\n"]
