"""A local judge: a model the lab runs asked which of two answers is better, in both orders.

    run = judge_pairs(lab, task, pairs, model="smollm2-135m-instruct")   # resumable, cancellable
    judged = verdicts(lab, pairs, run.judge)                             # per pair: both orders, flips

Each pair is asked twice, each answer once as A and once as B (`prompts.judge_messages`, with the
task's rubric). The verdict is held to A, B or tie by constrained decoding: a grammar on llama.cpp,
a trie on transformers, a JSON schema on an OpenAI-compatible server; whatever still cannot be read
is counted as unparseable, never guessed. A pair whose two orders disagree is a tie (a judge that
prefers a position flips), and the share of flips is reported. Every call goes through
`Lab.generate` (logged as `ladder.JUDGE`), one `judge_verdicts` row per pair and order, so a run
stopped by Cancel or Ctrl-C continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .. import prompts
from ..ladder import JUDGE
from .pairwise import Pairs, preference_of

ORDERS = ("ab", "ba")  # "ab": arm_a's answer shown as A
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": prompts.JUDGE_VERDICTS}},
    "required": ["verdict"],
}
MAX_TOKENS = 16  # a constrained verdict is a token or two; the server's JSON a few more


@dataclass
class JudgeRun:
    judge: str  # the judge's key: model and prompt (a new rubric is a new judge)
    asked: int  # calls made now
    stored: int  # verdicts on record for these pairs (both orders count)
    cancelled: bool = False


def judge_key(lab, task, model: str | None) -> str:
    """'MODEL#prompt-sha': the same model with another rubric or prompt is another judge."""
    info = lab.backend(model).info  # the loaded judge (a server, a test's fake) as it names itself
    prompt = prompts.JUDGE_SYSTEM + "\0" + (task.rubric or prompts.DEFAULT_RUBRIC).strip()
    return f"{info.id}#{hashlib.sha256(prompt.encode()).hexdigest()[:8]}"


def judge_name(key: str) -> str:
    """The model part of a judge's key, as the pages show it."""
    return key.split("#", 1)[0]


def verdict_options(lab, model: str | None):
    """Decoding held to the verdicts: the label set locally, the JSON schema on a server (which the
    lab cannot hold to a label set)."""
    if lab.backend(model).info.format == "openai":
        return lab.options(max_tokens=MAX_TOKENS, temperature=0.0, json_schema=VERDICT_SCHEMA)
    return lab.options(max_tokens=MAX_TOKENS, temperature=0.0, choices=list(prompts.JUDGE_VERDICTS))


def parse_verdict(text: str) -> str | None:
    """ "A", "B" or "tie" from what the judge wrote (a bare verdict, or the server's JSON); None if neither."""
    raw = (text or "").strip()
    if raw.startswith("{"):
        try:
            raw = str(json.loads(raw).get("verdict", ""))
        except (json.JSONDecodeError, AttributeError):
            return None
    word = raw.strip().strip(".\"'").lower()
    return {"a": "A", "b": "B", "tie": "tie"}.get(word)


def preferred_arm(verdict: str | None, order: str, arm_a: str, arm_b: str) -> str | None:
    """What a verdict means in arms: an arm, "tie", or None (unparseable)."""
    if verdict is None:
        return None
    if verdict == "tie":
        return "tie"
    first, second = (arm_a, arm_b) if order == "ab" else (arm_b, arm_a)
    return first if verdict == "A" else second


def judge_pairs(
    lab,
    task,
    pairs: Pairs,
    model: str | None = None,
    limit: int | None = None,
    cancel: threading.Event | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> JudgeRun:
    """Ask the judge about every pair (the first `limit`) in both orders; pairs already judged are
    skipped. `on_step(done, total)` after each call."""
    key = judge_key(lab, task, model)
    options = verdict_options(lab, model)
    items = pairs.items[:limit] if limit else pairs.items
    done = {
        (r["example_id"], r["order"])
        for r in lab.store.judge_verdicts(pairs.eval_run_id, pairs.arm_a, pairs.arm_b, key)
    }
    total, asked = 2 * len(items), 0
    for pair in items:
        for order in ORDERS:
            if (pair.example_id, order) in done:
                continue
            if cancel is not None and cancel.is_set():
                return JudgeRun(key, asked, len(done), cancelled=True)
            first, second = (pair.text_a, pair.text_b) if order == "ab" else (pair.text_b, pair.text_a)
            messages = prompts.judge_messages(task.rubric, pair.question, first, second)
            gen, row_id = lab.generate(messages, arm=JUDGE, model=model, options=options, cancel=cancel)
            if gen.finish_reason == "cancelled":
                return JudgeRun(key, asked, len(done), cancelled=True)
            said = parse_verdict(gen.text)
            probs = _in_arms(gen.extra.get("choice_probs"), order, pairs.arm_a, pairs.arm_b)
            lab.store.add_judge_verdict(
                {
                    "task": pairs.task,
                    "eval_run_id": pairs.eval_run_id,
                    "example_id": pair.example_id,
                    "arm_a": pairs.arm_a,
                    "arm_b": pairs.arm_b,
                    "judge": key,
                    "order": order,
                    "generation_id": row_id,
                    "verdict": said,
                    "preferred": preferred_arm(said, order, pairs.arm_a, pairs.arm_b),
                    "probs_json": json.dumps(probs) if probs else None,
                }
            )
            done.add((pair.example_id, order))
            asked += 1
            if on_step:
                on_step(len(done), total)
    return JudgeRun(key, asked, len(done))


def _in_arms(probs: dict | None, order: str, arm_a: str, arm_b: str) -> dict | None:
    """The verdicts' probabilities ({"A": p, "B": p, "tie": p}) in arms."""
    if not probs:
        return None
    return {preferred_arm(v, order, arm_a, arm_b): p for v, p in probs.items()}


@dataclass(frozen=True)
class Judged:
    """One pair's two verdicts and what they add up to."""

    example_id: str
    ab: str | None  # the preferred arm, "tie", or None (unparseable) with arm_a shown first
    ba: str | None
    unparseable: bool  # either order could not be read
    flip: bool  # both read, and they disagree
    preferred: str  # an arm, or "tie" (a flip, a tie, or an unreadable order)
    p_b: float | None = None  # arm_b's probability-weighted win (a tie half), both orders averaged


def verdicts(lab, pairs: Pairs, judge: str) -> dict[str, Judged]:
    """example_id -> the pair's verdicts, for the pairs judged in both orders."""
    by_pair: dict[str, dict[str, dict]] = {}
    for r in lab.store.judge_verdicts(pairs.eval_run_id, pairs.arm_a, pairs.arm_b, judge):
        by_pair.setdefault(r["example_id"], {})[r["order"]] = r
    out = {}
    for example_id, got in by_pair.items():
        if set(got) != set(ORDERS):
            continue
        ab, ba = got["ab"]["preferred"], got["ba"]["preferred"]
        unparseable = ab is None or ba is None
        flip = not unparseable and ab != ba
        probs = [json.loads(got[o]["probs_json"]) for o in ORDERS if got[o].get("probs_json")]
        p_b = sum(p.get(pairs.arm_b, 0) + 0.5 * p.get("tie", 0) for p in probs) / 2 if len(probs) == 2 else None
        preferred = ab if not unparseable and ab == ba else "tie"
        out[example_id] = Judged(example_id, ab, ba, unparseable, flip, preferred, p_b)
    return out


def weighted_win_rate(lab, pairs: Pairs, judge: str) -> float | None:
    """arm_b's win rate over arm_a weighted by the judge's verdict probabilities (a tie counting
    half, both orders averaged, so a judge that leans to a position cancels out); None where the
    backend gave no probabilities (a server, transformers)."""
    weights = [j.p_b for j in verdicts(lab, pairs, judge).values()]
    return sum(weights) / len(weights) if weights and None not in weights else None


def judge_preference(lab, pairs: Pairs, judge: str):
    """The judge's verdict on every pair it judged, as a `pairwise.Preference`."""
    judged = verdicts(lab, pairs, judge)
    return preference_of(pairs.arm_a, pairs.arm_b, [j.preferred for j in judged.values()], judge_name(judge))


def own_verdict_lines(lab, pairs: Pairs, judge: str) -> list[str]:
    """What the judge itself said, trusted or not: its verdict, and its probability-weighted win rate
    where the backend gave probabilities."""
    lines = [judge_preference(lab, pairs, judge).sentence]
    weighted = weighted_win_rate(lab, pairs, judge)
    if weighted is not None:
        lines.append(
            f"Weighted by its verdicts' probabilities (both orders averaged, a tie half), {pairs.arm_b}'s win "
            f"rate over {pairs.arm_a} is {weighted:.2f}."
        )
    return lines
