"""A fake backend for unit tests of logic: queued answers, recorded calls (like `llm`'s mock model)."""

from __future__ import annotations

import time
from pathlib import Path

from ..config import GenerationOptions
from ..models import ModelInfo
from .base import ContextTooLong, Generation, cancelled, content_sha256, plain_render


class FakeBackend:
    def __init__(
        self, answers: list[str] | None = None, model_id: str = "fake", n_ctx: int = 2048, default: str = "fake answer"
    ):
        self.info = ModelInfo(model_id, "fake", Path("/dev/null"), "test", 0, "fake", n_ctx, True)
        self.n_ctx = n_ctx
        self.answers = list(answers or [])
        self.default = default
        self.calls: list[dict] = []

    def queue(self, *answers: str) -> FakeBackend:
        self.answers.extend(answers)
        return self

    def render(self, messages):
        return plain_render(messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, messages, options=None, on_text=None, adapter=None, adapter_sha=None, cancel=None) -> Generation:
        options = options or GenerationOptions()
        t0 = time.perf_counter()
        prompt = self.render(messages)
        n_prompt = self.count_tokens(prompt)
        if n_prompt > self.n_ctx:
            raise ContextTooLong(n_prompt, self.n_ctx, self.info.id)
        self.calls.append({"messages": messages, "options": options, "adapter": adapter, "adapter_sha": adapter_sha})
        served = (adapter_sha or content_sha256(adapter)) if adapter else None
        text = self.answers.pop(0) if self.answers else self.default
        words, finish = [], "stop"
        for word in text.split(" "):  # one "token" per word; a set cancel event stops before the next
            if cancelled(cancel):
                finish = "cancelled"
                break
            words.append(word)
            if on_text:
                on_text(word + " ")
        total = time.perf_counter() - t0
        text = " ".join(words)
        return Generation(
            text,
            n_prompt,
            self.count_tokens(text),
            total / 2,
            total,
            prompt,
            finish_reason=finish,
            model_id=self.info.id,
            adapter_id=adapter,
            extra={"adapter_sha256": served},
        )
