"""Honest statistics for small evaluation sets, from established tests (scipy).

One entry point, `compare(a, b, score_type)`: arm b against arm a on the same examples (a[i] and b[i]
belong to example i). The scoreboard, the advisor, the app, the report and the tests all use it.

- one arm's mean: the Clopper-Pearson interval (`proportion_interval`), for 0/1 scores and for
  graded ones alike (every scorer's score lies in [0, 1], and no [0, 1] variable spreads more than
  a 0/1 one with the same mean, so the interval keeps its promise for both). Chosen by measured
  coverage (`scripts/bench_verdicts.py`): Wilson's two-sided coverage dips to 91% (n = 12, p = 0.75)
  and BCa's lower bound lay above the truth 8% of the time at n = 8; a graded score with no spread
  still gets an interval that reflects n.
- binary scores (every value 0 or 1: exact match, label accuracy, contains-the-fact): the exact
  McNemar test, i.e. a two-sided sign test on the discordant pairs (`scipy.stats.binomtest`);
  the difference gets Newcombe's Wilson-based paired interval.
- graded scores (field accuracy, F1, ROUGE-L, or repeats averaged per example): a paired sign-flip
  permutation test (`scipy.stats.permutation_test`, exact up to 13 pairs) and a paired BCa
  bootstrap interval (`scipy.stats.bootstrap`) for the difference.
- `noninferior(cheap, costly, margin)`: is the cheaper arm worse by less than `margin`? A one-sided
  test on the paired difference: Clopper-Pearson bounds on its gains and its losses, for 0/1 and
  graded scores alike.
- `compare_all` makes every pairwise comparison of one scoreboard and applies Holm's correction;
  "significant" always means after the correction.
- Fewer than MIN_PAIRS pairs is never significant: "too few examples to tell", with a simple
  power estimate of how many examples the observed difference would need.

Everything random is seeded, so a report is reproducible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

ScoreType = Literal["binary", "graded"]
SCORE_TYPES = ("binary", "graded")
N_BOOT = 5000  # bootstrap resamples
N_PERM = 9999  # sign-flip resamples; below 2**13 pairs the test enumerates every flip exactly
ALPHA = 0.05
POWER = 0.8  # for "how many examples would be needed"
MIN_PAIRS = 6  # fewer paired examples are never "significant" (a sign test cannot reach p<0.05 with 5)
TOO_FEW = "too few examples to tell"


@dataclass
class Estimate:
    """One arm's mean score and its interval (Clopper-Pearson, `proportion_interval`)."""

    mean: float | None
    lo: float | None
    hi: float | None
    n: int
    method: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.mean is None:
            return "n/a"
        if self.lo is None:
            return f"{self.mean:.3f} [n/a]"
        return f"{self.mean:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


@dataclass
class Comparison:
    """b minus a over the examples both arms scored."""

    a: str
    b: str
    diff: float | None
    lo: float | None  # the interval of the difference (not corrected for multiple comparisons)
    hi: float | None
    p_value: float | None  # raw, two-sided
    n: int  # pairs
    p_adjusted: float | None = None  # Holm across the scoreboard's comparisons; None: a family of one
    score_type: str = "graded"
    wins: int = 0  # examples where b scored higher than a
    losses: int = 0  # ... lower
    needed: int | None = None  # examples needed to detect the observed difference (80% power)
    test: str = ""
    alpha: float = ALPHA

    def __post_init__(self):
        if self.p_adjusted is None:
            self.p_adjusted = self.p_value

    @property
    def ties(self) -> int:
        return self.n - self.wins - self.losses

    @property
    def too_few(self) -> bool:
        return self.n < MIN_PAIRS

    @property
    def significant(self) -> bool:
        """Holm-corrected p below alpha, on at least MIN_PAIRS examples."""
        return not self.too_few and self.p_adjusted is not None and self.p_adjusted < self.alpha

    @property
    def verdict(self) -> str:
        if self.diff is None:
            return "no examples in common"
        if self.too_few:
            return TOO_FEW
        return "significant" if self.significant else "not significant"

    def reading(self) -> str:
        """One plain sentence for people who do not read p-values."""
        if self.diff is None:
            return f"{self.b} and {self.a} have no scored example in common."
        points = f"{abs(self.diff) * 100:.3g}-point"
        same = self.wins == 0 and self.losses == 0
        if self.too_few:
            need = (
                f": about {self.needed} would be needed to see a {points} difference"
                if self.needed
                else " (no difference seen)"
            )
            return f"{self.n} example{'s are' if self.n != 1 else ' is'} too few to tell {self.b} and {self.a} apart{need}."
        if same:
            return f"{self.b} and {self.a} scored the same on all {self.n} examples."
        record = f"{self.b} beat {self.a} on {self.wins} of {self.n} examples and lost on {self.losses}"
        if self.significant:
            return f"{record}; a difference this large would rarely happen by chance."
        if abs(self.diff) < 0.0005:  # wins and losses cancel out: no difference to call chance
            return f"{record}: no difference overall."
        more = (
            f"; about {self.needed} examples would be needed to tell a {points} difference from chance"
            if self.needed and self.needed > self.n
            else ""
        )
        return f"{record}; a difference this large could easily be chance{more}."

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "ties": self.ties,
            "significant": self.significant,
            "verdict": self.verdict,
            "reading": self.reading(),
        }

    def __str__(self) -> str:
        if self.diff is None:
            return f"{self.b} vs {self.a}: n/a"
        interval = "" if self.lo is None else f" [{self.lo:+.3f}, {self.hi:+.3f}]"
        holm = f", Holm {format_p(self.p_adjusted)}" if self.p_adjusted != self.p_value else ""
        return (
            f"{self.b} vs {self.a}: {self.diff:+.3f}{interval}, {format_p(self.p_value)}{holm} "
            f"({self.verdict}, n={self.n})"
        )


def format_p(p: float | None) -> str:
    if p is None:
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None], dtype=float)


def score_type_of(*value_lists: Sequence[float | None], graded_metric: bool = False) -> ScoreType:
    """ "binary" when every value is 0 or 1 and the metric is not a graded one (the scoreboard
    passes graded_metric for token_f1, rouge_l and field_accuracy); else "graded". Repeats
    averaged per example (0.5, ...) make a binary metric graded."""
    if graded_metric:
        return "graded"
    values = np.concatenate([_clean(v) for v in value_lists]) if value_lists else np.array([])
    return "binary" if np.isin(values, (0.0, 1.0)).all() else "graded"


def _check_score_type(score_type: str | None, *values: np.ndarray) -> ScoreType:
    if score_type is None:
        return score_type_of(*values)
    if score_type not in SCORE_TYPES:
        raise ValueError(f"score_type must be one of {SCORE_TYPES}, got {score_type!r}")
    if score_type == "binary" and not all(np.isin(v, (0.0, 1.0)).all() for v in values):
        raise ValueError("score_type='binary' needs every score to be 0 or 1")
    return score_type


# ---- one arm ----------------------------------------------------------------------------------


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    ci = sps.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _bootstrap(data: tuple, statistic, level: float, seed: int, n_boot: int, paired: bool) -> tuple:
    """BCa interval; the percentile one where BCa is undefined; (None, None) where both are.
    Scores with no spread give the point itself (there is nothing to resample)."""
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate data: scipy warns and returns nan
            try:
                res = sps.bootstrap(
                    data,
                    statistic,
                    paired=paired,
                    vectorized=True,
                    n_resamples=n_boot,
                    confidence_level=level,
                    method=method,
                    rng=np.random.default_rng(seed),
                )
            except ValueError:  # fewer than two observations
                return None, None
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isnan(lo) or math.isnan(hi)):
            return lo, hi
    point = float(statistic(*data, axis=-1))
    return point, point


def proportion_interval(mean: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Clopper-Pearson interval of a mean of n scores in [0, 1] (mean * n "successes", which
    may be fractional for graded scores). Exact for 0/1 scores, never shorter than the truth needs
    (its coverage is at least `level` for every true rate); a hand-written two-liner because
    scipy's `binomtest(...).proportion_ci` takes only whole counts."""
    a, s = 1 - level, float(mean) * n
    lo = 0.0 if s <= 0 else float(sps.beta.ppf(a / 2, s, n - s + 1))
    hi = 1.0 if s >= n else float(sps.beta.ppf(1 - a / 2, s + 1, n - s))
    return lo, hi


def mean_ci(values: Sequence[float | None], score_type: str | None = None, level: float = 0.95) -> Estimate:
    """The mean and its Clopper-Pearson interval (`proportion_interval`); None values are skipped.
    `score_type` only checks the scores (binary ones must be 0 or 1)."""
    x = _clean(values)
    if len(x) == 0:
        return Estimate(None, None, None, 0)
    score_type = _check_score_type(score_type, x)
    if x.min() < 0 or x.max() > 1:
        raise ValueError("scores must lie in [0, 1] (every scorer's do)")
    lo, hi = proportion_interval(float(x.mean()), len(x), level)
    return Estimate(
        float(x.mean()),
        lo,
        hi,
        len(x),
        "Clopper-Pearson" if score_type == "binary" else "Clopper-Pearson on the mean of [0, 1] scores",
    )


# ---- arm against arm --------------------------------------------------------------------------


def newcombe_paired(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Newcombe's (1998, method 10) interval for the difference of two paired proportions,
    mean(b) - mean(a), built from each arm's Wilson interval and the correlation of the pairs."""
    n = len(a)
    both, only_a = int(np.sum((a == 1) & (b == 1))), int(np.sum((a == 1) & (b == 0)))
    only_b, neither = int(np.sum((a == 0) & (b == 1))), int(np.sum((a == 0) & (b == 0)))
    pa, pb = (both + only_a) / n, (both + only_b) / n
    la, ua = wilson(both + only_a, n, level)
    lb, ub = wilson(both + only_b, n, level)
    denom = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(denom) if denom else 0.0
    diff = pb - pa
    down = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    up = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return max(-1.0, diff - down), min(1.0, diff + up)


def examples_needed(d: np.ndarray, score_type: str, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Roughly how many paired examples would detect the observed mean difference (two-sided
    alpha, given power), at least MIN_PAIRS. Binary: Connor's (1987) McNemar sample size, and
    enough discordant pairs for the exact test; graded: the normal approximation for a paired
    mean, with the observed spread. None when there is no difference (or no spread to measure)."""
    diff = float(d.mean()) if len(d) else 0.0
    if diff == 0:
        return None
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    if score_type == "binary":
        discordant = float(np.mean(d != 0))
        n = (za * math.sqrt(discordant) + zb * math.sqrt(max(0.0, discordant - diff**2))) ** 2 / diff**2
        n = max(n, MIN_PAIRS / discordant)
    else:
        if len(d) < 2:
            return None
        n = ((za + zb) * float(np.std(d, ddof=1)) / abs(diff)) ** 2
    return max(MIN_PAIRS, math.ceil(n))


def _mean_diff(x, y, axis=-1):
    return np.mean(y - x, axis=axis)


def compare(
    a: Sequence[float | None],
    b: Sequence[float | None],
    score_type: str | None = None,
    name_a: str = "a",
    name_b: str = "b",
    level: float = 0.95,
    seed: int = 0,
    n_boot: int = N_BOOT,
    n_perm: int = N_PERM,
    alpha: float = ALPHA,
) -> Comparison:
    """Arm b against arm a on the same examples: mean(b - a), its interval, the raw two-sided p
    and the verdict (a family of one: p_adjusted = p_value; `compare_all` applies Holm).
    Pairs with a missing score on either side are dropped. score_type None: decided by `score_type_of`."""
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} vs {len(b)}")
    keep = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    xa, xb = np.array([k[0] for k in keep], dtype=float), np.array([k[1] for k in keep], dtype=float)
    score_type = _check_score_type(score_type, xa, xb)
    base = dict(a=name_a, b=name_b, n=len(keep), score_type=score_type, alpha=alpha)
    if not keep:
        return Comparison(diff=None, lo=None, hi=None, p_value=None, **base)
    d = xb - xa
    wins, losses = int(np.sum(d > 0)), int(np.sum(d < 0))
    if score_type == "binary":
        test = "exact McNemar (sign test on the discordant pairs)"
        p = sps.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
        lo, hi = newcombe_paired(xa, xb, level)
    else:
        test = "paired sign-flip permutation test"
        p = (
            1.0
            if len(d) < 2
            else sps.permutation_test(
                (d,),
                np.mean,
                permutation_type="samples",
                vectorized=True,
                n_resamples=n_perm,
                alternative="two-sided",
                rng=np.random.default_rng(seed),
            ).pvalue
        )
        lo, hi = _bootstrap((xa, xb), _mean_diff, level, seed, n_boot, paired=True)
    return Comparison(
        diff=float(d.mean()),
        lo=lo,
        hi=hi,
        p_value=float(min(1.0, p)),
        wins=wins,
        losses=losses,
        needed=examples_needed(d, score_type, alpha),
        test=test,
        **base,
    )


def ratio_of(c: Comparison) -> tuple[float | None, float | None, float | None]:
    """(ratio, lo, hi): exp of a paired difference of logs and of its interval's ends. On mean
    token negative log-likelihoods per passage (b the tuned model, a the base) it is the perplexity
    ratio tuned/base, the geometric mean of the passages' own ratios; the interval is the BCa
    bootstrap's of the difference, carried through exp (a monotone map keeps its coverage)."""

    def exp(v: float | None) -> float | None:
        return None if v is None else math.exp(v)

    return exp(c.diff), exp(c.lo), exp(c.hi)


@dataclass
class NonInferiority:
    """Is `cheap` worse than `costly` by less than `margin`? d = cheap - costly on the same examples;
    `lo` is the one-sided lower bound of mean(d) at 1 - alpha / candidates (Bonferroni when the
    costly arm's rival was picked as the best of several)."""

    cheap: str
    costly: str
    diff: float | None
    lo: float | None
    margin: float
    n: int
    alpha: float = ALPHA
    candidates: int = 1
    needed: int | None = None  # paired examples that would show it at 80% power, were the diff what it is
    test: str = ""

    @property
    def shown(self) -> bool:
        """True when the data show the cheaper arm is at most `margin` worse (on MIN_PAIRS or more)."""
        return self.lo is not None and self.n >= MIN_PAIRS and self.lo > -self.margin

    def as_dict(self) -> dict:
        return {**asdict(self), "shown": self.shown}


def noninferior(
    cheap: Sequence[float | None],
    costly: Sequence[float | None],
    margin: float,
    score_type: str | None = None,
    candidates: int = 1,
    alpha: float = ALPHA,
    name_cheap: str = "cheap",
    name_costly: str = "costly",
) -> NonInferiority:
    """A one-sided non-inferiority test of the paired difference cheap - costly against -margin,
    at alpha' = alpha / candidates. d = gains - losses, where gains = max(d, 0) and losses =
    max(-d, 0) are [0, 1] scores (for 0/1 scores: the two kinds of discordant pair); the lower
    Clopper-Pearson bound of mean(gains) minus the upper bound of mean(losses), each at alpha'/2,
    holds with probability >= 1 - alpha' whatever the pairs' correlation. Measured, not assumed
    (`scripts/bench_verdicts.py`): Newcombe's interval let 10% through at n = 10, Student's t 6%
    on graded scores, and t gave equal differences a zero-width bound."""
    if len(cheap) != len(costly):
        raise ValueError(f"paired scores differ in length: {len(cheap)} vs {len(costly)}")
    keep = [(x, y) for x, y in zip(cheap, costly) if x is not None and y is not None]
    xa, xb = np.array([k[0] for k in keep], dtype=float), np.array([k[1] for k in keep], dtype=float)
    score_type = _check_score_type(score_type, xa, xb)
    a = alpha / max(1, candidates)
    base = dict(
        cheap=name_cheap,
        costly=name_costly,
        margin=margin,
        n=len(keep),
        alpha=alpha,
        candidates=candidates,
        test="Clopper-Pearson bounds on the gains and the losses, one-sided",
    )
    if len(keep) < 2:
        return NonInferiority(diff=float((xa - xb).mean()) if keep else None, lo=None, **base)
    d = xa - xb
    gain, loss = float(np.maximum(d, 0).mean()), float(np.maximum(-d, 0).mean())
    return NonInferiority(
        diff=float(d.mean()),
        lo=_noninferior_bound(gain, loss, len(d), a),
        needed=_needed_noninferior(gain, loss, margin, a),
        **base,
    )


def smallest_n(tells, start: int, cap: int = 100_000) -> int | None:
    """The smallest n >= start for which `tells(n)` holds, for a `tells` that stays true once true
    (a bound that tightens as n grows): doubling, then bisection; None above `cap`."""
    hi = start
    while not tells(hi):
        hi *= 2
        if hi > cap:
            return None
    lo = max(start - 1, hi // 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if tells(mid) else (mid, hi)
    return hi


def _noninferior_bound(gain: float, loss: float, n: int, alpha: float) -> float:
    return proportion_interval(gain, n, 1 - alpha)[0] - proportion_interval(loss, n, 1 - alpha)[1]


def _needed_noninferior(gain: float, loss: float, margin: float, alpha: float) -> int | None:
    """Paired examples for the bound to clear -margin, were the mean gains and losses what they
    are now (None when the cheaper arm looks worse by the margin or more, or over 100,000)."""
    if gain - loss <= -margin:
        return None
    return smallest_n(lambda n: _noninferior_bound(gain, loss, n, alpha) > -margin, MIN_PAIRS)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count)."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p))
        out[i] = running
    return out


def compare_all(
    per_arm: Mapping[str, Mapping[str, float | None]], score_type: str | None = None, **options
) -> list[Comparison]:
    """Every pair of arms (in the mapping's order, b later than a) over the examples both
    scored ({arm: {example id: score}}), with Holm's correction across all of them."""
    arms = list(per_arm)
    if score_type is None:
        score_type = score_type_of(*(list(v.values()) for v in per_arm.values()))
    out = []
    for i, a in enumerate(arms):
        for b in arms[i + 1 :]:
            common = sorted(set(per_arm[a]) & set(per_arm[b]))
            out.append(
                compare(
                    [per_arm[a][e] for e in common],
                    [per_arm[b][e] for e in common],
                    score_type,
                    name_a=a,
                    name_b=b,
                    **options,
                )
            )
    for c, p in zip(out, holm([c.p_value for c in out])):
        c.p_adjusted = p
    return out


# ---- plain summaries --------------------------------------------------------------------------


def percentile(values: Sequence[float | None], q: float) -> float | None:
    x = _clean(values)
    return float(np.percentile(x, q)) if len(x) else None


def mean(values: Sequence[float | None]) -> float | None:
    x = _clean(values)
    return float(x.mean()) if len(x) else None
