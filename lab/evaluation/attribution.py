"""Where the knowledge got lost, per RAG answer: a wrong, well-formed answer of a rag arm is split into
"not retrieved" (none of the passages in its prompt held the answer) and "retrieved but not used" (one
did, and the answer still missed it). The scoreboard counts them (`summary.failure_of`); the advisor's
RAG advice follows from which one dominates.

The evidence, per answer, best first:
  1. context_hit (`scorers.answer_in_context`): the expected answer or an alias, as whole words, in
     the text of a passage that went into the prompt. It applies to short factual answers only.
  2. recall_at_k: a passage from the example's gold_doc was in the prompt. Used when context_hit does
     not apply (free text, labels, JSON) and the example names its gold_doc. Document-level: the gold
     document's passage in the prompt may still lack the sentence that answers, so "retrieved but not
     used" here means "the right document was read".
Neither (free-text answers, no gold_doc): the answer stays "answer wrong", and the scoreboard says once
that the split cannot apply (`split_note`).
"""

from __future__ import annotations

from ..ladder import RAG_ARMS

NOT_RETRIEVED = "not retrieved"
NOT_USED = "retrieved but not used"

NOTES = {
    NOT_RETRIEVED: "RAG arms: none of the passages in the prompt held the answer (its words, or an alias; with no "
    "short answer to look for: none came from the example's gold document), so the model never saw it",
    NOT_USED: "RAG arms: a passage in the prompt held the answer (or came from the gold document), yet the answer "
    "missed it: the model did not read or use what it was given",
}


def rag_failure(scores: dict) -> str | None:
    """NOT_RETRIEVED or NOT_USED for a wrong, well-formed answer with passages; None when neither
    measure applies (no passages, or a free-text answer without a gold_doc)."""
    hit = scores.get("context_hit")
    if hit is None:
        hit = scores.get("recall_at_k")
    if hit is None:
        return None
    return NOT_USED if hit >= 1 else NOT_RETRIEVED


def split_note(board) -> str | None:
    """Said once under the failure table when some RAG arm's wrong answers could not be split."""
    unsplit = [(a.arm, a.failures.get("answer wrong", 0)) for a in board.arms if a.arm in RAG_ARMS]
    unsplit = [(arm, n) for arm, n in unsplit if n]
    if not unsplit:
        return None
    total = sum(n for _, n in unsplit)
    return (
        f"  The split into {NOT_RETRIEVED} / {NOT_USED} cannot apply to {total} wrong RAG answer"
        f"{'s' if total != 1 else ''} ({', '.join(f'{arm} {n}' for arm, n in unsplit)}): the expected output is "
        "not a short fact to look for in the passages (free text, a label or JSON) and the example names no "
        "gold_doc; counted as answer wrong."
    )


def rag_split(arm) -> tuple[int, int, bool]:
    """(not retrieved, retrieved but not used, judged by the answer's words) of one scoreboard arm;
    the last is False when only gold documents were measured (no context_hit)."""
    by_words = (arm.metrics or {}).get("context_hit") is not None
    return arm.failures.get(NOT_RETRIEVED, 0), arm.failures.get(NOT_USED, 0), by_words
