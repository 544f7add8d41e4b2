"""The one interface every model backend implements, and what a generation returns."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, runtime_checkable

from ..config import GenerationOptions
from ..models import ModelInfo

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}
OnText = Callable[[str], None]


class BackendError(RuntimeError):
    """A model could not be loaded or could not run; the message says which and what to do."""


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
    finish_reason: str = "stop"  # "stop" | "length"
    model_id: str = ""
    adapter_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        gen_time = self.total_s - self.ttft_s
        return self.completion_tokens / gen_time if gen_time > 0 else 0.0


@runtime_checkable
class Backend(Protocol):
    info: ModelInfo
    n_ctx: int

    def generate(self, messages: list[Message], options: GenerationOptions | None = None,
                 on_text: OnText | None = None, adapter: str | None = None) -> Generation:
        """Run the chat `messages`; call `on_text(piece)` as text arrives (streaming)."""

    def render(self, messages: list[Message]) -> str:
        """The prompt text the model would see for these messages."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with this model's own tokenizer."""


def stream(backend: Backend, messages: list[Message], options: GenerationOptions | None = None,
           adapter: str | None = None) -> Iterator[str | Generation]:
    """Iterate over text pieces as they are generated; the last item is the `Generation`.
    Runs the backend in a worker thread so callers (the app) can stream without callbacks."""
    q: queue.Queue = queue.Queue()
    done = object()

    def work():
        try:
            q.put(backend.generate(messages, options, on_text=q.put, adapter=adapter))
        except BaseException as e:  # re-raised in the caller's thread
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


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
