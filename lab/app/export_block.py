"""Export, on the Advisor tab: the recommended rung (or one named) as a folder Ollama, llama-server
or vLLM run as it was evaluated, and, when asked, the check that the folder answers the evaluated
questions the same way (`lab.export`).

Export writes the folder at once (`export_rung`); the check serves it on this machine and asks it N
of the evaluated questions (`verify_export`, 10–30 s on a CPU), in a worker thread while the page
says how long it has been checking, as the Climb does. Only the engine's functions are called
here: no model, serving or SQL code. An `ExportError` is a message on the page, not a traceback.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

AUTO = "auto"
# The rungs `lab.export.RUNGS` takes, in the page's words (the test keeps the two lists equal).
RUNG_CHOICES = [
    ("the recommended rung", AUTO),
    ("zero-shot: the instruction alone", "zero-shot"),
    ("few-shot: the instruction with worked examples", "few-shot"),
    ("RAG: passages from your documents", "rag"),
    ("tuned: the base model with its adapter", "tune"),
    ("tuned, with RAG", "tune+rag"),
    ("the distilled student", "distilled"),
]
RUNG_WORDS = dict((v, k) for k, v in RUNG_CHOICES)
COMMANDS = [("ollama", "Ollama"), ("llama-server", "llama.cpp's llama-server"), ("vllm", "vLLM")]  # not "verify"


def _no_flags(text: str) -> str:
    """The export's own command-line words as the page's (before the advisor's `app_words`, which
    names the tabs for `lab eval`, `lab climb`, `lab distill`)."""
    text = text.replace("choose --rung auto", "choose the recommended rung")
    text = text.replace("choose another --to", "choose another folder")
    text = text.replace("`lab export`", "**Export**")
    text = re.sub(r"\brun (`lab (?:eval|climb|distill)\b)", r"use \1", text)  # "use the **Evaluate** tab"
    # no button does these: say the terminal command, out of the advisor's `lab …` pattern
    return re.sub(r"`(lab adapters [^`]*)`", r"in a terminal: \1", text)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _message(words: Callable[[str], str], e: Exception) -> str:
    """An ExportError as the page shows it: the first line in the page's words, a server's log below."""
    first, _, rest = _ui.error_text(e).partition("\n")
    out = f"**Cannot export as asked:** {_esc(words(_no_flags(first)))}"
    return out + (f"\n\n```\n{rest.strip()}\n```" if rest.strip() else "")


def _folder(lab: Lab, folder: str) -> Path | None:
    """The folder box: empty is the engine's default (the lab home's exports/TASK-RUNG); a relative
    path is inside the lab home's exports folder, not wherever the app was started."""
    text = (folder or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else lab.home.exports / path


def exported_markdown(words: Callable[[str], str], done) -> str:
    """What was written and where, the notes, and the commands to copy (never the CLI's verify line)."""
    pick = done.pick
    out = [
        f"### Exported: {_esc(pick.name)}",
        f"{RUNG_WORDS.get(pick.rung, pick.rung).capitalize()}, as eval run #{pick.eval_run_id} answered, "
        f"in the folder `{done.folder}`",
    ]
    out += [f"- note: {_esc(words(_no_flags(n)))}" for n in done.notes]
    out += ["", "**Files written**"]
    out += [f"- `{name}` (sha256 `{sha[:12]}…`)" for name, sha in done.files.items()]
    out += ["", "**Run it elsewhere** (SERVE.md in the folder says how to ask it a question as evaluated)"]
    for key, label in COMMANDS:
        if done.commands.get(key):
            out += ["", f"{label}:", "```sh", done.commands[key], "```"]
    return "\n".join(out)


def check_markdown(words: Callable[[str], str], result) -> str:
    """The check's sentences: the first with ✓ or ✗, the rest below it."""
    lines = [_esc(words(_no_flags(line))) for line in result.lines()]
    if not lines:
        return ""
    mark = "✓" if result.ok else "✗"
    return "\n".join([f"**Check: {mark} {lines[0]}**", *(f"- {line.strip()}" for line in lines[1:])])


def export_run(lab: Lab, words: Callable[[str], str], task_name: str, rung: str, folder: str, check: bool, n):
    """Export the rung, then (when ticked) check the folder in a worker thread; yields markdown:
    the export, then how long the check has run, then its result. `words` is the advisor's
    `app_words` (it mounts this block, so this module does not import it)."""
    from ..export import DEFAULT_N, ExportError, export_rung, verify_export

    if not task_name:
        yield "Pick a task."
        return
    yield f"Exporting {_esc(task_name)} ({RUNG_WORDS.get(rung or AUTO, rung)})…"
    try:
        done = export_rung(lab, task_name, rung or AUTO, to=_folder(lab, folder))
    except ExportError as e:
        yield _message(words, e)
        return
    head = exported_markdown(words, done)
    if not check:
        yield head
        return
    n = int(n) if n else DEFAULT_N
    outcome: dict = {}

    def work():
        try:
            outcome["result"] = verify_export(lab, done.folder, n=n)
        except BaseException as e:  # shown on the page below the export
            outcome["error"] = e

    thread = threading.Thread(target=work, daemon=True, name=f"export-check-{task_name}")
    start = time.monotonic()
    thread.start()
    while thread.is_alive():
        yield (
            f"{head}\n\n**Checking:** serving the folder on this machine and asking it {n} of the evaluated "
            f"questions (10–30 s to start the server)… {_ui.secs(time.monotonic() - start)} so far"
        )
        thread.join(1.0)
    if "error" in outcome:
        e = outcome["error"]
        if not isinstance(e, ExportError):
            raise e
        first, _, rest = _ui.error_text(e).partition("\n")
        tail = f"\n\n```\n{rest.strip()}\n```" if rest.strip() else ""
        yield f"{head}\n\n**Check: ✗ not checked:** {_esc(words(_no_flags(first)))}{tail}"
        return
    yield f"{head}\n\n{check_markdown(words, outcome['result'])}"


def task_of_run(lab: Lab, run_id):
    """The Evidence run's task, picked in the block's Task list (nothing changes for no run)."""
    try:
        row = lab.store.eval_run_row(int(run_id)) if run_id else None
    except (TypeError, ValueError):  # a run typed into the list that is not a number
        row = None
    return gr.update(value=row["task"]) if row else gr.update()


def task_choices(lab: Lab):
    return gr.update(choices=bridge.task_names(lab))


def build(lab: Lab, words: Callable[[str], str], run: gr.components.Component | None = None) -> None:
    """The Export block, open, under the recommendation; `run` (the Evidence list) picks its task."""
    from ..export import DEFAULT_N

    with gr.Accordion("Export: ship the rung as it was evaluated", open=True, elem_id="export"):
        gr.Markdown(
            "Writes a folder that Ollama, llama.cpp's llama-server or vLLM run exactly as the lab evaluated "
            "the rung (the model and adapter by sha256, the instruction, the examples, the answer settings), "
            "with the evidence. The recommended rung is the one the advice picks from the task's latest "
            "evaluation."
        )
        with gr.Row():
            task = gr.Dropdown(bridge.task_names(lab), label="Task", elem_id="export-task")
            rung = gr.Dropdown(RUNG_CHOICES, value=AUTO, label="Rung", elem_id="export-rung")
        folder = gr.Textbox(
            "",
            label="Folder",
            placeholder=f"empty: {lab.home.exports}/TASK-RUNG",
            info="Empty: the exports folder in the lab home. A relative path is inside that folder.",
            elem_id="export-folder",
        )
        with gr.Row():
            check = gr.Checkbox(True, label="Check that it answers as evaluated", elem_id="export-check")
            n = gr.Number(DEFAULT_N, precision=0, minimum=1, label="Questions to check", elem_id="export-n")
        go = gr.Button("Export", variant="primary", elem_id="export-go")
        out = gr.Markdown(elem_id="export-out")
    go.click(_ui.wire(lab, "advisor export", export_run, lab, words), [task, rung, folder, check, n], out)
    if run is not None:
        run.change(_ui.wire(lab, "advisor export", task_of_run, lab), [run], [task], show_progress="hidden")
    _ui.on_show(lab, "advisor export", task_choices, [task], lab)
