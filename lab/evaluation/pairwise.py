"""Blind pairwise preference: two arms' answers to the same held-out input, rated side by side.

    pairs = pairs_for(lab, task, ["few-shot", "tune"])     # from the task's newest evaluation
    shown = next_pair(lab, pairs)                           # one unrated pair, sides drawn at random
    rate(lab, shown, "A")                                   # what the person picked, stored in arms
    preference(lab, pairs).sentence                         # "you preferred tune in 15 of 20 ..."

A pair is one example of one eval run answered by both arms (repeat 0), so ratings are always of
answers the scoreboard scored. Which arm is shown on the left is drawn for every pair by the
operating system's randomness (no seed a rater could learn), and stored, so an order bias can be
seen. The verdict is the lab's paired test on 0/1 preferences (`stats.compare`: the exact sign test
on the pairs where one arm was preferred), worded by `verdict.preference_text`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from .. import ladder
from . import stats, verdict

RATER = "you"  # the person at the keyboard (the app and `lab rate` rate as "you")
CHOICES = ("A", "B", "tie", "both bad")
NO_PREFERENCE = ("tie", "both bad")
_SIDES = random.SystemRandom()  # no seed: a rater must not be able to learn the order


class PairwiseError(ladder.ArmError):
    """Nothing to rate as asked (no evaluation with both arms, an unknown arm, a bad choice); says why."""


@dataclass(frozen=True)
class Pair:
    task: str
    eval_run_id: int
    example_id: str
    question: str
    reference: str
    arm_a: str  # the earlier arm in ladder order
    arm_b: str
    text_a: str
    text_b: str
    generation_a: int | None
    generation_b: int | None


@dataclass
class Pairs:
    """Every pair of one eval run for two arms, in the run's order."""

    task: str
    eval_run_id: int
    arm_a: str
    arm_b: str
    items: list[Pair] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Shown:
    """A pair as the rater sees it: `left` is the arm shown as A."""

    pair: Pair
    left: str

    @property
    def right(self) -> str:
        return self.pair.arm_b if self.left == self.pair.arm_a else self.pair.arm_a

    def text(self, side: str) -> str:
        arm = self.left if side == "A" else self.right
        return self.pair.text_a if arm == self.pair.arm_a else self.pair.text_b


def two_arms(arms) -> tuple[str, str]:
    """Two distinct arms in ladder order; "few-shot,tune" and ["tune", "few-shot"] alike."""
    if isinstance(arms, str):
        arms = arms.split(",")
    chosen = ladder.check_arms(arms)
    if len(chosen) != 2:
        raise PairwiseError(f"pairwise rating compares exactly two arms (got {', '.join(chosen) or 'none'})")
    return chosen[0], chosen[1]


def pairs_for(lab, task, arms, eval_run_id: int | None = None) -> Pairs:
    """The pairs of `eval_run_id`, or of the task's newest evaluation (not a curve's, not a
    sweep's) that answered both arms."""
    arm_a, arm_b = two_arms(arms)
    run = _run(lab, eval_run_id) if eval_run_id else _newest_run_with(lab, task.name, arm_a, arm_b)
    if run is None or not {arm_a, arm_b} <= set(run["arms"]):
        raise PairwiseError(
            f"no evaluation of task '{task.name}' answered both {arm_a} and {arm_b}: evaluate both arms first"
        )
    examples = {e.id: e for e in task.examples("eval")}
    answers: dict[tuple[str, str], dict] = {}
    for row in lab.store.eval_result_rows(run["id"]):
        if row["repeat"] == 0 and row["arm"] in (arm_a, arm_b) and row.get("output") is not None:
            answers[(row["example_id"], row["arm"])] = row
    items = []
    for (example_id, arm), row_a in answers.items():
        row_b = answers.get((example_id, arm_b))
        if arm != arm_a or row_b is None or example_id not in examples:
            continue
        ex = examples[example_id]
        items.append(
            Pair(
                task.name,
                run["id"],
                example_id,
                ex.input,
                ex.output,
                arm_a,
                arm_b,
                row_a["output"],
                row_b["output"],
                row_a.get("generation_id"),
                row_b.get("generation_id"),
            )
        )
    return Pairs(task.name, run["id"], arm_a, arm_b, items)


def _run(lab, eval_run_id: int) -> dict | None:
    """The run with its arms (read here, not from the scoreboard's module, which reads this one)."""
    row = lab.store.eval_run_row(eval_run_id)
    return None if row is None else {**row, "arms": json.loads(row.get("arms_json") or "[]")}


def _untagged_runs(lab, task_name: str):
    """The task's evaluations, newest first, that are neither a curve's nor a sweep's: (row, arms)."""
    for row in lab.store.eval_runs(200, task_name):
        config = json.loads(row.get("config_json") or "{}")
        if not (config.get("tag") or config.get("sweep")) and row.get("results"):
            arms = [a for a in ladder.ARMS if a in json.loads(row.get("arms_json") or "[]")]
            yield {**row, "config": config, "arms": arms}, arms


def _newest_run_with(lab, task_name: str, arm_a: str, arm_b: str) -> dict | None:
    return next((row for row, arms in _untagged_runs(lab, task_name) if {arm_a, arm_b} <= set(arms)), None)


def default_arms(lab, task) -> tuple[str, str]:
    """The two arms to rate by default: the task's baseline arm and tune when an evaluation answered
    both, else the first two arms of the task's newest evaluation, else the baseline and tune."""
    runs = [arms for _, arms in _untagged_runs(lab, task.name) if len(arms) >= 2]
    if task.baseline_arm != "tune" and any({task.baseline_arm, "tune"} <= set(arms) for arms in runs):
        return task.baseline_arm, "tune"
    if runs:
        return runs[0][0], runs[0][1]
    return task.baseline_arm, "tune" if task.baseline_arm != "tune" else "zero-shot"


def ratings(lab, pairs: Pairs, rater: str = RATER) -> dict[str, dict]:
    """example_id -> the rater's rating row of that pair."""
    rows = lab.store.pair_ratings(pairs.eval_run_id, pairs.arm_a, pairs.arm_b, rater)
    return {r["example_id"]: r for r in rows}


def next_pair(lab, pairs: Pairs, rater: str = RATER, skip: set[str] | frozenset = frozenset()) -> Shown | None:
    """The first pair the rater has not rated (nor skipped), its sides drawn at random; None when done."""
    done = ratings(lab, pairs, rater)
    for pair in pairs.items:
        if pair.example_id not in done and pair.example_id not in skip:
            return Shown(pair, _SIDES.choice((pair.arm_a, pair.arm_b)))
    return None


def rate(lab, shown: Shown, choice: str, rater: str = RATER, seconds: float | None = None) -> str:
    """Store what the rater picked for a shown pair ("A", "B", "tie" or "both bad"); returns the
    preferred arm, "tie" or "both bad"."""
    if choice not in CHOICES:
        raise PairwiseError(f"a rating is one of {', '.join(CHOICES)} (got {choice!r})")
    preferred = choice if choice in NO_PREFERENCE else (shown.left if choice == "A" else shown.right)
    p = shown.pair
    lab.store.record_pair_rating(
        {
            "task": p.task,
            "eval_run_id": p.eval_run_id,
            "example_id": p.example_id,
            "arm_a": p.arm_a,
            "arm_b": p.arm_b,
            "generation_a": p.generation_a,
            "generation_b": p.generation_b,
            "shown_first": shown.left,
            "preferred": preferred,
            "rater": rater,
            "seconds": seconds,
        }
    )
    return preferred


@dataclass
class Preference:
    """Who preferred what over one set of pairs, and the paired test on it."""

    arm_a: str
    arm_b: str
    who: str  # "you", or the judge's name
    n: int
    wins_a: int
    wins_b: int
    ties: int
    both_bad: int
    comparison: stats.Comparison
    shown_left_won: int = 0  # preferences that went to the answer shown first (order bias)

    @property
    def win_rate_b(self) -> float | None:
        """arm_b's win rate over arm_a, a tie (or both bad) counting half."""
        return self.win_rate_of(self.arm_b)

    def win_rate_of(self, arm: str) -> float | None:
        """`arm`'s win rate over the other arm, a tie (or both bad) counting half."""
        wins = self.wins_b if arm == self.arm_b else self.wins_a
        return (wins + 0.5 * (self.ties + self.both_bad)) / self.n if self.n else None

    @property
    def sentence(self) -> str:
        return verdict.preference_text(self)

    def as_dict(self) -> dict:
        return {
            "arm_a": self.arm_a,
            "arm_b": self.arm_b,
            "who": self.who,
            "n": self.n,
            "wins_a": self.wins_a,
            "wins_b": self.wins_b,
            "ties": self.ties,
            "both_bad": self.both_bad,
            "win_rate_b": self.win_rate_b,
            "comparison": self.comparison.as_dict(),
            "sentence": self.sentence,
        }


def preference_of(arm_a: str, arm_b: str, preferred: list[str], who: str, left_won: int = 0) -> Preference:
    """The verdict on a list of outcomes (an arm, "tie" or "both bad", one per pair)."""
    a = [1.0 if p == arm_a else 0.0 for p in preferred]
    b = [1.0 if p == arm_b else 0.0 for p in preferred]
    comparison = stats.compare(a, b, "binary", name_a=arm_a, name_b=arm_b)
    return Preference(
        arm_a,
        arm_b,
        who,
        len(preferred),
        preferred.count(arm_a),
        preferred.count(arm_b),
        preferred.count("tie"),
        preferred.count("both bad"),
        comparison,
        left_won,
    )


def preference(lab, pairs: Pairs, rater: str = RATER) -> Preference:
    """The rater's verdict on the pairs rated so far."""
    rows = [r for r in ratings(lab, pairs, rater).values()]
    left_won = sum(1 for r in rows if r["preferred"] == r["shown_first"])
    return preference_of(pairs.arm_a, pairs.arm_b, [r["preferred"] for r in rows], rater, left_won)
