"""The advisor follows the guide's flowchart (docs/guide.md) on every branch, and with evidence names the
cheapest rung that meets the target, saying "fine-tuning helped" only when it is significant."""

from __future__ import annotations

import json

import pytest

from lab.advisor import LADDER, Questionnaire, advise, advise_from_answers, advise_from_scoreboard
from lab.evaluation.costs import RequestCost
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
    r = advise_from_answers(
        Q(few_shot_reaches_90pct=False, lacks_knowledge=True, behaviour_problem=True, good_examples=1000)
    )
    assert r.rung == "rag" and not r.provisional
    assert any("tune+rag" in w for w in r.would_change_if)


def test_step3_neither_knowledge_nor_behaviour_revisits_the_problem():
    r = advise_from_answers(Q(few_shot_reaches_90pct=False))
    assert r.rung == "revisit"


def test_step4_enough_examples_is_tune():
    r = advise_from_answers(
        Q(few_shot_reaches_90pct=False, behaviour_problem=True, good_examples=200, cost_or_latency_pressure=True)
    )
    assert r.rung == "tune"
    assert any("Cost/latency" in x for x in r.reasons)


@pytest.mark.parametrize("n,overfit", [(150, False), (40, True)])
def test_step4_too_few_examples_collects_data_and_prompts(n, overfit):
    r = advise_from_answers(Q(few_shot_reaches_90pct=False, behaviour_problem=True, good_examples=n))
    assert r.rung == "few-shot"
    assert f"collect about {200 - n} more" in r.reasons[-1 - overfit]
    assert any("overfit" in x for x in r.reasons) == overfit


def test_changing_requirements_avoid_tuning():
    r = advise_from_answers(
        Q(few_shot_reaches_90pct=False, behaviour_problem=True, good_examples=5000, requirements_change_often=True)
    )
    assert r.rung == "few-shot" and any("change often" in x for x in r.reasons)


def test_advise_without_board_uses_the_questionnaire_and_text_renders():
    r = advise(None, Q(few_shot_reaches_90pct=False, lacks_knowledge=True), task="acme-facts")
    text = r.to_text()
    assert text.startswith("Recommendation: RAG") and "Why:" in text and "acme-facts" in text
    assert text.endswith("Why these rules: docs/guide.md in the Ladder Lab's folder.")  # the terminal names the guide


# ---- with evidence -----------------------------------------------------------------------------


def arm(name, q, lo, hi, target=0.8, cost=1.0, fmt=None, failures=None, **kw):
    return ArmSummary(
        name,
        60,
        Estimate(q, lo, hi, 60),
        q >= target,
        fmt,
        {},
        0.5,
        0.9,
        100,
        10,
        RequestCost(cost, "time"),
        failures or {"request failed": 0, "output invalid": 0, "not retrieved": 0, "answer wrong": 0},
        0,
        **kw,
    )


def board(arms, comparisons, target=0.8):
    return Scoreboard(
        {"id": 7, "model_id": "m", "status": "finished"}, "t", "exact_match", target, arms, comparisons, [], 60, True
    )


def P(a, b, diff, lo, hi, p):
    return Comparison(a, b, diff, lo, hi, p, 60)


def real_board(hits: dict[str, int], n: int, target: float = 0.8, margin: float = 0.05) -> Scoreboard:
    """A scoreboard built as `summarize` builds one: per-example 0/1 scores (arm i's hits are the first
    hits[i] examples, so the arms are correlated as real ones are), real intervals, verdicts, tests."""
    from lab.evaluation import verdict

    ids = [f"e{i}" for i in range(n)]
    scores = {a: {e: float(i < h) for i, e in enumerate(ids)} for a, h in hits.items()}
    arms = []
    share = verdict.family(verdict.RUNG_OF[a] for a in scores)  # as `summarize` shares the 5%
    for a, per in scores.items():
        q = mean_ci(list(per.values()))
        v = verdict.meets_arm(q, target, share[verdict.RUNG_OF[a]])
        arms.append(
            ArmSummary(
                a,
                n,
                q,
                v.ok,
                None,
                {},
                0.5,
                0.9,
                100,
                10,
                RequestCost(1.0 / (1 + LADDER.index(a)), "time"),
                {"request failed": 0, "output invalid": 0, "not retrieved": 0, "answer wrong": n - hits[a]},
                0,
                verdict=v,
            )
        )
    examples = [
        {
            "id": e,
            "input": "",
            "expected": "",
            "disagree": False,
            "outputs": {a: {"output": "", "primary": scores[a][e], "failure": None} for a in scores},
        }
        for e in ids
    ]
    b = Scoreboard(
        {"id": 7, "model_id": "m", "status": "finished"},
        "t",
        "exact_match",
        target,
        arms,
        compare_all(scores),
        examples,
        n,
        True,
    )
    b.margin = margin
    return b


def test_evidence_cheapest_rung_meeting_target():
    b = real_board({"zero-shot": 30, "few-shot": 57, "rag": 58}, 60)
    r = advise_from_scoreboard(b)
    assert r.rung == "few-shot" and r.source == "eval run 7" and r.verdict == "meets"
    assert r.evidence["arms"]["few-shot"]["quality"] == 0.95
    assert r.reasons[0].startswith("few-shot meets the target 0.80: the lower end of its interval")
    assert any("Few-shot examples helped" in x for x in r.reasons)
    assert any("does not show that retrieval helped" in x for x in r.reasons)
    assert r.headline() == "Recommendation: prompt (few-shot)"


def test_fine_tuning_helped_only_when_significant():
    r = advise_from_scoreboard(real_board({"few-shot": 36, "tune": 57}, 60))
    assert r.rung == "tune" and any("Fine-tuning helped" in x and "(significant)" in x for x in r.reasons)
    r = advise_from_scoreboard(real_board({"few-shot": 56, "tune": 57}, 60))  # few-shot meets: the cheaper one
    assert r.rung == "few-shot" and not any("Fine-tuning helped" in x for x in r.reasons)
    assert any("does not show that fine-tuning helped" in x for x in r.reasons)


def test_not_significant_is_not_as_good_and_the_advice_never_contradicts_itself():
    # issue 21: n = 20, target 0.75, few-shot 0.70, tune 0.85: the advisor swapped to few-shot because
    # tune's gain "is not significant", and said "no measured rung meets" below "tune meets the target"
    r = advise_from_scoreboard(real_board({"few-shot": 14, "tune": 17}, 20, target=0.75))
    text = r.to_text()
    assert r.rung == "tune" and r.verdict == "maybe" and r.meets_target is False
    assert r.headline().startswith("Recommendation: fine-tune (LoRA) may meet the target")
    assert "tune meets the target" not in text and "no measured rung meets" not in r.headline()
    assert not any(x.startswith("But few-shot") for x in r.reasons)


def test_a_cheaper_rung_is_preferred_only_when_shown_as_good_within_the_margin():
    # tune meets 0.8; few-shot (0.80, a maybe) is within 0.1 of it, shown by the non-inferiority test on 400 pairs
    r = advise_from_scoreboard(real_board({"few-shot": 320, "tune": 345}, 400, margin=0.1))
    assert r.rung == "few-shot" and r.verdict == "as-good"
    assert any("is as good as tune within 10 points" in x for x in r.reasons)
    assert "as good as a rung that meets the target" in r.headline()
    # the same scores with a 0.05 margin: it cannot be told, and the advice says how many examples would
    r = advise_from_scoreboard(real_board({"few-shot": 320, "tune": 345}, 400, margin=0.05))
    assert r.rung == "tune" and r.verdict == "meets"
    assert any("cannot be told yet whether few-shot is as good as tune within 5 points" in x for x in r.reasons)
    assert r.evidence["choice"]["as_good"]["shown"] is False


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
    arms = [
        ArmSummary(
            "few-shot", n, q_few, q_few.mean >= 0.8, None, {}, 0.5, 0.9, 100, 10, RequestCost(1.0, "time"), {}, 0
        ),
        ArmSummary("tune", n, q_tune, q_tune.mean >= 0.8, None, {}, 0.5, 0.9, 100, 10, RequestCost(0.5, "time"), {}, 0),
    ]
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
    fails = {"request failed": 0, "output invalid": 30, "not retrieved": 0, "answer wrong": 10}
    b = board(
        [arm("zero-shot", 0.2, 0.1, 0.3, failures=fails), arm("few-shot", 0.5, 0.4, 0.6, failures=fails)],
        [P("zero-shot", "few-shot", 0.3, 0.2, 0.4, 0.001)],
    )
    r = advise_from_scoreboard(b, train_examples=350)
    assert r.rung == "few-shot" and "No measured rung meets the target" in r.reasons[0]
    assert any("format failures" in x for x in r.reasons)
    assert any("lab train --task t" in s for s in r.next_steps)
    r = advise_from_scoreboard(b, train_examples=50)
    assert any("collect 200+" in s for s in r.next_steps)


def test_missing_rag_arm_with_a_corpus_is_the_next_experiment():
    fails = {"request failed": 0, "output invalid": 0, "not retrieved": 0, "answer wrong": 50}
    b = board(
        [arm("zero-shot", 0.05, 0.0, 0.1, failures=fails), arm("few-shot", 0.08, 0.02, 0.15, failures=fails)],
        [P("zero-shot", "few-shot", 0.03, -0.02, 0.08, 0.3)],
    )
    r = advise_from_scoreboard(b, has_corpus=True)
    assert any("--arms rag" in s for s in r.next_steps)


def test_retrieval_misses_are_blamed_on_retrieval():
    fails = {"request failed": 0, "output invalid": 0, "not retrieved": 20, "answer wrong": 10}
    b = board([arm("rag", 0.5, 0.4, 0.6, failures=fails)], [])
    r = advise_from_scoreboard(b)
    assert any("Fix retrieval before blaming the model" in x for x in r.reasons)


def test_changing_requirements_exclude_tuned_arms_from_the_choice():
    assert advise_from_scoreboard(real_board({"few-shot": 36, "rag": 57, "tune": 60}, 60)).rung == "rag"
    b = real_board({"few-shot": 36, "rag": 57, "tune": 60}, 60, target=0.9)  # rag only may meet 0.9; tune does
    assert advise_from_scoreboard(b).rung == "tune"
    r = advise_from_scoreboard(b, Q(requirements_change_often=True))
    assert r.rung == "rag" and r.verdict == "maybe" and any("Requirements change often" in x for x in r.reasons)


def test_ladder_order_is_cheapest_first():
    assert LADDER == ["zero-shot", "few-shot", "rag", "tune", "tune+rag"]


def test_a_thin_run_is_called_a_first_look_not_a_recommendation():
    """5 examples per arm: the advice leads with "the evidence is too thin" and how many to run."""
    few = [0.0] * 5
    tune = [1.0] * 5
    ids = [f"e{i}" for i in range(5)]
    comps = compare_all({"few-shot": dict(zip(ids, few)), "tune": dict(zip(ids, tune))})
    arms = [
        ArmSummary("few-shot", 5, mean_ci(few), False, None, {}, 0.5, 0.9, 100, 10, RequestCost(1.0, "time"), {}, 0),
        ArmSummary("tune", 5, mean_ci(tune), True, None, {}, 0.5, 0.9, 100, 10, RequestCost(0.5, "time"), {}, 0),
    ]
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
    b = real_board({"zero-shot": 30, "few-shot": 51}, 60)
    r = advise_from_scoreboard(b)
    assert r.thin_evidence is None and "too thin" not in r.to_text()


def test_rungs_share_the_five_percent_and_the_scoreboard_agrees_with_the_advice():
    # bench_verdicts: three rungs each judged alone gave "meets" 6.4% of the time when all sat at the
    # target (n = 20). 19 of 20 meets 0.75 alone (lower end 0.751), not as one of several chances.
    from lab.evaluation import verdict

    assert verdict.meets(19 / 20, 20, 0.75).state == "meets"
    assert verdict.family(["prompt", "prompt", "tune"]) == {"prompt": 4, "tune": 2}
    b = real_board({"zero-shot": 19, "few-shot": 12, "tune": 12}, 20, target=0.75)
    assert b.arm("zero-shot").meets_cell() == "maybe"  # summarize shares it the same way
    r = advise_from_scoreboard(b)
    assert r.rung == "zero-shot" and r.verdict == "maybe"
    assert b.arm("zero-shot").verdict.candidates == 4 and "one of 4 chances" in r.reasons[0]


def test_what_would_change_the_answer_quotes_the_rule_not_the_mean():
    # issue 21: "the answer would change if the target were lowered to 0.27: few-shot would meet it" used
    # the mean (0.267), while the rule is the interval's lower end
    r = advise_from_scoreboard(real_board({"zero-shot": 2, "few-shot": 8}, 30))
    assert r.verdict == "misses" and r.rung == "few-shot"
    lowered = [w for w in r.would_change_if if w.startswith("the target were lowered to")]
    bound = real_board({"zero-shot": 2, "few-shot": 8}, 30).arm("few-shot").verdict.bound
    assert (
        lowered
        == [
            f"the target were lowered to {int(bound * 100) / 100:.2f} (the lower end of its interval, as "
            "judged here): few-shot would meet it"
        ]
        and bound < 8 / 30
    )


# ---- the RAG advice follows where the knowledge got lost (not retrieved / retrieved but not used) ----------


def _rag_board(missed: int, unused: int, context_hit: float | None = 0.4, arms: tuple = ("rag",)) -> Scoreboard:
    fails = {"request failed": 0, "output invalid": 0, "not retrieved": missed, "retrieved but not used": unused}
    rows = [arm(a, 0.5, 0.4, 0.6, failures=dict(fails)) for a in arms]
    for r in rows:
        r.metrics = {"context_hit": context_hit, "recall_at_k": None}
    return board(rows, [])


RETRIEVAL_LEVERS = ("--rag-k 8", "--chunk-tokens", "better embedder")


def test_mostly_not_retrieved_points_to_retrieval_levers():
    r = advise_from_scoreboard(_rag_board(missed=7, unused=2), train_examples=500, has_corpus=True)
    assert any(
        "7 of 9 wrong rag answers did not have the answer in their passages (not retrieved), 2 did; "
        "mostly in retrieval." in x
        for x in r.reasons
    )
    assert any("other chunking, a larger k, more documents, a better embedder" in x for x in r.reasons)
    steps = " ".join(r.next_steps)
    assert all(lever in steps for lever in RETRIEVAL_LEVERS)
    assert "add the documents that hold the missing answers" in steps
    assert "tune+rag" not in steps and not any("larger model, a reading-focused prompt" in x for x in r.reasons)


def test_mostly_retrieved_but_not_used_points_to_the_reader():
    r = advise_from_scoreboard(_rag_board(missed=2, unused=7), train_examples=500, has_corpus=True)
    assert any(
        "7 of 9 wrong rag answers had the answer in their passages (retrieved but not used), 2 did not; "
        "mostly in the reading." in x
        for x in r.reasons
    )
    assert any("a larger model, a reading-focused prompt, or tune+rag" in x for x in r.reasons)
    steps = " ".join(r.next_steps)
    assert "reading-focused instruction" in steps and "-m MODEL" in steps
    assert "`lab train --task t`, then `lab eval t --arms tune+rag`" in steps
    assert not any(lever in steps for lever in RETRIEVAL_LEVERS)
    few = advise_from_scoreboard(_rag_board(missed=2, unused=7), train_examples=50, has_corpus=True)
    assert any("collect 200+ examples (you have 50) to tune it to use its passages" in s for s in few.next_steps)
    # tune+rag measured already: no step to measure it again
    both = advise_from_scoreboard(_rag_board(missed=2, unused=7, arms=("rag", "tune+rag")), train_examples=500)
    assert not any("--arms tune+rag" in s for s in both.next_steps)


def test_a_tie_gives_both_levers_and_gold_documents_are_named_when_only_they_were_measured():
    r = advise_from_scoreboard(_rag_board(missed=3, unused=3, context_hit=None), has_corpus=True)
    assert any(
        "3 of 6 wrong rag answers did not have a passage from the gold document in their prompt (not retrieved), "
        "3 did; as often in retrieval as in the reading." in x
        for x in r.reasons
    )
    steps = " ".join(r.next_steps)
    assert "--rag-k 8" in steps and "reading-focused instruction" in steps
    # nothing split (free text, no gold_doc): no RAG advice from the split
    none = advise_from_scoreboard(_rag_board(missed=0, unused=0), has_corpus=True)
    assert not any("Where the knowledge got lost" in x for x in none.reasons)


def test_the_rag_advice_on_a_summarised_fake_run(fake_lab, tmp_path, monkeypatch):
    from test_evaluation import RAG_ANSWERS, rag_run  # tests/ is on sys.path (pytest rootdir, no package)

    from lab.evaluation import summarize

    # f0, f2 held the answer and were answered wrong, f4's gold document was read and missed; f1, f3 right
    answers = {**RAG_ANSWERS, "f1": "It costs $1,200.", "f2": "41", "f3": "Since 2011."}
    b = summarize(fake_lab, rag_run(fake_lab, tmp_path / "facts", monkeypatch, answers))
    r = advise_from_scoreboard(b, train_examples=300, has_corpus=True)
    assert any(
        "3 of 3 wrong rag answers had the answer in their passages (retrieved but not used), 0 did not" in x
        for x in r.reasons
    )
    assert any("--arms tune+rag" in s for s in r.next_steps)
    assert not any("--rag-k" in s for s in r.next_steps)


# ---- an expensive prompt at volume: `lab distill` ----------------------------------------------


def _priced_board(few_tokens: float, zero_tokens: float = 150.0, per_day: int = 10_000) -> Scoreboard:
    """few-shot meets the target, zero-shot does not; few-shot's prompts cost $0.04 per 1,000
    requests against zero-shot's $0.005, at `per_day` requests a day."""
    b = real_board({"zero-shot": 30, "few-shot": 57}, 60)
    for a, tokens, cost in ((b.arm("few-shot"), few_tokens, 0.04), (b.arm("zero-shot"), zero_tokens, 0.005)):
        a.prompt_tokens, a.cost = tokens, RequestCost(cost, "time")
    b.cost_assumptions = {"requests_per_day": per_day, "cpu_hour_price": 0.05}
    return b


def test_an_expensive_prompt_at_volume_suggests_distilling_it_with_the_saving_as_an_estimate():
    r = advise_from_scoreboard(_priced_board(1200.0))
    assert r.rung == "few-shot"
    step = next(s for s in r.next_steps if "lab distill" in s)
    assert "`lab distill t --teacher m:best-prompt`" in step
    assert "1,200 prompt tokens a request, 8.0x zero-shot's 150, at 10,000 requests a day" in step
    # ($0.04 - $0.005) per 1,000 requests x 10,000 a day / 1,000
    assert "up to $0.35 a day" in step and "if a distilled student matched it" in step
    assert not any(w in step for w in ("as good as", "meets", "helped"))
    d = r.evidence["distill"]
    assert d["suggested"] and d["distillation"] is None
    assert d["expensive_prompt"]["saving_per_day"] == pytest.approx(0.35)
    assert "lab distill t" in r.to_text()


@pytest.mark.parametrize(
    "few,zero,per_day",
    [
        (1200.0, 150.0, 500),  # a low rate: the prompt's cost hardly adds up
        (400.0, 150.0, 10_000),  # not 3x zero-shot's
        (400.0, 100.0, 10_000),  # 4x and 300 more tokens: the rule's edge, shown
        (250.0, 50.0, 10_000),  # 5x, but only 200 more tokens: a short prompt either way
    ],
)
def test_distillation_suggested_only_for_an_expensive_prompt_at_a_high_rate(few, zero, per_day):
    r = advise_from_scoreboard(_priced_board(few, zero, per_day))
    shown = any("lab distill" in s for s in r.next_steps)
    assert shown == (few >= 3 * zero and few - zero >= 300 and per_day >= 1000)
    assert ("distill" in r.evidence) == shown


def test_no_distillation_suggested_when_the_pick_is_not_a_few_shot_prompt():
    b = real_board({"zero-shot": 58, "few-shot": 58}, 60)  # zero-shot does: nothing to distil
    b.arm("few-shot").prompt_tokens, b.arm("few-shot").cost = 1200.0, RequestCost(0.04, "time")
    b.arm("zero-shot").prompt_tokens, b.arm("zero-shot").cost = 150.0, RequestCost(0.005, "time")
    b.cost_assumptions = {"requests_per_day": 10_000}
    r = advise_from_scoreboard(b)
    assert r.rung == "zero-shot" and not any("lab distill" in s for s in r.next_steps)
    # requirements that change often: a student would be retrained on each change too
    r = advise_from_scoreboard(_priced_board(1200.0), Q(requirements_change_often=True))
    assert not any("lab distill" in s for s in r.next_steps)


def _finished_distillation(store, task: str, sentence: str) -> int:
    did = store.open_distill(task, f"{task}-distilled", '{"teacher": "default:best-prompt"}')
    store.update_distill(did, {"status": "finished", "ledger_json": json.dumps({"sentence": sentence})})
    return did


SENTENCE = "The distilled student is as good as the teacher within 5 points; it is 6.7x cheaper per request."


def test_a_finished_distillation_is_quoted_instead_of_the_estimate(fake_lab):
    from lab.advisor import stored_distillation

    assert stored_distillation(fake_lab, "t") is None
    fake_lab.store.open_distill("t", "t-distilled", "{}")  # running: no ledger yet, nothing to quote
    assert stored_distillation(fake_lab, "t") is None
    did = _finished_distillation(fake_lab.store, "t", SENTENCE)
    found = stored_distillation(fake_lab, "t")
    assert found == {"distill_id": did, "name": "t-distilled", "sentence": SENTENCE}

    r = advise_from_scoreboard(_priced_board(1200.0), distilled=found)
    assert f"The task's latest distillation (#{did}, t-distilled): {SENTENCE}" in r.reasons
    assert not any("lab distill" in s for s in r.next_steps) and "up to $" not in r.to_text()
    d = r.evidence["distill"]
    assert not d["suggested"] and d["distillation"]["sentence"] == SENTENCE and d["expensive_prompt"]
    # quoted whatever the pick: it is the task's measurement
    r = advise_from_scoreboard(_priced_board(200.0), distilled=found)
    assert any(SENTENCE in x for x in r.reasons) and r.evidence["distill"]["expensive_prompt"] is None


def test_lab_advise_quotes_the_stored_ledger_sentence(fake_lab, tmp_path):
    from click.testing import CliRunner

    from lab.cli import cli
    from lab.evaluation import run_eval

    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "task.toml").write_text(
        'name = "mini"\ninstruction = "Name the specialty."\noutput_format = "label"\n'
        'labels = ["Dermatologist", "Cardiologist"]\nscorers = ["exact_match"]\nprimary_metric = "exact_match"\n'
        'target = 0.75\neval = "eval.jsonl"\nfewshot = "eval.jsonl"\nfew_shot_k = 1\n'
    )
    rows = [{"id": f"e{i}", "input": f"case {i}", "output": ["Dermatologist", "Cardiologist"][i % 2]} for i in range(6)]
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    fake_lab.fake.default = "Dermatologist"
    run_eval(fake_lab, folder, ["zero-shot", "few-shot"], progress=False)
    did = _finished_distillation(fake_lab.store, "mini", SENTENCE)
    obj = {"lab": fake_lab, "home": str(fake_lab.home.root)}
    r = CliRunner().invoke(cli, ["advise", str(folder / "task.toml")], obj=obj)
    assert r.exit_code == 0 and f"The task's latest distillation (#{did}, mini-distilled): {SENTENCE}" in r.output
    r = CliRunner().invoke(cli, ["advise", str(folder / "task.toml"), "--json"], obj=obj)
    assert json.loads(r.output)["evidence"]["distill"]["distillation"]["distill_id"] == did


# ---- blind pairwise preference in the advice (the certificate's gate) ---------------------------


def _advice(lab, run_id):
    from lab.advisor import recommend_for_run
    from lab.evaluation.summary import summarize

    return recommend_for_run(lab, summarize(lab, run_id))


def test_the_advice_states_your_preference_and_refuses_an_uncertified_judge(evaluated_text):
    from lab.evaluation import judge, pairwise
    from tests.text_tasks import rate_all

    lab, task, run_id = evaluated_text
    rec = _advice(lab, run_id)
    assert "preference" not in rec.evidence  # nothing rated: no sentence about it
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    rate_all(lab, pairs, lambda p: "few-shot" if int(p.question.split()[1]) % 6 else "zero-shot")
    lab.fake.default = "B"  # a judge that always picks the second answer: every pair flips
    judge.judge_pairs(lab, task, pairs)
    rec = _advice(lab, run_id)
    text = " ".join(rec.reasons)
    assert "You preferred few-shot in 20 of 24 pairs" in text and "significant" in text
    assert "The judge fake is not trusted for this task" in text and "Using your ratings instead" in text
    (ev,) = rec.evidence["preference"]
    assert ev["source"] == "you" and ev["certificate"]["trusted"] is False and "win_rate" not in ev
    from lab.evaluation.summary import summarize

    board = summarize(lab, run_id).to_text()  # the scoreboard says the same, through the same gate
    assert "Blind preference" in board and "You preferred few-shot in 20 of 24 pairs" in board
    assert "is not trusted for this task" in board


def test_a_win_rate_target_over_the_baseline_is_met_through_the_one_decision(evaluated_text, tmp_path):
    from lab.evaluation import pairwise
    from tests.text_tasks import rate_all

    lab, task, run_id = evaluated_text
    toml = task.source
    toml.write_text(toml.read_text() + "win_rate_target = 0.6\n")  # the run is read as it was evaluated
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    rate_all(lab, pairs, lambda p: "few-shot")
    rec = _advice(lab, run_id)
    (ev,) = rec.evidence["preference"]
    assert ev["win_rate"]["arm"] == "few-shot" and ev["win_rate"]["state"] == "meets"
    assert any(
        r.startswith("few-shot's win rate over zero-shot (by your ratings) meets the target 0.60") for r in rec.reasons
    )
