"""First launch: a lab home with no adapter or no stored evaluation offers "Prepare the demo (≈ N
min)", which runs `lab demo prepare` as a background job (`lab.demo.start_job`): the index, the
demo adapters and a stored evaluation of each built-in scenario, so Compare, Evaluate and Advisor
show the whole ladder. The block polls the job's `demo_runs` row; Cancel stops it keeping what is
done, and pressing the button again continues."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from .. import demo
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

ENDED = {
    "done": "The demo is ready: open **Compare**, **Evaluate** or **Advisor**.",
    "interrupted": "Stopped; what was done is kept. Press the button to continue.",
    "cancelled": "Stopped; what was done is kept. Press the button to continue.",
    "died": "The preparation ended without finishing (killed?); what was done is kept. Press the button to continue.",
    "failed": "The preparation failed: {error}",
}


def offer(lab: Lab):
    """(block, note, prepare button, cancel button, status, timer) as the home is now: hidden when
    the demo is not needed and nothing runs; while a preparation runs, its progress."""
    run = demo.latest_run(lab)
    running = run is not None and run["status"] == "running"
    if not running and not demo.needed(lab):
        return (gr.update(visible=False), gr.update(), gr.update(), gr.update(), gr.update(), gr.Timer(active=False))
    # No probe answers on a page load (they would land in the run log): speeds from the log, else a
    # rough figure; the job itself times a few answers first.
    steps = demo.plan(lab, probe=False)
    left = [s for s in steps if not s.done]
    note = (
        f"{_missing(lab)} One button prepares the whole demo in the background: {len(left)} of {len(steps)} "
        f"steps to go (index, {sum(s.action == 'train' for s in left)} demo adapters, evaluations of "
        f"{demo.DEFAULT_LIMIT} held-out examples per scenario)."
    )
    minutes = max(1, round(demo.total_seconds(steps) / 60))
    # The same plan the job makes, less its probe answers: until answers are timed here the
    # figure is a first estimate, and the job's progress shows its own as it measures.
    timed = lab.store.answer_seconds(bridge.model_id(lab))[1] > 0
    label = f"Prepare the demo (about {minutes} min{'' if timed else ', a first estimate'})"
    return (
        gr.update(visible=True),
        note,
        gr.update(value=label, visible=not running),
        gr.update(visible=running),
        status(run),
        gr.Timer(active=running),
    )


def _missing(lab: Lab) -> str:
    """What this lab home lacks for the whole ladder, as it is now."""
    has_adapter, has_eval = demo.has_parts(lab)  # the same count `demo.needed` makes
    if not has_adapter and not has_eval:
        return "**First launch?** This lab home has no adapter and no stored evaluation yet."
    if not has_adapter:
        return "**No adapter yet:** the tune rung has nothing to compare."
    if not has_eval:
        return "**No stored evaluation yet:** Evaluate and Advisor have no scoreboard to show."
    return "The demo is being prepared."


def start(lab: Lab):
    run = demo.latest_run(lab)
    if run is not None and run["status"] == "running":
        return (
            "Already preparing (see the progress below).",
            gr.update(visible=False),
            gr.update(visible=True),
            gr.Timer(active=True),
        )
    proc = demo.start_job(lab)
    return (
        f"Preparing the demo in the background (process {proc.pid}); you can close the page.",
        gr.update(visible=False),
        gr.update(visible=True),
        gr.Timer(active=True),
    )


def cancel(lab: Lab) -> str:
    return demo.stop_job(lab)


def status(run: dict | None) -> str:
    if run is None:
        return ""
    if run["status"] == "running" and not run["steps"]:  # started, still making its plan
        return _ui.progress_bar(0, 1, "starting: planning the steps and timing a few answers…", count=False)
    if run["status"] == "running":
        label = (
            f"step {run['step']} of {run['steps']}: {run['message'] or 'starting'}; "
            f"about {_ui.secs(run['estimate_s'])} left"
        )
        done = max(0, (run["step"] or 1) - 1) + (run["fraction"] or 0.0)
        return _ui.progress_bar(done, run["steps"] or 1, label, count=False)  # the label says which step
    return ENDED.get(run["status"], run["status"]).format(error=run.get("error") or "")


def poll(lab: Lab):
    """(status, prepare button, cancel button, timer): the timer stops once the job has ended."""
    run = demo.latest_run(lab)
    running = run is not None and run["status"] == "running"
    return (
        status(run),
        gr.update(visible=not running and (run or {}).get("status") != "done"),
        gr.update(visible=running),
        gr.Timer(active=running),
    )


def recheck(lab: Lab, note: str):
    """(block, note) after something happened elsewhere (an evaluation, an adapter, this page or
    another): hidden once the demo is not needed, the note redone when what the home lacks
    changed, else untouched. Cheap (no plan) unless the note changes: a slow timer and every tab
    switch call it."""
    run = demo.latest_run(lab)
    if run is not None and run["status"] == "running":
        return gr.update(), gr.update()  # the progress poll has it
    if not demo.needed(lab):
        return gr.update(visible=False), gr.update()
    if (note or "").startswith(_missing(lab)):
        return gr.update(), gr.update()
    block, note, *_ = offer(lab)
    return block, note


def build(lab: Lab) -> tuple:
    """The block, hidden until the page load finds the demo is needed (or being prepared).
    Returns (callback, inputs, outputs) that bring it up to date, for the page to call when a
    tab opens."""
    with gr.Group(visible=False, elem_id="demo-offer") as block:
        note = gr.Markdown()
        with gr.Row():
            prepare = gr.Button("Prepare the demo", variant="primary", elem_id="demo-prepare", scale=3)
            stop = gr.Button("Cancel", variant="stop", visible=False, elem_id="demo-cancel", scale=1)
        progress = gr.HTML(elem_id="demo-status")
    timer = gr.Timer(2.0, active=False)
    shown = [block, note, prepare, stop, progress, timer]
    _ui.on_load(lab, "demo", offer, shown, lab)
    prepare.click(_ui.wire(lab, "demo", start, lab), None, [progress, prepare, stop, timer])
    stop.click(_ui.wire(lab, "demo", cancel, lab), None, progress)
    timer.tick(_ui.wire(lab, "demo", poll, lab), None, [progress, prepare, stop, timer], show_progress="hidden")
    # what another tab or another page did (an evaluation, a trained adapter) shows here unasked
    refresh = _ui.wire(lab, "demo", recheck, lab), [note], [block, note]
    gr.Timer(10.0).tick(*refresh, show_progress="hidden")
    return refresh
