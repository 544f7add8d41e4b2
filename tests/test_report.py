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
