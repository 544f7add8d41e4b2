"""Side effects, on the Train tab: what an adapter costs elsewhere, paired with its base model
(perplexity on Python standard-library docstrings, the other tasks' held-out scores). Shows the
stored measurement of the adapter picked; **Measure side effects** runs the engine's
`measure_side_effects` in a background thread (one per adapter), a timer shows its progress, Cancel
stops it after the step in flight and Measure again resumes the answers already given. Only the
engine's functions are called here: no model or SQL code.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import gradio as gr

from ..evaluation.side_effects import (
    DEFAULT_LIMIT,
    DEFAULT_PASSAGES,
    SOURCE,
    measure_side_effects,
    side_effect_lines,
    stored_side_effects,
)
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

_RUNS: dict[str, dict] = {}  # adapter -> {"thread", "cancel", "said", "error"}: one measurement per adapter


def _running(name: str) -> dict | None:
    run = _RUNS.get(name or "")
    return run if run and run["thread"].is_alive() else None


def lines_markdown(lines: list[str]) -> str:
    return "\n".join(f"- {_ui.html.escape(line, quote=False)}" for line in lines)


def show(lab: Lab, name: str):
    """(what the block says, the timer): the measurement in progress, else the stored one, else how
    to measure it."""
    if not name:
        return "Pick an adapter.", gr.Timer(active=False)
    run = _running(name)
    if run is not None:
        return f"Measuring the side effects of `{name}`: {run['said']}", gr.Timer(active=True)
    ended = _RUNS.get(name) or {}
    note = (
        f"**The last measurement stopped:** {_ui.html.escape(ended['error'], quote=False)}\n\n"
        if ended.get("error")
        else ""
    )
    result = stored_side_effects(lab, name)
    if result is None:
        return note + (
            f"The side effects of `{name}` are not measured yet: **Measure side effects** scores "
            f"{DEFAULT_PASSAGES} passages of {SOURCE} and {DEFAULT_LIMIT} held-out examples of every other "
            "task, with and without the adapter (a few minutes on a CPU)."
        ), gr.Timer(active=False)
    when = result.get("ts", "")[:16].replace("T", " ")
    head = f"**Side effects of `{name}`** (measured {when} UTC, {result.get('wall_s', 0):.0f} s):"
    return note + head + "\n\n" + lines_markdown(side_effect_lines(result)), gr.Timer(active=False)


def measure(lab: Lab, name: str):
    """Start measuring in a background thread; (what the block says, the timer)."""
    if not name:
        raise gr.Error("Pick an adapter.")
    if _running(name):
        return show(lab, name)
    cancel = threading.Event()
    run = {"cancel": cancel, "said": "starting (loading the model)…", "error": None}

    def said(line: str) -> None:
        run["said"] = line

    def work():
        try:
            measure_side_effects(lab, name, progress=said, cancel=cancel)
        except Exception as e:  # shown by the next poll, and in History > App errors
            run["error"] = _ui.error_text(e)
            _ui.log_error(lab, "train side effects", e)

    run["thread"] = threading.Thread(target=work, name=f"side-effects-{name}", daemon=True)
    _RUNS[name] = run
    run["thread"].start()
    return f"Measuring the side effects of `{name}`: {run['said']}", gr.Timer(active=True)


def stop(lab: Lab, name: str) -> str:
    run = _running(name)
    if run is None:
        return "No measurement of this adapter is running."
    run["cancel"].set()
    return "Stopping after the passage or answer in flight; **Measure side effects** again resumes the answers."


def adapter_choices(lab: Lab, name: str | None = None):
    found = bridge.adapter_names(lab)
    return gr.update(choices=found, value=name if name in found else (found[0] if found else None))


def build(lab: Lab, adapter_name=None) -> None:
    """The accordion, closed; `adapter_name` (the Train tab's name box) picks the adapter it shows."""
    with gr.Accordion("Side effects: what an adapter costs elsewhere", open=False, elem_id="side-effects"):
        with gr.Row():
            adapter = gr.Dropdown([], label="Adapter", allow_custom_value=True, elem_id="side-effects-adapter")
            go = gr.Button("Measure side effects", variant="primary", elem_id="side-effects-measure")
            halt = gr.Button("Cancel", variant="secondary", elem_id="side-effects-cancel")
        said = gr.Markdown(elem_id="side-effects-lines")
        timer = gr.Timer(2.0, active=False)
    watch = _ui.wire(lab, "train side effects", show, lab)
    go.click(_ui.wire(lab, "train side effects", measure, lab), [adapter], [said, timer])
    halt.click(_ui.wire(lab, "train side effects", stop, lab), [adapter], said, concurrency_limit=None)
    timer.tick(watch, [adapter], [said, timer], show_progress="hidden")
    adapter.change(watch, [adapter], [said, timer], show_progress="hidden")
    _ui.on_show(lab, "train side effects", adapter_choices, [adapter], lab, inputs=[adapter_name or adapter])
