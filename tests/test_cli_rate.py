"""`lab rate` and `lab judge` in the terminal (the fake model's text task; keys piped to stdin)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lab.cli import cli
from lab.evaluation import pairwise


def _invoke(lab, args, stdin=""):
    return CliRunner().invoke(cli, args, obj={"lab": lab}, input=stdin)


def test_rate_shows_pairs_blind_saves_each_key_and_resumes(evaluated_text):
    lab, task, _ = evaluated_text
    where = str(task.source.parent)
    r = _invoke(lab, ["rate", where, "--arms", "zero-shot,few-shot"], "a\nb\nt\ns\nq\n")
    assert r.exit_code == 0, r.output
    assert "Rubric:" in r.output and "Answer A:" in r.output and "Answer B:" in r.output
    assert "zero-shot" not in r.output.split("stopped")[0].split("Rubric:")[1]  # blind: no arm named before the verdict
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    rows = lab.store.pair_ratings(pairs.eval_run_id, "zero-shot", "few-shot")
    assert [r["preferred"] in ("zero-shot", "few-shot") for r in rows] == [True, True, False]
    assert rows[0]["preferred"] == rows[0]["shown_first"] and rows[1]["preferred"] != rows[1]["shown_first"]
    assert "You preferred" in r.output and "too few to tell" in r.output
    # the same command continues with the pairs not rated (the skipped one is offered again)
    again = _invoke(lab, ["rate", where, "--arms", "few-shot,zero-shot"], "x\nq\n")
    assert again.exit_code == 0 and "pair 4 of 24" in again.output
    assert len(lab.store.pair_ratings(pairs.eval_run_id, "zero-shot", "few-shot")) == 4
    assert "both bad" in {r["preferred"] for r in lab.store.pair_ratings(pairs.eval_run_id, "zero-shot", "few-shot")}


def test_rate_verdict_only_and_a_clear_error(evaluated_text):
    lab, task, _ = evaluated_text
    where = str(task.source.parent)
    r = _invoke(lab, ["rate", where, "--arms", "zero-shot,few-shot", "--verdict-only"])
    assert r.exit_code == 0 and "No pair of zero-shot and few-shot rated yet" in r.output
    bad = _invoke(lab, ["rate", where, "--arms", "zero-shot,tune"])
    assert bad.exit_code == 2 and "evaluate both arms first" in bad.output and "Traceback" not in bad.output


def test_judge_prints_the_certificate_and_the_verdict_it_used(evaluated_text):
    lab, task, _ = evaluated_text
    where = str(task.source.parent)
    lab.fake.default = "A"  # a judge that always picks the first answer
    r = _invoke(lab, ["judge", where, "--arms", "zero-shot,few-shot", "--limit", "5"])
    assert r.exit_code == 0, r.output
    assert "is not trusted for this task" in r.output and "order flips 100%" in r.output
    assert "The judge fake preferred" in r.output  # its own verdict, said, then not used:
    assert "Verdict used (your ratings): none yet: rate pairs blind" in r.output
    out = json.loads(_invoke(lab, ["judge", where, "--arms", "zero-shot,few-shot", "--limit", "5", "--json"]).output)
    assert out["certificate"]["judged"] == 5 and out["certificate"]["trusted"] is False
    assert len(lab.fake.calls) == 48 + 10  # the second run asked nothing: every verdict was stored
