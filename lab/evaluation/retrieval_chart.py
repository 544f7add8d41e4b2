"""The retrieval check at several chunk sizes as a small chart (`RetrievalSweep`): hit rate
against k, one line per chunk size (recall@k when the task's outputs are not short facts), the
rag arms' k marked. Hand-made SVG (no scripts, no URLs), so the report embeds it inline;
`check_for_run`: the check the report draws for an eval run's task."""

from __future__ import annotations

import math
from html import escape

from .retrieval_check import RAG_K, RetrievalSweep

COLORS = ["#2563eb", "#059669", "#d97706", "#7c3aed", "#dc2626", "#6b7280"]


def render_svg(sweep: RetrievalSweep, width: int = 560, height: int = 280) -> str:
    """The chart: k on the x axis (the values checked, evenly spaced), the metric on the y axis."""
    left, right, top, bottom = 50, 150, 14, 42  # the legend sits right of the plot
    pw, ph = width - left - right, height - top - bottom
    ks = sorted({r.k for c in sweep.checks for r in c.rows})
    low, ticks = _y_axis(sweep)

    def X(k):
        return left + pw * (ks.index(k) / (len(ks) - 1) if len(ks) > 1 else 0.5)

    def Y(v):
        return top + ph * (1 - (v - low) / (1 - low))

    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{sweep.metric_name()} against k per chunk size">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for q in ticks:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(q):.1f}" y2="{Y(q):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{Y(q) + 4:.1f}" font-size="11" text-anchor="end">{q:.0%}</text>'
        )
    for k in ks:
        out.append(f'<text x="{X(k):.1f}" y="{top + ph + 15}" font-size="11" text-anchor="middle">{k}</text>')
    if RAG_K in ks:
        out.append(
            f'<line x1="{X(RAG_K):.1f}" x2="{X(RAG_K):.1f}" y1="{top}" y2="{top + ph}" stroke="#999" '
            f'stroke-dasharray="4 3"/><text x="{X(RAG_K) + 4:.1f}" y="{top + ph - 6}" font-size="10" '
            f'fill="#666">rag k</text>'
        )
    for i, (check, points) in enumerate(sweep.series()):
        out += _line(check, points, COLORS[i % len(COLORS)], X, Y, (left + pw + 12, top + 10 + 18 * i))
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">k (passages retrieved)</text>'
        f'<text x="14" y="{top + ph / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">{sweep.metric_name()}</text></svg>'
    )
    return "".join(out)


def _y_axis(sweep: RetrievalSweep) -> tuple[float, list[float]]:
    """Where the y axis starts and its ticks: a tenth below the lowest point, in tenths when that
    is 50% or more (the sizes' lines apart, not squeezed at the top), else 0 to 100% in quarters."""
    values = [v for _, points in sweep.series() for _, v in points]
    low = max(0.0, math.floor(min(values, default=0.0) * 10 - 0.5) / 10)
    step = 0.1 if low >= 0.5 else 0.25
    low = low if low >= 0.5 else 0.0
    return low, [round(low + i * step, 2) for i in range(round((1 - low) / step) + 1)]


def _line(check, points, color: str, X, Y, legend: tuple[float, float]) -> list[str]:
    """One chunk size: its polyline, a dot per k, and its legend entry."""
    xy = " ".join(f"{X(k):.1f},{Y(v):.1f}" for k, v in points)
    lx, ly = legend
    label = f"{check.chunk_tokens} tokens{' (own)' if check.own else ''}"
    return [
        f'<polyline points="{xy}" fill="none" stroke="{color}" stroke-width="2"/>',
        *(f'<circle cx="{X(k):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{color}"/>' for k, v in points),
        f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/>'
        f'<text x="{lx + 24}" y="{ly + 4}" font-size="11" fill="{color}">{escape(label)}</text>',
    ]


def caption(sweep: RetrievalSweep) -> str:
    """What the chart shows, in words: the metric (and why recall@k, when it is), the best size."""
    c = sweep.checks[0]
    seconds = sum(x.seconds for x in sweep.checks)
    text = (
        f"Retrieval alone, no model: the {c.n} held-out questions of {c.task} searched in corpus {c.corpus} "
        f"at {len(sweep.checks)} chunk sizes ({seconds:.1f} s of searching); {sweep.metric_name()} against k, "
        "one line per chunk size."
    )
    if sweep.metric_name() == "recall@k":
        text += (
            " The expected outputs are not short facts, so there is no hit rate: the chart plots recall@k "
            "(a passage from the example's gold document in the top k)."
        )
    if (best := sweep.best()) and len(sweep.checks) > 1:
        check, k, v = best
        text += f" Best at k={k}: chunk size {check.chunk_tokens} ({100 * v:.1f}%)."
    return text


def check_for_run(lab, eval_run_id: int) -> RetrievalSweep | str | None:
    """The retrieval check at the sweep's chunk sizes for the run's task when it has a corpus (no
    model: seconds; a new size is embedded once); a sentence when it cannot run; None without a corpus."""
    from ..ladder import ArmError
    from ..retrieval import RetrievalError
    from .retrieval_check import check_chunk_sizes
    from .summary import load_run, task_of_run

    try:
        task = task_of_run(load_run(lab, eval_run_id))
    except Exception:  # a run whose task file is gone: no check (as the report's README prediction)
        return None
    if not getattr(task, "corpus", None):
        return None
    try:
        return check_chunk_sizes(lab, task)
    except (ArmError, RetrievalError) as e:
        return f"The retrieval check could not run: {e}"
