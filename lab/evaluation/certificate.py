"""A judge's certificate: how well its verdicts agree with your blind ratings of the same pairs,
and the gate every face goes through before it uses a judge's verdicts.

    cert = certificate(lab, pairs, judge)        # accuracy, Cohen's kappa with intervals, flips
    cert.trusted, cert.reasons                   # clears THRESHOLDS, or why not
    ev = preference_evidence(lab, task, pairs)   # the judge's verdict if trusted, else yours

Agreement is over three outcomes per pair: arm_a preferred, arm_b preferred, no preference (a tie or
"both bad" from you; a tie, a flip between the two orders, or an unreadable verdict from the judge).
Kappa corrects accuracy for the agreement two raters would reach by chance with their own habits:
a judge that says "tie" to everything agrees often on a tie-heavy set and has kappa 0.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as sps

from . import stats
from .judge import judge_name, judge_preference, verdicts
from .pairwise import RATER, Pairs, preference, ratings

# The bar a judge clears before its verdicts count anywhere (README "Judging tone and style").
MIN_PAIRS = 20  # pairs you rated that the judge also judged in both orders
KAPPA_LOWER = 0.4  # the lower end of kappa's 95% interval ("moderate" agreement or better, surely)
MAX_FLIP_RATE = 0.25  # pairs whose verdict turns with the order: above this the judge reads position
MAX_UNPARSEABLE = 0.0  # constrained decoding leaves nothing unreadable; any is a broken judge
N_BOOT = 2000
OUTCOMES = ("a", "b", "none")


def outcome(preferred: str | None, arm_a: str, arm_b: str) -> str:
    return "a" if preferred == arm_a else "b" if preferred == arm_b else "none"


def _kappas(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cohen's kappa along the last axis of two raters' category codes (OUTCOMES' indices), NaN where
    chance agreement is total (both gave one and the same category throughout). A few lines:
    scikit-learn is not a dependency, and the bootstrap needs it vectorized over resamples."""
    po = np.mean(x == y, axis=-1)
    pe = sum(np.mean(x == k, axis=-1) * np.mean(y == k, axis=-1) for k in range(len(OUTCOMES)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pe < 1.0, (po - pe) / (1.0 - pe), np.nan)


def cohen_kappa(x: np.ndarray, y: np.ndarray) -> float | None:
    """Cohen's kappa of one pair of raters; None where it is undefined."""
    value = float(_kappas(x, y))
    return None if np.isnan(value) else value


def kappa_interval(x: np.ndarray, y: np.ndarray, level: float = 0.95, seed: int = 0) -> tuple:
    """A percentile bootstrap interval of kappa over resampled pairs ((None, None) below 2 pairs).
    Percentile, not BCa: kappa is a ratio of counts whose jackknife BCa needs is often undefined.
    `scripts/bench_certificate.py` measures how often it certifies a judge that should fail."""
    if len(x) < 2:
        return None, None

    def statistic(i, axis=-1):
        i = np.asarray(i, dtype=int)  # a resample with one category throughout agrees by chance: 0
        return np.nan_to_num(_kappas(x[i], y[i]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap(
            (np.arange(len(x)),),
            statistic,
            vectorized=True,
            n_resamples=N_BOOT,
            confidence_level=level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class Certificate:
    judge: str
    n: int  # pairs both you and the judge (in both orders) rated
    judged: int  # pairs the judge judged, rated by you or not
    accuracy: float | None
    accuracy_lo: float | None
    accuracy_hi: float | None
    kappa: float | None
    kappa_lo: float | None
    kappa_hi: float | None
    flip_rate: float | None  # of the judged pairs
    unparseable_rate: float | None
    reasons: list[str] = field(default_factory=list)  # why not trusted; [] when trusted

    @property
    def trusted(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict:
        return {**asdict(self), "trusted": self.trusted}

    def text(self) -> str:
        """One paragraph: the figures, then trusted or why not."""
        name = judge_name(self.judge)
        if not self.judged:
            return f"The judge {name} has judged no pair yet."

        def rng(v, lo, hi):
            if v is None:
                return "n/a"
            return f"{v:.2f}" + ("" if lo is None else f" [{lo:.2f}, {hi:.2f}]")

        figures = (
            f"agreement with your ratings {rng(self.accuracy, self.accuracy_lo, self.accuracy_hi)}, "
            f"Cohen's kappa {rng(self.kappa, self.kappa_lo, self.kappa_hi)} on {self.n} pairs you rated; "
            f"order flips {self.flip_rate:.0%} and unreadable verdicts {self.unparseable_rate:.0%} "
            f"of {self.judged} pairs judged in both orders"
        )
        if self.trusted:
            return f"The judge {name} is trusted for this task: {figures}."
        return f"The judge {name} is not trusted for this task ({'; '.join(self.reasons)}): {figures}."


def certify(
    judge: str, you: list[str], judge_says: list[str], flips: int, unparseable: int, judged: int
) -> Certificate:
    """The certificate from paired outcomes ("a", "b" or "none", one per pair both rated) and the
    judge's flip and unreadable counts over all `judged` pairs. Pure: the tests feed it constructed raters."""
    x = np.array([OUTCOMES.index(o) for o in you], dtype=int)
    y = np.array([OUTCOMES.index(o) for o in judge_says], dtype=int)
    n = len(x)
    acc = float(np.mean(x == y)) if n else None
    acc_lo, acc_hi = stats.wilson(int(np.sum(x == y)), n) if n else (None, None)
    kappa = cohen_kappa(x, y) if n else None
    k_lo, k_hi = kappa_interval(x, y) if n else (None, None)
    flip_rate = flips / judged if judged else None
    unparse_rate = unparseable / judged if judged else None
    reasons = []
    if n < MIN_PAIRS:
        reasons.append(f"{n} pairs rated by you and judged, {MIN_PAIRS} needed")
    elif k_lo is None or k_lo < KAPPA_LOWER:
        shown = "n/a" if k_lo is None else f"{k_lo:.2f}"
        reasons.append(f"kappa's lower bound {shown} is below {KAPPA_LOWER}")
    if flip_rate is not None and flip_rate > MAX_FLIP_RATE:
        reasons.append(f"its verdict turns with the order on {flip_rate:.0%} of pairs (at most {MAX_FLIP_RATE:.0%})")
    if unparse_rate is not None and unparse_rate > MAX_UNPARSEABLE:
        reasons.append(f"{unparse_rate:.0%} of its verdicts could not be read")
    return Certificate(judge, n, judged, acc, acc_lo, acc_hi, kappa, k_lo, k_hi, flip_rate, unparse_rate, reasons)


def certificate(lab, pairs: Pairs, judge: str, rater: str = RATER) -> Certificate:
    """The judge's certificate on these pairs against `rater`'s ratings of them."""
    judged = verdicts(lab, pairs, judge)
    rated = ratings(lab, pairs, rater)
    both = [e for e in judged if e in rated]
    you = [outcome(rated[e]["preferred"], pairs.arm_a, pairs.arm_b) for e in both]
    says = [outcome(judged[e].preferred, pairs.arm_a, pairs.arm_b) for e in both]
    flips = sum(j.flip for j in judged.values())
    unparseable = sum(j.unparseable for j in judged.values())
    return certify(judge, you, says, flips, unparseable, len(judged))


@dataclass
class Evidence:
    """What a face may say about preference on these pairs: from a trusted judge, else from you."""

    pairs: Pairs
    source: str | None  # "judge", "you", or None (nothing rated or judged)
    preference: object | None  # pairwise.Preference
    certificate: Certificate | None
    note: str  # why this source (the judge's certificate when it was passed over)

    @property
    def sentence(self) -> str:
        return self.preference.sentence if self.preference is not None else self.note

    def lines(self) -> list[str]:
        return [s for s in (self.sentence, self.note if self.preference is not None else "") if s]

    def as_dict(self) -> dict:
        return {
            "arms": [self.pairs.arm_a, self.pairs.arm_b],
            "source": self.source,
            "preference": None if self.preference is None else self.preference.as_dict(),
            "certificate": None if self.certificate is None else self.certificate.as_dict(),
            "note": self.note,
        }


def preference_evidence(lab, pairs: Pairs, judge: str | None = None, rater: str = RATER) -> Evidence:
    """The gate: a judge's verdicts only when its certificate clears the thresholds; otherwise your
    own ratings, with the judge's certificate said. `judge` None: the newest judge of these pairs."""
    judge = judge or next(iter(lab.store.judges_of(pairs.eval_run_id, pairs.arm_a, pairs.arm_b)), None)
    cert = certificate(lab, pairs, judge, rater) if judge else None
    if cert is not None and cert.trusted:
        return Evidence(pairs, "judge", judge_preference(lab, pairs, judge), cert, cert.text())
    yours = preference(lab, pairs, rater)
    note = cert.text() + " Using your ratings instead." if cert is not None and cert.judged else ""
    if yours.n:
        return Evidence(pairs, "you", yours, cert, note)
    empty = f"No pair of {pairs.arm_a} and {pairs.arm_b} rated yet"
    return Evidence(
        pairs, None, None, cert, (note + " " if note else "") + empty + ": rate some pairs blind to get a verdict."
    )


def evidence_for_run(lab, task, run_id: int) -> list[Evidence]:
    """The gated preference evidence of every arm pair of one run that someone rated or a judge judged."""
    from .pairwise import pairs_for

    return [preference_evidence(lab, pairs_for(lab, task, [a, b], run_id)) for a, b in lab.store.pair_sets(run_id)]
