"""What every tab shares: readable errors, small formatters, refresh-when-shown.

No model, retrieval, training or SQL code lives in lab/app: callbacks call the engine
(`lab.*`) and turn its results into text, tables and charts.
"""

from __future__ import annotations

import functools
import html
import inspect
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.context import Context, get_render_context

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab


def error_text(e: BaseException) -> str:
    """One line a user can act on: the engine's errors already name the file, field or path."""
    text = str(e).strip() or type(e).__name__
    return text if type(e).__module__.startswith("lab") else f"{type(e).__name__}: {text}"


def log_error(lab: Lab, where: str, e: BaseException) -> None:
    """The one place the app logs what went wrong (History > App errors)."""
    try:  # a broken log must not hide the message
        lab.store.log_app_error(where, f"{type(e).__name__}: {e}", model_id=lab.config.default_model)
    except Exception:
        pass


def toast_text(text: str) -> str:
    """A message for a toast, which shows HTML, not Markdown: the page's **control names** in bold."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text, quote=False))


def _fail(lab: Lab, where: str, e: BaseException) -> gr.Error:
    log_error(lab, where, e)
    return gr.Error(toast_text(error_text(e)), title=f"{where.capitalize()} failed", print_exception=False)


def guard(lab: Lab, where: str, fn: Callable) -> Callable:
    """Wrap a callback so an exception becomes a readable message in the page (gr.Error: a
    toast, no stack trace) and a row in the log; the app stays up."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:
                raise _fail(lab, where, e) from None

        return streaming

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:
            raise _fail(lab, where, e) from None

    return plain


def wire(lab: Lab, where: str, fn: Callable, *bound: Any) -> Callable:
    """`fn(lab-side args..., ui inputs...)` with its first arguments bound, guarded."""
    return guard(lab, where, functools.partial(fn, *bound) if bound else fn)


def on_load(lab: Lab, where: str, fn: Callable, outputs: list, *bound: Any, inputs: list | None = None) -> None:
    """Run `fn` when the page loads (defaults and lists as they are now)."""
    if Context.root_block is not None:
        Context.root_block.load(wire(lab, where, fn, *bound), inputs=inputs, outputs=outputs, show_progress="hidden")


def on_select(lab: Lab, where: str, fn: Callable, outputs: list, *bound: Any, inputs: list | None = None) -> None:
    """Run `fn` each time the enclosing tab is opened, so what another tab or a subprocess made
    (adapters, runs, documents) shows up without a reload."""
    tab = get_render_context()
    if isinstance(tab, gr.Tab):
        tab.select(wire(lab, where, fn, *bound), inputs=inputs, outputs=outputs, show_progress="hidden")


def on_show(lab: Lab, where: str, fn: Callable, outputs: list, *bound: Any, inputs: list | None = None) -> None:
    """Both: on page load and when the tab is opened."""
    on_load(lab, where, fn, outputs, *bound, inputs=inputs)
    on_select(lab, where, fn, outputs, *bound, inputs=inputs)


def md_table(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    def cell(v):
        return "" if v is None else html.escape(str(v)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def secs(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 90:
        return f"{x:.1f} s" if x >= 1 else f"{1000 * x:.0f} ms"
    return f"{x / 60:.0f} min" if x < 5400 else f"{x / 3600:.1f} h"


def quality_ci(q) -> str:
    """A mean with its 95% interval, as every scoreboard shows it (one example: no interval)."""
    if q.mean is None:
        return "—"
    return f"{q.mean:.3f} [—]" if q.lo is None else f"{q.mean:.3f} [{q.lo:.3f}, {q.hi:.3f}]"


def p_value(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def comparison(c) -> str:
    """One `stats.Comparison` as a line: b vs a, the difference with its interval, the raw and the
    Holm-corrected p, the verdict (bold when significant) and n. Missing parts show as —."""
    if c.diff is None:
        return f"{c.b} vs {c.a}: no examples in common"
    ci = "" if c.lo is None else f" [{c.lo:+.3f}, {c.hi:+.3f}]"
    holm = f", Holm-corrected p = {p_value(c.p_adjusted)}" if c.p_adjusted != c.p_value else ""
    verdict = f"**{c.verdict}**" if c.significant else c.verdict
    return f"{c.b} vs {c.a}: {c.diff:+.3f}{ci}, p = {p_value(c.p_value)}{holm} — {verdict} (n = {c.n})"


def money(x: float | None) -> str:
    if x is None:
        return "—"
    if 0 < x < 0.0001:
        return "< $0.0001"
    return f"${x:,.4f}" if x < 1 else f"${x:,.2f}"


def progress_bar(done: float, total: int, label: str = "", count: bool = True) -> str:
    """A plain HTML bar (no external assets): the eval and index progress. `done` may carry the
    step in flight's fraction (the bar shows it); the label counts whole steps done, unless
    `count` is False (a label that says which step runs already: "step 2 of 10: …")."""
    frac = done / total if total else 0.0
    counted = f" {int(done)} / {total}" if count else ""
    return (
        f'<div class="lab-progress"><div style="width:{100 * frac:.1f}%"></div></div>'
        f'<div class="lab-progress-label">{html.escape(label)}{counted}</div>'
    )
