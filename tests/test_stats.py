"""Statistics: `lab.evaluation.stats.compare` on the cases that fooled the old bootstrap (n = 1, 2, 5,
all equal, all favouring b, ties), against scipy's own results and hand formulas, on known
distributions (false-positive rate under the null, interval coverage), with Holm's correction."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from lab.evaluation import stats

Z = sps.norm.ppf(0.975)


# ---- small n: never "significant" -----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
def test_all_favour_b_on_few_examples_is_too_few_to_tell(n):
    c = stats.compare([0.0] * n, [1.0] * n, name_a="zero-shot", name_b="tune")
    assert c.score_type == "binary" and c.diff == 1.0 and (c.wins, c.losses) == (n, 0)
    assert c.p_value == pytest.approx(min(1.0, 2 * 0.5**n))  # the exact sign test: 0.5 for n=2
    assert not c.significant and c.verdict == stats.TOO_FEW
    assert c.needed == 6 and c.reading().startswith(f"{n} example")
    assert "too few to tell tune and zero-shot apart: about 6 would be needed" in c.reading()
    assert "significant" not in str(c).replace("too few examples to tell", "")


def test_two_examples_both_favouring_b_give_p_one_half_not_p_below_0001():
    c = stats.compare([0, 0], [1, 1])
    assert c.p_value == 0.5 and "p<0.001" not in str(c) and not c.significant
    assert c.lo is not None and 0 < c.lo < c.hi == 1.0  # a real interval, not the point [1, 1]


def test_six_discordant_pairs_are_the_first_that_can_be_significant():
    c = stats.compare([0.0] * 6, [1.0] * 6)
    assert c.p_value == pytest.approx(2 / 64) and c.significant and c.verdict == "significant"
    assert "would rarely happen by chance" in c.reading()


@pytest.mark.parametrize("n", [1, 2, 5])
def test_graded_small_n_is_too_few_to_tell(n):
    a = np.linspace(0.1, 0.5, n)
    c = stats.compare(a, a + 0.3)
    assert c.score_type == "graded" and c.diff == pytest.approx(0.3)
    assert c.p_value == pytest.approx(1.0 if n == 1 else 2 / 2**n)  # exact sign flips
    assert not c.significant and c.verdict == stats.TOO_FEW
    if n == 1:
        assert c.lo is None and c.hi is None and "1 example is too few" in c.reading()


def test_no_pairs_and_mismatched_lengths():
    c = stats.compare([None, 1.0], [0.0, None])
    assert c.n == 0 and c.diff is None and not c.significant and "no scored example" in c.reading()
    with pytest.raises(ValueError, match="differ in length"):
        stats.compare([1, 0], [1])


# ---- all equal, ties --------------------------------------------------------------------------


@pytest.mark.parametrize("scores", [[1.0, 0.0] * 10, [0.3, 0.7, 0.5] * 7])
def test_identical_arms_are_not_significant(scores):
    c = stats.compare(scores, list(scores))
    assert c.diff == 0 and c.p_value == 1.0 and not c.significant and c.needed is None
    assert c.lo <= 0 <= c.hi
    assert c.reading() == f"b and a scored the same on all {len(scores)} examples."


def test_ties_do_not_count_in_mcnemar_only_discordant_pairs_do():
    a = [1.0] * 20 + [0.0] * 10 + [0.0] * 8
    b = [1.0] * 20 + [0.0] * 10 + [1.0] * 8
    c = stats.compare(a, b)
    assert c.ties == 30 and (c.wins, c.losses) == (8, 0)
    assert c.p_value == pytest.approx(sps.binomtest(8, 8).pvalue) == pytest.approx(2 / 256)
    a2 = [1.0] * 60 + [0.0] * 10 + [0.0] * 8  # more ties: the same test result
    b2 = [1.0] * 60 + [0.0] * 10 + [1.0] * 8
    assert stats.compare(a2, b2).p_value == c.p_value


def test_equal_quality_different_mistakes_is_not_significant():
    a = [1.0] * 10 + [0.0] * 10 + [1.0] * 20
    b = [0.0] * 10 + [1.0] * 10 + [1.0] * 20
    c = stats.compare(a, b)
    assert c.diff == 0 and c.p_value == 1.0 and not c.significant
    assert (
        c.reading() == "b beat a on 10 of 40 examples and lost on 10: no difference overall."  # not "chance"
    )


# ---- against scipy and the formulas -----------------------------------------------------------


def test_binary_p_is_scipys_exact_binomial_test_on_the_discordant_pairs():
    rng = np.random.default_rng(4)
    a = (rng.random(50) < 0.4).astype(float)
    b = np.where(rng.random(50) < 0.3, 1 - a, a)
    c = stats.compare(a, b)
    wins, losses = int(np.sum((a == 0) & (b == 1))), int(np.sum((a == 1) & (b == 0)))
    assert (c.wins, c.losses) == (wins, losses)
    assert c.p_value == pytest.approx(sps.binomtest(wins, wins + losses, 0.5).pvalue)
    assert c.diff == pytest.approx(b.mean() - a.mean())


def test_graded_p_is_the_exact_sign_flip_distribution():
    rng = np.random.default_rng(5)
    a = rng.random(10)
    b = a + rng.normal(0.1, 0.15, 10)
    d = b - a
    flips = np.array(list(itertools.product([-1, 1], repeat=10)))
    null = np.abs((flips * d).mean(axis=1))
    exact = np.mean(null >= abs(d.mean()) - 1e-12)  # all 1,024 sign flips enumerated by hand
    c = stats.compare(a, b)
    assert c.p_value == pytest.approx(exact)
    scipy_p = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided").pvalue
    assert c.p_value == pytest.approx(scipy_p)


def test_graded_interval_is_scipys_paired_bca_bootstrap():
    rng = np.random.default_rng(6)
    a, b = rng.random(30), rng.random(30)
    c = stats.compare(a, b, seed=11)
    ref = sps.bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.mean(y - x, axis=axis),
        paired=True,
        method="BCa",
        n_resamples=stats.N_BOOT,
        rng=np.random.default_rng(11),
    ).confidence_interval
    assert (c.lo, c.hi) == pytest.approx((ref.low, ref.high))


def test_graded_mean_gets_the_clopper_pearson_interval_of_its_fractional_sum():
    a = np.random.default_rng(6).random(30)
    e = stats.mean_ci(a)
    s = a.sum()
    assert e.method.startswith("Clopper-Pearson")
    assert (e.lo, e.hi) == pytest.approx((sps.beta.ppf(0.025, s, 30 - s + 1), sps.beta.ppf(0.975, s + 1, 30 - s)))


def test_graded_scores_with_no_spread_still_get_an_interval_that_reflects_n():
    # issue 21: six perfect field-accuracy scores had a zero-width interval and "met" any target
    e = stats.mean_ci([1.0] * 6, "graded")
    assert e.hi == 1.0 and e.lo == pytest.approx(0.025 ** (1 / 6)) and e.lo < 0.55
    assert stats.mean_ci([1.0] * 60, "graded").lo > 0.9  # more examples, a tighter bound


@pytest.mark.parametrize("n", [8, 12, 20])
def test_the_lower_bound_keeps_its_promise_at_small_n(n):
    # issue 21: BCa's lower bound lay above the true mean 8.0% of the time at n = 8 (nominal 2.5%).
    # Exactly, over every outcome of n Bernoulli(p) scores: Clopper-Pearson never exceeds 2.5%.
    k = np.arange(n + 1)
    for p in (0.5, 0.7, 0.75, 0.9):
        lows = np.array([stats.mean_ci([1.0] * i + [0.0] * (n - i)).lo for i in k])
        assert sps.binom.pmf(k, n, p)[lows > p].sum() <= 0.025


def _wilson_by_hand(k, n):
    p, z2 = k / n, Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 36), (36, 36), (7, 20), (1, 1)])
def test_binary_rate_has_the_exact_clopper_pearson_interval(k, n):
    e = stats.mean_ci([1.0] * k + [0.0] * (n - k))
    assert e.method == "Clopper-Pearson" and e.mean == pytest.approx(k / n)
    ref = sps.binomtest(k, n).proportion_ci(method="exact")
    assert (e.lo, e.hi) == pytest.approx((ref.low, ref.high))
    if k == 0:
        assert e.lo == 0 and e.hi == pytest.approx(1 - 0.025 ** (1 / n))  # 0 of 36: [0, 0.097], not [0, 0]


def test_newcombe_interval_reduces_to_the_textbook_formula_when_pairs_are_uncorrelated():
    # one arm constant: phi = 0, so the paired interval is the square-root combination of the Wilson limits
    a = np.ones(20)
    b = np.array([1.0] * 14 + [0.0] * 6)
    lo, hi = stats.newcombe_paired(a, b)
    lb, ub = _wilson_by_hand(14, 20)
    la, ua = _wilson_by_hand(20, 20)
    assert lo == pytest.approx(-0.3 - math.hypot(0.7 - lb, ua - 1.0))
    assert hi == pytest.approx(-0.3 + math.hypot(ub - 0.7, 1.0 - la))


def test_power_estimate_matches_connors_formula():
    # 30 of 100 discordant, 20 for b and 10 for a: the McNemar sample size for pd=0.3, delta=0.1
    a = [0.0] * 20 + [1.0] * 10 + [0.0] * 70
    b = [1.0] * 20 + [0.0] * 10 + [0.0] * 70
    zb = sps.norm.ppf(0.8)
    want = math.ceil((Z * math.sqrt(0.3) + zb * math.sqrt(0.3 - 0.01)) ** 2 / 0.01)
    c = stats.compare(a, b)
    assert c.needed == want == 234
    assert "about 234 examples would be needed to tell a 10-point difference from chance" in c.reading()


# ---- known distributions ----------------------------------------------------------------------


def test_false_positive_rate_under_the_null_stays_below_alpha():
    rng = np.random.default_rng(7)
    binary_hits = graded_hits = 0
    for trial in range(200):
        a, b = (rng.random(40) < 0.6).astype(float), (rng.random(40) < 0.6).astype(float)
        binary_hits += stats.compare(a, b, seed=trial).significant
    for trial in range(100):
        a, b = rng.random(30), rng.random(30)
        graded_hits += stats.compare(a, b, seed=trial, n_perm=999, n_boot=200).significant
    assert binary_hits / 200 <= 0.06 and graded_hits / 100 <= 0.08


def test_real_differences_are_found_and_intervals_cover_the_truth():
    rng = np.random.default_rng(8)
    found = covered = rate_covered = 0
    for _ in range(100):
        a = (rng.random(80) < 0.5).astype(float)
        b = np.where(rng.random(80) < 0.75, a, 1.0)  # b fixes a quarter of a's misses: +0.125 on average
        c = stats.compare(a, b)
        found += c.significant and c.diff > 0
        covered += c.lo <= 0.125 <= c.hi
        e = stats.mean_ci(a)
        rate_covered += e.lo <= 0.5 <= e.hi
    assert found >= 80 and covered >= 90 and rate_covered >= 90


# ---- Holm across a scoreboard -----------------------------------------------------------------


def test_holm_known_values():
    assert stats.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]
    assert stats.holm([]) == []


def test_compare_all_corrects_and_significant_means_after_correction():
    ids = [f"e{i}" for i in range(20)]
    a = {e: 0.0 for e in ids}
    b = {e: (1.0 if i < 6 else 0.0) for i, e in enumerate(ids)}  # 6 wins over a: raw p = 0.031
    c = dict(a)  # c == a: 6 losses against b
    out = stats.compare_all({"a": a, "b": b, "c": c})
    assert [(x.a, x.b) for x in out] == [("a", "b"), ("a", "c"), ("b", "c")]
    ab = out[0]
    assert ab.p_value == pytest.approx(2 / 64) and stats.compare(list(a.values()), list(b.values())).significant
    assert ab.p_adjusted == pytest.approx(3 * 2 / 64) and not ab.significant and ab.verdict == "not significant"
    assert "Holm p=0.094" in str(ab)
    assert out[1].p_adjusted == 1.0


def test_compare_all_pairs_only_the_examples_both_arms_scored():
    out = stats.compare_all({"a": {"x": 1.0, "y": 0.0, "z": 1.0}, "b": {"y": 1.0, "z": 1.0, "w": 0.0}})
    assert out[0].n == 2 and out[0].diff == 0.5


# ---- score type, seeds, output ----------------------------------------------------------------


def test_score_type_comes_from_the_values_or_the_metric():
    assert stats.score_type_of([0, 1, None], [1.0]) == "binary"
    assert stats.score_type_of([0, 0.5]) == "graded"
    assert stats.score_type_of([0, 1], graded_metric=True) == "graded"
    assert stats.compare([0.0, 1.0] * 4, [1.0] * 8, score_type="graded").score_type == "graded"
    with pytest.raises(ValueError, match="every score to be 0 or 1"):
        stats.compare([0.5, 1.0], [1.0, 1.0], score_type="binary")
    with pytest.raises(ValueError, match="score_type must be one of"):
        stats.mean_ci([1.0], score_type="ordinal")


def test_seeded_and_serialisable():
    rng = np.random.default_rng(9)
    a, b = rng.random(25), rng.random(25)
    first, again = stats.compare(a, b, seed=3), stats.compare(a, b, seed=3)
    assert first.as_dict() == again.as_dict()
    d = json.loads(json.dumps(first.as_dict()))
    assert {"p_value", "p_adjusted", "verdict", "reading", "significant", "score_type", "needed"} <= set(d)


def test_summaries_skip_none_and_percentiles():
    assert stats.mean_ci([None, None]).mean is None
    assert stats.mean_ci([1.0, None, 0.0]).n == 2
    assert stats.mean_ci([0.4]).lo < 0.05 and stats.mean_ci([0.4]).hi > 0.95  # one score: nearly no information
    assert stats.percentile([1, 2, 3, 4, 5], 50) == 3
    assert stats.percentile([1.0] * 19 + [10.0], 95) == pytest.approx(1.45)


# ---- non-inferiority ("as good as") ------------------------------------------------------------


def test_noninferiority_is_shown_only_when_the_bound_clears_the_margin():
    same = np.array([1.0] * 180 + [0.0] * 20)
    ni = stats.noninferior(same, same, 0.05, "binary")
    assert ni.shown and ni.diff == 0 and ni.lo > -0.05
    few = stats.noninferior(same[:20], same[:20], 0.05, "binary")
    assert not few.shown and few.needed and few.needed > 20  # 20 identical pairs cannot show it yet


def test_not_significantly_better_is_not_as_good():
    # issue 21: n = 20, few-shot 0.70, tune 0.85: tune's gain is not significant, yet few-shot is not
    # shown to be within 5 points of it either
    few = np.array([1.0] * 14 + [0.0] * 6)
    tune = np.array([1.0] * 14 + [1.0] * 3 + [0.0] * 3)
    assert not stats.compare(few, tune).significant
    assert not stats.noninferior(few, tune, 0.05).shown


def test_graded_noninferiority_bounds_the_gains_and_the_losses():
    rng = np.random.default_rng(3)
    cheap = rng.random(200)
    costly = np.clip(cheap + rng.normal(0, 0.02, 200), 0, 1)
    ni = stats.noninferior(cheap, costly, 0.05, "graded")
    d = cheap - costly
    gain, loss = np.maximum(d, 0).mean(), np.maximum(-d, 0).mean()
    expect = stats.proportion_interval(gain, 200)[0] - stats.proportion_interval(loss, 200)[1]
    assert ni.lo == pytest.approx(expect) and ni.shown
    assert stats.noninferior(cheap, costly, 0.05, "graded", candidates=11).lo < ni.lo  # the best of 11 pays


def test_equal_differences_get_a_bound_that_reflects_n():
    # bench_verdicts found Student's t gave six equal pairs a zero-width bound: "as good" on 6 examples
    ni = stats.noninferior([1.0] * 6, [1.0] * 6, 0.05, "graded")
    assert not ni.shown and ni.lo < -0.4 and ni.needed > 6
    assert ni.lo == pytest.approx(stats.noninferior([1.0] * 6, [1.0] * 6, 0.05, "binary").lo)
