"""The RAG prompt: retrieved passages numbered [1], [2] ... fitted into the model's context.

Tokens are counted with the generating model's own tokenizer on the fully rendered prompt (chat
template included), room is kept for the answer (options.max_tokens), and the lowest-ranked
passages are dropped first; if even the best passage alone does not fit, it is cut to fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from ..backends.base import ContextTooLong
from ..prompts import with_passages
from .chunking import context_line

MARGIN = 16  # llama.cpp refuses a prompt within 8 tokens of n_ctx; keep a little more


@dataclass(frozen=True)
class Passage:
    text: str
    source: str  # file path relative to the corpus root (plus "#id" for a .jsonl line)
    title: str
    span: tuple[int, int]  # characters of the document's text
    score: float  # cosine similarity to the query
    chunk_id: str
    heading: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["span"] = list(self.span)
        return d

    def for_prompt(self) -> str:
        return f"({context_line(self.title, self.heading, self.text)}) {self.text.strip()}"


def answer_reserve(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the answer: max_tokens, but never more than half the context."""
    return min(max_tokens, n_ctx // 2)


def pack_passages(
    backend,
    question: str,
    passages: Sequence[Passage],
    instruction: str | None = None,
    max_tokens: int = 256,
    shots: Sequence[tuple[str, str]] | None = None,
) -> tuple[list[dict], list[Passage]]:
    """(messages, passages kept in rank order) whose rendered prompt plus `max_tokens` fits
    `backend.n_ctx`; `shots` (worked examples) go before the question and are kept whole: the
    passages give way first. Raises ContextTooLong when the question alone does not fit."""
    budget = backend.n_ctx - answer_reserve(backend.n_ctx, max_tokens) - MARGIN

    def build(ps: Sequence[Passage]) -> list[dict]:
        return with_passages(question, [p.for_prompt() for p in ps], instruction, shots or ())

    def size(ps: Sequence[Passage]) -> int:
        return backend.count_tokens(backend.render(build(ps)))

    kept = list(passages)
    while kept and size(kept) > budget:
        kept.pop()  # the lowest-ranked passage goes first
    if not kept and passages and size([]) < budget:
        kept = _cut_to_fit(passages[0], lambda p: size([p]) <= budget)
    messages = build(kept)
    n = backend.count_tokens(backend.render(messages))
    if n > budget:
        raise ContextTooLong(n + answer_reserve(backend.n_ctx, max_tokens) + MARGIN, backend.n_ctx, backend.info.id)
    return messages, kept


def _cut_to_fit(p: Passage, fits) -> list[Passage]:
    """The longest prefix of the passage (cut at a word) that fits, by bisection; [] if none does."""
    lo, hi = 0, len(p.text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(replace(p, text=p.text[:mid])):
            lo = mid
        else:
            hi = mid - 1
    cut = p.text[:lo]
    if lo < len(p.text) and " " in cut:
        cut = cut[: cut.rfind(" ")]
    if len(cut.strip()) < 20:  # a few characters of a source help no one
        return []
    return [replace(p, text=cut, span=(p.span[0], p.span[0] + len(cut)))]
