"""How long one answer takes here (lab/evaluation/speed.py): the task's own answers, else the
model's logged token rates, else three probe answers timed on a fresh home, else a rough figure."""

from __future__ import annotations

from lab.evaluation.speed import AnswerSpeed, prompt_tokens
from lab.tasks import load_task


def _generations(lab) -> int:
    return lab.store.answer_seconds("fake")[1]


def test_a_fresh_home_gets_a_rough_figure_without_the_probe_and_a_measured_one_with_it(fake_lab):
    task = load_task("tickets")
    seconds, basis = AnswerSpeed(fake_lab, "fake").seconds(task, "zero-shot")
    assert "rough figure" in basis and seconds > 0 and _generations(fake_lab) == 0  # nothing generated
    fake_lab.fake.default = "a reply of several words, as a model would write"
    seconds, basis = AnswerSpeed(fake_lab, "fake", probe=True).seconds(task, "zero-shot")
    assert basis == "three probe answers timed just now" and _generations(fake_lab) == 3
    again = AnswerSpeed(fake_lab, "fake", probe=True)
    assert again.seconds(task, "zero-shot")[1] == "this model's logged answer speed" and _generations(fake_lab) == 3


def test_the_prompt_size_counts_the_shots_and_the_passages():
    task = load_task("specialty")
    assert prompt_tokens(task, "few-shot") > prompt_tokens(task, "zero-shot")
    assert prompt_tokens(task, "rag") > prompt_tokens(task, "zero-shot")
