"""A small text task evaluated by the fake model, and a scripted rater: what the pairwise,
certificate, rate-view and advisor tests share (the `evaluated_text` fixture is in conftest)."""

from __future__ import annotations

import json
from pathlib import Path

from lab.evaluation import pairwise
from lab.evaluation.runner import run_eval
from lab.tasks import load_task


def text_task(folder: Path, n: int = 24, rubric: str = "Prefer the friendlier reply."):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"input": f"Message {i} from Ann", "output": f"Hi Ann, reply {i}. — Maya"} for i in range(n)]
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "fewshot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (folder / "task.toml").write_text(
        'name = "tone"\ninstruction = "Reply to the customer."\noutput_format = "text"\n'
        'scorers = ["rouge_l"]\nprimary_metric = "rouge_l"\neval = "eval.jsonl"\nfewshot = "fewshot.jsonl"\n'
        f'few_shot_k = 2\njudge = "pairwise"\nrubric = """{rubric}"""\n'
    )
    return load_task(folder)


def evaluate_text_task(fake_lab, folder: Path):
    """A text task evaluated on zero-shot and few-shot by the fake model (answers differ per arm)."""
    task = text_task(folder)
    fake_lab.fake.queue(*[f"answer {i}" for i in range(2 * 24)])
    run_id = run_eval(fake_lab, task, ["zero-shot", "few-shot"], progress=False)
    return fake_lab, task, run_id


def rate_all(lab, pairs, pick):
    """A scripted rater: pick(pair) -> the preferred arm, or "tie"/"both bad"."""
    while (shown := pairwise.next_pair(lab, pairs)) is not None:
        want = pick(shown.pair)
        choice = want if want in pairwise.NO_PREFERENCE else ("A" if want == shown.left else "B")
        pairwise.rate(lab, shown, choice)
