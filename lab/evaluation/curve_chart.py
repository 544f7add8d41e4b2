"""The learning curve as a chart (matplotlib): quality against the number of examples, one
line for few-shot (k in the prompt), one for tuning (n trained on), each point with its 95%
interval, the spread across seeds as a band, the target and the crossover marked. SVG with
its text as paths, so the report embeds it inline and it opens anywhere, offline."""

from __future__ import annotations

import io
import re
from pathlib import Path

from .curve import Curve

FEW_SHOT_COLOR, TUNE_COLOR = "#2563eb", "#d97706"  # the report's colours for these arms


def _errors(points) -> tuple[list, list, list, list]:
    xs, ys, lo, hi = [], [], [], []
    for x, q in points:
        if q.mean is None:
            continue
        xs.append(x)
        ys.append(q.mean)
        lo.append(q.mean - (q.lo if q.lo is not None else q.mean))
        hi.append((q.hi if q.hi is not None else q.mean) - q.mean)
    return xs, ys, lo, hi


def figure(curve: Curve):
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    ax = fig.add_subplot()
    few = _errors([(p.k_used if p.capped else p.k, p.quality) for p in curve.few_shot])
    tuned = _errors([(p.n, p.quality) for p in curve.tuned])
    if few[0]:
        ax.errorbar(
            few[0],
            few[1],
            yerr=[few[2], few[3]],
            marker="o",
            capsize=3,
            color=FEW_SHOT_COLOR,
            label="few-shot (k examples in the prompt)",
        )
    if tuned[0]:
        ax.errorbar(
            tuned[0],
            tuned[1],
            yerr=[tuned[2], tuned[3]],
            marker="s",
            capsize=3,
            color=TUNE_COLOR,
            label="tune (n examples trained on)",
        )
    spread = [(p.n, *p.spread) for p in curve.tuned if p.spread]
    if spread:
        ax.fill_between(
            [s[0] for s in spread],
            [s[1] for s in spread],
            [s[2] for s in spread],
            color=TUNE_COLOR,
            alpha=0.15,
            label="tune: spread across seeds",
        )
    ax.axhline(curve.target, color="#dc2626", linestyle="--", linewidth=1, label=f"target {curve.target:.2f}")
    if curve.crossover.at_n is not None:
        ax.axvline(
            curve.crossover.at_n,
            color="#059669",
            linestyle=":",
            linewidth=1.5,
            label=f"crossover n = {curve.crossover.at_n}",
        )
    ax.set_xscale("symlog", linthresh=1)  # k = 0 and n = 400 on one axis
    ax.set_xlim(0, max([1, *few[0], *tuned[0]]) * 1.4)  # no negative counts; room after the last point
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("number of examples (log scale)")
    ax.set_ylabel(curve.metric)
    ax.set_title(f"{curve.task}: few-shot vs tuning, {curve.n_eval} held-out examples, 95% intervals", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def render_svg(curve: Curve, inline: bool = False) -> str:
    """The chart as SVG text without the XML prolog. `inline`: for an HTML page, without the
    namespace declarations (HTML needs none), so the page names no URL at all."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "lab-curve", "svg.fonttype": "path"}):
        figure(curve).savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    # the RDF metadata block names creativecommons/purl namespaces: drop it (only w3.org ones stay)
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns:(dc|cc|rdf)="[^"]*"', "", text)
    if inline:
        text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    return text[text.index("<svg") :]


def write_chart(curve: Curve, path: str | Path) -> Path:
    """The chart as .svg (default) or .png."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        figure(curve).savefig(path, format="png")
    else:
        path.write_text(render_svg(curve), encoding="utf-8")
    return path
