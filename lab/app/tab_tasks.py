"""New task: your own file -> a task in the lab home (tasks/NAME/), as `lab task new` makes it.

Upload a CSV, TSV, JSONL/JSON or Parquet file, check the preview, pick the input and output
columns, read the inferred format, labels, split and warnings (leakage, rare labels), edit the
instruction, write other instructions to try, pick a corpus, edit a text task's rubric (what a good
answer is, for blind pairwise rating; prefilled with `task_import.DEFAULT_RUBRIC`), create. The
pickers of the other tabs list the new task when they are opened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from .. import task_import
from . import _ui, bridge
from .bridge import AppError

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

INFER = "infer"
FILE_TYPES = sorted(task_import.FILE_FORMATS)
NO_FILE = "_Upload a file to see its format and split._"
REPLACE = "Replace a task of the same name"  # the checkbox: the app's --force
FIX_FILE = "Fix the file, then upload it again."
OTHERS = "Other instructions to try"
OTHERS_HINT = (
    "One per paragraph: leave a blank line between two. Try one that states the output format or the "
    "persona explicitly; the prompt rung measures each beside the instruction."
)
CORPUS = "Corpus (for RAG)"
RUBRIC = "Rubric (what a good answer is, for blind pairwise rating)"
RUBRIC_HINT = (
    "What makes one answer better than another, read beside two answers rated blind (by you, or a judge "
    "model): house style, tone, a persona. Empty: no rubric."
)
NO_CORPUS = "(none)"


def _path(upload) -> str | None:
    if not upload:
        return None
    return upload if isinstance(upload, str) else getattr(upload, "name", None)


def say(e: task_import.TaskImportError) -> str:
    """The engine's error in this tab's words: the file by the name it was uploaded as (Gradio
    keeps it as the last part of its temporary copy's path), the fix in this tab's controls."""
    if isinstance(e, task_import.TaskExistsError):
        return (
            f"a task named '{e.name}' already exists ({e.folder}): tick **{REPLACE}** to replace it, "
            "or choose another name"
        )
    if isinstance(e, task_import.ColumnError):
        if e.named is None:
            return f"{e.worded()} Pick them in **Input column** and **Output column**."
        return f"{e.worded()}: pick the **{(e.role or 'input').capitalize()} column** among {', '.join(e.columns)}"
    if isinstance(e, task_import.EvalSizeError):
        return f"**Held out** {e.value}: {e.problem}"
    if isinstance(e, task_import.CorpusError):
        return f"**{CORPUS}** {e.corpus}: {e.problem}"
    if isinstance(e, task_import.InstructionsError):
        return f"**{OTHERS}**: {e.problem}"
    return e.worded()


def paragraphs(text: str | None) -> list[str]:
    """The instructions typed in one box, one per paragraph (a blank line between two)."""
    return [p.strip() for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]


def corpus_choices(lab: Lab):
    """The corpus picker: none, or a corpus of the lab home or a sample one, by name."""
    return gr.update(choices=[NO_CORPUS, *bridge.corpora(lab)])


def _warn(e: task_import.TaskImportError) -> str:
    """An engine error shown in place (Markdown): the file's own words escaped, this tab's kept."""
    return f"⚠️ {_ui.html.escape(say(e), quote=False)}"


def _no_columns() -> tuple[dict, dict]:
    """Both pickers emptied, value and choices. Two dicts: Gradio pops "value" out of an update
    as it applies it, so one dict returned for both left the output picker's old value on the
    page, outside its new choices ("Value: label is not in the list of choices: []")."""
    return gr.update(choices=[], value=None), gr.update(choices=[], value=None)


def load_file(upload):
    """A new file: its preview, its columns in both pickers (the obvious pair chosen), a name.
    A file that cannot be read clears the preview and the pickers (the plan, which follows,
    says why, once); nothing of the file before stays."""
    path = _path(upload)
    if path is None:
        return gr.update(value=[], headers=["(no file)"]), *_no_columns(), gr.update()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.").lower() or "my-task"
    try:
        table = task_import.read_table(path)
    except task_import.TaskImportError:
        return gr.update(value=[], headers=["(unreadable file)"]), *_no_columns(), gr.update(value=name)
    headers, rows = task_import.preview(table)
    guess_in, guess_out = task_import.guess_columns(table.columns)
    return (
        gr.update(value=rows, headers=headers),
        gr.update(choices=table.columns, value=guess_in),
        gr.update(choices=table.columns, value=guess_out),
        gr.update(value=name),
    )


def _plan(
    source,
    name,
    input_column,
    output_column,
    fmt,
    eval_size,
    seed,
    instruction=None,
    others=None,
    corpus=None,
    home=None,
    rubric=None,
):
    """`source`: the upload, or its file already read (a Table); `rubric` None: a text task's default."""
    return task_import.plan_task(
        source if isinstance(source, task_import.Table) else _path(source),
        (name or "").strip() or "my-task",
        input_column=input_column or None,
        output_column=output_column or None,
        seed=int(seed or 0),
        eval_size=task_import.parse_eval_size(eval_size),
        output_format=None if fmt in (None, "", INFER) else fmt,
        instruction=(instruction or "").strip() or None,
        instructions=paragraphs(others),
        corpus=None if corpus in (None, "", NO_CORPUS) else corpus,
        rubric=rubric,
        home=home,
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


def show_plan(upload, name, input_column, output_column, fmt, eval_size, seed, rubric=None):
    """What would be made (a problem is shown in place: picking columns is trial and error), its
    instruction, and the rubric box: shown for a text task (the rubric typed there kept, else the
    default one), hidden for labels and JSON. A file that cannot be read also clears the
    instruction: it was the file before's."""
    path = _path(upload)
    if not path:
        return NO_FILE, gr.update(), gr.update()
    try:
        table = task_import.read_table(path)
    except task_import.TaskImportError as e:
        return f"{_warn(e)}\n\n{FIX_FILE}", gr.update(value=""), gr.update()
    try:
        plan = _plan(table, name, input_column, output_column, fmt, eval_size, seed)
    except task_import.TaskImportError as e:
        return _warn(e), gr.update(), gr.update()
    if plan.output_format != "text":
        return render(plan), gr.update(value=plan.instruction), gr.update(visible=False)
    kept = (rubric or "").strip()
    return render(plan), gr.update(value=plan.instruction), gr.update(visible=True, value=kept or plan.rubric)


def create(
    lab: Lab,
    upload,
    name,
    input_column,
    output_column,
    fmt,
    eval_size,
    seed,
    instruction,
    force,
    others="",
    corpus=None,
    rubric=None,
):
    """Write the task, as `lab task new` does: `others` (one instruction to try per paragraph),
    `corpus` (a name the picker offers) and a text task's `rubric` (None: the default one; empty:
    none; a label or JSON task has none, whatever the hidden box holds) included."""
    if not _path(upload):
        raise gr.Error("Upload a CSV, TSV, JSONL or Parquet file first.")
    name = (name or "").strip()
    try:
        table = task_import.read_table(_path(upload))
    except task_import.TaskImportError as e:
        raise AppError(f"{say(e)}. {FIX_FILE}") from None
    try:
        task_import.check_name(name, lab.home, bool(force))
        plan = _plan(
            table,
            name,
            input_column,
            output_column,
            fmt,
            eval_size,
            seed,
            instruction,
            others,
            corpus,
            lab.home,
            rubric,
        )
        task_import.write_task(plan, lab.home, force=bool(force))
    except task_import.TaskImportError as e:
        raise AppError(say(e)) from None
    extras = [f"{len(plan.instructions) + 1} instructions to try"] if plan.instructions else []
    extras += [f"corpus `{plan.corpus}`"] if plan.corpus else []
    extras += [f"kept {', '.join(plan.kept)}"] if plan.kept else []
    extras += ["a rubric for blind pairwise rating"] if plan.rubric else []
    return (
        f"**Created task {plan.name}** in `{plan.path.parent}`: train {len(plan.train)} · eval {len(plan.eval)} · "
        f"few-shot {len(plan.fewshot)}"
        + "".join(f" · {x}" for x in extras)
        + f". Open **Evaluate**, pick `{plan.name}` and press Run (or `lab eval {plan.name}`)."
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
    plan = gr.Markdown(NO_FILE, elem_id="newtask-plan")
    instruction = gr.Textbox(
        label="Instruction (the system prompt; edit it freely)", lines=4, elem_id="newtask-instruction"
    )
    with gr.Row():
        others = gr.Textbox(label=OTHERS, placeholder=OTHERS_HINT, lines=3, scale=3, elem_id="newtask-others")
        corpus = gr.Dropdown(
            [NO_CORPUS], value=NO_CORPUS, label=CORPUS, scale=1, elem_id="newtask-corpus", allow_custom_value=False
        )
    rubric = gr.Textbox(
        label=RUBRIC, placeholder=RUBRIC_HINT, lines=6, visible=False, elem_id="newtask-rubric"
    )  # shown for a text task
    with gr.Row():
        force = gr.Checkbox(False, label=REPLACE, elem_id="newtask-force")
        go = gr.Button("Create task", variant="primary", elem_id="newtask-create")
    result = gr.Markdown(elem_id="newtask-result")

    settings = [upload, name, input_column, output_column, fmt, eval_size, seed]
    shown = [plan, instruction, rubric]
    upload.change(_ui.wire(lab, "new task", load_file), upload, [preview, input_column, output_column, name]).then(
        _ui.wire(lab, "new task", show_plan), [*settings, rubric], shown
    )
    upload.change(lambda: "", None, result, show_progress="hidden")  # the last Create's outcome was another file's
    for control in (input_column, output_column, fmt):
        control.input(_ui.wire(lab, "new task", show_plan), [*settings, rubric], shown)
    for control in (eval_size, seed):
        control.blur(_ui.wire(lab, "new task", show_plan), [*settings, rubric], shown)
    _ui.on_load(lab, "new task", corpus_choices, [corpus], lab)
    _ui.on_select(lab, "new task", corpus_choices, [corpus], lab)
    go.click(
        _ui.wire(lab, "new task", create, lab),
        [*settings, instruction, force, others, corpus, rubric],
        result,
        api_name="new_task",
    )
