"""The HTML report: one self-contained file (no scripts, no external URLs) with the scoreboard,
the quality-versus-cost chart, the paired comparisons, per-example diffs and the recommendation."""

from __future__ import annotations

import json
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lab.evaluation import run_eval, summarize
from lab.report import chart_svg, render_html, write_report


@pytest.fixture
def finished_run(fake_lab, tmp_path):
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "task.toml").write_text(
        textwrap.dedent("""
        name = "mini"
        instruction = "Name the specialty."
        output_format = "label"
        labels = ["Dermatologist", "Cardiologist"]
        scorers = ["exact_match"]
        primary_metric = "exact_match"
        target = 0.75
        eval = "eval.jsonl"
        fewshot = "eval.jsonl"
        few_shot_k = 1
    """)
    )
    rows = [
        {"id": f"e{i}", "input": f"case <{i}> & symptoms", "output": ["Dermatologist", "Cardiologist"][i % 2]}
        for i in range(8)
    ]
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # zero-shot: always Dermatologist (half right, a <script> in one answer); few-shot: all right
    zero = ["Dermatologist"] * 7 + ["<script>alert(1)</script>"]
    from lab.evaluation.sample import held_out
    from lab.tasks import load_task

    fake_lab.fake.queue(*zero, *[e.output for e in held_out(load_task(str(folder / "task.toml")))])
    run_id = run_eval(fake_lab, folder, ["zero-shot", "few-shot"], progress=False)
    return fake_lab, run_id


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in {"meta", "br", "hr", "img", "input", "link", "circle", "line", "rect"}:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        elif tag not in {"circle", "line", "rect"}:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")


def test_report_is_self_contained_and_complete(finished_run, tmp_path):
    lab, run_id = finished_run
    path = write_report(lab, run_id, tmp_path / "out" / "report.html")
    html = Path(path).read_text()
    # offline: nothing to fetch, nothing to run
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # model output is escaped, not executed
    p = _Collect()
    p.feed(html)
    assert not p.errors and p.stack == [], (p.errors, p.stack)
    for tag, attrs in p.tags:
        assert not any(k in ("src", "href") for k in attrs), (tag, attrs)
    # the content: recommendation, scoreboard, chart, comparisons, diffs, cost assumptions
    assert "Recommendation: prompt (few-shot)" in html
    assert "<svg" in html and "target 0.75" in html
    assert "few-shot vs zero-shot" in html and "Where the arms disagree (4 of 8 examples)" in html
    assert "Why answers were wrong" in html and "Cost assumptions" in html and "cpu_hour_price" in html


def test_chart_places_points_by_quality_and_cost(finished_run):
    lab, run_id = finished_run
    board = summarize(lab, run_id)
    svg = chart_svg(board)
    assert svg.count("<circle") == 2 and "zero-shot 0.50" in svg and "few-shot 1.00" in svg
    board.arms[0].cost = None  # no cost known: still drawn (at zero cost), not a crash
    assert chart_svg(board).count("<circle") == 2


def test_render_without_recommendation_and_partial_runs(fake_lab, finished_run):
    lab, run_id = finished_run
    html = render_html(summarize(lab, run_id), None)
    assert "Recommendation" not in html and "Scoreboard" in html


def test_report_includes_the_learning_curve_inline(finished_run):
    from lab.evaluation.curve import build_curve

    lab, run_id = finished_run
    ids = [f"e{i}" for i in range(20)]
    few = {0: {e: 0.0 for e in ids}, 4: {e: float(i < 4) for i, e in enumerate(ids)}}
    tuned = {50: [{e: float(i < 5) for i, e in enumerate(ids)}], 100: [{e: float(i < 18) for i, e in enumerate(ids)}]}
    curve = build_curve("mini", "exact_match", 0.75, 120, few, tuned, curve_id=7)
    html = render_html(summarize(lab, run_id), curve=curve)
    assert "How many examples? (learning curve 7)" in html and html.count("<svg") == 2
    assert "from n = 100 examples" in html and "still rising" in html
    assert not re.search(r"https?://", html)  # the matplotlib chart inlined without any namespace URL
    assert "How many examples" not in render_html(summarize(lab, run_id))  # no curve, no section


# ---- the climb's history (issue 24, item 11) ---------------------------------------------------


def _step(step: str, estimate_s: float, wall_s: float, basis: str = "a rough figure") -> dict:
    return {
        "step": step,
        "why": "why not",
        "status": "done",
        "estimate_s": estimate_s,
        "estimate_basis": basis,
        "wall_s": wall_s,
        "results": {},
        "decision": {"outcome": "up-to", "reason": "done"},
    }


def _climb(store, steps: list[dict], *, run: int, wall_s: float, options: str = '{"up_to": "tune"}', task="t") -> int:
    """A finished climb of `task` on model m, its path `steps`, its evidence eval run `run`."""
    climb_id = store.new_climb(task, "m", options)
    store.update_climb(
        climb_id,
        {
            "steps_json": json.dumps(steps),
            "status": "finished",
            "eval_run_id": run,
            "wall_s": wall_s,
            "decision_json": json.dumps({"outcome": "up-to", "reason": "done"}),
        },
    )
    return climb_id


@pytest.fixture
def climbs_lab(tmp_path):
    from types import SimpleNamespace

    from lab.store import Store

    store = Store(tmp_path / "lab.db")
    yield SimpleNamespace(store=store)
    store.close()


def test_a_quick_rerun_of_a_climb_shows_the_climb_whose_work_it_reused(climbs_lab):
    from lab.climb.record import climb_of_run
    from lab.report import climb_html

    first = _climb(
        climbs_lab.store,
        [_step("prompt", 150.0, 200.0), _step("tune", 100.0, 90.0, "20 training steps, measured here")],
        run=7,
        wall_s=290.0,
    )
    rerun = _climb(climbs_lab.store, [_step("prompt", 0.0, 4.0), _step("tune", 0.0, 3.0)], run=7, wall_s=7.0)
    climb = climb_of_run(climbs_lab, 7)
    assert climb["id"] == rerun and [c["id"] for c in climb["history"]] == [first, rerun]
    html = climb_html(climb)
    assert f"The climb (#{rerun}, finished, 7 s; 297 s of work over 2 climbs)" in html
    assert f"Climb #{rerun} reused the work of climb #{first}: 290 s." in html
    assert "prompt evaluated; tune trained and evaluated" in html and "prompt reused; tune reused" in html
    assert html.count("reused: nothing left to do") == 2  # the rerun's path: no more '0 s, expected 0 s'
    assert "expected 0 s" not in html


def test_the_history_is_the_climbs_on_the_same_options_or_eval_run(climbs_lab):
    """A climb up to the prompt rung, then one up to tune on the same run: the second reused only the
    prompt rung. Another task's climb, a climb on other options and run, and a later climb stay out."""
    from lab.climb.record import climb_of_run
    from lab.report import climb_html

    store = climbs_lab.store
    _climb(store, [_step("prompt", 50.0, 60.0)], run=3, wall_s=60.0, task="other")
    up_to_prompt = _climb(store, [_step("prompt", 50.0, 60.0)], run=3, wall_s=60.0, options='{"up_to": "prompt"}')
    _climb(store, [_step("prompt", 10.0, 10.0)], run=4, wall_s=10.0, options='{"limit": 6}')
    basis = "adapter already trained on this data and config; answers from measured"
    up_to_tune = _climb(store, [_step("prompt", 0.0, 1.0), _step("tune", 30.0, 40.0, basis)], run=3, wall_s=41.0)
    later = _climb(store, [_step("prompt", 0.0, 1.0)], run=5, wall_s=1.0)  # same options, a newer run
    climb = climb_of_run(climbs_lab, 3)
    assert [c["id"] for c in climb["history"]] == [up_to_prompt, up_to_tune] and later != climb["id"]
    html = climb_html(climb)
    assert f"Climb #{up_to_tune} reused the work of climb #{up_to_prompt}: 60 s (for prompt)." in html
    assert "tune evaluated, adapter reused" in html and "101 s of work over 2 climbs" in html


def test_a_single_climb_has_no_history_and_an_unfinished_step_says_so(climbs_lab):
    from lab.climb.record import climb_of_run
    from lab.report import climb_html

    only = _climb(climbs_lab.store, [{**_step("prompt", 20.0, 5.0), "status": "running"}], run=9, wall_s=5.0)
    climb = climb_of_run(climbs_lab, 9)
    html = climb_html(climb)
    assert f"The climb (#{only}, finished, 5 s)</h2>" in html and "reused the work" not in html
    assert "expected 20 s" in html
    assert climb_html({k: v for k, v in climb.items() if k != "history"}) == html  # a row read without it
    assert climb_of_run(climbs_lab, 10) is None


def test_the_report_file_shows_the_climbs_history(finished_run, tmp_path):
    lab, run_id = finished_run
    first = _climb(lab.store, [_step("prompt", 280.0, 290.0)], run=run_id, wall_s=290.0, task="mini")
    rerun = _climb(lab.store, [_step("prompt", 0.0, 0.4)], run=run_id, wall_s=0.4, task="mini")
    html = write_report(lab, run_id, tmp_path / "r.html").read_text()
    assert f"The climb (#{rerun}, finished, 0 s; 290 s of work over 2 climbs)" in html
    assert f"Climb #{rerun} reused the work of climb #{first}: 290 s." in html


# ---- retrieval alone: hit rate against k per chunk size (issue 23) ----------------------------


def _sweep(hit: bool = True):
    """What `check_chunk_sizes` returns for three chunk sizes (hit rate, or recall@k only)."""
    from lab.evaluation.retrieval_check import KRow, RetrievalCheck, RetrievalSweep

    def check(size, figures, own=False):
        rows = [KRow(k, v if hit else None, 20 if hit else 0, v, 20, v) for k, v in zip((1, 2, 4, 8), figures)]
        return RetrievalCheck("mini", "acme", 20, rows, chunk_tokens=size, overlap=32, seconds=0.3, own=own)

    return RetrievalSweep(
        [
            check(80, (0.5, 0.7, 0.9, 0.95)),
            check(160, (0.6, 0.8, 0.85, 0.9), own=True),
            check(256, (0.7, 0.75, 0.8, 0.9)),
        ]
    )


def test_the_report_draws_retrieval_against_k_per_chunk_size_when_the_task_has_a_corpus(
    finished_run, tmp_path, monkeypatch
):
    import lab.evaluation.retrieval_check as retrieval_check

    lab, run_id = finished_run
    calls = []

    def fake_sweep(lab_, task, ks=(1, 2, 4, 8), corpus=None, chunk_sizes=None, progress=False):
        calls.append(task.name)
        return _sweep()

    monkeypatch.setattr(retrieval_check, "check_chunk_sizes", fake_sweep)
    html = write_report(lab, run_id, tmp_path / "plain.html").read_text()
    assert calls == [] and "Retrieval alone" not in html  # the task has no corpus: no check, no chart

    task = tmp_path / "mini" / "task.toml"
    task.write_text(task.read_text() + 'corpus = "acme"\n')
    html = write_report(lab, run_id, tmp_path / "r.html").read_text()
    assert calls == ["mini"]
    assert "Retrieval alone: does search find the answers?" in html and html.count("<svg") == 2
    assert html.count("<polyline") == 3 and "160 tokens (own)" in html and "rag k" in html
    assert "hit rate against k, one line per chunk size" in html and "Best at k=4: chunk size 80 (90.0%)." in html
    assert not re.search(r"https?://", html)
    p = _Collect()
    p.feed(html)
    assert not p.errors and p.stack == [], (p.errors, p.stack)
    # outputs that are not short facts: recall@k plotted, and the caption says so
    board = summarize(lab, run_id)
    recall = render_html(board, retrieval=_sweep(hit=False))
    assert "recall@k against k" in recall and "so there is no hit rate: the chart plots recall@k" in recall
    said = render_html(board, retrieval="The retrieval check could not run: the folder of corpus 'acme' is gone")
    assert "could not run: the folder of corpus &#x27;acme&#x27; is gone" in said and "<polyline" not in said


# ---- the distillation's ledger (`lab distill`) -------------------------------------------------


def _ledger(**over) -> dict:
    """A finished distillation's ledger as `distill.ledger.build_ledger` stores it."""

    def row(role, model, how, mean, lo, hi, per_1k, pt):
        q = {"mean": mean, "lo": lo, "hi": hi, "n": 40, "method": "clopper-pearson"}
        return {
            "role": role,
            "model": model,
            "how": how,
            "n": 40,
            "quality": q,
            "latency_p50": 0.8,
            "latency_p95": 1.4,
            "prompt_tokens": pt,
            "completion_tokens": 6.0,
            "per_1k": per_1k,
            "basis": "time",
            "eval_run_id": 3,
        }

    ledger = {
        "task": "mini",
        "name": "mini-distilled",
        "metric": "exact_match",
        "target": 0.75,
        "margin": 0.05,
        "teacher_spec": "default:best-prompt",
        "teacher_note": "few-shot, 8 similar examples",
        "rows": [
            row("teacher", "big <model>", "few-shot, 8 similar examples", 0.9, 0.78, 0.97, 0.04, 1200.0),
            row("zero-shot", "small", "zero-shot", 0.55, 0.38, 0.71, 0.005, 150.0),
            row("distilled", "small", "adapter mini-distilled", 0.88, 0.74, 0.96, 0.006, 150.0),
            row("gold", "small", "adapter mini-distilled-gold", 0.86, 0.72, 0.95, None, 150.0),
        ],
        "labels": {"inputs": 300, "answered": 300, "dropped": 4, "kept": 296, "held_out": 2, "repeated": 0},
        "one_off": {
            "labelling_s": 420.0,
            "labelling_prompt_tokens": 360000,
            "labelling_completion_tokens": 1800,
            "labelling_cost": 0.0058,
            "training": {"distilled": {"wall_s": 900.0, "device": "cpu", "cost": 0.0125}},
            "total": 0.0183,
        },
        "ratio": 6.7,
        "break_even_text": "540 requests vs the teacher, 0.1 days at the task's rate",
        "as_good_text": "distilled vs teacher: within the margin",
        "helped": "Distillation helped.",
        "gold": {"text": "+0.02 [-0.05, 0.09]", "diff": 0.02, "significant": False},
        "sentence": "The distilled student is as good as the teacher within 5 points; it is 6.7x cheaper per request.",
        "requests_per_day": 10000,
        "distill_id": 4,
    }
    return {**ledger, **over}


def test_the_distillation_section_has_the_sentence_the_table_and_an_inline_chart(finished_run):
    from lab.distill.chart import ledger_html, ledger_svg

    lab, run_id = finished_run
    ledger = _ledger()
    svg = ledger_svg(ledger)
    assert svg.count("<circle") == 4  # one point per ledger row, each with its interval as a bar
    for label in ("teacher 0.90", "student zero-shot 0.55", "distilled 0.88", "gold-tuned 0.86 (cost n/a)"):
        assert label in svg
    assert "target 0.75" in svg and "cost per 1,000 requests" in svg

    board = summarize(lab, run_id)
    html = render_html(board, distill=ledger)
    section = html[html.index("<h2>Distillation") :]
    assert section.index(ledger["sentence"]) < section.index("<table")  # the sentence first
    assert "Distillation (#4, mini-distilled)" in section
    for cell in ("student, distilled", "adapter mini-distilled", "0.880", "[0.740, 0.960]", "1200 / 6", "$0.04"):
        assert cell in section, cell
    assert "big &lt;model&gt;" in section and "<model>" not in section  # escaped
    assert "labelling by the teacher" in section and "360,000 / 1,800" in section and "$0.0183" in section
    assert "Break-even against the teacher: 540 requests" in section
    assert html.count("<svg") == 2 and "<script" not in html and not re.search(r"https?://", html)
    p = _Collect()
    p.feed(html)
    assert not p.errors and p.stack == [], (p.errors, p.stack)
    assert ledger_html(ledger) in html
    assert "Distillation" not in render_html(board)  # no distillation, no section


def test_the_report_file_shows_the_tasks_latest_finished_distillation(finished_run, tmp_path):
    lab, run_id = finished_run
    assert "<h2>Distillation" not in write_report(lab, run_id, tmp_path / "none.html").read_text()
    did = lab.store.open_distill("mini", "mini-distilled", "{}")
    stored = {k: v for k, v in _ledger().items() if k != "distill_id"}
    lab.store.update_distill(did, {"status": "finished", "ledger_json": json.dumps(stored)})
    html = write_report(lab, run_id, tmp_path / "r.html").read_text()
    assert f"Distillation (#{did}, mini-distilled)" in html and stored["sentence"] in html
    assert html.count("<svg") == 2 and not re.search(r"https?://", html)


def test_the_report_shows_blind_preference_and_a_refused_judge(evaluated_text, tmp_path):
    from lab.evaluation import judge, pairwise
    from lab.report import write_report
    from tests.text_tasks import rate_all

    lab, task, run_id = evaluated_text
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"])
    rate_all(lab, pairs, lambda p: "few-shot")
    lab.fake.default = "A"
    judge.judge_pairs(lab, task, pairs, limit=6)
    html = write_report(lab, run_id, tmp_path / "r.html").read_text()
    assert "<h2>Blind pairwise preference</h2>" in html and "You preferred few-shot in 24 of 24 pairs" in html
    assert "<b>not trusted</b>" in html and "order flips 100%" in html
