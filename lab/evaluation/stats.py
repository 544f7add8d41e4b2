"""Honest statistics for small evaluation sets: bootstrap intervals and paired comparisons.

With 60 held-out examples a 5-point difference can be noise. The paired bootstrap resamples
*examples* (both arms' scores on the same example move together), which is the right test
when two arms answered the same questions. Everything is seeded, so a report is reproducible.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

N_BOOT = 5000


@dataclass
class Estimate:
    mean: float | None
    lo: float | None
    hi: float | None
    n: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.mean is None:
            return "n/a"
        return f"{self.mean:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


@dataclass
class Paired:
    """b minus a over the examples both arms scored."""
    a: str
    b: str
    diff: float | None
    lo: float | None
    hi: float | None
    p_value: float | None
    n: int

    @property
    def significant(self) -> bool:
        """The 95% interval of the difference excludes zero."""
        return self.lo is not None and (self.lo > 0 or self.hi < 0)

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}

    def __str__(self) -> str:
        if self.diff is None:
            return f"{self.b} vs {self.a}: n/a"
        verdict = "significant" if self.significant else "not significant"
        if self.lo is None:
            return f"{self.b} vs {self.a}: {self.diff:+.3f} (n={self.n}: too few for an interval)"
        return (f"{self.b} vs {self.a}: {self.diff:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}], "
                f"{format_p(self.p_value)} ({verdict}, n={self.n})")


def format_p(p: float | None) -> str:
    if p is None:
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None], dtype=float)


def mean_ci(values: Sequence[float | None], n_boot: int = N_BOOT, seed: int = 0,
            level: float = 0.95) -> Estimate:
    """The mean and its percentile-bootstrap interval; None values are skipped."""
    x = _clean(values)
    if len(x) == 0:
        return Estimate(None, None, None, 0)
    if len(x) == 1 or np.all(x == x[0]):
        return Estimate(float(x.mean()), float(x.mean()), float(x.mean()), len(x))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(x.mean()), float(lo), float(hi), len(x))


def paired_bootstrap(a: Sequence[float | None], b: Sequence[float | None], name_a: str = "a",
                     name_b: str = "b", n_boot: int = N_BOOT, seed: int = 0,
                     level: float = 0.95) -> Paired:
    """Compare arm b with arm a on the same examples (a[i] and b[i] belong to example i).

    Returns mean(b - a), its bootstrap interval, and a two-sided p-value: how often the
    resampled difference falls on the other side of zero (doubled), floored at 1/n_boot."""
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} vs {len(b)}")
    d = np.array([y - x for x, y in zip(a, b) if x is not None and y is not None], dtype=float)
    if len(d) == 0:
        return Paired(name_a, name_b, None, None, None, None, 0)
    diff = float(d.mean())
    if len(d) < 2:  # one example is no evidence either way
        return Paired(name_a, name_b, diff, None, None, None, len(d))
    if np.all(d == d[0]):  # no spread: the interval is the point; zero means no evidence
        return Paired(name_a, name_b, diff, diff, diff, 1.0 if diff == 0 else 0.0, len(d))
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    p = 2 * min((boots <= 0).mean(), (boots >= 0).mean())
    p = float(min(1.0, max(p, 1.0 / n_boot)))
    return Paired(name_a, name_b, diff, float(lo), float(hi), p, len(d))


def percentile(values: Sequence[float | None], q: float) -> float | None:
    x = _clean(values)
    return float(np.percentile(x, q)) if len(x) else None


def mean(values: Sequence[float | None]) -> float | None:
    x = _clean(values)
    return float(x.mean()) if len(x) else None
