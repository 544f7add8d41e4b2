"""Which measured rung to recommend, and why, in one function (`choose`): the advisor words the
rest around it, the climb's advice reads it, and `scripts/bench_verdicts.py` measures how often
it is wrong. Every verdict in it comes from `verdict`.

The rule:
1. Each rung is judged by `verdict.meets`, the 5% shared among everything measured (`verdict.family`:
   the prompt rung at its best is the best of N configurations, and each of them is a chance).
2. The cheapest rung that meets the target is the pick, unless a cheaper rung reaches 90% of
   the target *and* a non-inferiority test shows it is worse by less than the margin: then the
   cheaper one is the better buy. "The costlier one is not significantly better" is not enough.
3. No rung meets: the cheapest that *may* meet (mean at the target, bound below), with how many
   more examples would tell; else the best by mean, named as it was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..prompts import ARMS
from . import verdict

LADDER = ARMS  # the arms, cheapest first
PROMPT_SHARE = 0.9  # a cheaper rung at 90%+ of the target is worth a non-inferiority test
AS_GOOD = "as-good"  # the pick's state when it is a cheaper rung shown as good as one that meets


@dataclass
class Rung:
    """One measured candidate: a scoreboard arm, or the prompt rung's best configuration."""

    arm: str  # its LADDER rung ("few-shot" for a few-shot configuration)
    name: str  # how the advice names it: "few-shot" or "few-shot, 8 similar examples, constrained"
    mean: float
    n: int
    scores: dict  # example id -> primary score (for the paired tests)
    candidates: int = 1  # the best of this many configurations (before `shared` spreads the 5% over rungs)
    row: object = None  # the scoreboard row (summary.ArmSummary) it came from
    eval_run_id: int | None = None  # a sweep's configuration: the run that measured it (None: the board's)

    def judged(self, target: float) -> verdict.Meets:
        return verdict.meets(self.mean, self.n, target, self.candidates)


def shared(rungs: list[Rung]) -> list[Rung]:
    """The rungs with `candidates` set to their share of the 5% (`verdict.family`): each measured
    configuration of every rung is one chance to meet the target by luck."""
    fam = verdict.family(verdict.RUNG_OF[r.arm] for r in rungs for _ in range(r.candidates))
    return [replace(r, candidates=fam[verdict.RUNG_OF[r.arm]]) for r in rungs]


@dataclass
class Choice:
    rung: Rung
    state: str  # the pick's verdict: meets, maybe, misses, or AS_GOOD (as good as a rung that meets)
    reasons: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    change: list[str] = field(default_factory=list)
    as_good: object = None  # stats.NonInferiority behind a cheaper pick, or the one that could not tell


def choose(rungs: list[Rung], target: float, margin: float = verdict.MARGIN, score_type: str | None = None) -> Choice:
    """The rung to recommend among `rungs` (any order; `candidates`: how many configurations each is
    the best of), with the reasons in words."""
    rungs = sorted(shared(rungs), key=lambda r: LADDER.index(r.arm))
    judged = {id(r): r.judged(target) for r in rungs}
    meeting = [r for r in rungs if judged[id(r)].state == verdict.MEETS]
    if meeting:
        pick = meeting[0]
        choice = Choice(pick, verdict.MEETS, [judged[id(pick)].text(pick.name) + " It is the cheapest rung that does."])
        _cheaper_as_good(choice, rungs, target, margin, score_type)
        return choice
    maybe = [r for r in rungs if judged[id(r)].state == verdict.MAYBE]
    if maybe:
        pick = maybe[0]
        m = judged[id(pick)]
        return Choice(
            pick,
            verdict.MAYBE,
            [m.text(pick.name) + " No rung meets the target for certain yet."],
            steps=[
                f"evaluate more held-out examples{f' (about {m.more} more)' if m.more else ''}: the interval decides"
            ],
        )
    pick = max(rungs, key=lambda r: (r.mean, -LADDER.index(r.arm)))
    return Choice(
        pick,
        verdict.MISSES,
        [
            f"No measured rung meets the target {target:.2f}; the best is {pick.name} "
            f"(mean {pick.mean:.3f} on {pick.n} examples)."
        ],
    )


def _cheaper_as_good(choice: Choice, rungs: list[Rung], target: float, margin: float, score_type) -> None:
    """Prefer a cheaper rung at 90%+ of the target that is shown as good as the pick (within the
    margin); say so when it cannot be told."""
    pick = choice.rung
    for r in rungs:
        if LADDER.index(r.arm) >= LADDER.index(pick.arm) or r.mean < PROMPT_SHARE * target:
            continue
        ni = verdict.as_good_as(
            r.scores, pick.scores, margin, score_type, candidates=r.candidates, name_cheap=r.name, name_costly=pick.name
        )
        choice.as_good = ni
        if ni.shown:
            choice.reasons.append(
                f"But {r.name} reaches {r.mean / target:.0%} of the target and "
                + verdict.as_good_text(ni)
                + f" The cheaper {r.name} is the better buy."
            )
            choice.rung = r
            choice.state = AS_GOOD  # not "meets": the cheaper rung is as good as one that does
            return
        choice.reasons.append(
            f"{r.name} reaches {r.mean / target:.0%} of the target, but "
            + verdict.as_good_text(ni)[0].lower()
            + verdict.as_good_text(ni)[1:]
            + f" So {pick.name} stays the pick."
        )
        if ni.needed:
            choice.steps.append(
                f"to tell whether the cheaper {r.name} would do: about {ni.needed} paired held-out examples"
            )
        return
