"""The distillation's ledger for the HTML report: a cost/quality chart (hand-made SVG, no scripts,
no URLs: cost per 1,000 requests on x, quality on y, one point per ledger row with its 95% interval
as a bar) and the section around it (`ledger_html`: the sentence, the table, the one-off costs)."""

from __future__ import annotations

from html import escape

from ..evaluation.cost_chart import Point, cost_quality_svg, html_table
from ..evaluation.summary import money
from .ledger import ROLES

LABELS = {"teacher": "teacher", "zero-shot": "student zero-shot", "distilled": "distilled", "gold": "gold-tuned"}
COLORS = {"teacher": "#2563eb", "zero-shot": "#6b7280", "distilled": "#d97706", "gold": "#7c3aed"}


def _e(v) -> str:
    return escape("" if v is None else str(v))


def _n(v, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def ledger_svg(ledger: dict, width: int = 640, height: int = 340) -> str:
    """Quality (with its 95% interval) against cost per 1,000 requests, one point per ledger row,
    the target as a dashed line. A row whose cost is unknown sits at 0 and its label says so."""
    rows = [r for r in ledger.get("rows") or [] if (r.get("quality") or {}).get("mean") is not None]
    points = [
        Point(
            LABELS.get(r["role"], r["role"]),
            r["per_1k"],
            r["quality"]["mean"],
            r["quality"].get("lo"),
            r["quality"].get("hi"),
            COLORS.get(r["role"], "#111"),
        )
        for r in rows
    ]
    basis = next((r["basis"] for r in rows if r.get("basis")), "time")
    what = "distillation: quality versus cost"
    return cost_quality_svg(points, ledger.get("target"), basis, ledger.get("metric") or "", what, width, height)


def _rows_table(ledger: dict) -> str:
    rows = []
    for r in ledger.get("rows") or []:
        q = r["quality"]
        cost = (
            "n/a" if r["per_1k"] is None else f"{money(r['per_1k'])} <span class=small>({_e(r['basis'])} basis)</span>"
        )
        rows.append(
            [
                f'<b style="color:{COLORS.get(r["role"], "#111")}">{_e(ROLES.get(r["role"], r["role"]))}</b>',
                _e(r["model"]),
                _e(r["how"]),
                f"{_n(q.get('mean'))} <span class=small>[{_n(q.get('lo'))}, {_n(q.get('hi'))}]</span>",
                str(r["n"]),
                f"{_n(r['latency_p50'], '.2f')} / {_n(r['latency_p95'], '.2f')}",
                f"{_n(r['prompt_tokens'], '.0f')} / {_n(r['completion_tokens'], '.0f')}",
                cost,
            ]
        )
    head = ["", "model", "how", f"{ledger.get('metric')} [95% CI]", "n", "p50 / p95 s", "tokens in / out"]
    return html_table([*head, "cost / 1k requests"], rows, {4, 5, 6})


def _one_off_table(ledger: dict) -> str:
    o = ledger.get("one_off") or {}
    rows = [
        [
            "labelling by the teacher",
            f"{_n(o.get('labelling_s'), '.0f')} s",
            f"{o.get('labelling_prompt_tokens') or 0:,} / {o.get('labelling_completion_tokens') or 0:,}",
            money(o.get("labelling_cost")),
        ]
    ]
    rows += [
        [
            f"training the {_e(LABELS.get(k, k))} student",
            f"{_n(t.get('wall_s'), '.0f')} s on {_e(t.get('device') or '?')}",
            "",
            money(t.get("cost")),
        ]
        for k, t in (o.get("training") or {}).items()
    ]
    rows.append(
        ["<b>total</b> (labelling and the distilled student's training)", "", "", f"<b>{money(o.get('total'))}</b>"]
    )
    return html_table(["one-off", "time", "tokens in / out", "cost"], rows, {3})


def ledger_html(ledger: dict) -> str:
    """The report's Distillation section: the sentence first, the ledger's rows, the one-off costs,
    the chart, then what the inputs were and the other tests' words (all as the ledger stores them)."""
    labels = ledger.get("labels") or {}
    note = f"; {ledger['teacher_note']}" if ledger.get("teacher_note") else ""
    inputs = (
        f"Inputs: {labels.get('inputs', 0)} labelled by the teacher ({ledger.get('teacher_spec')}{note}); "
        f"{labels.get('dropped', 0)} answers broke the task's format and were dropped, {labels.get('kept', 0)} kept"
        + (f"; {labels['held_out']} inputs left out as held-out questions" if labels.get("held_out") else "")
        + (f", {labels['repeated']} repeats" if labels.get("repeated") else "")
        + "."
    )
    words = [ledger.get("as_good_text"), ledger.get("helped")]
    if ledger.get("break_even_text"):
        words.append(f"Break-even against the teacher: {ledger['break_even_text']}.")
    if ledger.get("gold"):
        words.append(f"Against the gold answers: distilled - gold-tuned = {ledger['gold']['text']}.")
    number = f"#{ledger['distill_id']}" if ledger.get("distill_id") else None
    which = ", ".join(str(x) for x in (number, ledger.get("name")) if x)
    return (
        f"<h2>Distillation{f' ({_e(which)})' if which else ''}: a student taught by the teacher</h2>"
        f"<p><b>{_e(ledger.get('sentence'))}</b></p>"
        + _rows_table(ledger)
        + "<p><b>One-off costs</b></p>"
        + _one_off_table(ledger)
        + ledger_svg(ledger)
        + f"<p class=small>{_e(inputs)}<br>"
        + "<br>".join(_e(w) for w in words if w)
        + "</p>"
    )
