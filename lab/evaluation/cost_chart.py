"""Quality against cost, as the report draws it for a scoreboard's arms and for a distillation's
ledger: one hand-made SVG (no scripts, no URLs: the report is one file that opens anywhere), cost
per 1,000 requests on x, quality on y, each point with its 95% interval as a bar, the target as a
dashed line. Hand-made rather than a plotting library's: a few dozen lines, no dependency to ship
for one scatter plot, and text the tests can read."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass
class Point:
    label: str  # shown beside the point, with its mean
    cost: float | None  # per 1,000 requests (None: unknown, drawn at 0 and said)
    mean: float
    lo: float | None
    hi: float | None
    color: str = "#111"


def _e(v) -> str:
    return escape("" if v is None else str(v))


def cost_quality_svg(
    points: list[Point], target: float | None, basis: str, metric: str, what: str, width: int = 640, height: int = 360
) -> str:
    """The chart; `what` names it for a screen reader ("quality versus cost")."""
    left, right, top, bottom = 60, 20, 20, 50
    pw, ph = width - left - right, height - top - bottom
    xmax = max([p.cost or 0.0 for p in points] + [0.0]) * 1.15 or 1.0

    def X(v):
        return left + pw * ((v or 0.0) / xmax)

    def Y(v):
        return top + ph * (1 - v)

    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(what)}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for q in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(q):.1f}" y2="{Y(q):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{Y(q) + 4:.1f}" font-size="11" text-anchor="end">{q:.2f}</text>'
        )
    for i in range(5):
        anchor = "end" if i == 4 else "middle"  # the last tick inside the frame, not clipped by it
        out.append(
            f'<text x="{X(xmax * i / 4):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="{anchor}">'
            f"{xmax * i / 4:.3g}</text>"
        )
    if target is not None:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(target):.1f}" y2="{Y(target):.1f}" stroke="#dc2626" '
            f'stroke-dasharray="6 4"/><text x="{left + pw - 4}" y="{Y(target) - 5:.1f}" font-size="11" '
            f'fill="#dc2626" text-anchor="end">target {target:.2f}</text>'
        )
    placed: list[tuple[float, float]] = []  # label positions so far: overlapping labels nudged apart
    for p in points:
        x, ly = X(p.cost), Y(p.mean) - 8
        while any(abs(x - px) < 110 and abs(ly - py) < 13 for px, py in placed):
            ly -= 14
        placed.append((x, ly))
        lo, hi = (p.mean if p.lo is None else p.lo), (p.mean if p.hi is None else p.hi)
        label = f"{p.label} {p.mean:.2f}" + (" (cost n/a)" if p.cost is None else "")
        end = x + 9 + 6.5 * len(label) > width  # past the right edge: the label ends at its point
        tx, anchor = (x - 9, "end") if end else (x + 9, "start")
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{Y(lo):.1f}" y2="{Y(hi):.1f}" stroke="{p.color}" stroke-width="2"/>'
            f'<circle cx="{x:.1f}" cy="{Y(p.mean):.1f}" r="6" fill="{p.color}"/>'
            f'<text x="{tx:.1f}" y="{ly:.1f}" font-size="12" fill="{p.color}" text-anchor="{anchor}">{_e(label)}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 10}" font-size="12" text-anchor="middle">cost per 1,000 '
        f'requests in $ ({_e(basis)} basis)</text><text x="14" y="{top + ph / 2}" font-size="12" '
        f'text-anchor="middle" transform="rotate(-90 14 {top + ph / 2})">{_e(metric)}</text></svg>'
    )
    return "".join(out)


def html_table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table in the report's style (cells already escaped; `numeric` columns right-aligned)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
