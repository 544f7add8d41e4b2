"""The advisor follows the seeds' flowchart on every branch, and with evidence names the
cheapest rung that meets the target, saying "fine-tuning helped" only when it is significant."""
from __future__ import annotations

import pytest

from lab.advisor import LADDER, Questionnaire, advise, advise_from_answers, advise_from_scoreboard
from lab.evaluation.costs import BreakEven, RequestCost
from lab.evaluation.stats import Comparison, Estimate, compare, compare_all, mean_ci
from lab.evaluation.summary import ArmSummary, Scoreboard

Q = Questionnaire


# ---- the questionnaire: every branch of the flowchart ---------------------------------------

def test_step0_no_metric_means_define_it_first():
    r = advise_from_answers(Q(clear_success_metric=False, good_examples=5000, behaviour_problem=True))
    assert r.rung == "few-shot" and "define the metric" in r.next_steps[0]


def test_step1_few_shot_enough_stops_at_prompting():
    r = advise_from_answers(Q(few_shot_reaches_90pct=True, lacks_knowledge=True, good_examples=900))
    assert r.rung == "few-shot" and not r.provisional
    assert "step 1" in r.reasons[0]


def test_step1_with_cost_pressure_suggests_measuring_break_even():
    r = advise_from_answers(Q(few_shot_reaches_90pct=True, good_examples=500, cost_or_latency_pressure=True), "tickets")
    assert r.rung == "few-shot"
    assert any("break-even" in s and "lab train --task tickets" in s for s in r.next_steps)


def test_step1_unknown_runs_the_experiment_first_and_is_provisional():
    r = advise_from_answers(Q(few_shot_reaches_90pct=None, behaviour_problem=True, good_examples=300), "tickets")
    assert r.provisional and r.rung == "tune"
    assert "lab eval tickets --arms zero-shot,few-shot --limit 50" in r.next_steps[0]


def test_step2_lack_of_knowledge_is_rag():
    r = advise_from_answers(Q(few_shot_reaches_90pct=False, lacks_knowledge=True, behaviour_problem=True,
                              good_examples=1000))
    assert r.rung == "rag" and not r.provisional
    assert any("tune+rag" in w for w in r.would_change_if)


def test_step3_neither_knowledge_nor_behaviour_revisits_the_problem():
    r = advise_from_answers(Q(few_shot_reaches_90pct=False))
    assert r.rung == "revisit"


def test_step4_enough_examples_is_tune():
    r = advise_from_answers(Q(few_shot_reaches_90pct=False, behaviour_problem=True, good_examples=200,
                              cost_or_latency_pressure=True))
    assert r.rung == "tune"
    assert any("Cost/latency" in x for x in r.reasons)


@pytest.mark.parametrize("n,overfit", [(150, False), (40, True)])
def test_step4_too_few_examples_collects_data_and_prompts(n, overfit):
    r = advise_from_answers(Q(few_shot_reaches_90pct=False, behaviour_problem=True, good_examples=n))
    assert r.rung == "few-shot"
    assert f"collect about {200 - n} more" in r.reasons[-1 - overfit]
    assert any("overfit" in x for x in r.reasons) == overfit


def test_changing_requirements_avoid_tuning():
    r = advise_from_answers(Q(few_shot_reaches_90pct=False, behaviour_problem=True, good_examples=5000,
                              requirements_change_often=True))
    assert r.rung == "few-shot" and any("change often" in x for x in r.reasons)


def test_advise_without_board_uses_the_questionnaire_and_text_renders():
    r = advise(None, Q(few_shot_reaches_90pct=False, lacks_knowledge=True), task="acme-facts")
    text = r.to_text()
    assert text.startswith("Recommendation: RAG") and "Why:" in text and "acme-facts" in text


# ---- with evidence -----------------------------------------------------------------------------

def arm(name, q, lo, hi, target=0.8, cost=1.0, fmt=None, failures=None, **kw):
    return ArmSummary(name, 60, Estimate(q, lo, hi, 60), q >= target, fmt, {}, 0.5, 0.9, 100, 10,
                      RequestCost(cost, "time"), failures or {"request failed": 0, "output invalid": 0,
                                                             "retrieval missed": 0, "answer wrong": 0}, 0, **kw)


def board(arms, comparisons, target=0.8):
    return Scoreboard({"id": 7, "model_id": "m", "status": "finished"}, "t", "exact_match", target, arms,
                      comparisons, [], 60, True)


def P(a, b, diff, lo, hi, p):
    return Comparison(a, b, diff, lo, hi, p, 60)


def test_evidence_cheapest_rung_meeting_target():
    b = board([arm("zero-shot", 0.5, 0.4, 0.6), arm("few-shot", 0.85, 0.76, 0.93), arm("rag", 0.9, 0.82, 0.96)],
              [P("zero-shot", "few-shot", 0.35, 0.2, 0.5, 0.001), P("few-shot", "rag", 0.05, -0.03, 0.12, 0.3),
               P("zero-shot", "rag", 0.4, 0.3, 0.5, 0.001)])
    r = advise_from_scoreboard(b)
    assert r.rung == "few-shot" and r.source == "eval run 7"
    assert r.evidence["arms"]["few-shot"]["quality"] == 0.85
    assert any("Few-shot examples helped" in x for x in r.reasons)
    assert any("does not show that retrieval helped" in x for x in r.reasons)
    assert any("straddles the target" in w for w in r.would_change_if)


def test_fine_tuning_helped_only_when_significant():
    sig = board([arm("few-shot", 0.6, 0.5, 0.7), arm("tune", 0.9, 0.83, 0.96, cost=0.5,
                                                         break_even=BreakEven(12000, 1.2, 0.5, "few-shot"),
                                                         training_cost=6.0)],
                [P("few-shot", "tune", 0.3, 0.18, 0.42, 0.0002)])
    r = advise_from_scoreboard(sig)
    assert r.rung == "tune" and any("Fine-tuning helped" in x and "(significant)" in x for x in r.reasons)
    assert any("pays for itself after 12,000 requests" in w for w in r.would_change_if)

    # tune meets the target, few-shot is at 91% of it, and the gain is not significant: few-shot
    ns = board([arm("few-shot", 0.73, 0.6, 0.85), arm("tune", 0.8, 0.7, 0.9)],
               [P("few-shot", "tune", 0.07, -0.04, 0.18, 0.21)])
    r = advise_from_scoreboard(ns)
    assert r.rung == "few-shot"
    assert not any("Fine-tuning helped" in x for x in r.reasons)
    assert any("does not show that fine-tuning helped" in x for x in r.reasons)


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("pattern", ["all favour tune", "all equal", "ties and one win"])
def test_small_n_never_says_fine_tuning_helped(n, pattern):
    """Boards built from real compare() results: on fewer than 6 examples the advisor says it
    cannot tell, whatever the scores, and never that fine-tuning (or anything) helped."""
    few = [0.0] * n
    tune = {"all favour tune": [1.0] * n, "all equal": list(few), "ties and one win": [1.0] + [0.0] * (n - 1)}[pattern]
    ids = [f"e{i}" for i in range(n)]
    comps = compare_all({"few-shot": dict(zip(ids, few)), "tune": dict(zip(ids, tune))})
    q_few, q_tune = mean_ci(few), mean_ci(tune)
    arms = [ArmSummary("few-shot", n, q_few, q_few.mean >= 0.8, None, {}, 0.5, 0.9, 100, 10, RequestCost(1.0, "time"),
                       {}, 0),
            ArmSummary("tune", n, q_tune, q_tune.mean >= 0.8, None, {}, 0.5, 0.9, 100, 10, RequestCost(0.5, "time"),
                       {}, 0)]
    r = advise_from_scoreboard(board(arms, comps))
    text = r.to_text().lower()
    assert "helped" not in text.replace("does not show that", "") and "(significant)" not in text
    assert comps[0].verdict == "too few examples to tell"
    assert any("cannot be told yet" in x and f"{n} example" in x for x in r.reasons)


def test_a_raw_p_below_alpha_that_holm_lifts_is_not_called_help():
    c = compare([0.0] * 60, [1.0] * 6 + [0.0] * 54, name_a="few-shot", name_b="tune")
    assert c.p_value < 0.05 and c.significant
    c.p_adjusted = 3 * c.p_value  # three comparisons on the board
    b = board([arm("few-shot", 0.0, 0.0, 0.06), arm("tune", 0.1, 0.05, 0.2)], [c])
    r = advise_from_scoreboard(b)
    assert not any("Fine-tuning helped" in x for x in r.reasons)
    assert any("does not show that fine-tuning helped" in x and "Holm p=0.094" in x for x in r.reasons)


def test_nothing_meets_target_diagnoses_format_failures_and_points_to_tuning():
    fails = {"request failed": 0, "output invalid": 30, "retrieval missed": 0, "answer wrong": 10}
    b = board([arm("zero-shot", 0.2, 0.1, 0.3, failures=fails), arm("few-shot", 0.5, 0.4, 0.6, failures=fails)],
              [P("zero-shot", "few-shot", 0.3, 0.2, 0.4, 0.001)])
    r = advise_from_scoreboard(b, train_examples=350)
    assert r.rung == "few-shot" and "No measured rung meets the target" in r.reasons[0]
    assert any("format failures" in x for x in r.reasons)
    assert any("lab train --task t" in s for s in r.next_steps)
    r = advise_from_scoreboard(b, train_examples=50)
    assert any("collect 200+" in s for s in r.next_steps)


def test_missing_rag_arm_with_a_corpus_is_the_next_experiment():
    fails = {"request failed": 0, "output invalid": 0, "retrieval missed": 0, "answer wrong": 50}
    b = board([arm("zero-shot", 0.05, 0.0, 0.1, failures=fails), arm("few-shot", 0.08, 0.02, 0.15, failures=fails)],
              [P("zero-shot", "few-shot", 0.03, -0.02, 0.08, 0.3)])
    r = advise_from_scoreboard(b, has_corpus=True)
    assert any("--arms rag" in s for s in r.next_steps)


def test_retrieval_misses_are_blamed_on_retrieval():
    fails = {"request failed": 0, "output invalid": 0, "retrieval missed": 20, "answer wrong": 10}
    b = board([arm("rag", 0.5, 0.4, 0.6, failures=fails)], [])
    r = advise_from_scoreboard(b)
    assert any("Retrieval often missed" in x for x in r.reasons)


def test_changing_requirements_exclude_tuned_arms_from_the_choice():
    b = board([arm("few-shot", 0.6, 0.5, 0.7), arm("rag", 0.82, 0.75, 0.9), arm("tune", 0.95, 0.9, 0.99)],
              [P("few-shot", "rag", 0.22, 0.1, 0.3, 0.001), P("few-shot", "tune", 0.35, 0.25, 0.45, 0.001),
               P("rag", "tune", 0.13, 0.05, 0.2, 0.004)])
    assert advise_from_scoreboard(b).rung == "rag"  # cheapest meeting the target anyway
    b.target = 0.9
    for a in b.arms:
        a.meets_target = a.quality.mean >= 0.9
    assert advise_from_scoreboard(b).rung == "tune"
    r = advise_from_scoreboard(b, Q(requirements_change_often=True))
    assert r.rung == "rag" and any("Requirements change often" in x for x in r.reasons)


def test_ladder_order_is_cheapest_first():
    assert LADDER == ["zero-shot", "few-shot", "rag", "tune", "tune+rag"]


def test_a_thin_run_is_called_a_first_look_not_a_recommendation():
    """5 examples per arm: the advice leads with "the evidence is too thin" and how many to run."""
    few = [0.0] * 5
    tune = [1.0] * 5
    ids = [f"e{i}" for i in range(5)]
    comps = compare_all({"few-shot": dict(zip(ids, few)), "tune": dict(zip(ids, tune))})
    arms = [ArmSummary("few-shot", 5, mean_ci(few), False, None, {}, 0.5, 0.9, 100, 10, RequestCost(1.0, "time"), {}, 0),
            ArmSummary("tune", 5, mean_ci(tune), True, None, {}, 0.5, 0.9, 100, 10, RequestCost(0.5, "time"), {}, 0)]
    b = board(arms, comps)
    b.n_examples = 84
    r = advise_from_scoreboard(b)
    assert r.thin_evidence and r.reasons[0].startswith("The evidence is too thin: only 5 examples per arm")
    assert "evaluate about 20 examples" in r.reasons[0]
    assert r.next_steps[0] == "evaluate more examples before acting on this: `lab eval t --limit 20`"
    assert "evidence too thin" in r.headline() and "evidence too thin" in r.to_text()
    b.n_examples = 5  # the whole held-out set is this small: more held-out examples are what is missing
    r = advise_from_scoreboard(b)
    assert "add held-out examples (the task has only 5)" in r.reasons[0]
    assert not any("--limit" in s for s in r.next_steps)


def test_a_run_of_twenty_or_more_examples_is_not_called_thin():
    b = board([arm("zero-shot", 0.5, 0.4, 0.6), arm("few-shot", 0.85, 0.76, 0.93)],
              [P("zero-shot", "few-shot", 0.35, 0.2, 0.5, 0.001)])
    r = advise_from_scoreboard(b)
    assert r.thin_evidence is None and "too thin" not in r.to_text()


# ---- with a learning curve ---------------------------------------------------------------------

def _curve(few_rate: float, tuned_rates: dict, seeds: int = 1):
    from lab.evaluation.curve import build_curve

    ids = [f"e{i}" for i in range(40)]

    def scores(rate):
        return {e: float(i < round(rate * 40)) for i, e in enumerate(ids)}

    return build_curve("tickets", "exact_match", 0.8, 356, {0: scores(0.0), 8: scores(few_rate)},
                       {n: [scores(r)] for n, r in tuned_rates.items()}, curve_id=3)


def test_curve_advice_names_the_crossover_and_what_you_have():
    from lab.advisor import curve_advice

    reasons, steps = curve_advice(_curve(0.2, {25: 0.25, 100: 0.6, 200: 0.65}), have=60)
    assert reasons[0].startswith("On your data, tuning beats the best few-shot (k = 8, 0.200")
    assert "from about 100 examples; you have 60" in reasons[0]
    assert any("collect about 40 more examples" in s for s in steps)
    assert "still rises at its end, but not significantly" in reasons[1]
    reasons, _ = curve_advice(_curve(0.2, {25: 0.25, 100: 0.6, 200: 0.6}), have=60)
    assert "flat or falling" in reasons[1]


def test_curve_advice_still_rising():
    from lab.advisor import curve_advice

    reasons, steps = curve_advice(_curve(0.2, {50: 0.3, 100: 0.5, 200: 0.9}), have=356)
    assert "from about 100 examples; you have 356" in reasons[0] and not any("collect about" in s for s in steps)
    assert "The tuned curve is still rising" in reasons[1] and "more examples will likely help" in reasons[1]
    assert any("--sizes 200,400" in s for s in steps)


def test_curve_advice_within_the_noise_and_beaten():
    from lab.advisor import curve_advice

    reasons, _ = curve_advice(_curve(0.5, {50: 0.45, 100: 0.55}), have=356)
    assert reasons[0].startswith("Few-shot at k = 8 is within the noise of tuning") and "stay with prompting" in reasons[0]
    reasons, _ = curve_advice(_curve(0.6, {50: 0.1, 100: 0.2}), have=356)
    assert reasons[0].startswith("Few-shot at k = 8 beats tuning at every size measured, up to 100 examples")


def test_curve_advice_without_tuned_points():
    from lab.advisor import curve_advice

    reasons, steps = curve_advice(_curve(0.5, {}), have=10)
    assert "no tuned point yet" in reasons[0] and "lab curve tickets" in steps[0]
