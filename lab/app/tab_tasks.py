"""New task: your own file -> a task in the lab home (tasks/NAME/), as `lab task new` makes it.

Upload a CSV, TSV, JSONL/JSON or Parquet file, check the preview, pick the input and output
columns, read the inferred format, labels, split and warnings (leakage, rare labels), edit the
instruction, create. The pickers of the other tabs list the new task when they are opened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from .. import task_import
from . import _ui

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

INFER = "infer"
FILE_TYPES = sorted(task_import.FILE_FORMATS)


def _path(upload) -> str | None:
    if not upload:
        return None
    return upload if isinstance(upload, str) else getattr(upload, "name", None)


def load_file(upload):
    """A new file: its preview, its columns in both pickers (the obvious pair chosen), a name."""
    path = _path(upload)
    if path is None:
        empty = gr.update(choices=[], value=None)
        return gr.update(value=[], headers=["(no file)"]), empty, empty, gr.update()
    table = task_import.read_table(path)
    headers, rows = task_import.preview(table)
    guess_in, guess_out = task_import.guess_columns(table.columns)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.").lower() or "my-task"
    return (
        gr.update(value=rows, headers=headers),
        gr.update(choices=table.columns, value=guess_in),
        gr.update(choices=table.columns, value=guess_out),
        gr.update(value=name),
    )


def _plan(upload, name, input_column, output_column, fmt, eval_size, seed, instruction=None):
    return task_import.plan_task(
        _path(upload),
        (name or "").strip() or "my-task",
        input_column=input_column or None,
        output_column=output_column or None,
        seed=int(seed or 0),
        eval_size=task_import.parse_eval_size(eval_size),
        output_format=None if fmt in (None, "", INFER) else fmt,
        instruction=(instruction or "").strip() or None,
    )


def render(plan) -> str:
    warnings = "".join(f"\n- ⚠️ {_ui.html.escape(w, quote=False)}" for w in plan.warnings)
    return (
        f"**Format: {plan.output_format}**"
        + (f" · {len(plan.labels)} labels" if plan.labels else "")
        + f" · train {len(plan.train)} · eval {len(plan.eval)} · few-shot {len(plan.fewshot)}"
        + f"\n\n```\n{plan.summary()}\n```"
        + (f"\n\n**Warnings**{warnings}" if warnings else "")
    )


def show_plan(upload, name, input_column, output_column, fmt, eval_size, seed):
    """What would be made (a problem is shown in place: picking columns is trial and error)."""
    if not _path(upload):
        return "_Upload a file to see its format and split._", gr.update()
    try:
        plan = _plan(upload, name, input_column, output_column, fmt, eval_size, seed)
    except task_import.TaskImportError as e:
        return f"⚠️ {_ui.html.escape(str(e), quote=False)}", gr.update()
    return render(plan), gr.update(value=plan.instruction)


def create(lab: Lab, upload, name, input_column, output_column, fmt, eval_size, seed, instruction, force):
    if not _path(upload):
        raise gr.Error("Upload a CSV, TSV, JSONL or Parquet file first.")
    name = (name or "").strip()
    task_import.check_name(name, lab.home, bool(force))
    plan = _plan(upload, name, input_column, output_column, fmt, eval_size, seed, instruction)
    task_import.write_task(plan, lab.home, force=bool(force))
    return (
        f"**Created task {plan.name}** in `{plan.path.parent}`: train {len(plan.train)} · eval {len(plan.eval)} · "
        f"few-shot {len(plan.fewshot)}. Open **Evaluate**, pick `{plan.name}` and press Run "
        f"(or `lab eval {plan.name}`)."
    )


def build(lab: Lab) -> None:
    gr.Markdown(
        "Your own task from a file you have: one row per example, an input column and an output "
        "column. The output format, labels and a seeded train/eval/few-shot split are worked out for you; "
        "training rows that repeat a held-out input are dropped.",
        elem_classes="lab-lead",
    )
    with gr.Row():
        upload = gr.File(
            label="CSV, TSV, JSONL/JSON or Parquet",
            file_types=FILE_TYPES,
            type="filepath",
            scale=2,
            elem_id="newtask-file",
        )
        with gr.Column(scale=3):
            with gr.Row():
                input_column = gr.Dropdown(label="Input column", choices=[], elem_id="newtask-input")
                output_column = gr.Dropdown(label="Output column", choices=[], elem_id="newtask-output")
                fmt = gr.Radio(
                    [INFER, "label", "json", "text"], value=INFER, label="Output format", elem_id="newtask-format"
                )
            with gr.Row():
                name = gr.Textbox(label="Task name (tasks/NAME/ in the lab home)", elem_id="newtask-name")
                eval_size = gr.Textbox(label="Held out: a count or a fraction (empty: 20%)", elem_id="newtask-eval")
                seed = gr.Number(0, precision=0, label="Split seed", elem_id="newtask-seed")
    preview = gr.Dataframe(
        label="Preview (first rows)", interactive=False, wrap=True, max_height=300, elem_id="newtask-preview"
    )
    plan = gr.Markdown("_Upload a file to see its format and split._", elem_id="newtask-plan")
    instruction = gr.Textbox(
        label="Instruction (the system prompt; edit it freely)", lines=4, elem_id="newtask-instruction"
    )
    with gr.Row():
        force = gr.Checkbox(False, label="Replace a task of the same name")
        go = gr.Button("Create task", variant="primary", elem_id="newtask-create")
    result = gr.Markdown(elem_id="newtask-result")

    settings = [upload, name, input_column, output_column, fmt, eval_size, seed]
    upload.change(_ui.wire(lab, "new task", load_file), upload, [preview, input_column, output_column, name]).then(
        _ui.wire(lab, "new task", show_plan), settings, [plan, instruction]
    )
    for control in (input_column, output_column, fmt):
        control.input(_ui.wire(lab, "new task", show_plan), settings, [plan, instruction])
    for control in (eval_size, seed):
        control.blur(_ui.wire(lab, "new task", show_plan), settings, [plan, instruction])
    go.click(_ui.wire(lab, "new task", create, lab), [*settings, instruction, force], result, api_name="new_task")
