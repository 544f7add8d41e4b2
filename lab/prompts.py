"""How each arm of the ladder turns a question into chat messages (the prompt builders).

The few-shot arm puts the system prompt and the k examples *first*, identical for every
question, so the backend can keep that shared prefix in its KV cache between requests.
Arms that need retrieval or an adapter add to these messages (`lab.retrieval`) or switch the
adapter on (`lab.tuning`); the messages themselves are built here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_SYSTEM = "You are a helpful, concise assistant."

# Arms in ladder order, cheapest first.
ARMS = ["zero-shot", "few-shot", "rag", "tune", "tune+rag"]


def zero_shot(question: str, instruction: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": instruction}] if instruction else []
    msgs.append({"role": "user", "content": question})
    return msgs


def few_shot(question: str, examples: Iterable[tuple[str, str]], instruction: str | None = None) -> list[dict]:
    """System prompt, then each (input, output) example as a user/assistant turn, then the question."""
    msgs = [{"role": "system", "content": instruction}] if instruction else []
    for inp, out in examples:
        msgs.append({"role": "user", "content": inp})
        msgs.append({"role": "assistant", "content": out})
    msgs.append({"role": "user", "content": question})
    return msgs


def with_passages(
    question: str, passages: Sequence[str], instruction: str | None = None, examples: Iterable[tuple[str, str]] = ()
) -> list[dict]:
    """RAG messages: numbered sources in the system turn, so the answer can cite [1], [2]; worked
    `examples` (input, output) as turns between them and the question, as the few-shot arm has them."""
    sources = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    system = (instruction or DEFAULT_SYSTEM).rstrip() + (
        "\n\nAnswer using only the sources below, and cite them like [1]. "
        "If they do not contain the answer, say you do not know.\n\nSources:\n" + sources
    )
    turns = few_shot(question, examples)  # the examples' turns, then the question
    return [{"role": "system", "content": system}, *turns]


# ---- the pairwise judge -----------------------------------------------------------------------

JUDGE_VERDICTS = ["A", "B", "tie"]  # what a judge may answer; constrained decoding holds it to these
JUDGE_SYSTEM = (
    "You compare two answers to the same message by a rubric. Read the rubric, the message and both "
    "answers, then reply with exactly one of: A (answer A is better), B (answer B is better), tie."
)
DEFAULT_RUBRIC = """Prefer the answer that:
- answers what was asked, accurately, without inventing facts;
- follows the style of the task's reference answers (length, tone, format);
- is clear and to the point, without filler.
If both are equally good, say tie."""


def judge_messages(rubric: str, question: str, first: str, second: str) -> list[dict]:
    """One pairwise judgement: the rubric, the input and two answers labelled A and B (the caller
    asks twice, each answer once in each place, so a judge that favours a position shows it)."""
    user = (
        f"Rubric:\n{(rubric or DEFAULT_RUBRIC).strip()}\n\n"
        f"Message:\n{question.strip()}\n\n"
        f"Answer A:\n{first.strip()}\n\n"
        f"Answer B:\n{second.strip()}\n\n"
        "Which answer is better by the rubric? Reply A, B or tie."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
