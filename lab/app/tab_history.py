"""History: every generation, evaluation, training run and rating from the SQLite log,
filterable, exported as CSV or JSON. Reads go through the store's helpers."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ..evaluation.summary import status_words
from ..prompts import ARMS
from ..units import size
from . import _ui

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

VIEWS = ["Generations", "Evaluation runs", "Training runs", "Ratings", "App errors"]
ANY = "(any)"
GEN_COLUMNS = [
    "id",
    "ts",
    "arm",
    "model_id",
    "adapter_id",
    "question",
    "output",
    "tokens in/out",
    "total_s",
    "eval_run_id",
    "error",
]
WIDTHS = {
    "id": 50,
    "ts": 150,
    "arm": 90,
    "model_id": 150,
    "adapter_id": 90,
    "question": 300,
    "output": 300,
    "tokens in/out": 90,
    "total_s": 70,
    "eval_run_id": 70,
    "error": 160,
    "stops and resumes": 300,
    "peak memory": 90,
}
EVAL_COLUMNS = ["id", "ts", "task", "model_id", "arms_json", "results", "status", "finished_ts"]
TRAIN_COLUMNS = [
    "id",
    "ts",
    "adapter_name",
    "base_model",
    "status",
    "device",
    "steps",
    "last_loss",
    "last_val_loss",
    "wall_s",
    "peak memory",
    "stops and resumes",
    "error",
]
RATING_COLUMNS = ["id", "ts", "verdict", "generation_id", "arm", "model_id", "adapter_id", "output"]
ERROR_COLUMNS = ["id", "ts", "place", "model_id", "error"]
# The views the Arm filter applies to, and the arms each can hold ("prompt": `lab ask` without a task).
ARM_CHOICES = {"Generations": [ANY, "prompt", *ARMS], "Evaluation runs": [ANY, *ARMS], "Ratings": [ANY, *ARMS]}


def _question(row: dict) -> str:
    try:
        msgs = json.loads(row.get("messages_json") or "[]")
    except ValueError:
        return ""
    return next((m.get("content", "") for m in reversed(msgs) if m.get("role") == "user"), "")


def _matches(row: dict, search: str) -> bool:
    return not search or any(search.lower() in str(v).lower() for v in row.values() if v is not None)


def rows(lab: Lab, view: str, arm: str | None, search: str | None, n: float | None) -> tuple[list[str], list[dict]]:
    """The rows of one view, newest first, with the filters applied (the Arm filter only where
    the view has arms)."""
    n = int(n or 100)
    search = (search or "").strip()
    arm = None if arm in (None, "", ANY) or view not in ARM_CHOICES else arm
    if view == "Generations":
        found = lab.store.recent_generations(n, arm=arm, search=search or None)
        for r in found:
            r["question"] = _question(r)
        return GEN_COLUMNS, found
    if view == "Evaluation runs":
        found = [r for r in lab.store.eval_runs(n) if _matches(r, search)]
        return EVAL_COLUMNS, [r for r in found if not arm or arm in json.loads(r.get("arms_json") or "[]")]
    if view == "Training runs":
        return TRAIN_COLUMNS, [r for r in lab.store.training_runs(n) if _matches(r, search)]
    if view == "Ratings":
        return RATING_COLUMNS, [r for r in lab.store.ratings(n) if _matches(r, search) and (not arm or r["arm"] == arm)]
    if view == "App errors":
        return ERROR_COLUMNS, [r for r in lab.store.app_errors(n) if _matches(r, search)]
    raise ValueError(f"unknown view '{view}': choose one of {', '.join(VIEWS)}")


def show(lab: Lab, view, arm, search, n):
    columns, found = rows(lab, view, arm, search, n)
    table = [[_short(_cell(r, c)) for c in columns] for r in found]
    note = f"{len(found)} row(s) from `{lab.store.path}`"
    if not found:
        unfiltered = len(rows(lab, view, ANY, "", n)[1])
        used = []
        if view in ARM_CHOICES and arm not in (None, "", ANY):
            used.append(f"arm **{arm}**")
        if (search or "").strip():
            used.append(f"containing “{_ui.html.escape(search.strip())}”")
        note += (
            f" — none match the filters ({', '.join(used)}); {unfiltered} without them."
            if unfiltered
            else " — nothing logged yet for this view."
        )
    widths = [WIDTHS.get(c, 110) for c in columns]
    return gr.update(value=table or [[""] * len(columns)], headers=columns, column_widths=widths), note


def arm_filter(view: str):
    """The Arm filter for a view: shown only where it applies, and reset when the view changes
    (an arm picked for generations does not carry over to training runs or app errors)."""
    return gr.update(choices=ARM_CHOICES.get(view, [ANY]), value=ANY, visible=view in ARM_CHOICES)


def export(lab: Lab, view, arm, search, n, fmt: str):
    """The filtered rows, every column, as a CSV or JSON file to download."""
    _columns, found = rows(lab, view, arm, search, n)
    # In Gradio's file cache, the lab home's: nothing outside the home, and Gradio serves it as is
    lab.home.gradio_cache.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=lab.home.gradio_cache))
    path = folder / f"{view.lower().replace(' ', '-')}.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(found, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    else:
        keys = list(dict.fromkeys(k for r in found for k in r)) or _columns
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(found)
    return gr.update(value=str(path), visible=True)


def _cell(row: dict, column: str):
    if column == "tokens in/out":
        return "" if row.get("prompt_tokens") is None else f"{row['prompt_tokens']} / {row['completion_tokens']}"
    if column == "status" and "arms_json" in row:  # an evaluation run: the words Evaluate and Advisor use
        return status_words(row.get("status"))
    if column == "peak memory":
        return size(row.get("peak_mem"))
    if column == "stops and resumes":
        return events_text(row.get("events_json"))
    return row.get(column)


def events_text(events_json: str | None) -> str:
    """A training run's stops and resumptions, oldest first: "stopped at step 4 (20:10:03), resumed …"."""
    events = json.loads(events_json or "[]")
    return ", ".join(f"{e['event']} at step {e['step']} ({e['ts'][11:19]})" for e in events)


def _short(v, width: int = 160):
    if isinstance(v, str) and len(v) > 20 and v[4:5] == "-" and v[10:11] == "T":  # an ISO timestamp
        return v[:19].replace("T", " ")
    if isinstance(v, float):
        return round(v, 3)
    if isinstance(v, str) and len(v) > width:
        return v[:width] + "…"
    return v


def build(lab: Lab) -> None:
    gr.Markdown(
        "Everything the lab did, from the SQLite log (open it yourself with `sqlite-utils` or "
        f"`datasette`: `{lab.store.path}`).",
        elem_classes="lab-lead",
    )
    with gr.Row():
        view = gr.Radio(VIEWS, value="Generations", label="Show", scale=3, elem_id="history-view")
        arm = gr.Dropdown(ARM_CHOICES["Generations"], value=ANY, label="Arm", scale=1, elem_id="history-arm")
        search = gr.Textbox(label="Contains", placeholder="a word of the question, answer, task…", scale=2)
        n = gr.Number(value=100, precision=0, minimum=1, label="Rows", scale=1)
    with gr.Row():
        refresh = gr.Button("Refresh", variant="primary", elem_id="history-refresh")
        as_csv = gr.Button("Export CSV")
        as_json = gr.Button("Export JSON")
    note = gr.Markdown(elem_id="history-note")
    table = gr.Dataframe(interactive=False, wrap=True, max_height=600, elem_id="history-table")
    download = gr.File(label="Export", interactive=False, visible=False, elem_id="history-export")

    inputs = [view, arm, search, n]
    show_cb = _ui.wire(lab, "history", show, lab)
    _ui.on_show(lab, "history", show, [table, note], lab, inputs=inputs)
    view.change(_ui.wire(lab, "history", arm_filter), view, arm, show_progress="hidden").then(
        show_cb, inputs, [table, note]
    )
    for trigger in (refresh.click, arm.input, search.submit):  # arm.input: the user's pick, not the reset
        trigger(show_cb, inputs, [table, note])
    as_csv.click(_ui.wire(lab, "history", export, lab), [*inputs, gr.State("csv")], download)
    as_json.click(_ui.wire(lab, "history", export, lab), [*inputs, gr.State("json")], download)
