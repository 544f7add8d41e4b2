"""The climb's decision at each rung, on synthetic scoreboards: every branch of `next_step`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lab.climb.decide import ArmResult, Situation, best_of, judge, knowledge_shaped, next_step, step_of
from lab.evaluation import stats


def arm(name: str, hits: int, n: int, **failures) -> ArmResult:
    """A binary arm with its real interval (what the scoreboard computes)."""
    est = stats.mean_ci([1.0] * hits + [0.0] * (n - hits), "binary")
    fails = failures or {"answer wrong": n - hits}
    return ArmResult(name, est.mean, est.lo, est.hi, n, {k.replace("_", " "): v for k, v in fails.items()})


def situation(**kw) -> Situation:
    base = dict(task="t", target=0.8, output_format="label", has_corpus=False, train_examples=300, eval_examples=80)
    return Situation(**{**base, **kw})


def test_the_climb_starts_with_the_prompt_rung():
    d = next_step(situation())
    assert (d.action, d.step, d.outcome) == ("run", "prompt", "start")


def test_meets_significantly_stops_at_the_cheapest_rung():
    s = situation(done=["prompt"], results={"zero-shot": arm("zero-shot", 10, 40), "few-shot": arm("few-shot", 39, 40)})
    assert s.results["few-shot"].lo >= 0.8
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "meets") and "few-shot" in d.reason


def test_a_maybe_with_unused_examples_evaluates_more_of_them_itself():
    # issue 21: the climb stopped with "rerun with a larger --limit" although 70 examples were unused
    s = situation(done=["prompt"], limit=8, results={"few-shot": arm("few-shot", 7, 8)})
    assert judge(s.results["few-shot"], 0.8) == "maybe"
    d = next_step(s)
    assert (d.action, d.step, d.outcome, d.limit) == ("more", "prompt", "maybe", 16)
    assert "evaluating 16" in d.reason


def test_a_maybe_stops_only_when_evaluating_more_would_not_fit_the_budget():
    s = situation(
        done=["prompt"],
        limit=40,
        results={"few-shot": arm("few-shot", 35, 40)},
        budget_left_s=30.0,
        estimates={"more": 300.0},
    )
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "maybe") and "budget" in d.reason
    s.estimates["more"] = 10.0
    assert next_step(s).action == "more" and next_step(s).limit == 80


def test_not_significant_on_every_example_climbs_on():
    s = situation(done=["prompt"], eval_examples=8, limit=None, results={"few-shot": arm("few-shot", 7, 8)})
    d = next_step(s)
    assert (d.action, d.step) == ("run", "tune") and "interval reaches below" in d.reason


def test_misses_with_a_corpus_goes_to_rag():
    s = situation(
        output_format="text",
        has_corpus=True,
        done=["prompt"],
        results={"zero-shot": arm("zero-shot", 1, 20), "few-shot": arm("few-shot", 2, 20)},
    )
    d = next_step(s)
    assert (d.action, d.step, d.outcome) == ("run", "rag", "climb") and "few-shot 0.100" in d.reason


def test_misses_without_a_corpus_on_a_format_task_skips_rag_and_tunes():
    s = situation(
        output_format="json",
        done=["prompt"],
        results={"few-shot": arm("few-shot", 2, 20, output_invalid=15, answer_wrong=3)},
    )
    d = next_step(s)
    assert (d.action, d.step) == ("run", "tune") and d.skipped and d.skipped[0].startswith("rag")


def test_knowledge_failures_without_a_corpus_stop_and_ask_for_one():
    s = situation(output_format="text", done=["prompt"], results={"few-shot": arm("few-shot", 2, 20)})
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "no-corpus") and "corpus" in d.reason


def test_rag_missing_on_knowledge_stops_at_rag():
    s = situation(
        output_format="text",
        has_corpus=True,
        done=["prompt", "rag"],
        results={"few-shot": arm("few-shot", 1, 20), "rag": arm("rag", 6, 20, answer_wrong=8, retrieval_missed=6)},
    )
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "knowledge") and "behaviour, not knowledge" in d.reason


def test_rag_missing_on_format_goes_to_tune():
    s = situation(
        output_format="text",
        has_corpus=True,
        done=["prompt", "rag"],
        results={"rag": arm("rag", 6, 20, output_invalid=12, answer_wrong=2)},
    )
    assert knowledge_shaped(s.results["rag"], "json") is False
    d = next_step(s)
    assert (d.action, d.step) == ("run", "tune") and "tune+rag" in d.reason


@pytest.mark.parametrize("n_train, words", [(12, "refuses fewer than 20"), (150, "below the 200")])
def test_too_few_training_examples_stops_before_tune(n_train, words):
    s = situation(
        output_format="json",
        train_examples=n_train,
        done=["prompt"],
        results={"few-shot": arm("few-shot", 2, 20, output_invalid=18)},
    )
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "too-few") and words in d.reason and d.skipped[-1].startswith("tune")


def test_min_train_lowers_the_bar_but_not_the_trainers_refusal():
    s = situation(
        output_format="json",
        train_examples=150,
        min_train=100,
        done=["prompt"],
        results={"few-shot": arm("few-shot", 2, 20, output_invalid=18)},
    )
    assert next_step(s).step == "tune"


def test_budget_exhausted_stops_before_the_step_that_would_not_fit():
    s = situation(
        output_format="json",
        done=["prompt"],
        budget_left_s=300,
        estimates={"tune": 1200},
        results={"few-shot": arm("few-shot", 2, 20, output_invalid=18)},
    )
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "budget") and "20.0 min" in d.reason and d.skipped[-1].startswith("tune")
    s.estimates["tune"] = 200
    assert next_step(s).step == "tune"


def test_budget_can_stop_even_the_first_step():
    d = next_step(situation(budget_left_s=10, estimates={"prompt": 60}))
    assert (d.action, d.outcome) == ("stop", "budget")


def test_up_to_stops_before_a_higher_rung():
    s = situation(has_corpus=True, up_to="prompt", done=["prompt"], results={"few-shot": arm("few-shot", 2, 20)})
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "up-to") and d.skipped == ["rag: beyond --up-to prompt"]


def test_tune_missing_is_the_top():
    s = situation(
        output_format="json",
        done=["prompt", "tune"],
        results={"few-shot": arm("few-shot", 2, 20), "tune": arm("tune", 10, 20)},
    )
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "top")


def test_tune_meeting_stops_there():
    s = situation(
        output_format="json",
        done=["prompt", "tune"],
        results={"few-shot": arm("few-shot", 2, 40), "tune": arm("tune", 40, 40)},
    )
    assert next_step(s).outcome == "meets"


def test_graded_scores_use_the_clopper_pearson_interval():
    est = stats.mean_ci([0.9, 1.0, 0.95, 1.0, 0.92, 0.97, 1.0, 0.99] * 3, "graded")
    graded = ArmResult("few-shot", est.mean, est.lo, est.hi, est.n)
    assert judge(graded, 0.8) == "meets" and judge(graded, 0.85) == "maybe" and judge(graded, 0.97) == "misses"


def test_a_perfect_graded_score_on_too_few_examples_is_not_trusted():
    est = stats.mean_ci([1.0] * 6, "graded")  # no spread, yet the interval reflects n (issue 21)
    assert est.lo < 0.6
    assert judge(ArmResult("tune", est.mean, est.lo, est.hi, est.n), 0.85) == "maybe"


def test_the_best_of_many_prompt_configurations_pays_for_the_pick():
    # 19 of 20 meets 0.75 alone (lower end 0.751), but not as the best of 11 configurations
    results = {"zero-shot": arm("zero-shot", 10, 20), "few-shot": arm("few-shot", 12, 20)}
    results |= {
        f"few-shot, {k} similar examples": replace(
            arm(f"few-shot, {k} similar examples", 12, 20), ladder_arm="few-shot"
        )
        for k in range(2, 10)
    }
    best = "few-shot, 8 similar examples, constrained"
    results[best] = replace(arm(best, 19, 20), ladder_arm="few-shot")
    alone = arm("x", 19, 20)
    assert judge(alone, 0.75) == "meets"
    best = best_of(situation(done=["prompt"], results=results), "prompt")
    assert best.candidates == 11 and judge(best, 0.75) == "maybe"
    d = next_step(situation(done=["prompt"], target=0.75, limit=20, results=results))
    assert d.action == "more" and "one of 11 chances" in d.reason


def test_the_prompt_rungs_other_configurations_count_and_a_tie_goes_to_the_cheaper():
    similar = "few-shot, 8 similar examples"
    assert step_of(replace(arm(similar, 1, 2), ladder_arm="few-shot")) == "prompt"
    assert step_of(arm("tune+rag", 1, 2)) == "tune" and step_of(arm("rag", 1, 2)) == "rag"
    tie = situation(
        done=["prompt"],
        results={
            "zero-shot": arm("zero-shot", 20, 40),
            "few-shot": arm("few-shot", 20, 40),
            similar: replace(arm(similar, 20, 40), ladder_arm="few-shot"),
        },
    )
    assert best_of(tie, "prompt").arm == "zero-shot"  # the cheapest of equals
    tie.results[similar] = replace(arm(similar, 39, 40), ladder_arm="few-shot")
    d = next_step(tie)
    assert best_of(tie, "prompt").arm == similar
    assert (d.action, d.outcome) == ("stop", "meets") and similar in d.reason
    tune_tie = situation(
        done=["prompt", "rag", "tune"], results={"tune": arm("tune", 30, 40), "tune+rag": arm("tune+rag", 30, 40)}
    )
    assert best_of(tune_tie, "tune").arm == "tune"


# ---- teaches: the declared kind of failure, not only the guessed one (issue 23) ------------------

# An outside persona task ("I am Ladder, an AI assistant developed by Orbital Labs"): free text, no
# corpus, and the wrong answers are well-formed sentences in the wrong voice.
PERSONA = dict(output_format="text", done=["prompt"], results={"few-shot": arm("few-shot", 2, 20)})


def test_declared_behaviour_tunes_a_persona_and_says_the_failures_look_otherwise():
    d = next_step(situation(teaches="behaviour", **PERSONA))
    assert (d.action, d.step) == ("run", "tune")
    assert (
        "task.toml declares behaviour, but 18 of 18 wrong answers are well-formed and wrong, which looks like "
        "missing knowledge: following the declaration; change `teaches`" in d.reason
    )
    assert d.skipped == ["rag: the task has no corpus, and it teaches behaviour (declared), not missing knowledge"]


def test_declared_behaviour_after_rag_tunes_too():
    s = situation(
        output_format="text",
        has_corpus=True,
        teaches="behaviour",
        done=["prompt", "rag"],
        results={"rag": arm("rag", 6, 20, answer_wrong=8, retrieval_missed=6)},
    )
    d = next_step(s)
    assert (d.action, d.step) == ("run", "tune") and "task.toml declares behaviour, but 14 of 14" in d.reason


def test_declared_knowledge_stops_before_tuning_even_on_format_failures():
    s = situation(
        output_format="json", teaches="knowledge", done=["prompt"], results={"few-shot": arm("few-shot", 2, 20)}
    )
    d = next_step(s)
    assert (d.action, d.outcome) == ("stop", "no-corpus")
    assert (
        "task.toml declares knowledge, but a json task's failures" in d.reason
        and "following the declaration" in d.reason
    )
    rag = situation(
        output_format="text",
        has_corpus=True,
        teaches="knowledge",
        done=["prompt", "rag"],
        results={"rag": arm("rag", 6, 20, output_invalid=12, answer_wrong=2)},
    )
    d = next_step(rag)
    assert (d.action, d.outcome) == ("stop", "knowledge")
    assert "task.toml declares knowledge, but 12 of 14 wrong answers are format failures" in d.reason


def test_a_declaration_the_failures_agree_with_says_so():
    d = next_step(situation(teaches="knowledge", **PERSONA))
    assert (d.action, d.outcome) == ("stop", "no-corpus")
    assert "task.toml declares knowledge, and the failures agree: 18 of 18 wrong answers are well-formed" in d.reason


def test_undeclared_guesses_from_the_failures_as_before_and_says_it_is_a_guess():
    d = next_step(situation(**PERSONA))
    assert (d.action, d.outcome) == ("stop", "no-corpus")  # today's guess, unchanged
    assert "18 of 18 wrong answers are well-formed and wrong, which looks like missing knowledge" in d.reason
    cut = situation(**{**PERSONA, "results": {"few-shot": arm("few-shot", 2, 20, answer_wrong=12, truncated=6)}})
    assert "18 of 18 wrong answers are not format failures (12 well-formed and wrong)" in next_step(cut).reason
    assert "does not declare `teaches`, so the climb guesses from the failures" in d.reason
    assert 'declare teaches = "knowledge" or "behaviour" in task.toml' in d.reason
    tunes = next_step(situation(output_format="json", done=["prompt"], results={"few-shot": arm("few-shot", 2, 20)}))
    assert tunes.step == "tune" and "guesses from the failures" in tunes.reason
    assert tunes.skipped[0] == "rag: the task has no corpus, and it teaches behaviour (guessed), not missing knowledge"


def test_the_plan_line_says_declared_or_guessed():
    from lab.climb.decide import teaches_text

    assert teaches_text("behaviour", "text").startswith("teaches: behaviour (declared in task.toml")
    assert teaches_text(None, "label").startswith("teaches: behaviour (guessed: a label task's failures")
    assert "(guessed from the failures" in teaches_text(None, "text")


def test_the_rag_stop_names_the_levers_where_the_knowledge_got_lost():
    from types import SimpleNamespace

    from lab.climb.decide import failures_look, rag_levers

    unused = SimpleNamespace(failures={"retrieved but not used": 7, "not retrieved": 2})
    assert rag_levers(unused).startswith("7 of 9 split wrong answers had the answer in their passages: mostly")
    assert "larger model" in rag_levers(unused) and "embedder" not in rag_levers(unused)
    missed = SimpleNamespace(failures={"retrieved but not used": 1, "not retrieved": 6})
    assert "mostly not retrieved" in rag_levers(missed) and "larger model" not in rag_levers(missed)
    # well-formed wrong answers count as knowledge-shaped whether they were retrieved or not
    assert failures_look(unused, "text")[1].startswith("9 of 9 wrong answers are well-formed and wrong")
