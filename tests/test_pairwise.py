"""Blind pairwise rating (lab.evaluation.pairwise): pairs from a real eval run (fake model), random
sides per pair, ratings stored in arms, the paired sign test on them."""

from __future__ import annotations

from collections import Counter

import pytest

from lab.evaluation import pairwise, verdict
from tests.text_tasks import rate_all


def test_pairs_come_from_the_run_both_arms_answered(evaluated_text):
    lab, task, run_id = evaluated_text
    pairs = pairwise.pairs_for(lab, task, "few-shot,zero-shot")
    assert (pairs.eval_run_id, pairs.arm_a, pairs.arm_b, len(pairs)) == (run_id, "zero-shot", "few-shot", 24)
    p = pairs.items[0]
    assert p.text_a != p.text_b and p.question.startswith("Message") and p.generation_a and p.generation_b
    with pytest.raises(pairwise.PairwiseError, match="both zero-shot and tune"):
        pairwise.pairs_for(lab, task, ["zero-shot", "tune"])
    with pytest.raises(pairwise.PairwiseError, match="exactly two"):
        pairwise.pairs_for(lab, task, ["zero-shot"])


def test_sides_are_drawn_per_pair_and_the_rating_is_stored_in_arms(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    lefts = Counter(pairwise.next_pair(lab, pairs).left for _ in range(400))
    assert set(lefts) == {"zero-shot", "few-shot"} and 140 < lefts["few-shot"] < 260  # ~binomial(400, .5)
    shown = pairwise.next_pair(lab, pairs)
    assert shown.text("A") == (shown.pair.text_a if shown.left == "zero-shot" else shown.pair.text_b)
    assert pairwise.rate(lab, shown, "A") == shown.left
    row = pairwise.ratings(lab, pairs)[shown.pair.example_id]
    assert (row["shown_first"], row["preferred"], row["generation_a"]) == (
        shown.left,
        shown.left,
        shown.pair.generation_a,
    )
    # rating the same pair again replaces the row; the next pair is another one
    assert pairwise.rate(lab, shown, "tie") == "tie"
    assert len(pairwise.ratings(lab, pairs)) == 1
    assert pairwise.next_pair(lab, pairs).pair.example_id != shown.pair.example_id
    with pytest.raises(pairwise.PairwiseError, match="one of"):
        pairwise.rate(lab, shown, "C")


def test_stop_and_resume_continues_with_the_unrated_pairs(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    seen = []
    for _ in range(5):
        shown = pairwise.next_pair(lab, pairs)
        seen.append(shown.pair.example_id)
        pairwise.rate(lab, shown, "B")
    again = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])  # a new session
    assert pairwise.next_pair(lab, again).pair.example_id not in seen
    assert pairwise.preference(lab, again).n == 5


def test_the_verdict_is_the_sign_test_on_preferences(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    outcomes = iter(["few-shot"] * 18 + ["zero-shot"] * 3 + ["tie"] * 2 + ["both bad"])
    rate_all(lab, pairs, lambda p: next(outcomes))
    pref = pairwise.preference(lab, pairs)
    assert (pref.n, pref.wins_b, pref.wins_a, pref.ties, pref.both_bad) == (24, 18, 3, 2, 1)
    assert pref.comparison.p_value == pytest.approx(0.00149, abs=1e-4)  # binomial(21, .5): 3 or fewer, two-sided
    assert verdict.preferred(pref)
    assert pref.sentence.startswith("You preferred few-shot in 18 of 24 pairs (zero-shot in 3; no preference in 3)")
    assert "significant" in pref.sentence and "not significant" not in pref.sentence
    assert pref.win_rate_b == pytest.approx((18 + 1.5) / 24)
    assert verdict.win_rate_meets(pref, 0.6).state in ("meets", "maybe")
    assert verdict.win_rate_meets(pref, 0.95).state == "misses"


def test_an_even_split_is_not_a_preference(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    flip = iter(["few-shot", "zero-shot"] * 12)
    rate_all(lab, pairs, lambda p: next(flip))
    pref = pairwise.preference(lab, pairs)
    assert not verdict.preferred(pref) and "not significant" in pref.sentence


def test_few_ratings_are_too_few(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    for _ in range(4):
        pairwise.rate(lab, pairwise.next_pair(lab, pairs), "A")
    assert "too few to tell" in pairwise.preference(lab, pairs).sentence
