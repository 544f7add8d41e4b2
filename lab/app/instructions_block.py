"""Instructions to try, on the Evaluate tab: the task's instruction (its system prompt) and the
others its prompt rung measures beside it, one per paragraph; and beside them a text task's rubric
(what a good answer is, read beside two answers rated blind). Both editable for your own tasks
(saved in place in their task.toml, the rest of the file as it was: `task_import.set_instructions`,
`task_import.set_rubric`; neither changes the task's hash, so the stored evaluations stay); a
built-in task's are shown, and Save says to make a copy with New task."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from .. import task_import
from . import _ui, bridge
from .bridge import AppError
from .tab_tasks import OTHERS, OTHERS_HINT, RUBRIC, RUBRIC_HINT, paragraphs

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab


def instructions_view(lab: Lab, task_name: str):
    """(the task's instruction, its other instructions to try, one per paragraph (editable for
    your own tasks, not a built-in's), the note under them)."""
    if not task_name:
        return "", gr.update(value="", interactive=False), ""
    task = bridge.task(lab, task_name)
    builtin = task_import.is_builtin(task)
    return (
        task.instruction,
        gr.update(value="\n\n".join(task.instructions), interactive=not builtin),
        _instructions_note(task, builtin),
    )


def _instructions_note(task, builtin: bool, saved: str = "") -> str:
    notes = [saved] if saved else []
    if builtin:
        notes.append(
            f"**{task.name}** is a built-in task, part of the lab: to try other instructions, make your own "
            "copy of it with **New task**."
        )
    if note := task_import.instructions_note(task):
        notes.append(_ui.html.escape(note, quote=False))
    return " ".join(notes)


def save_instructions(lab: Lab, task_name: str, text: str):
    """Make the box's paragraphs the task's other instructions to try (the rest of its task file
    stays as it was); (the box, as saved, and the note)."""
    if not task_name:
        raise gr.Error("Pick a task.")
    task = bridge.task(lab, task_name)
    if task_import.is_builtin(task):
        raise AppError(_instructions_note(task, True))
    try:
        task = task_import.set_instructions(task, paragraphs(text))
    except task_import.TaskImportError as e:
        raise AppError(f"**{OTHERS}**: {e.problem}") from None
    n = len(task.instructions)
    saved = f"Saved: {n} other instruction{'s' if n != 1 else ''} to try." if n else "Saved: no other instruction."
    return gr.update(value="\n\n".join(task.instructions)), _instructions_note(task, False, saved)


def rubric_view(lab: Lab, task_name: str):
    """(the task's rubric, editable for your own text tasks, the note under it)."""
    if not task_name:
        return gr.update(value="", interactive=False), ""
    task = bridge.task(lab, task_name)
    builtin = task_import.is_builtin(task)
    text = task.output_format == "text"
    return (
        gr.update(
            value=task.rubric,
            interactive=text and not builtin,
            placeholder=task_import.DEFAULT_RUBRIC if text else RUBRIC_HINT,
        ),
        _rubric_note(task, builtin),
    )


def _rubric_note(task, builtin: bool, saved: str = "") -> str:
    if task.output_format != "text":
        what = "labels" if task.output_format == "label" else "JSON"
        return (
            f"**{task.name}** answers with {what}, scored exactly: a rubric is for text answers, rated blind "
            "two at a time."
        )
    notes = [saved] if saved else []
    if builtin:
        notes.append(
            f"**{task.name}** is a built-in task, part of the lab: to write its rubric, make your own copy of it "
            "with **New task**."
        )
    elif not task.rubric:
        notes.append(
            "No rubric yet: say what a good answer is (house style, tone, a persona), or start from the one "
            "shown greyed, and press **Save rubric**."
        )
    return " ".join(notes)


def save_rubric(lab: Lab, task_name: str, text: str):
    """Make the box's text the task's rubric (empty: none), the rest of its task file as it was and its
    stored evaluations kept; (the box, as saved, and the note)."""
    if not task_name:
        raise gr.Error("Pick a task.")
    task = bridge.task(lab, task_name)
    if task_import.is_builtin(task) or task.output_format != "text":
        raise AppError(_rubric_note(task, task_import.is_builtin(task)))
    try:
        task = task_import.set_rubric(task, text or "")
    except task_import.TaskImportError as e:
        raise AppError(f"**{RUBRIC}**: {e.problem}") from None
    saved = "Saved: the rubric (the stored evaluations are kept)." if task.rubric else "Saved: no rubric."
    return gr.update(value=task.rubric), _rubric_note(task, False, saved)


def build() -> tuple:
    """The accordions, closed. Returns (own, others, save, note, rubric, rubric_save, rubric_note) for
    `wire`, which the tab calls beside its other events, once its task picker is there."""
    with gr.Accordion("Instructions to try", open=False, elem_id="eval-instructions"):
        own = gr.Textbox(
            label="The task's instruction (its system prompt)", interactive=False, lines=3, elem_id="eval-instruction"
        )
        others = gr.Textbox(label=OTHERS, placeholder=OTHERS_HINT, lines=4, elem_id="eval-others")
        with gr.Row():
            save = gr.Button("Save instructions", elem_id="eval-instructions-save", scale=0)
            note = gr.Markdown(elem_id="eval-instructions-note")
    with gr.Accordion("Rubric", open=False, elem_id="eval-rubric-block"):
        rubric = gr.Textbox(label=RUBRIC, placeholder=RUBRIC_HINT, lines=6, interactive=False, elem_id="eval-rubric")
        with gr.Row():
            rubric_save = gr.Button("Save rubric", elem_id="eval-rubric-save", scale=0)
            rubric_note = gr.Markdown(elem_id="eval-rubric-note")
    return own, others, save, note, rubric, rubric_save, rubric_note


def wire(lab: Lab, task: gr.Dropdown, parts: tuple) -> None:
    """A picked task shows its instructions and rubric; each Save writes its box to the task."""
    own, others, save, note, rubric, rubric_save, rubric_note = parts
    task.change(_ui.wire(lab, "evaluate", instructions_view, lab), task, [own, others, note])
    save.click(_ui.wire(lab, "evaluate", save_instructions, lab), [task, others], [others, note])
    task.change(_ui.wire(lab, "evaluate", rubric_view, lab), task, [rubric, rubric_note])
    rubric_save.click(_ui.wire(lab, "evaluate", save_rubric, lab), [task, rubric], [rubric, rubric_note])
