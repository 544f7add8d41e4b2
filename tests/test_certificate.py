"""A judge's certificate on constructed raters (perfect, random, order-biased), and the gate."""

from __future__ import annotations

import json
import random

import pytest

from lab.evaluation import certificate as cert
from lab.evaluation import judge, pairwise
from tests.text_tasks import rate_all


def _you(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(["a", "b", "b", "none"]) for _ in range(n)]


def test_a_perfect_judge_is_trusted():
    you = _you(30)
    c = cert.certify("big#1", you, list(you), flips=0, unparseable=0, judged=30)
    assert c.accuracy == 1.0 and c.kappa == pytest.approx(1.0) and c.kappa_lo == pytest.approx(1.0)
    assert c.trusted and "is trusted" in c.text()


def test_a_random_judge_is_not_trusted():
    you = _you(60)
    rng = random.Random(7)
    says = [rng.choice(cert.OUTCOMES) for _ in you]
    c = cert.certify("rnd#1", you, says, flips=0, unparseable=0, judged=60)
    assert abs(c.kappa) < 0.3 and c.kappa_lo < cert.KAPPA_LOWER
    assert not c.trusted and "kappa's lower bound" in c.reasons[0]


def test_an_order_biased_judge_flips_and_is_not_trusted():
    # always answers "A": every pair flips between the two orders, so every verdict is a tie
    you = _you(40)
    c = cert.certify("pos#1", you, ["none"] * 40, flips=40, unparseable=0, judged=40)
    assert c.kappa == pytest.approx(0.0) and c.flip_rate == 1.0
    assert not c.trusted and any("turns with the order" in r for r in c.reasons)


def test_unreadable_verdicts_and_too_few_pairs_are_refused():
    you = _you(30)
    assert any("could not be read" in r for r in cert.certify("j#1", you, you, 0, 1, 30).reasons)
    few = cert.certify("j#1", you[:10], you[:10], 0, 0, 10)
    assert not few.trusted and "20 needed" in few.reasons[0]


def test_kappa_matches_the_textbook_example():
    # Cohen (1960)-style 2x2: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po .7, pe .5, kappa .4
    x = [0] * 25 + [1] * 25
    y = [0] * 20 + [1] * 5 + [0] * 10 + [1] * 15
    import numpy as np

    assert cert.cohen_kappa(np.array(x), np.array(y)) == pytest.approx(0.4)


def _human(pair) -> str:
    """A scripted rater with a mix of outcomes: by the example's number."""
    i = int(pair.question.split()[1])
    return ["few-shot", "few-shot", "zero-shot", "tie"][i % 4]


def _faithful(pairs) -> list[str]:
    """What a judge that agrees with `_human` says, pair by pair, order "ab" then "ba"."""
    said = {"few-shot": ["B", "A"], "zero-shot": ["A", "B"], "tie": ["tie", "tie"]}
    return [v for p in pairs.items for v in said[_human(p)]]


def test_the_gate_uses_a_certified_judge_and_refuses_an_uncertified_one(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    rate_all(lab, pairs, _human)
    # a judge that always says "A" prefers whatever is shown first: every pair flips, refused
    lab.fake.default = "A"
    biased = judge.judge_pairs(lab, task, pairs)
    assert biased.asked == 48 and biased.stored == 48
    ev = cert.preference_evidence(lab, pairs, biased.judge)
    assert ev.source == "you" and not ev.certificate.trusted and ev.certificate.flip_rate == 1.0
    assert "not trusted" in ev.note and "Using your ratings" in ev.note
    assert (ev.preference.wins_b, ev.preference.wins_a, ev.preference.ties) == (12, 6, 6)  # yours
    # a judge that agrees with you in both orders (another rubric: another judge) is trusted
    lab.fake.queue(*_faithful(pairs))
    task2 = task.model_copy(update={"rubric": "Prefer the reply that follows the house style."})
    faithful = judge.judge_pairs(lab, task2, pairs)
    assert faithful.judge != biased.judge
    ev2 = cert.preference_evidence(lab, pairs, faithful.judge)
    assert ev2.source == "judge" and ev2.certificate.trusted, ev2.certificate.reasons
    assert ev2.certificate.kappa == pytest.approx(1.0) and ev2.certificate.flip_rate == 0.0
    assert ev2.preference.who == "fake" and ev2.preference.wins_b == 12
    # with no judge given, the newest judge of these pairs is the one certified
    assert cert.preference_evidence(lab, pairs).source == "judge"


def test_with_nothing_rated_the_evidence_says_so(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    ev = cert.preference_evidence(lab, pairs)
    assert ev.source is None and "rate some pairs" in ev.sentence


def test_judging_resumes_and_stops_on_cancel(evaluated_text):
    import threading

    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    lab.fake.default = "tie"
    stop = threading.Event()
    steps = []

    def on_step(done, total):
        steps.append(done)
        if done == 6:
            stop.set()

    first = judge.judge_pairs(lab, task, pairs, cancel=stop, on_step=on_step)
    assert first.cancelled and first.stored == 6
    second = judge.judge_pairs(lab, task, pairs)
    assert second.asked == 42 and second.stored == 48
    judged = judge.verdicts(lab, pairs, second.judge)
    assert len(judged) == 24 and all(j.preferred == "tie" and not j.flip for j in judged.values())


def test_unreadable_verdicts_are_counted_not_guessed(evaluated_text):
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    lab.fake.default = "I think the first one"
    run = judge.judge_pairs(lab, task, pairs, limit=3)
    judged = judge.verdicts(lab, pairs, run.judge)
    assert all(j.unparseable and j.preferred == "tie" and j.p_b is None for j in judged.values())
    assert judge.weighted_win_rate(lab, pairs, run.judge) is None  # the fake gives no probabilities
    assert judge.parse_verdict('{"verdict": "B"}') == "B" and judge.parse_verdict(" tie.") == "tie"
    assert judge.parse_verdict("C") is None


@pytest.mark.integration
def test_the_embedded_model_judges_both_orders_and_never_unreadably(evaluated_text):
    """The real 135M model as the judge, on llama.cpp: each pair asked in both orders (the two
    prompts differ only by which answer is A), every verdict held to A, B or tie by the grammar,
    logged as the judge's generations."""
    lab, task, _ = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    run = judge.judge_pairs(lab, task, pairs, model="smollm2-135m-instruct", limit=4)
    assert run.asked == 8 and run.judge.startswith("smollm2-135m-instruct#")
    rows = lab.store.judge_verdicts(pairs.eval_run_id, "zero-shot", "few-shot", run.judge)
    assert {r["order"] for r in rows} == {"ab", "ba"} and all(r["verdict"] in ("A", "B", "tie") for r in rows)
    first = {
        r["order"]: lab.store.generation(r["generation_id"]) for r in rows if r["example_id"] == rows[0]["example_id"]
    }
    assert first["ab"]["arm"] == "judge" and first["ab"]["model_id"] == "smollm2-135m-instruct"
    a_first, b_first = (json.loads(first[o]["messages_json"])[1]["content"] for o in ("ab", "ba"))
    p = pairs.items[0]
    assert a_first.index(p.text_a) < a_first.index(p.text_b) and b_first.index(p.text_b) < b_first.index(p.text_a)
    judged = judge.verdicts(lab, pairs, run.judge)
    c = cert.certificate(lab, pairs, run.judge)
    assert len(judged) == 4 and c.unparseable_rate == 0.0
    assert c.flip_rate == sum(j.flip for j in judged.values()) / 4
    assert not c.trusted  # four pairs, nobody rated them: never trusted
    # llama.cpp gives the verdicts' probabilities: the hard verdict is their most likely one
    for r in rows:
        probs = json.loads(r["probs_json"])
        assert set(probs) == {"zero-shot", "few-shot", "tie"} and abs(sum(probs.values()) - 1) < 1e-6
        assert r["preferred"] == max(probs, key=probs.get)
    weighted = judge.weighted_win_rate(lab, pairs, run.judge)
    assert 0.0 <= weighted <= 1.0
    assert any(
        "Weighted by its verdicts' probabilities" in line for line in judge.own_verdict_lines(lab, pairs, run.judge)
    )
