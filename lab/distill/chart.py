"""The distillation's ledger for the HTML report: a cost/quality chart (hand-made SVG, no scripts,
no URLs: cost per 1,000 requests on x, quality on y, one point per ledger row with its 95% interval
as a bar) and the section around it (`ledger_html`: the sentence, the table, the one-off costs)."""

from __future__ import annotations

from html import escape

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
    left, right, top, bottom = 60, 20, 20, 50
    pw, ph = width - left - right, height - top - bottom
    xmax = max([r["per_1k"] or 0.0 for r in rows] + [0.0]) * 1.15 or 1.0
    basis = next((r["basis"] for r in rows if r.get("basis")), "time")

    def X(v):
        return left + pw * ((v or 0.0) / xmax)

    def Y(v):
        return top + ph * (1 - v)

    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="distillation: quality versus cost">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for q in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(q):.1f}" y2="{Y(q):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{Y(q) + 4:.1f}" font-size="11" text-anchor="end">{q:.2f}</text>'
        )
    for i in range(5):
        v = xmax * i / 4
        anchor = "end" if i == 4 else "middle"  # the last tick inside the frame, not clipped by it
        out.append(f'<text x="{X(v):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="{anchor}">{v:.3g}</text>')
    target = ledger.get("target")
    if target is not None:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(target):.1f}" y2="{Y(target):.1f}" stroke="#dc2626" '
            f'stroke-dasharray="6 4"/><text x="{left + pw - 4}" y="{Y(target) - 5:.1f}" font-size="11" '
            f'fill="#dc2626" text-anchor="end">target {target:.2f}</text>'
        )
    placed: list[tuple[float, float]] = []  # label positions so far: overlapping labels nudged apart
    for r in rows:
        q, c = r["quality"], COLORS.get(r["role"], "#111")
        x, mean = X(r["per_1k"]), q["mean"]
        lo = q["lo"] if q.get("lo") is not None else mean
        hi = q["hi"] if q.get("hi") is not None else mean
        ly = Y(mean) - 8
        while any(abs(x - px) < 110 and abs(ly - py) < 13 for px, py in placed):
            ly -= 14
        placed.append((x, ly))
        label = f"{LABELS.get(r['role'], r['role'])} {mean:.2f}" + (" (cost n/a)" if r["per_1k"] is None else "")
        end = x + 9 + 6.5 * len(label) > width  # past the right edge: the label ends at its point
        tx, anchor = (x - 9, "end") if end else (x + 9, "start")
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{Y(lo):.1f}" y2="{Y(hi):.1f}" stroke="{c}" stroke-width="2"/>'
            f'<circle cx="{x:.1f}" cy="{Y(mean):.1f}" r="6" fill="{c}"/>'
            f'<text x="{tx:.1f}" y="{ly:.1f}" font-size="12" fill="{c}" text-anchor="{anchor}">{_e(label)}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 10}" font-size="12" text-anchor="middle">cost per 1,000 '
        f'requests in $ ({_e(basis)} basis)</text><text x="14" y="{top + ph / 2}" font-size="12" '
        f'text-anchor="middle" transform="rotate(-90 14 {top + ph / 2})">{_e(ledger.get("metric"))}</text></svg>'
    )
    return "".join(out)


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table in the report's style (cells already escaped)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


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
    return _table([*head, "cost / 1k requests"], rows, {4, 5, 6})


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
    return _table(["one-off", "time", "tokens in / out", "cost"], rows, {3})


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
