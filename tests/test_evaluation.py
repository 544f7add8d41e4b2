"""Evaluation: scorers on hand-made cases, costs, the
resumable runner (including a real process killed mid-run), the scoreboard, and end-to-end
runs of every arm with the real default model. The statistics are in tests/test_stats.py."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lab.backends.fake import FakeBackend
from lab.engine import Lab
from lab.evaluation import costs, run_eval, summarize
from lab.evaluation import scorers as S
from lab.ladder import ArmError
from lab.tasks import load_task

LABELS = ["Dermatologist", "Cardiologist", "Neurologist"]


def _write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def label_task(tmp_path) -> Path:
    """A 6-example label task with a few-shot pool, as a task.toml in tmp_path."""
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "task.toml").write_text(
        textwrap.dedent("""
        name = "mini"
        instruction = "Name the doctor specialty."
        output_format = "label"
        labels = ["Dermatologist", "Cardiologist", "Neurologist"]
        scorers = ["exact_match", "macro_f1"]
        primary_metric = "exact_match"
        target = 0.8
        eval = "eval.jsonl"
        fewshot = "fewshot.jsonl"
        train = "fewshot.jsonl"
        few_shot_k = 2
        max_tokens = 8
    """)
    )
    _write_jsonl(
        folder / "eval.jsonl",
        [
            {"id": f"e{i}", "input": text, "output": label}
            for i, (text, label) in enumerate(
                [
                    ("itchy rash on my arm", "Dermatologist"),
                    ("chest pain when climbing stairs", "Cardiologist"),
                    ("constant headaches and numb fingers", "Neurologist"),
                    ("dark spot on my skin", "Dermatologist"),
                    ("my heart races at night", "Cardiologist"),
                    ("I keep forgetting words", "Neurologist"),
                ]
            )
        ],
    )
    _write_jsonl(
        folder / "fewshot.jsonl",
        [
            {"id": "f1", "input": "acne on my back", "output": "Dermatologist"},
            {"id": "f2", "input": "palpitations", "output": "Cardiologist"},
            {"id": "f3", "input": "numbness in my leg", "output": "Neurologist"},
        ],
    )
    return folder


@pytest.fixture
def json_task(tmp_path) -> Path:
    folder = tmp_path / "tix"
    folder.mkdir()
    schema = {
        "type": "object",
        "required": ["priority", "summary"],
        "additionalProperties": False,
        "properties": {"priority": {"type": "string", "enum": ["low", "high"]}, "summary": {"type": "string"}},
    }
    (folder / "schema.json").write_text(json.dumps(schema))
    (folder / "task.toml").write_text(
        textwrap.dedent("""
        name = "tix"
        output_format = "json"
        json_schema = "schema.json"
        scorers = ["json_valid", "schema_valid", "field_accuracy"]
        primary_metric = "field_accuracy"
        eval = "eval.jsonl"
    """)
    )
    _write_jsonl(
        folder / "eval.jsonl",
        [
            {"id": "t1", "input": "my order never came", "output": {"priority": "high", "summary": "order missing"}},
            {"id": "t2", "input": "nice product", "output": {"priority": "low", "summary": "praise"}},
        ],
    )
    return folder


def count(lab, run_id):
    return lab.store.query("select count(*) n from eval_results where eval_run_id = ?", [run_id])[0]["n"]


# ---- scorers -----------------------------------------------------------------------------


def test_exact_match_and_labels_normalise_near_misses():
    assert S.exact_match("  The Dermatologist. ", "dermatologist") == 1.0
    assert S.exact_match("Dermatology", "Dermatologist") == 0.0  # a near miss is a miss
    assert S.label_accuracy("Answer: Cardiologist", "Cardiologist", LABELS) == 1.0
    assert S.label_accuracy("Cardiologist or Neurologist", "Cardiologist", LABELS) == 0.0  # hedging
    assert S.label_accuracy("neurologist\nbecause of the numbness", "Neurologist", LABELS) == 1.0
    assert S.label_valid("I am not sure", LABELS) == 0.0
    assert S.extract_label("Orthopedic Surgeon", ["Surgeon", "Orthopedic Surgeon"]) == "Orthopedic Surgeon"


@pytest.mark.parametrize(
    "text,ok",
    [
        ('{"a": 1}', True),
        ('```json\n{"a": 1}\n```', True),
        ('Sure! Here is the ticket: {"a": "x {not a brace} y"} Hope that helps.', True),
        ('{"a": 1,}', False),  # trailing comma
        ("{'a': 1}", False),  # single quotes
        ('{"a": "unterminated', False),
        ("", False),
        ("no json here", False),
        ("[1, 2]", False),  # valid JSON but not an object
    ],
)
def test_json_extraction_is_tolerant_but_not_lenient(text, ok):
    assert S.json_valid(text) == float(ok)


def test_extract_json_says_why():
    obj, err = S.extract_json('{"a": 1,}')
    assert obj is None and "invalid JSON" in err
    assert S.extract_json("")[1] == "empty output"


def test_schema_validity_and_field_accuracy():
    schema = {
        "type": "object",
        "required": ["priority", "category"],
        "properties": {
            "priority": {"enum": ["low", "high"]},
            "category": {"enum": ["billing", "other"]},
            "summary": {"type": "string"},
        },
    }
    gold = '{"priority": "high", "category": "billing", "summary": "double charge on my order"}'
    assert S.schema_valid('{"priority": "high", "category": "billing"}', schema) == 1.0
    assert S.schema_valid('{"priority": "urgent", "category": "billing"}', schema) == 0.0  # not in the enum
    assert S.schema_valid('{"priority": "high"}', schema) == 0.0  # missing field
    assert S.schema_valid("not json", schema) == 0.0
    assert S.schema_valid("{}", None) is None  # no schema: not applicable
    pred = '{"priority": "HIGH", "category": "other", "summary": "charged twice for my order"}'
    fs = S.field_scores(pred, gold, text_fields=["summary"])
    assert fs["priority"] == 1.0 and fs["category"] == 0.0 and 0 < fs["summary"] < 1
    assert S.field_accuracy(pred, gold, text_fields=["summary"]) == 0.5  # categorical fields only
    assert S.field_accuracy("garbage", gold) == 0.0


def test_token_f1_and_rouge_l_known_values():
    assert S.token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)  # 'the' dropped: p=1, r=2/3
    assert S.token_f1("", "") == 1.0 and S.token_f1("x", "y") == 0.0
    # LCS of "a b c d" and "a c b d" is 3 tokens: p = r = 3/4
    assert S.rouge_l("alpha beta gamma delta", "alpha gamma beta delta") == pytest.approx(0.75)
    assert S.rouge_l("one two", "three four") == 0.0


def test_contains_fact_with_aliases_and_numbers():
    assert S.contains_fact("The AX-220 costs $1,200 per unit.", "$1200") == 1.0
    assert S.contains_fact("It costs 1200 dollars", "120") == 0.0  # whole numbers only
    assert S.contains_fact("Support runs on macOS Ventura and later", "macOS 13", ["macOS Ventura"]) == 1.0
    assert S.contains_fact("It comes with a 12-month warranty", "12 months", ["12-month"]) == 1.0
    assert S.contains_fact("I don't know", "12 months") == 0.0
    assert S.contains_fact("version 2.5 is current", "2.5") == 1.0
    assert S.contains_fact("version 2.4 is current", "2.5") == 0.0


def test_citation_and_recall_at_k():
    passages = [
        {"source": "company/about.md", "text": "Founded 2011"},
        {"source": "products/ax-220.md#2", "text": "The AX-220 costs $649."},
    ]
    assert S.recall_at_k(passages, "products/ax-220.md") == 1.0
    assert S.recall_at_k(passages[:1], "products/ax-220.md") == 0.0
    assert S.recall_at_k(passages, None) is None
    assert S.citation_correct("It costs $649 [2].", passages, "products/ax-220.md") == 1.0
    assert S.citation_correct("It costs $649 [1].", passages, "products/ax-220.md") == 0.0  # wrong source
    assert S.citation_correct("It costs $649.", passages, "products/ax-220.md") == 0.0  # no citation
    assert S.citation_correct("It costs $649 [7].", passages, "products/ax-220.md") == 0.0  # out of range
    assert S.citation_correct("$649 [1, 2]", passages, None, gold="$649") == 1.0  # no gold doc: by the text
    assert S.citation_correct("x", None, "a.md") is None
    assert S.cited("see [2] and [1, 3] and [2]") == [2, 1, 3]


def test_macro_f1_and_scorer_names():
    assert S.macro_f1(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert S.canonical("contains_answer") == "contains_fact"
    assert S.canonical("retrieval_hit") == "recall_at_k"
    with pytest.raises(S.ScorerError, match="unknown scorer 'bleu'"):
        S.canonical("bleu")


def test_score_example_for_each_builtin_format(json_task, label_task):
    t = load_task(json_task)
    ex = t.examples("eval")[0]
    s = S.score_example(t, ex, 'Here: {"priority": "high", "summary": "the order is missing"}')
    assert s["json_valid"] == 1.0 and s["schema_valid"] == 1.0 and s["format_valid"] == 1.0
    assert s["primary"] == s["field_accuracy"] == 1.0 and 0 < s["field:summary"] < 1
    s = S.score_example(t, ex, '{"priority": "high", "summary": "x"')  # truncated
    assert s["json_valid"] == 0.0 and s["format_valid"] == 0.0 and s["primary"] == 0.0
    t = load_task(label_task)
    s = S.score_example(t, t.examples("eval")[0], "Dermatologist.")
    assert s["primary"] == 1.0 and s["format_valid"] == 1.0 and "macro_f1" not in s


def test_every_builtin_scenario_names_known_scorers():
    from lab.tasks import builtin_tasks

    for name in builtin_tasks():
        S.check_task(load_task(name))


# ---- costs -----------------------------------------------------------------------------------


def test_costs_tokens_time_training_and_break_even():
    api = {"price_per_1k_prompt_tokens": 0.5, "price_per_1k_completion_tokens": 1.5, "requests_per_day": 1000}
    c = costs.per_1k_requests(api, prompt_tokens=1000, completion_tokens=100, seconds=2.0)
    assert c.basis == "tokens" and c.per_1k == pytest.approx(1000 * (0.5 + 0.15))
    local = {"cpu_hour_price": 0.36, "gpu_hour_price": 3.6, "requests_per_day": 1000}
    c = costs.per_1k_requests(local, 1000, 100, seconds=2.0)
    assert c.basis == "time" and c.per_1k == pytest.approx(2.0 / 3600 * 0.36 * 1000)  # 0.2
    assert costs.training_cost(local, 3600, "cuda:0") == pytest.approx(3.6)
    assert costs.training_cost(local, 1800, "cpu") == pytest.approx(0.18)
    be = costs.break_even(local, training=3.6, baseline_per_1k=0.5, tuned_per_1k=0.2)
    assert be.requests == pytest.approx(12_000) and be.days == pytest.approx(12)
    never = costs.break_even(local, 3.6, 0.2, 0.5)
    assert never.requests is None and "never" in str(never)


# ---- the runner ------------------------------------------------------------------------------


def test_runner_writes_one_row_per_example_and_arm_and_resumes(fake_lab, label_task):
    fake_lab.fake.default = "Dermatologist"
    seen = []
    run_id = run_eval(fake_lab, label_task, ["zero-shot", "few-shot"], progress=False, on_result=seen.append)
    assert count(fake_lab, run_id) == 12 and len(seen) == 12
    assert fake_lab.store.query("select status from eval_runs where id = ?", [run_id])[0]["status"] == "finished"
    gens = fake_lab.store.query("select count(*) n from generations where eval_run_id = ?", [run_id])[0]["n"]
    assert gens == 12
    # the same evaluation again: same run, nothing regenerated, nothing duplicated
    calls = len(fake_lab.fake.calls)
    assert run_eval(fake_lab, label_task, ["zero-shot", "few-shot"], progress=False) == run_id
    assert count(fake_lab, run_id) == 12 and len(fake_lab.fake.calls) == calls
    # few-shot rows carry the shared prefix: system + the first k pool examples
    few = [c for c in fake_lab.fake.calls if len(c["messages"]) > 2]
    assert len(few) == 6 and all(c["messages"][:5] == few[0]["messages"][:5] for c in few)
    assert all(c["options"].temperature == 0 and c["options"].seed == 0 for c in fake_lab.fake.calls)


def test_limit_then_full_continues_and_new_arms_join(fake_lab, label_task):
    fake_lab.fake.default = "Cardiologist"
    run_id = run_eval(fake_lab, label_task, ["zero-shot"], limit=2, progress=False)
    assert count(fake_lab, run_id) == 2
    assert fake_lab.store.query("select status from eval_runs where id = ?", [run_id])[0]["status"] == "partial"
    assert run_eval(fake_lab, label_task, ["zero-shot"], progress=False) == run_id
    assert count(fake_lab, run_id) == 6
    assert run_eval(fake_lab, label_task, ["few-shot"], progress=False) == run_id  # joins the run
    assert count(fake_lab, run_id) == 12
    board = summarize(fake_lab, run_id)
    assert [a.arm for a in board.arms] == ["zero-shot", "few-shot"] and board.complete
    # a different k is a different configuration: a run is resumed only when everything matches
    other = run_eval(fake_lab, label_task, ["few-shot"], k=1, progress=False)
    assert other != run_id and count(fake_lab, other) == 6


def test_a_limit_evaluates_the_seeded_stratified_sample(fake_lab, label_task):
    from lab.evaluation.sample import held_out

    run_id = run_eval(fake_lab, label_task, ["zero-shot"], limit=3, progress=False)
    scored = [
        r["example_id"]
        for r in fake_lab.store.query(
            "select example_id from eval_results where eval_run_id = ? order by rowid", [run_id]
        )
    ]
    sample = held_out(load_task(label_task), 3)
    assert scored == [e.id for e in sample] and len({e.output for e in sample}) == 3  # one of each label


def test_every_arm_is_judged_on_the_examples_all_of_them_scored(fake_lab, label_task):
    """issue 21: a run filled to 6 examples for zero-shot and 4 for few-shot showed n = 6 beside n = 4;
    both are judged on the same 4, and the text says what was left out."""
    run_id = run_eval(fake_lab, label_task, ["zero-shot"], limit=6, progress=False)
    assert run_eval(fake_lab, label_task, ["zero-shot", "few-shot"], limit=4, progress=False) == run_id
    board = summarize(fake_lab, run_id)
    z, f = board.arm("zero-shot"), board.arm("few-shot")
    assert (z.n, z.beyond, f.n, f.beyond) == (4, 2, 4, 0) and z.quality.n == 4
    assert (
        "judged on the 4 examples all of them scored; left out, scored by some arms only: zero-shot 2"
        in board.to_text()
    )
    from lab.evaluation.summary import coverage

    assert coverage(board).startswith("6 of 6 examples")


def test_a_run_from_before_sampling_is_never_resumed_by_a_sampled_call(fake_lab, label_task):
    """A run whose identity lacks "sample" scored the file's first N rows: a limited call now scores
    another sample, so it starts its own run and the old one keeps its meaning."""
    from lab.evaluation.runner import matching_run

    old = run_eval(fake_lab, label_task, ["zero-shot"], limit=2, progress=False)
    config = json.loads(fake_lab.store.query("select config_json from eval_runs where id = ?", [old])[0]["config_json"])
    assert config.pop("sample") == "stratified-v1"
    fake_lab.store.update("eval_runs", old, {"config_json": json.dumps(config)})  # as a run made before
    assert matching_run(fake_lab, label_task) is None
    new = run_eval(fake_lab, label_task, ["zero-shot"], limit=2, progress=False)
    assert new != old and count(fake_lab, old) == 2 and count(fake_lab, new) == 2
    assert matching_run(fake_lab, label_task)["id"] == new
    assert run_eval(fake_lab, label_task, ["zero-shot"], limit=4, progress=False) == new  # a larger limit extends it


def test_repeats_sample_with_a_seed_per_repeat(fake_lab, label_task):
    run_id = run_eval(fake_lab, label_task, ["zero-shot"], repeats=3, progress=False)
    assert count(fake_lab, run_id) == 18
    opts = [c["options"] for c in fake_lab.fake.calls]
    assert {o.temperature for o in opts} == {0.7} and {o.seed for o in opts} == {1000, 1001, 1002}
    board = summarize(fake_lab, run_id)
    assert board.arms[0].n == 6 and board.arms[0].stability == 1.0  # the fake always says the same


def test_cancel_stops_between_examples_and_resume_finishes(fake_lab, label_task):
    cancel = threading.Event()

    def stop_after_three(row):
        if count(fake_lab, row["eval_run_id"]) >= 3:
            cancel.set()

    run_id = run_eval(fake_lab, label_task, ["zero-shot"], progress=False, cancel=cancel, on_result=stop_after_three)
    assert count(fake_lab, run_id) == 3
    assert fake_lab.store.query("select status from eval_runs where id = ?", [run_id])[0]["status"] == "cancelled"
    assert run_eval(fake_lab, label_task, ["zero-shot"], progress=False) == run_id
    assert count(fake_lab, run_id) == 6


def test_a_failed_request_is_a_wrong_answer_row(tmp_path, label_task):
    lab = Lab(home=tmp_path / "home", default_model="tiny")
    lab.add_backend(FakeBackend(model_id="tiny", n_ctx=12, default="Neurologist"))
    run_id = run_eval(lab, label_task, ["few-shot"], progress=False)  # few-shot shrinks k to fit...
    rows = lab.store.query("select * from eval_results where eval_run_id = ?", [run_id])
    assert len(rows) == 6
    extra = [json.loads(r["extra_json"]) for r in rows]
    assert all(e["k_used"] < 2 for e in extra)
    failed = [r for r in rows if r["error"]]  # ...and what still does not fit is a failed row
    board = summarize(lab, run_id)
    assert board.arms[0].errors == len(failed)
    assert board.arms[0].failures["request failed"] == len(failed)


def test_bad_arms_and_missing_corpus_fail_before_any_row(fake_lab, label_task):
    with pytest.raises(ArmError, match="unknown arm"):
        run_eval(fake_lab, label_task, ["zero-shot", "rlhf"], progress=False)
    with pytest.raises(ArmError, match="names no corpus"):
        run_eval(fake_lab, label_task, ["rag"], progress=False)
    assert fake_lab.store.query("select count(*) n from eval_runs")[0]["n"] == 0


def test_scoreboard_failures_disagreements_and_paired_tests(fake_lab, label_task):
    from lab.evaluation.sample import held_out

    # zero-shot: 3 right, 1 wrong label, 2 not a label; few-shot: all right
    zero = {
        "e0": "Dermatologist",
        "e1": "Neurologist",
        "e2": "Neurologist",
        "e3": "I cannot tell",
        "e4": "Cardiologist",
        "e5": "hmm",
    }
    order = held_out(load_task(label_task))  # the order the runner asks them in, arm by arm
    fake_lab.fake.queue(*[zero[e.id] for e in order], *[e.output for e in order])
    run_id = run_eval(fake_lab, label_task, ["zero-shot", "few-shot"], progress=False)
    board = summarize(fake_lab, run_id)
    z, f = board.arm("zero-shot"), board.arm("few-shot")
    assert z.quality.mean == pytest.approx(0.5) and f.quality.mean == 1.0
    assert z.failures == {
        "request failed": 0,
        "truncated": 0,
        "output invalid": 2,
        "not retrieved": 0,
        "retrieved but not used": 0,
        "answer wrong": 1,
    }
    # 6 of 6 only *may* meet 0.8: the interval's lower end is 0.54 (one verdict: `verdict.meets`)
    assert z.format_valid == pytest.approx(4 / 6) and f.verdict.state == "maybe" and not f.meets_target
    assert z.verdict.state == "misses" and f.meets_cell() == "maybe" and "maybe" in board.to_text()
    assert f.metrics["macro_f1"] == 1.0 and z.metrics["macro_f1"] < 1
    c = board.comparison("zero-shot", "few-shot")
    assert c.diff == pytest.approx(0.5) and c.n == 6
    # 0/1 scores: the exact McNemar test on the 3 examples only few-shot got right
    assert board.score_type == "binary" and c.score_type == "binary" and (c.wins, c.losses) == (3, 0)
    assert c.p_value == pytest.approx(0.25) and c.verdict == "not significant"
    assert z.quality.method == "Clopper-Pearson" and z.quality.lo > 0.1 and f.quality.hi == 1.0 and f.quality.lo < 1
    assert sum(e["disagree"] for e in board.examples) == 3
    text = board.to_text()
    assert "few-shot vs zero-shot" in text and "output invalid" in text
    assert "exact McNemar" in text and "few-shot beat zero-shot on 3 of 6 examples and lost on 0" in text
    assert "(time basis)" in text and "$" in text  # a cost says its unit
    json.dumps(board.as_dict(), default=str)  # serialisable for --json


def test_an_answer_cut_off_by_the_token_budget_is_truncated_not_invalid(fake_lab, label_task, monkeypatch):
    """finish_reason "length" (stored in `generations`): the scoreboard blames the budget, not the model."""
    real = fake_lab.fake.generate

    def cut_short(*args, **kw):
        gen = real(*args, **kw)
        if gen.text in ("Dermatol", "I think you should see"):  # both ran into the budget
            gen.finish_reason = "length"
        return gen

    monkeypatch.setattr(fake_lab.fake, "generate", cut_short)
    fake_lab.fake.queue(
        "Dermatol", "I think you should see", "Neurologist", "Dermatologist", "Cardiologist", "Neurologist"
    )
    board = summarize(fake_lab, run_eval(fake_lab, label_task, ["zero-shot"], progress=False))
    z = board.arm("zero-shot")
    # the start of a label is the budget's fault; rambling past a budget that fits every label is the model's
    assert z.failures["truncated"] == 1 and z.failures["output invalid"] == 1
    assert board.examples[0]["outputs"]["zero-shot"]["failure"] == "truncated"
    assert "truncated: the answer ran into the token budget (max_tokens) before it finished" in board.to_text()


KILL_SCRIPT = """
import sys, time
from lab.backends.fake import FakeBackend
from lab.engine import Lab
from lab.evaluation import run_eval

class Slow(FakeBackend):
    def generate(self, *a, **kw):
        time.sleep(0.15)
        return super().generate(*a, **kw)

home, task, model = sys.argv[1], sys.argv[2], sys.argv[3]
limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
if model == "fake":
    lab = Lab(home, default_model="fake")
    lab.add_backend(Slow(model_id="fake", default="Dermatologist"))
else:
    lab = Lab(home)
print(run_eval(lab, task, ["zero-shot", "few-shot"], limit=limit, progress=False), flush=True)
"""


def _kill_midway(tmp_path, task, model: str, limit: int | None, at_least: int, total: int):
    script = tmp_path / "run_eval.py"
    script.write_text(KILL_SCRIPT)
    home = tmp_path / "home"
    args = [sys.executable, str(script), str(home), str(task), model] + ([str(limit)] if limit else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    db = home / "lab.db"
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    n = conn.execute("select count(*) from eval_results").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= at_least:
                break
        time.sleep(0.05)
    assert proc.poll() is None, f"the eval finished before it could be killed: {proc.stderr.read().decode()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        killed_at = conn.execute("select count(*) from eval_results").fetchone()[0]
    assert at_least <= killed_at < total
    # resume in a fresh process: same run id, exactly one row per (example, arm)
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select id, status from eval_runs").fetchall()
        rows = conn.execute("select example_id, arm, repeat from eval_results").fetchall()
    assert len(runs) == 1 and runs[0][1] == "finished" if not limit else len(runs) == 1
    assert len(rows) == total and len(set(rows)) == total
    return killed_at


def test_killed_eval_resumes_without_duplicates(tmp_path, label_task):
    _kill_midway(tmp_path, label_task / "task.toml", "fake", None, at_least=3, total=12)


@pytest.mark.integration
@pytest.mark.slow
def test_killed_real_model_eval_resumes_without_duplicates(tmp_path):
    _kill_midway(tmp_path, "specialty", "real", limit=4, at_least=2, total=8)


# ---- the CLI -----------------------------------------------------------------------------------


def test_cli_eval_advise_report(fake_lab, label_task, tmp_path):
    from click.testing import CliRunner

    from lab.cli import cli

    fake_lab.fake.default = "Dermatologist"
    runner = CliRunner()
    obj = {"lab": fake_lab, "home": str(fake_lab.home.root)}
    r = runner.invoke(cli, ["eval", str(label_task), "--arms", "zero-shot,few-shot"], obj=obj)
    assert r.exit_code == 0, r.output
    assert "few-shot vs zero-shot" in r.output and "exact_match" in r.output
    r = runner.invoke(cli, ["advise", str(label_task)], obj=obj)
    assert r.exit_code == 0 and "Recommendation" in r.output, r.output
    out = tmp_path / "r.html"
    r = runner.invoke(cli, ["report", str(label_task), "-o", str(out)], obj=obj)
    assert r.exit_code == 0 and out.exists(), r.output
    r = runner.invoke(cli, ["eval", str(label_task), "--arms", "nope"], obj=obj)
    assert r.exit_code == 2 and "unknown arm" in r.output
    r = runner.invoke(cli, ["advise", "--knowledge", "--few-shot-short"], obj=obj)
    assert r.exit_code == 0 and "RAG" in r.output
    r = runner.invoke(cli, ["tasks"], obj=obj)
    assert r.exit_code == 0 and "tickets" in r.output


# ---- the real model, every arm ---------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_adapter(shared_home):
    """A one-step LoRA adapter on 24 acme-facts examples, in the shared home (trained once per
    session: ~1-3 min on 2 CPU cores). Too little training to learn facts; enough to exercise
    the tune arms and the probe's adapter half (its answer cannot follow a document edit)."""
    from lab.tuning import make_config, train  # a broken lab.tuning fails these tests, never skips them

    lab = Lab(home=shared_home)
    name = "eval-tiny"
    if not (lab.home.adapters / name / "lab_adapter.json").exists():
        task = load_task("acme-facts")
        data = Path(shared_home) / "eval-tiny.jsonl"
        data.write_text("".join(task.train.read_text().splitlines(keepends=True)[:24]))
        cfg = make_config(
            name=name,
            data=str(data),
            instruction=task.instruction,
            max_steps=1,
            batch_size=1,
            max_seq_len=160,
            eval_every=1,
            save_every=1,
            val_fraction=0.0,
        )
        train(cfg, lab, overwrite=True, progress=False)
    lab.store.close()
    return name


@pytest.mark.integration
@pytest.mark.slow
def test_every_prompt_and_rag_arm_end_to_end_with_the_real_model(shared_home):
    lab = Lab(home=shared_home)
    run_id = run_eval(lab, "acme-facts", ["zero-shot", "few-shot", "rag"], limit=3, progress=False, fresh=True)
    board = summarize(lab, run_id)
    assert [a.arm for a in board.arms] == ["zero-shot", "few-shot", "rag"]
    for a in board.arms:
        assert a.n == 3 and a.errors == 0 and a.quality.mean is not None
        assert a.prompt_tokens > 0 and a.latency_p50 > 0 and a.cost.basis == "time"
    rag = board.arm("rag")
    assert rag.metrics["recall_at_k"] is not None  # the examples mark their gold document
    assert rag.prompt_tokens > board.arm("zero-shot").prompt_tokens  # passages are in the prompt
    rows = lab.store.query(
        "select g.retrieved_json, g.arm from eval_results r join generations g "
        "on g.id = r.generation_id where r.eval_run_id = ? and r.arm = 'rag'",
        [run_id],
    )
    assert len(rows) == 3 and all(json.loads(r["retrieved_json"]) for r in rows)
    # where the knowledge got lost, per wrong rag answer: a passage held it (retrieved but not used) or none did
    results = lab.store.eval_result_rows(run_id)
    hits = {r["example_id"]: json.loads(r["scores_json"]).get("context_hit") for r in results if r["arm"] == "rag"}
    for e in board.examples:
        out = e["outputs"]["rag"]
        if out["failure"] in ("retrieved but not used", "not retrieved") and hits[e["id"]] is not None:
            assert (out["failure"] == "retrieved but not used") == bool(hits[e["id"]]), e
    wrong = sum(1 for e in board.examples if not e["outputs"]["rag"]["primary"])
    assert sum(rag.failures.values()) == wrong  # each wrong answer under one failure


@pytest.mark.integration
@pytest.mark.slow
def test_tune_arms_end_to_end_with_the_real_model(shared_home, tiny_adapter):
    lab = Lab(home=shared_home)
    run_id = run_eval(
        lab, "acme-facts", ["tune", "tune+rag"], limit=2, adapter=tiny_adapter, progress=False, fresh=True
    )
    board = summarize(lab, run_id)
    assert [a.arm for a in board.arms] == ["tune", "tune+rag"]
    for a in board.arms:
        assert a.n == 2 and a.errors == 0 and a.adapter == tiny_adapter
        assert a.training_wall_s > 0 and a.training_cost > 0  # from the adapter's training run
    rows = lab.store.query(
        "select g.adapter_sha, r.arm from eval_results r join generations g "
        "on g.id = r.generation_id where r.eval_run_id = ?",
        [run_id],
    )
    assert len(rows) == 4 and all(r["adapter_sha"] for r in rows)


@pytest.mark.integration
@pytest.mark.slow
def test_staleness_probe_flips(shared_home, tiny_adapter):
    from lab.evaluation.probe import run_probe
    from lab.retrieval.corpus import SAMPLE_CORPORA as REPO_CORPORA

    shipped = (REPO_CORPORA / "acme" / "products" / "ax-220.md").read_text()
    lab = Lab(home=shared_home)
    r = run_probe(lab, "acme-facts", adapter=tiny_adapter)
    # RAG answers from the documents: before the edit its passages hold $649, after only $729
    assert r.rag_before.passage_has_old and not r.rag_before.passage_has_new
    assert r.context_follows and r.rag_after.passage_has_new and not r.rag_after.passage_has_old
    assert not r.rag_after.says_old  # whatever this small model says, it never repeats the old price
    # the adapter never reads the corpus: the edit cannot change its (deterministic) answer
    assert r.adapter_unchanged and r.adapter_stale
    text = r.to_text()
    assert "Before the edit" in text and "$729" in text and "adapter" in text
    assert (REPO_CORPORA / "acme" / "products" / "ax-220.md").read_text() == shipped  # never modified
    assert "$729" in (Path(r.scratch) / "products" / "ax-220.md").read_text()


@pytest.mark.integration
def test_probe_edits_a_scratch_copy_and_reindexes(fake_lab):
    """The probe's mechanics with a real index and a fake model: scratch copy, edit, re-index."""
    from lab.evaluation.probe import ProbeError, run_probe
    from lab.retrieval.corpus import SAMPLE_CORPORA as REPO_CORPORA

    fake_lab.fake.queue("It costs $649 [1].", "It costs $729 [1].")
    r = run_probe(fake_lab, "acme-facts")
    assert r.rag_before.says_old and r.rag_after.says_new and r.rag_follows and r.context_follows
    assert r.tune_before is None and r.adapter_stale is None
    assert "changed" in r.reindex
    assert "$649" in (REPO_CORPORA / "acme" / "products" / "ax-220.md").read_text()
    assert Path(r.scratch).is_relative_to(fake_lab.home.root)
    with pytest.raises(ProbeError, match="no \\[probe\\] table"):
        run_probe(fake_lab, "tickets")


@pytest.mark.integration
def test_similar_few_shot_picks_the_nearest_examples(fake_lab, label_task):
    """few_shot_mode='similar': the k pool examples nearest each question (real MiniLM embedder),
    the nearest last, next to the question."""
    from lab.evaluation.sample import held_out
    from lab.ladder import similar_shots
    from lab.tasks import Example

    pool = [
        Example("a", "acne on my back", "Dermatologist"),
        Example("b", "palpitations", "Cardiologist"),
        Example("c", "numbness in my leg", "Neurologist"),
    ]
    assert similar_shots(fake_lab, pool, "I get palpitations when I run", 1) == [("palpitations", "Cardiologist")]
    assert similar_shots(fake_lab, pool, "acne on my face and back", 2)[-1] == ("acne on my back", "Dermatologist")
    fake_lab.fake.default = "Dermatologist"
    run_id = run_eval(fake_lab, label_task, ["few-shot"], k=1, few_shot_mode="similar", limit=3, progress=False)
    assert count(fake_lab, run_id) == 3
    asked = [c["messages"][-1]["content"] for c in fake_lab.fake.calls]
    assert asked == [e.input for e in held_out(load_task(label_task), 3)]  # the sample, in its order
    assert run_eval(fake_lab, label_task, ["few-shot"], k=1, few_shot_mode="similar", progress=False) == run_id
    shots = {c["messages"][-1]["content"]: c["messages"][1]["content"] for c in fake_lab.fake.calls}
    assert len(shots) == count(fake_lab, run_id) == 6  # all of them: the rest added to the run
    assert shots["itchy rash on my arm"] == "acne on my back"  # rash -> acne


# ---- the scoreboard in plain words ------------------------------------------------------------------


def test_coverage_says_how_much_of_the_task_a_run_covers(fake_lab, label_task):
    from lab.evaluation.summary import coverage, results_note

    cancel = threading.Event()
    run_id = run_eval(
        fake_lab, label_task, ["zero-shot"], progress=False, cancel=cancel, on_result=lambda row: cancel.set()
    )
    assert coverage(summarize(fake_lab, run_id)) == "1 of 6 examples so far (cancelled: Run again resumes)"
    run_id = run_eval(fake_lab, label_task, ["zero-shot", "few-shot"], limit=2, progress=False)
    board = summarize(fake_lab, run_id)
    assert coverage(board) == "2 of 6 examples, complete as asked"  # a --limit run is not "partial"
    assert results_note(board) == "4 results: 2 examples × 2 arms"
    assert "2 of 6 examples, complete as asked" in board.to_text()
    board = summarize(fake_lab, run_eval(fake_lab, label_task, ["zero-shot", "few-shot"], progress=False))
    assert coverage(board) == "all 6 examples, complete"
    text = board.to_text()
    assert "time basis: the measured seconds per request" in text  # the cost basis, explained
    assert "output invalid: the answer is not in the required format" in text  # the failure, explained
    assert "Both few-shot and zero-shot failed on every one of the 6 examples" in text  # not "agree"


def test_plain_sentence_for_every_kind_of_comparison():
    from types import SimpleNamespace

    from lab.evaluation.stats import Estimate, compare
    from lab.evaluation.summary import plain_sentence

    def arm(scores):
        return SimpleNamespace(quality=Estimate(sum(scores) / len(scores), None, None, len(scores)))

    zeros, ones = [0.0] * 8, [1.0] * 8
    assert plain_sentence(compare(zeros, zeros, name_a="zero-shot", name_b="few-shot"), arm(zeros), arm(zeros)) == (
        "Both few-shot and zero-shot failed on every one of the 8 examples (score 0): nothing to choose between "
        "them yet; read their outputs to see why."
    )
    assert "got every one of the 8 examples right" in plain_sentence(compare(ones, ones), arm(ones), arm(ones))
    a, b = [0.0] * 5, [1.0, 1.0, 0.0, 0.0, 0.0]
    five = plain_sentence(compare(a, b, name_a="zero-shot", name_b="few-shot"), arm(a), arm(b))
    assert five.startswith("5 examples are too few to tell few-shot and zero-shot apart: about ")
    assert "would be needed to see a 40-point difference" in five
    a, b = [0.0] * 26 + [1.0] * 2 + [0.0] * 12, [1.0] * 12 + [0.0] * 14 + [0.0] * 2 + [0.0] * 12
    forty = plain_sentence(compare(a, b, name_a="zero-shot", name_b="few-shot"), arm(a), arm(b))
    assert forty == (
        "few-shot beat zero-shot on 12 of 40 examples and lost on 2; a difference this large "
        "would rarely happen by chance."
    )


# ---- Unicode text: CJK by character, Unicode punctuation (issue 23) --------------------------------


def _old_tokens(text) -> list[str]:
    """The tokenizer before issue 23, frozen: ASCII text must still tokenise exactly like this."""
    import re
    import string

    punct = str.maketrans({c: " " for c in string.punctuation if c not in "$%"})
    s = str(text if text is not None else "").lower().strip()
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"(?<=\d)\.(?=\d)", "_DOT_", s)
    s = s.translate(punct).replace("_dot_", ".")
    return [w for w in s.split() if w not in {"a", "an", "the"}]


def test_chinese_persona_reply_scores_above_zero_by_character():
    """issue 23: '您好，我是 Ladder，很高兴…' was two space-split tokens, so naming the persona scored 0.00."""
    reply, gold = "您好，我是 Ladder，很高兴认识您！有什么可以帮您？", "您好！我是 Ladder，您的学习助手。"
    assert S.token_f1(reply, gold) > 0.4 and S.rouge_l(reply, gold) > 0.4
    assert S.tokens(reply)[:5] == ["您", "好", "我", "是", "ladder"]  # CJK by character, punctuation gone
    assert S.token_f1("我是 Ladder", "我是 Ladder。") == 1.0
    assert S.tokens("「東京」は日本の首都です。") == ["東", "京", "は", "日", "本", "の", "首", "都", "で", "す"]
    assert S.tokens("서울은 수도") == ["서", "울", "은", "수", "도"]  # hangul by character too
    assert S.contains_fact("中国的首都是北京。", "北京") == 1.0 and S.contains_fact("首都是上海", "北京") == 0.0


def test_unicode_punctuation_is_dropped_like_ascii_punctuation():
    assert S.tokens("Paris！") == S.tokens("Paris!") == ["paris"]  # full-width
    assert S.tokens("«Paris», c’est… la capitale。") == S.tokens('"Paris", c\'est... la capitale.')
    assert S.exact_match("北京。", "北京") == 1.0 and S.exact_match("Ｌａｄｄｅｒ", "ladder") == 1.0
    assert S.token_f1("１，２００ dollars", "1200 dollars") == 1.0  # full-width digits are digits
    assert S.tokens("€5 ¿qué?") == ["€5", "qué"]  # symbols stay, punctuation goes


@pytest.mark.parametrize(
    "text",
    [
        "The Dermatologist.",
        "It costs $1,200 (15% off) -- version two, not one!",  # decimals: the test below (a fix)
        "a b c d e_f g-h i/j k'l",
        "  Mixed   CASE\twhitespace\n lines ",
        "",
    ],
)
def test_ascii_text_tokenises_exactly_as_before(text):
    """A guard, not a regression test: it passed before issue 23's change too. Decimal numbers
    are the one ASCII change: they were split ("2.5" -> "2 DOT 5") and are now one token."""
    assert S.tokens(text) == _old_tokens(text)
    assert S.normalize(text) == " ".join(_old_tokens(text))


def test_a_decimal_number_is_one_token_and_another_number_shares_nothing_with_it():
    from lab.evaluation.scorers import token_f1, tokens

    assert tokens("It costs 3.5 dollars.") == ["it", "costs", "3.5", "dollars"]
    assert token_f1("3.5", "3.7") == 0.0  # once "3 DOT 5" against "3 DOT 7": two thirds of a match


# ---- where the knowledge got lost: answer in context, not retrieved / retrieved but not used ----------


def test_answer_in_context_finds_the_answer_in_the_passages_that_went_into_the_prompt():
    from lab.retrieval.packing import Passage

    passages = [
        {"source": "company/about.md", "text": "Acme was founded in 2011 in Lyon."},
        {"source": "products/ax-220.md#2", "title": "AX-220", "text": "The AX-220 costs $1,200 per unit."},
    ]
    assert S.answer_in_context(passages, "2011") == 1.0  # hit
    assert S.answer_in_context(passages, "$1200") == 1.0  # normalised like contains_fact
    assert S.answer_in_context(passages, "LYON!") == 1.0  # case and punctuation do not matter
    assert S.answer_in_context(passages, "Paris") == 0.0  # miss
    assert S.answer_in_context(passages, "120") == 0.0  # whole words only
    assert S.answer_in_context(passages, "twelve hundred dollars", ["1,200 dollars", "$1,200."]) == 1.0  # an alias
    assert S.answer_in_context(passages[:1], "$1200") == 0.0  # only the passages in the prompt count
    assert S.answer_in_context([], "2011") == 0.0  # nothing retrieved: the answer was not there
    assert S.answer_in_context(None, "2011") is None  # not a RAG answer
    # CJK: by character, full-width punctuation ignored, a CJK character half a word
    zh = [{"source": "a.md", "text": "中华人民共和国的首都是北京。成立于1949年10月1日。"}]
    assert S.answer_in_context(zh, "北京") == 1.0 and S.answer_in_context(zh, "1949年10月1日") == 1.0
    assert S.answer_in_context(zh, "上海") == 0.0
    # a long free-text expected output is never found word for word: not measured, not "missed"
    long_gold = "The warranty covers parts and labour for two years after purchase"
    assert S.answer_in_context(passages, long_gold) is None
    assert S.answer_in_context(passages, "first line\nsecond") is None and S.answer_in_context(passages, "") is None
    assert S.answer_in_context(passages, {"price": 1200}) is None
    # a packed Passage: its title/heading line is in the prompt too
    p = Passage("Ships in a week.", "products/ax-220.md", "AX-220 datasheet", (0, 16), 0.9, "c1")
    assert S.answer_in_context([p], "AX-220") == 1.0 and S.answer_in_context([p], "a week") == 1.0


def test_short_fact_is_the_rule_lab_task_new_uses():
    from lab.task_import.infer import SHORT_WORDS, answer_words

    for gold in ["Paris", "12 months", "one two three four five", "1949年10月1日", "北京", "$1,200"]:
        assert S.is_short_fact(gold) == (answer_words(gold) <= SHORT_WORDS)
    assert S.is_short_fact("one two three four five") and not S.is_short_fact("one two three four five six")
    assert S.is_short_fact("一二三四五六七八九十") and not S.is_short_fact("一二三四五六七八九十一")  # 5 and 5.5 words


def test_score_example_marks_context_hit_on_rag_answers_of_text_tasks(label_task):
    passages = [{"source": "a.md", "text": "The answer is Dermatologist."}]
    t = load_task(label_task)
    s = S.score_example(t, t.examples("eval")[0], "Neurologist", passages)
    assert "context_hit" in s and s["context_hit"] is None  # a label in a passage says nothing
    assert "context_hit" not in S.score_example(t, t.examples("eval")[0], "Neurologist")  # no passages: not RAG
    text = t.model_copy(update={"output_format": "text", "labels": None})
    assert S.score_example(text, t.examples("eval")[0], "Neurologist", passages)["context_hit"] == 1.0
    assert S.canonical("answer_in_context") == "context_hit"


FACTS = [  # (id, question, expected, gold_doc, the passage retrieved for it)
    ("f0", "capital of France?", "Paris", None, "France's capital is Paris."),  # held, answered wrong
    ("f1", "AX-220 price?", "$1,200", None, "The AX-220 ships in a week."),  # not held
    ("f2", "answer to everything?", "42", None, "The answer is 42."),  # held, answered right
    ("f3", "founding year?", "2011", None, "Acme has offices in Lyon."),  # not held
    ("f4", "warranty?", "two years of parts and labour from the day of purchase", "warranty.md", "Warranty terms."),
    ("f5", "returns?", "thirty days with the receipt and in the original packaging", None, "Returns policy."),
]
RAG_ANSWERS = {"f0": "Lyon", "f1": "$900", "f2": "42", "f3": "1999", "f4": "one year", "f5": "no returns"}


def rag_run(lab, folder: Path, monkeypatch, answers: dict[str, str] = RAG_ANSWERS, facts=FACTS) -> int:
    """A RAG eval run on the fake backend: one passage per question, given here instead of an index
    (the ladder, the packing, the runner and the scorers are the real ones)."""
    import types

    from lab import ladder, retrieval
    from lab.evaluation.sample import held_out
    from lab.retrieval.packing import Passage

    folder.mkdir()
    (folder / "task.toml").write_text(
        'name = "facts"\noutput_format = "text"\ncorpus = "facts"\nscorers = ["contains_fact", "recall_at_k"]\n'
        'primary_metric = "contains_fact"\ntarget = 0.8\neval = "eval.jsonl"\nmax_tokens = 16\n'
    )
    rows = [{"id": i, "input": q, "output": a, **({"gold_doc": d} if d else {})} for i, q, a, d, _ in facts]
    _write_jsonl(folder / "eval.jsonl", rows)
    found = {q: Passage(text, d or f"{i}.md", "", (0, len(text)), 0.5, f"c-{i}") for i, q, _, d, text in facts}
    monkeypatch.setattr(ladder, "task_corpus", lambda lab_, task: "facts")
    monkeypatch.setattr(retrieval, "index_corpus", lambda *a, **kw: None)
    index = types.SimpleNamespace(manifest={"corpus": "facts"}, hash="h0")
    monkeypatch.setattr(retrieval, "loaded_index", lambda *a, **kw: index)
    monkeypatch.setattr(retrieval, "_search", lambda lab_, idx, question, k: [found[question]])
    task = load_task(folder / "task.toml")
    lab.fake.queue(*[answers[e.id] for e in held_out(task)])
    return run_eval(lab, task, ["rag"], progress=False)


def test_wrong_rag_answers_are_split_into_not_retrieved_and_retrieved_but_not_used(fake_lab, tmp_path, monkeypatch):
    run_id = rag_run(fake_lab, tmp_path / "facts", monkeypatch)
    rows = {r["example_id"]: json.loads(r["scores_json"]) for r in fake_lab.store.eval_result_rows(run_id)}
    assert {i: s["context_hit"] for i, s in rows.items()} == {
        "f0": 1.0,
        "f1": 0.0,
        "f2": 1.0,
        "f3": 0.0,
        "f4": None,  # free text: not looked for...
        "f5": None,
    }
    assert rows["f4"]["recall_at_k"] == 1.0  # ...but its gold document was retrieved
    board = summarize(fake_lab, run_id)
    rag = board.arm("rag")
    assert rag.metrics["context_hit"] == pytest.approx(0.5)  # summarised like recall_at_k
    assert rag.failures == {
        "request failed": 0,
        "truncated": 0,
        "output invalid": 0,
        "not retrieved": 2,  # f1, f3: no passage held the answer
        "retrieved but not used": 2,  # f0 (the passage held it), f4 (the gold document was in the prompt)
        "answer wrong": 1,  # f5: free text and no gold_doc, nothing to split by
    }
    failure = {e["id"]: e["outputs"]["rag"]["failure"] for e in board.examples}
    assert failure["f0"] == "retrieved but not used" and failure["f1"] == "not retrieved" and failure["f2"] is None
    text = board.to_text()
    assert "not retrieved: RAG arms: none of the passages in the prompt held the answer" in text
    assert "retrieved but not used: RAG arms: a passage in the prompt held the answer" in text
    # the split could not apply to f5, and the scoreboard says so once
    assert text.count("cannot apply") == 1 and "cannot apply to 1 wrong RAG answer (rag 1):" in text


def test_the_scoreboard_says_nothing_about_the_split_when_every_wrong_answer_was_split(fake_lab, tmp_path, monkeypatch):
    run_id = rag_run(fake_lab, tmp_path / "facts", monkeypatch, facts=FACTS[:4])
    board = summarize(fake_lab, run_id)
    assert board.arm("rag").failures["answer wrong"] == 0 and "cannot apply" not in board.to_text()
