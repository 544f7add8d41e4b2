"""The Evaluate tab's Rate view (lab/app/rate_block.py), its callbacks on a fake model: blind pairs
shown as Answer A and B, picks stored with their timing, skip, stop and resume, the verdict, the
judge and its certificate, and the engine's errors as a message in the page."""

from __future__ import annotations

import json
import time

import gradio as gr
import pytest

from lab.app import rate_block
from lab.app.app import build_app
from lab.evaluation import pairwise
from lab.evaluation.runner import run_eval
from tests.text_tasks import text_task

N = 24  # text_task's held-out examples
# view(): (state, pane, shown id, input, rubric, answer A, answer B, progress, verdict, message)
STATE, PANE, SHOWN, QUESTION, RUBRIC, A, B, PROGRESS, VERDICT, MESSAGE = range(10)


@pytest.fixture
def tone_lab(fake_lab):
    """Task `tone` in the lab home, evaluated on zero-shot and few-shot (each answer its own text)."""
    task = text_task(fake_lab.home.root / "tasks" / "tone", n=N)
    fake_lab.fake.queue(*[f"answer {i}" for i in range(2 * N)])
    run_eval(fake_lab, task, ["zero-shot", "few-shot"], progress=False)
    return fake_lab


def _start(lab):
    return rate_block.start(lab, "tone", "zero-shot", "few-shot")


def _pick(lab, out, arm: str):
    """Press the button that prefers `arm` (or "tie", "both bad") for the pair on screen."""
    rating = out[STATE]
    if arm in ("tie", "both bad"):
        return rate_block.rate_pair(lab, rating, out[SHOWN], arm)
    return rate_block.rate_pair(lab, rating, out[SHOWN], "A" if rating.shown.left == arm else "B")


def test_start_shows_one_pair_blind_with_the_rubric(tone_lab):
    out = _start(tone_lab)
    rating = out[STATE]
    pair = rating.shown.pair
    assert out[PANE]["visible"] is True and out[MESSAGE] == ""
    assert out[QUESTION] == pair.question and out[SHOWN] == pair.example_id
    assert {out[A], out[B]} == {pair.text_a, pair.text_b} and out[A] == rating.shown.text("A")
    assert "Prefer the friendlier reply." in out[RUBRIC]
    assert out[PROGRESS].startswith(f"**0 of {N} pairs rated**")
    shown_text = " ".join(str(v) for v in out[1:] if isinstance(v, str))
    assert "zero-shot" not in shown_text and "few-shot" not in shown_text  # blind: no arm named
    assert out[VERDICT] == ""


def test_each_pick_is_stored_timed_and_the_next_unrated_pair_shows(tone_lab):
    out = _start(tone_lab)
    first = out[STATE].shown
    out = rate_block.rate_pair(tone_lab, out[STATE], out[SHOWN], "A")
    pairs = out[STATE].pairs
    row = pairwise.ratings(tone_lab, pairs)[first.pair.example_id]
    assert (row["preferred"], row["shown_first"], row["rater"]) == (first.left, first.left, "you")
    assert row["seconds"] is not None and 0 <= row["seconds"] < 60
    assert out[SHOWN] != first.pair.example_id and out[PROGRESS].startswith(f"**1 of {N} pairs rated**")
    assert out[VERDICT] == ""  # never while a pair is on screen: it would name the arm just picked
    second = out[STATE].shown
    out = rate_block.rate_pair(tone_lab, out[STATE], out[SHOWN], "B")
    assert pairwise.ratings(tone_lab, pairs)[second.pair.example_id]["preferred"] == second.right
    out = rate_block.rate_pair(tone_lab, out[STATE], out[SHOWN], "tie")
    out = rate_block.rate_pair(tone_lab, out[STATE], out[SHOWN], "both bad")
    picks = [r["preferred"] for r in pairwise.ratings(tone_lab, pairs).values()]
    assert len(picks) == 4 and picks.count("tie") == picks.count("both bad") == 1


def test_a_press_for_the_pair_just_rated_does_not_rate_the_next_one(tone_lab):
    out = _start(tone_lab)
    old = out[SHOWN]
    out = rate_block.rate_pair(tone_lab, out[STATE], old, "A")
    again = rate_block.rate_pair(tone_lab, out[STATE], old, "B")  # a second key press, sent before the next pair came
    assert len(pairwise.ratings(tone_lab, out[STATE].pairs)) == 1 and again[SHOWN] == out[SHOWN]


def test_skip_stop_and_start_again_resumes_with_the_unrated_pairs(tone_lab):
    out = _start(tone_lab)
    skipped = out[SHOWN]
    out = rate_block.skip(tone_lab, out[STATE], out[SHOWN])
    assert out[SHOWN] != skipped and out[PROGRESS].startswith(f"**0 of {N}")
    rated = set()
    for _ in range(3):
        rated.add(out[SHOWN])
        out = _pick(tone_lab, out, "few-shot")
    out = rate_block.stop(tone_lab, out[STATE])
    assert out[PANE]["visible"] is False and "Stopped" in out[MESSAGE]
    assert "You preferred few-shot in 3 of 3 pairs" in out[VERDICT]
    out = _start(tone_lab)  # a new session: the skipped pair comes back, the rated ones do not
    assert out[SHOWN] == skipped and out[PROGRESS].startswith(f"**3 of {N} pairs rated**")
    seen = []
    while out[STATE].shown is not None:
        seen.append(out[SHOWN])
        out = _pick(tone_lab, out, "few-shot" if len(seen) % 4 else "zero-shot")
    assert not rated & set(seen) and len(seen) == N - 3
    assert out[PANE]["visible"] is False and f"All {N} pairs are rated" in out[MESSAGE]
    assert "significant" in out[VERDICT] and "few-shot is preferred" in out[VERDICT]
    rows = tone_lab.store.pair_ratings(out[STATE].pairs.eval_run_id, "zero-shot", "few-shot")
    assert len(rows) == N and len({r["example_id"] for r in rows}) == N


def test_the_engine_errors_are_a_message_in_the_page(tone_lab):
    out = rate_block.start(tone_lab, "tone", "zero-shot", "tune")
    assert out[PANE]["visible"] is False and "evaluate both arms first" in out[MESSAGE]
    assert "exactly two" in rate_block.start(tone_lab, "tone", "few-shot", "few-shot")[MESSAGE]
    assert "unknown task 'nope'" in rate_block.start(tone_lab, "nope", "zero-shot", "few-shot")[MESSAGE]
    assert "Start rating" in rate_block.rate_pair(tone_lab, None, "", "A")[MESSAGE]
    assert "Traceback" not in out[MESSAGE]


def test_the_arms_default_to_the_baseline_and_tune_else_the_newest_evaluation(tone_lab, monkeypatch):
    a, b, *view = rate_block.arm_choices(tone_lab, "tone")
    assert (a["value"], b["value"]) == ("zero-shot", "few-shot")  # no tune evaluated: the newest run's two
    assert view[PANE]["visible"] is False
    task = text_task(tone_lab.home.root / "tasks" / "tone")

    def run(arms, **config):
        return {"arms_json": json.dumps(arms), "config_json": json.dumps(config), "results": 4}

    runs = [run(["rag", "tune"], sweep="prompt"), run(["few-shot", "rag"]), run(["zero-shot", "tune"])]
    monkeypatch.setattr(tone_lab.store, "eval_runs", lambda n, task_name: runs)
    assert pairwise.default_arms(tone_lab, task) == ("zero-shot", "tune")  # the baseline and tune, evaluated
    runs.pop()
    assert pairwise.default_arms(tone_lab, task) == ("few-shot", "rag")  # a sweep's run is passed over
    runs.clear()
    assert pairwise.default_arms(tone_lab, task) == ("zero-shot", "tune")


def _rate_all(lab, split: int):
    """You prefer few-shot on the first `split` pairs of the run's order, zero-shot on the rest."""
    out = _start(lab)
    order = [p.example_id for p in out[STATE].pairs.items]
    while out[STATE].shown is not None:
        out = _pick(lab, out, "few-shot" if order.index(out[SHOWN]) < split else "zero-shot")
    return out[STATE].pairs, order


def _judge(lab, model="fake"):
    return list(rate_block.judge(lab, "tone", "zero-shot", "few-shot", model, page="test"))


def test_an_untrusted_judge_says_so_and_your_ratings_are_used(tone_lab):
    _rate_all(tone_lab, 12)
    tone_lab.fake.queue(*["A"] * (2 * N))  # always "A": it reads the position, every pair flips
    steps = _judge(tone_lab)
    bar, text = steps[-1]
    assert len(steps) >= 2 * N and "48 / 48" in bar
    assert "⚠ The judge fake is not trusted for this task: your ratings are used" in text
    assert "turns with the order" in text and "You preferred" in text and "Using your ratings instead." in text


def test_a_judge_that_agrees_with_you_is_trusted_and_its_verdict_used(tone_lab):
    pairs, order = _rate_all(tone_lab, 12)
    # order "ab" shows zero-shot first: a judge that prefers few-shot says B then A
    said = [v for e in order for v in (("B", "A") if order.index(e) < 12 else ("A", "B"))]
    tone_lab.fake.queue(*said)
    _bar, text = _judge(tone_lab)[-1]
    assert "✓ The judge fake is trusted for this task" in text and "The judge fake preferred" in text


def test_the_judge_cancels_and_judging_again_resumes(tone_lab, monkeypatch):
    generate = tone_lab.fake.generate

    def slow(*args, **kwargs):  # a judge slow enough to be cancelled mid-run
        time.sleep(0.05)
        return generate(*args, **kwargs)

    monkeypatch.setattr(tone_lab.fake, "generate", slow)
    steps = rate_block.judge(tone_lab, "tone", "zero-shot", "few-shot", "fake", page="p1")
    next(steps)
    assert "Cancelling" in rate_block.judge_cancel("p1")
    *_, (_bar, text) = steps
    assert "Cancelled" in text and "p1" not in rate_block._JUDGING
    assert "No judge is running" in rate_block.judge_cancel("p1")
    *_, (bar, text) = rate_block.judge(tone_lab, "tone", "zero-shot", "few-shot", "fake", page="p1")
    assert "48 / 48" in bar and "not trusted" in text  # nothing rated by you: not trusted


def test_the_evaluate_tab_has_the_rate_view(fake_lab):
    demo = build_app(fake_lab)
    ids = {b.elem_id for b in demo.blocks.values()}
    assert {"rate-start", "rate-a", "rate-b", "rate-tie", "rate-bad", "rate-skip", "rate-stop", "rate-judge"} <= ids
    labels = {b.label for b in demo.blocks.values() if isinstance(b, gr.Textbox)}
    assert {"Answer A", "Answer B"} <= labels
    assert any(fn.js and "__labRateKeys" in fn.js for fn in demo.fns.values())
