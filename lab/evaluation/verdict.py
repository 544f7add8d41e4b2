"""The lab's verdicts, decided in one place: does a rung meet the target, did a step up help, is a
cheaper rung as good as a costlier one. Every face (scoreboard, advisor, climb, curve, report, app)
reads its words from here, and `scripts/bench_verdicts.py` measures how often each one is wrong.

- meets: the lower end of the rung's 95% interval (Clopper-Pearson: `stats.proportion_interval`)
  at or above the target, on at least `stats.MIN_PAIRS` examples. Every configuration measured on
  the same examples is a chance to "meet" by luck, so the 5% is shared (`family`): each rung
  measured (prompt, rag, tune) gets an equal part, split evenly among its configurations (the
  prompt sweep's N, tune and tune+rag), and a configuration is judged by the interval at
  1 - 0.05 / candidates (Bonferroni). Picking the best of the sweep, or the cheapest of several
  rungs that meets, then does not inflate the verdict (the winner's curse).
  "maybe": the mean meets the target, the bound does not; `more` says about how many more
  examples would tell, were the mean to hold.
- helped: the paired test says the gain is significant (Holm-corrected across a scoreboard:
  `stats.compare_all`).
- as good as: a one-sided non-inferiority test (`stats.noninferior`) shows the cheaper rung is worse
  by less than the margin (the task's `margin`, default MARGIN). "Not significantly better" is
  never read as "as good".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from . import stats

MARGIN = 0.05  # the default non-inferiority margin: "as good as" means at most 5 points worse
LEVEL = 0.95
MEETS, MAYBE, MISSES, UNMEASURED = "meets", "maybe", "misses", "unmeasured"
RULE = (
    "a rung meets the target when the lower end of its 95% interval (Clopper-Pearson) is at or above "
    f"the target, on at least {stats.MIN_PAIRS} examples; the 5% is shared among everything measured on "
    "the same examples (each rung an equal part, split among its configurations), so a configuration "
    "among K is held to the interval at 1 - 0.05/K"
)
RUNG_OF = {"zero-shot": "prompt", "few-shot": "prompt", "rag": "rag", "tune": "tune", "tune+rag": "tune"}


@dataclass
class Meets:
    """Does one rung meet the target? state: meets, maybe, misses or unmeasured."""

    state: str
    mean: float | None
    bound: float | None  # the lower end the verdict used (selection-adjusted when candidates > 1)
    n: int
    target: float
    candidates: int = 1
    more: int | None = None  # maybe: about this many more examples would tell, were the mean to hold

    @property
    def ok(self) -> bool:
        return self.state == MEETS

    def as_dict(self) -> dict:
        return asdict(self)

    def cell(self) -> str:
        """The scoreboard's 'meets' column: yes, maybe, no."""
        return {MEETS: "yes", MAYBE: "maybe", MISSES: "no"}.get(self.state, "n/a")

    def text(self, name: str) -> str:
        """One sentence: 'few-shot meets the target 0.75: ...'."""
        best = (
            f" (judged as one of {self.candidates} chances to meet it, so its bound is adjusted)"
            if self.candidates > 1
            else ""
        )
        t = f"{self.target:.2f}"
        if self.state == MEETS:
            return (
                f"{name} meets the target {t}: the lower end of its interval, {self.bound:.3f}, is at or "
                f"above it{best}."
            )
        if self.state == MAYBE:
            more = (
                f"; about {self.more} more held-out examples would tell, were the mean to hold"
                if self.more
                else "; more held-out examples would tell"
            )
            return (
                f"{name} may meet the target {t}: its mean {self.mean:.3f} does, but its interval reaches "
                f"down to {self.bound:.3f} on {self.n} examples{best}{more}."
            )
        if self.state == MISSES:
            return f"{name} misses the target {t} (mean {self.mean:.3f} on {self.n} examples)."
        return f"{name} has no scored example yet."


def family(rungs: Iterable[str]) -> dict[str, int]:
    """{rung: candidates} for each configuration of that rung, from one rung name (RUNG_OF's values)
    per configuration measured: R rungs share the 5% equally, a rung's configurations its part."""
    sizes = Counter(rungs)
    return {r: len(sizes) * k for r, k in sizes.items()}


def bound(mean: float, n: int, candidates: int = 1) -> float:
    """The lower end of the interval a verdict uses: 95%, Bonferroni-adjusted for the best of N."""
    return stats.proportion_interval(mean, n, 1 - (1 - LEVEL) / max(1, candidates))[0]


def meets(mean: float | None, n: int, target: float, candidates: int = 1) -> Meets:
    """The one decision of "meets the target" (see the module's doc)."""
    if mean is None or n == 0:
        return Meets(UNMEASURED, None, None, 0, target, candidates)
    lo = bound(mean, n, candidates)
    if mean < target:
        return Meets(MISSES, mean, lo, n, target, candidates)
    if lo >= target and n >= stats.MIN_PAIRS:
        return Meets(MEETS, mean, lo, n, target, candidates)
    return Meets(MAYBE, mean, lo, n, target, candidates, more=_more_to_tell(mean, n, target, candidates))


def meets_arm(estimate: stats.Estimate, target: float, candidates: int = 1) -> Meets:
    return meets(estimate.mean, estimate.n, target, candidates)


def _more_to_tell(mean: float, n: int, target: float, candidates: int) -> int | None:
    """How many more examples until the bound reaches the target at this mean (None: never, the
    mean sits on the target, or over 100,000)."""
    if mean <= target:
        return None
    total = stats.smallest_n(lambda k: bound(mean, k, candidates) >= target, max(n, stats.MIN_PAIRS))
    return None if total is None else max(total - n, 1)


# ---- did a step help? -------------------------------------------------------------------------


def helped(c: stats.Comparison) -> bool:
    """The step up helped: its gain is significant (Holm-corrected where a scoreboard's)."""
    return c.diff is not None and c.significant and c.diff > 0


def interval_text(c: stats.Comparison) -> str:
    """The difference, its interval, the raw and the Holm-corrected p, and n."""
    ci = " (no interval)" if c.lo is None else f" [{c.lo:+.3f}, {c.hi:+.3f}]"
    holm = f", Holm {stats.format_p(c.p_adjusted)}" if c.p_adjusted != c.p_value else ""
    return f"{c.diff:+.3f}{ci}, {stats.format_p(c.p_value)}{holm}, n={c.n}"


def helped_text(c: stats.Comparison, what: str, pair: str, against: str = "") -> str:
    """One paired comparison in words: helped, hurt, cannot be told yet, or not shown; `against`
    names what it was measured against when that is not the pair's lower arm."""
    interval, cap = interval_text(c), what[0].upper() + what[1:]
    over = f" over {against}" if against else ""
    if helped(c):
        return f"{cap} helped{over}: {pair} {interval} (significant)."
    if c.significant:
        return f"{cap} hurt{f' against {against}' if against else ''}: {pair} {interval} (significant)."
    if c.too_few:
        return (
            f"Whether {what} {f'beats {against}' if against else 'made a difference'} cannot be told yet "
            f"({pair} {interval}): {c.reading()}"
        )
    return (
        f"The evidence does not show that {what} helped{over}: {pair} {interval} (not significant; "
        "that is not the same as no effect)."
    )


# ---- is the cheaper rung as good? -------------------------------------------------------------


def as_good_as(
    cheap: dict,
    costly: dict,
    margin: float = MARGIN,
    score_type: str | None = None,
    candidates: int = 1,
    name_cheap: str = "cheap",
    name_costly: str = "costly",
) -> stats.NonInferiority:
    """The non-inferiority test of `cheap` against `costly` ({example id: score}) on the examples
    both scored. `candidates` > 1 when the cheaper one is the best of several picked on these examples."""
    common = sorted(set(cheap) & set(costly))
    return stats.noninferior(
        [cheap[i] for i in common],
        [costly[i] for i in common],
        margin,
        score_type,
        candidates=candidates,
        name_cheap=name_cheap,
        name_costly=name_costly,
    )


def as_good_text(ni: stats.NonInferiority) -> str:
    """The non-inferiority result in words: shown, or cannot tell (and how many examples would)."""
    within = f"{ni.margin * 100:.3g} points"
    diff = "n/a" if ni.diff is None else f"{ni.diff:+.3f}"
    low = "n/a" if ni.lo is None else f"{ni.lo:+.3f}"
    if ni.shown:
        return (
            f"{ni.cheap} is as good as {ni.costly} within {within}: {ni.cheap} - {ni.costly} = {diff}, "
            f"one-sided 95% lower bound {low} > -{ni.margin:.2f} (n={ni.n})."
        )
    more = (
        f"; about {ni.needed} paired examples would tell, were the difference to hold"
        if ni.needed and ni.needed > ni.n
        else ""
    )
    if ni.needed is None and ni.diff is not None:
        more = f"; {ni.cheap} looks worse by the margin or more"
    return (
        f"It cannot be told yet whether {ni.cheap} is as good as {ni.costly} within {within} "
        f"({ni.cheap} - {ni.costly} = {diff}, lower bound {low}, n={ni.n}){more}."
    )


def distill_sentence(ni: stats.NonInferiority, ratio: float | None, break_even: str | None) -> str:
    """`lab distill`'s one sentence: is the student as good as its teacher (the non-inferiority test
    above, on the same held-out examples), how much cheaper per request, and when it pays back."""
    within = f"{ni.margin * 100:.3g} points"
    cheaper = ""
    if ratio is not None:
        cheaper = (
            f"; it is {ratio:.1f}x cheaper per request"
            if ratio >= 1
            else f"; it costs {1 / ratio:.1f}x more per request"
        )
    pays = f", paying back its labelling and training after {break_even}" if break_even and ratio and ratio > 1 else ""
    if ni.shown:
        head = f"The distilled student is as good as the teacher within {within}"
    elif ni.needed is None and ni.diff is not None:
        head = f"The distilled student looks worse than the teacher by the margin ({within}) or more"
    elif ni.needed and ni.needed > ni.n:
        head = (
            f"Too few examples to tell whether the distilled student is as good as the teacher within {within} "
            f"(n={ni.n}; about {ni.needed} would tell, were the difference to hold)"
        )
    else:
        head = (
            f"It cannot be told yet whether the distilled student is as good as the teacher within {within} (n={ni.n})"
        )
    return head + cheaper + pays + "."


# ---- what an adapter costs elsewhere (`side_effects`) --------------------------------------------


def _signed(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}".replace("-", "\u2212")  # a real minus sign, as in print


def lost(c: stats.Comparison) -> bool:
    """A significant loss with the adapter on: the paired test (Holm-corrected across the
    measurement's tests) says the score went down."""
    return c.diff is not None and c.significant and c.diff < 0


def perplexity_rose(c: stats.Comparison) -> bool:
    """The adapter raised the perplexity on general text significantly (c: tuned - base mean NLL)."""
    return c.diff is not None and c.significant and c.diff > 0


def _change_words(c: stats.Comparison, worse: bool, better: str, worse_words: str, unit: str) -> str:
    """How a side effect's paired test reads: too few to tell, nothing changed, significant (which
    way), or not significant."""
    if c.too_few:
        return f"too few {unit}s to tell"
    if c.wins == 0 and c.losses == 0:
        return f"the same {'score ' if unit == 'example' else ''}on every {unit}"
    if c.significant:
        return worse_words if worse else better
    return "not significant"


def side_effect_text(c: stats.Comparison, task: str, metric: str, base: float | None, tuned: float | None) -> str:
    """One other task's held-out score without and with the adapter, paired: 'tickets:
    field_accuracy 0.62 → 0.55, −0.07 [−0.15, +0.01], not significant (n=20)'."""
    if c.diff is None or base is None or tuned is None:
        return f"{task}: no example was scored both without and with the adapter."
    ci = "" if c.lo is None else f" [{_signed(c.lo)}, {_signed(c.hi)}]"
    words = _change_words(c, c.diff < 0, "a significant gain", "a significant loss", "example")
    return f"{task}: {metric} {base:.2f} \u2192 {tuned:.2f}, {_signed(c.diff)}{ci}, {words} (n={c.n})"


def _times(*ratios: float) -> list[str]:
    """Ratios to 2 decimals, or all to 3 where 2 would round a change to 1.00 (0.996 is not 1.00)."""
    digits = 3 if any(x != 1.0 and f"{x:.2f}" == "1.00" for x in ratios) else 2
    return [f"{x:.{digits}f}" for x in ratios]


def perplexity_text(c: stats.Comparison, source: str) -> str:
    """The perplexity on general text with the adapter as a multiple of the base's, paired over
    the same passages: 'Perplexity on Python standard-library docstrings: 1.08x the base's
    [1.03, 1.13] (24 passages), significantly higher'."""
    ratio, lo, hi = stats.ratio_of(c)
    if ratio is None:
        return f"Perplexity on {source}: no passage was scored."
    (r, *ends) = _times(ratio, *(() if lo is None else (lo, hi)))
    ci = f" [{ends[0]}, {ends[1]}]" if ends else ""
    words = _change_words(c, c.diff > 0, "significantly lower", "significantly higher", "passage")
    return f"Perplexity on {source}: {r}x the base's{ci} ({c.n} passages), {words}"


# ---- blind pairwise preference ----------------------------------------------------------------


def preferred(p) -> bool:
    """arm_b was preferred over arm_a: the sign test on the pairs with a preference is significant
    and arm_b won more of them (`p`: a `pairwise.Preference`)."""
    return helped(p.comparison)


def preference_text(p) -> str:
    """'you preferred tune in 15 of 20 pairs (few-shot in 3; no preference in 2): significant, ...'.
    `p` is a `pairwise.Preference`; the test is the exact sign test on the pairs with a preference."""
    who = "you" if p.who == "you" else f"the judge {p.who}"
    if p.n == 0:
        return f"No pair of {p.arm_a} and {p.arm_b} rated yet by {who}."
    none = p.ties + p.both_bad
    rest = f"{p.arm_a} in {p.wins_a}" + (f"; no preference in {none}" if none else "")
    lead, lead_wins = (p.arm_b, p.wins_b) if p.wins_b >= p.wins_a else (p.arm_a, p.wins_a)
    if lead == p.arm_a:
        rest = f"{p.arm_b} in {p.wins_b}" + (f"; no preference in {none}" if none else "")
    c = p.comparison
    if c.too_few:
        call = f"too few to tell (at least {stats.MIN_PAIRS} rated pairs are needed)"
    elif c.significant:
        call = f"significant (sign test {stats.format_p(c.p_value)}): {lead} is preferred"
    else:
        call = f"not significant (sign test {stats.format_p(c.p_value)}): no clear preference yet"
    return f"{who.capitalize()} preferred {lead} in {lead_wins} of {p.n} pairs ({rest}): {call}."


def win_rate_meets(p, target: float, arm: str | None = None) -> Meets:
    """Does `arm` (default arm_b) meet a target win rate over the other arm, a tie counting half?
    The one "meets" decision, on the win rate's Clopper-Pearson bound like any other score."""
    return meets(p.win_rate_of(arm or p.arm_b), p.n, target)
