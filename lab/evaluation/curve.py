"""The learning curve (`lab curve TASK`): quality against the number of examples, few-shot
(k examples in the prompt) beside tuning (an adapter trained on n examples). Pure functions,
no model: the plan, the nested training subsets, the table, the crossover and the slope.
`curve_run` runs the plan through the trainer and the evaluation runner.

- Subsets are nested (the 50 hold the 25) and, for label tasks, stratified: every prefix of
  one seeded order keeps the labels' shares (`nested_order`). Seed s draws its own order and
  trains with seed s, so the spread across seeds covers which examples you happen to have as
  well as the training's own randomness.
- The training budget is in epochs, the same for every size: each example is seen equally
  often, so a 25-example set is not trained for the hundreds of epochs a step budget sized
  for 400 examples would give it.
- The crossover: the smallest size whose tuned arm beats the best few-shot point significantly
  (`stats.compare`, the scoreboard's paired test, Holm-corrected across the sizes compared).
- The slope: the last two sizes compared the same way; "still rising" when the gain between
  them is significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import stats
from .runner import EvalError
from .verdict import interval_text

FLAT = 0.05  # a slope whose whole interval lies within +-5 points per 100 examples is "flat"
DEFAULT_SIZES = "25,50,100,200,all"
DEFAULT_KS = "0,1,2,4,8,16"
DEFAULT_EPOCHS = 2.0


class CurveError(EvalError):
    """A learning curve cannot be planned as asked; the message names the option."""


class CurveSettings(BaseModel):
    """What one curve is: the sizes and ks, how many random seeds, the held-out limit and the training
    settings (TrainConfig fields: lab train's flags; checked by `make_config`)."""

    model_config = ConfigDict(extra="forbid")

    sizes: list[int] = Field(min_length=1)  # training-set sizes, ascending, "all" resolved
    ks: list[int] = Field(min_length=1)  # few-shot examples
    seeds: int = Field(1, ge=1, le=20)
    limit: int | None = Field(None, ge=1)  # held-out examples (`sample.held_out`'s first N)
    epochs: float = Field(DEFAULT_EPOCHS, gt=0)
    max_steps: int | None = Field(None, ge=1)  # a cap per adapter (said when it bites)
    train: dict[str, Any] = Field(default_factory=dict)  # other TrainConfig values (lr, batch size...)
    constrain: bool = False  # every point's answers held to the labels/schema (few-shot and tuned alike)


def parse_sizes(text: str, n_train: int) -> tuple[list[int], list[str]]:
    """ "25,50,all" -> ([25, 50, n_train], notes). Sizes above the training set become "all"
    (with a note); duplicates go; ascending."""
    return _parse_counts(
        text,
        "--sizes",
        "a number or 'all'",
        1,
        n_train,
        "25,50,100,all",
        "size",
        all_value=n_train,
        cap_note="size {n} is more than the {cap} training examples: using all {cap}",
    )


def parse_ks(text: str, pool: int) -> tuple[list[int], list[str]]:
    """ "0,1,4,8" -> ([0, 1, 4, 8], notes); a k above the few-shot pool is capped to it (said)."""
    return _parse_counts(
        text,
        "--k",
        "a number",
        0,
        pool,
        "0,2,4,8",
        "k",
        cap_note="k = {n} is more than the {cap} examples in the few-shot pool: capped to {cap}",
    )


def _parse_counts(
    text: str,
    flag: str,
    expected: str,
    lowest: int,
    cap: int,
    example: str,
    one: str,
    cap_note: str,
    all_value: int | None = None,
) -> tuple[list[int], list[str]]:
    """A comma list of counts, each at least `lowest`, above `cap` capped to it (with a note);
    duplicates go; ascending."""
    values, notes = [], []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if all_value is not None and part.lower() == "all":
            values.append(all_value)
            continue
        try:
            n = int(part)
        except ValueError:
            raise CurveError(f"{flag}: '{part}' is not {expected}") from None
        if n < lowest:
            raise CurveError(f"{flag}: {n} must be {'at least 1' if lowest == 1 else f'{lowest} or more'}")
        if n > cap:
            notes.append(cap_note.format(n=n, cap=cap))
            n = cap
        values.append(n)
    if not values:
        raise CurveError(f"{flag}: give at least one {one} (e.g. {example})")
    return sorted(set(values)), notes


# ---- nested, stratified subsets ----------------------------------------------------------------


def subset(order: Sequence[int], n: int) -> list[int]:
    """The first n of the order, in file order (the training file keeps its own order)."""
    return sorted(order[:n])


def adapter_name(task: str, n: int, seed: int) -> str:
    """The adapter trained on the first n examples of seed s's order: TASK-n100s0
    (adapter names allow letters, digits, '.', '_' and '-')."""
    return f"{task}-n{n}s{seed}"


# ---- the curve's numbers -----------------------------------------------------------------------

Scores = dict[str, float | None]  # example id -> primary score


@dataclass
class FewShotPoint:
    k: int  # asked for
    quality: stats.Estimate
    k_used: int | None = None  # the most that fitted the context (None: not recorded)
    run_id: int | None = None

    @property
    def capped(self) -> bool:
        return self.k_used is not None and self.k_used < self.k


@dataclass
class TunePoint:
    n: int
    quality: stats.Estimate  # over the examples, each averaged across the seeds
    seed_means: list[float] = field(default_factory=list)  # one mean per seed
    run_ids: list[int] = field(default_factory=list)

    @property
    def spread(self) -> tuple[float, float] | None:
        """(lowest, highest) seed mean, with several seeds."""
        return (min(self.seed_means), max(self.seed_means)) if len(self.seed_means) > 1 else None


@dataclass
class Crossover:
    best_k: int | None  # the best few-shot point (highest mean; the smaller k on a tie)
    best: stats.Estimate | None
    at_n: int | None  # the smallest size whose tuned arm beats it significantly; None: none does
    comparisons: dict[int, stats.Comparison] = field(default_factory=dict)  # size -> tune vs best few-shot

    def beaten_by_few_shot(self) -> list[int]:
        """Sizes where the best few-shot is significantly better than tuning."""
        return [n for n, c in self.comparisons.items() if c.significant and c.diff < 0]


@dataclass
class Slope:
    n_from: int
    n_to: int
    comparison: stats.Comparison  # tuned at n_to against tuned at n_from

    @property
    def per_100(self) -> float | None:
        """The gain per 100 more examples (the difference over the gap, scaled)."""
        c = self.comparison
        return None if c.diff is None else c.diff * 100 / (self.n_to - self.n_from)

    @property
    def interval_per_100(self) -> tuple[float, float] | None:
        c = self.comparison
        if c.lo is None:
            return None
        scale = 100 / (self.n_to - self.n_from)
        return c.lo * scale, c.hi * scale

    @property
    def rising(self) -> bool:
        c = self.comparison
        return c.significant and c.diff > 0

    def reading(self) -> str:
        """What the slope says about more training data, no more than its interval allows: a
        significant rise or fall, flat (the whole interval within FLAT points per 100), else too
        few held-out examples to tell."""
        c, ci = self.comparison, self.interval_per_100
        if self.rising:
            return "still rising: more examples will likely help"
        if c.significant:
            return "falling: more examples of the same kind are unlikely to help"
        if ci is not None and -FLAT <= ci[0] and ci[1] <= FLAT:
            return "flat: more examples of the same kind may not help much"
        lean = "rising, but not significantly" if (c.diff or 0) > 0 else "no rise seen"
        return f"{lean}: the interval is too wide to tell whether more training data would help"


def mean_over_seeds(per_seed: Sequence[Scores]) -> Scores:
    """Per example, the mean of its scores across seeds (an example any seed missed is left out)."""
    common = set(per_seed[0]).intersection(*per_seed[1:]) if per_seed else set()
    return {ex: stats.mean([s[ex] for s in per_seed]) for ex in sorted(common)}


def _paired(a: Scores, b: Scores) -> tuple[list, list]:
    common = sorted(set(a) & set(b))
    return [a[e] for e in common], [b[e] for e in common]


def best_few_shot(few: dict[int, Scores]) -> int | None:
    """The k whose mean is highest (the smaller k on a tie)."""
    means = {k: stats.mean(list(s.values())) for k, s in few.items()}
    means = {k: m for k, m in means.items() if m is not None}
    return max(sorted(means), key=lambda k: means[k]) if means else None


def find_crossover(few: dict[int, Scores], tuned: dict[int, Scores], score_type: str | None = None) -> Crossover:
    """The smallest size whose tuned scores beat the best few-shot point significantly (the
    scoreboard's paired test, Holm-corrected across the sizes), or None."""
    k = best_few_shot(few)
    if k is None:
        return Crossover(None, None, None)
    best = few[k]
    comps = {}
    for n in sorted(tuned):
        a, b = _paired(best, tuned[n])
        comps[n] = stats.compare(a, b, score_type, name_a=f"few-shot k={k}", name_b=f"tune n={n}")
    for c, p in zip(comps.values(), stats.holm([c.p_value for c in comps.values()])):
        c.p_adjusted = p
    at = next((n for n, c in comps.items() if c.significant and c.diff > 0), None)
    return Crossover(k, stats.mean_ci(list(best.values()), score_type), at, comps)


def last_slope(tuned: dict[int, Scores], score_type: str | None = None) -> Slope | None:
    """The tuned curve between its last two sizes: is it still rising?"""
    sizes = sorted(tuned)
    if len(sizes) < 2:
        return None
    lo, hi = sizes[-2], sizes[-1]
    a, b = _paired(tuned[lo], tuned[hi])
    return Slope(lo, hi, stats.compare(a, b, score_type, name_a=f"tune n={lo}", name_b=f"tune n={hi}"))


@dataclass
class Curve:
    """One task's learning curve: the table, the crossover and the slope."""

    task: str
    metric: str
    target: float
    n_train: int  # the examples the task has for training
    n_eval: int  # held-out examples scored per point
    few_shot: list[FewShotPoint]
    tuned: list[TunePoint]
    crossover: Crossover
    slope: Slope | None
    seeds: int = 1
    settings: dict = field(default_factory=dict)
    curve_id: int | None = None
    status: str = ""
    complete: bool = True

    def as_dict(self) -> dict:
        d = asdict(self)
        d["crossover"]["comparisons"] = {n: c.as_dict() for n, c in self.crossover.comparisons.items()}
        if self.slope:
            d["slope"] = {
                "n_from": self.slope.n_from,
                "n_to": self.slope.n_to,
                "per_100": self.slope.per_100,
                "interval_per_100": self.slope.interval_per_100,
                "rising": self.slope.rising,
                "comparison": self.slope.comparison.as_dict(),
            }
        return d

    def crossover_text(self) -> str:
        c = self.crossover
        if c.best_k is None:
            return "No few-shot point measured yet."
        best = f"the best few-shot (k = {c.best_k}, {c.best})"
        if c.at_n is not None:
            return (
                f"Crossover: tuning beats {best} significantly from n = {c.at_n} examples "
                f"({c.comparisons[c.at_n]}); the task has {self.n_train}."
            )
        if not c.comparisons:
            return f"No tuned point measured yet to compare with {best}."
        return f"No crossover: no tuned size beats {best} significantly."

    def slope_text(self) -> str:
        s = self.slope
        if s is None:
            return "Slope: needs two tuned sizes."
        if s.per_100 is None:
            return f"Slope n={s.n_from} -> {s.n_to}: no examples in common."
        ci = s.interval_per_100
        interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
        verdict = s.reading()
        return (
            f"Slope n={s.n_from} -> {s.n_to}: {s.per_100:+.3f}{interval} {self.metric} per 100 more examples "
            f"({stats.format_p(s.comparison.p_value)}); {verdict}."
        )

    def to_text(self) -> str:
        rows = []
        for p in self.few_shot:
            k = f"{p.k_used} (asked {p.k}, capped by the context)" if p.capped else str(p.k)
            rows.append(["few-shot", f"k = {k}", str(p.quality.n), str(p.quality), ""])
        for p in self.tuned:
            spread = f"{p.spread[0]:.3f} .. {p.spread[1]:.3f}" if p.spread else ""
            rows.append(["tune", f"n = {p.n}", str(p.quality.n), str(p.quality), spread])
        from .summary import text_table

        done = "" if self.complete else " (partial)"
        lines = [
            f"Learning curve · task {self.task} · {self.metric}, target {self.target:.2f} · "
            f"{self.n_eval} held-out examples · {self.seeds} seed(s){done}",
            "",
        ]
        lines += text_table(
            ["arm", "examples", "n eval", f"{self.metric} [95% CI]", "spread across seeds" if self.seeds > 1 else ""],
            rows,
        )
        lines += ["", self.crossover_text(), self.slope_text()]
        return "\n".join(lines)


def build_curve(
    task: str,
    metric: str,
    target: float,
    n_train: int,
    few: dict[int, Scores],
    tuned_by_seed: dict[int, list[Scores]],
    graded_metric: bool = False,
    k_used: dict[int, int | None] | None = None,
    **extra,
) -> Curve:
    """The curve from per-example scores: few {k: scores}, tuned_by_seed {n: [scores per seed]}.
    The tests are the binary ones when every score is 0 or 1 (seeds averaged included), as
    on the scoreboard (`stats.score_type_of`)."""
    tuned = {n: mean_over_seeds(seeds) for n, seeds in tuned_by_seed.items() if seeds}
    values = [list(s.values()) for s in (*few.values(), *tuned.values())]
    score_type = stats.score_type_of(*values, graded_metric=graded_metric)
    few_points = [
        FewShotPoint(k, stats.mean_ci(list(s.values()), score_type), (k_used or {}).get(k))
        for k, s in sorted(few.items())
    ]
    tune_points = [
        TunePoint(
            n,
            stats.mean_ci(list(tuned[n].values()), score_type),
            [m for m in (stats.mean(list(s.values())) for s in tuned_by_seed[n]) if m is not None],
        )
        for n in sorted(tuned)
    ]
    n_eval = max([p.quality.n for p in (*few_points, *tune_points)], default=0)
    return Curve(
        task,
        metric,
        target,
        n_train,
        n_eval,
        few_points,
        tune_points,
        find_crossover(few, tuned, score_type),
        last_slope(tuned, score_type),
        **extra,
    )


# ---- what the curve says, in the advice's words ----------------------------------------------


def curve_advice(curve, have: int) -> tuple[list[str], list[str]]:
    """What the task's learning curve says, as the advice's (reasons, next steps): where tuning overtakes the
    best few-shot point (or that it never does), and whether more examples would likely help."""
    reasons, steps = [], []
    x = curve.crossover
    if x.best_k is None or not x.comparisons:
        return (
            [
                f"The learning curve (curve {curve.curve_id}) has no {'few-shot' if x.best_k is None else 'tuned'} "
                "point yet."
            ],
            [f"finish it: `lab curve {curve.task}` resumes"],
        )
    best = f"the best few-shot (k = {x.best_k}, {x.best})"
    largest = max(x.comparisons)
    if x.at_n is not None:
        c = x.comparisons[x.at_n]
        reasons.append(
            f"On your data, tuning beats {best} from about {x.at_n} examples; you have {have} "
            f"(learning curve: tune n={x.at_n} vs few-shot {interval_text(c)})."
        )
        if have < x.at_n:
            steps.append(
                f"collect about {x.at_n - have} more examples before tuning; prompt with k = {x.best_k} meanwhile"
            )
    elif set(x.comparisons) <= set(x.beaten_by_few_shot()):
        reasons.append(
            f"Few-shot at k = {x.best_k} beats tuning at every size measured, up to {largest} examples "
            f"(learning curve, largest: {interval_text(x.comparisons[largest])}): stay with prompting."
        )
    elif largest in x.beaten_by_few_shot():
        reasons.append(
            f"Few-shot at k = {x.best_k} beats tuning at the largest size measured, {largest} examples "
            f"(learning curve: {interval_text(x.comparisons[largest])}): stay with prompting."
        )
    else:
        reasons.append(
            f"Tuning is not shown to beat few-shot at k = {x.best_k} at any size measured (learning "
            f"curve, tune n={largest} vs few-shot {interval_text(x.comparisons[largest])}): stay with "
            "prompting unless more examples show otherwise."
        )
    s = curve.slope
    if s is not None and s.per_100 is not None:
        ci = s.interval_per_100
        gain = f"{s.per_100:+.3f} per 100 examples between n={s.n_from} and n={s.n_to}" + (
            f", 95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
        )
        reasons.append(f"The tuned curve ({gain}): {s.reading()}.")
        if s.rising:
            steps.append(
                f"collect more examples and extend the curve: `lab curve {curve.task} --sizes {s.n_to},{2 * s.n_to}`"
            )
    return reasons, steps
