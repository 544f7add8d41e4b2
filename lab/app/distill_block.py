"""Distill, on the Advisor tab: a teacher (a bigger model, or the task's expensive prompt) answers
the task's training inputs, a cheap student is tuned on its answers, and the ledger says on the
same held-out examples whether the student is as good for less (`lab.distill`).

Built as "How many examples?" is: Plan says what will run and how long it takes; Run starts it in
a background thread (one per task; a second press confirms a long one), Cancel stops it and Run
again resumes; a timer polls the progress and draws the ledger when it is done. Only the engine's
functions are called here (`settings_for`, `estimate`, `run_distill`, `distill_progress`,
`latest_ledger`): no model, training or SQL code.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import gradio as gr

from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

CONFIRM_ABOVE_S = 300  # a distillation estimated above this asks for a second press of Run
DEFAULT_TEACHER = "default:best-prompt"
TEACHER_INFO = (
    "Who answers, and how: a model, then after a colon the way it is asked. 'default' is the lab's "
    "default model (or give a model's id, or openai:URL#NAME for a model on a server). Ways: "
    "best-prompt (the best prompt measured for that model on this task, else the task's few-shot "
    "setting), best-rag, zero-shot, few-shot, few-shot@8 (8 fixed examples), similar@4 (the 4 most "
    "similar), rag, rag@4 (4 passages); add +constrained to hold its answers to the task's labels. "
    "E.g. gemma3-270m:few-shot@8."
)
ROLES = {
    "teacher": "teacher",
    "zero-shot": "student, zero-shot",
    "distilled": "student, distilled",
    "gold": "student, tuned on the gold answers",
}
STATUS = {
    "running": "running",
    "finished": "finished",
    "interrupted": "stopped: Run continues where it stopped",
    "failed": "failed",
}
_DISTILLS: dict[str, tuple] = {}  # task -> (thread, cancel event): one distillation per task at a time


def app_words(text: str) -> str:
    """The engine's words with the page's: a command that measures the best prompt or RAG
    configuration is the Climb below, the list of models the **Base model** list (as the
    advisor's `app_words` names them; this block is mounted by it, so it does not import it)."""
    text = re.sub(r"`?lab eval \S+ --best-(?:prompt|rag)(?: --model [^\s`)]+)?`?", "**Climb the ladder** below", text)
    return text.replace("`lab models`", "the **Base model** list")


def _message(e: Exception) -> str:
    return f"**Cannot distil as asked:** {_ui.html.escape(app_words(_ui.error_text(e)), quote=False)}"


def _settings(lab: Lab, task_name: str, teacher: str, student: str, max_inputs, limit, margin):
    """(task, settings) from the form; 0 or empty means "not set" (Gradio shows an empty Number as 0)."""
    from ..distill import settings_for

    if not task_name:
        raise gr.Error("Pick a task.")
    task = bridge.task(lab, task_name)
    student = (student or "").strip() or None
    if student == lab.config.default_model:
        student = None  # the default: the same distillation the command line's default makes
    return task, settings_for(
        task,
        (teacher or "").strip(),
        student=student,
        max_inputs=int(max_inputs) if max_inputs else None,
        limit=int(limit) if limit else None,
        margin=float(margin) if margin else None,
    )


def distill_plan(lab: Lab, task_name: str, teacher: str, student: str, max_inputs, limit, margin) -> str:
    """What Run would do, and about how long it takes here (nothing is run)."""
    from ..distill import DistillError, estimate
    from ..distill.run import plan_lines

    try:
        task, settings = _settings(lab, task_name, teacher, student, max_inputs, limit, margin)
        secs, basis = estimate(lab, task, settings)
        lines = plan_lines(lab, task, settings)
    except DistillError as e:
        return _message(e)
    return "\n".join(
        [f"**About {_ui.secs(secs)}** on this machine ({_ui.html.escape(basis, quote=False)}).", ""]
        + [f"{i}. {_ui.html.escape(app_words(line), quote=False)}" for i, line in enumerate(lines, 1)]
    )


def distill_run(lab: Lab, task_name: str, teacher, student, max_inputs, limit, margin, confirmed: str):
    """Start the distillation in a background thread (one per task); returns (message,
    confirmation key, timer). Above a few minutes the first press only says how long and asks
    for a second."""
    from ..distill import DistillError, DistillInterrupted, estimate, run_distill

    running = _DISTILLS.get(task_name)
    if running and running[0].is_alive():
        return "A distillation of this task is already running: Cancel it first.", "", gr.Timer(active=True)
    try:
        task, settings = _settings(lab, task_name, teacher, student, max_inputs, limit, margin)
        secs, _basis = estimate(lab, task, settings)
    except DistillError as e:
        return _message(e), "", gr.Timer(active=False)
    key = settings.model_dump_json()
    if secs > CONFIRM_ABOVE_S and confirmed != key:
        return (
            f"This distillation takes about **{_ui.secs(secs)}** here: press **Run** again to start it.",
            key,
            gr.Timer(active=False),
        )
    cancel = threading.Event()

    def work():
        try:
            run_distill(lab, task, settings, progress=False, cancel=cancel, say=lambda m: None)
        except DistillInterrupted:
            pass
        except Exception as e:  # shown by the progress poll (the distillation's row says failed)
            _ui.log_error(lab, "advisor distill", e)

    thread = threading.Thread(target=work, name=f"distill-{task.name}", daemon=True)
    _DISTILLS[task.name] = (thread, cancel)
    thread.start()
    return f"Started (about {_ui.secs(secs)}); Cancel stops it, Run again resumes.", "", gr.Timer(active=True)


def distill_cancel(lab: Lab, task_name: str) -> str:
    running = _DISTILLS.get(task_name)
    if not running or not running[0].is_alive():
        return "No distillation of this task is running."
    running[1].set()
    return "Stopping after the step in flight (an adapter in training keeps a checkpoint); Run resumes."


def distill_watch(lab: Lab, task_name: str):
    """(the progress line, the ledger, the timer): the task's newest distillation and its newest
    ledger; the timer stops when nothing runs."""
    from ..distill import distill_progress, latest_ledger

    running = _DISTILLS.get(task_name)
    alive = bool(running and running[0].is_alive())
    if not task_name:
        return "", "", gr.Timer(active=False)
    row = lab.store.latest_distill(task_name, finished=False)
    if row is None:
        return ("Starting…" if alive else "No distillation of this task yet."), "", gr.Timer(active=alive)
    p = distill_progress(lab, row["id"])
    status, doing = p.get("status", ""), p.get("doing", "")
    done, total = p.get("done", 0), p.get("total", 0)
    if status == "failed":
        doing = app_words((row.get("error") or doing).split(": ", 1)[-1]).replace("**", "")
    if status == "running" and not alive:
        words = "not running from this page (another window, or stopped with the app: Run continues it)"
    else:
        words = STATUS.get(status, status)
    label = f"{row['name']}: {words}"
    if not total:
        pass  # just opened: no step yet
    elif status == "running" and alive:
        label += f", step {min(done + 1, total)} of {total}: {doing} ({_ui.secs(p.get('wall_s'))} so far)"
    elif status != "finished":
        label += f" at step {min(done + 1, total)} of {total}" + (f": {doing}" if status == "failed" else "")
    bar = _ui.progress_bar(done, total, label, count=False)
    ledger = latest_ledger(lab, task_name)
    return bar, (ledger_markdown(ledger) if ledger else ""), gr.Timer(active=alive)


def _num(v, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def ledger_markdown(ledger: dict) -> str:
    """The ledger for the page: the sentence in bold, the table, the one-off costs, the comparisons."""
    esc = _ui.html.escape
    rows = []
    for r in ledger["rows"]:
        q = r["quality"]
        ci = "—" if q.get("mean") is None else f"{q['mean']:.3f}"
        ci += f" [{q['lo']:.3f}, {q['hi']:.3f}]" if q.get("lo") is not None else ""
        cost = "—" if r["per_1k"] is None else f"{_ui.money(r['per_1k'])} ({r['basis']} basis)"
        tokens = f"{_num(r['prompt_tokens'], '.0f')} / {_num(r['completion_tokens'], '.0f')}"
        rows.append(
            [
                ROLES.get(r["role"], r["role"]),
                r["model"],
                r["how"],
                ci,
                r["n"],
                _ui.secs(r["latency_p50"]),
                _ui.secs(r["latency_p95"]),
                tokens,
                cost,
            ]
        )
    head = ["", "model", "how", f"{ledger['metric']} [95% CI]", "n", "latency p50", "p95", "tokens in / out"]
    out = [
        f"**{esc(ledger['sentence'], quote=False)}**",
        "",
        f"Distillation **{esc(ledger['name'])}** (#{ledger.get('distill_id', '?')}) on the held-out examples, "
        f"scored by {ledger['metric']}; 'as good' within {100 * ledger['margin']:g} points:",
        "",
        _ui.md_table([*head, "cost / 1k requests"], rows),
        "",
        "**One-off costs**",
        *one_off_lines(ledger),
        "",
        "**Compared**",
    ]
    if ledger.get("ratio"):
        out.append(f"- per request the student is {ledger['ratio']:.1f}× cheaper than the teacher")
    out += [f"- {esc(ledger['as_good_text'], quote=False)}", f"- {esc(ledger['helped'], quote=False)}"]
    if ledger.get("gold"):
        gold = esc(ledger["gold"]["text"], quote=False)
        out.append(f"- what the teacher's labels cost against the real answers: distilled − tuned on gold = {gold}")
    return "\n".join(out)


def one_off_lines(ledger: dict) -> list[str]:
    """What labelling and training cost once, and when the cheaper student pays them back."""
    esc = _ui.html.escape
    labels, once = ledger["labels"], ledger["one_off"]
    left_out = [f"{labels['held_out']} held-out questions"] if labels.get("held_out") else []
    left_out += [f"{labels['repeated']} repeats"] if labels.get("repeated") else []
    teacher = esc(ledger["teacher_spec"])
    if ledger.get("teacher_note"):
        teacher += f"; {esc(app_words(ledger['teacher_note']), quote=False)}"
    lines = [
        f"- labelling: {labels['inputs']} inputs answered by the teacher ({teacher}) in "
        f"{_ui.secs(once['labelling_s'])}, {once['labelling_prompt_tokens']:,} prompt + "
        f"{once['labelling_completion_tokens']:,} completion tokens ({_ui.money(once['labelling_cost'])}); "
        f"{labels['dropped']} answers broke the task's format and were dropped, {labels['kept']} kept"
        + (f" ({', '.join(left_out)} left out)" if left_out else "")
    ]
    for key, t in once["training"].items():
        on = "the teacher's answers" if key == "distilled" else "the gold answers"
        if t.get("wall_s") is None:
            lines.append(f"- training on {on}: its time was not recorded")
        else:
            where = t.get("device") or "this machine"
            lines.append(f"- training on {on}: {_ui.secs(t['wall_s'])} on {where} ({_ui.money(t.get('cost'))})")
    total = f"- in all (labelling and the distilled student's training): {_ui.money(once['total'])}"
    if ledger.get("break_even_text"):
        total += f"; the student pays it back after {esc(ledger['break_even_text'], quote=False)}"
    return [*lines, total]


def task_choices(lab: Lab):
    return gr.update(choices=bridge.task_names(lab))


def model_choices(lab: Lab):
    return gr.update(choices=bridge.model_names(lab))


def build(lab: Lab) -> None:
    """The accordion, closed, with its events."""
    with gr.Accordion("Distill: a teacher's answers into a cheap student", open=False, elem_id="distill"):
        gr.Markdown(
            "A teacher (a bigger model, or the task's expensive prompt) answers the task's training "
            "inputs; a cheap student is tuned on its answers, and the ledger compares teacher, student "
            "zero-shot and student tuned on the same held-out examples: as good within the margin, how "
            "many times cheaper per request, and when the labelling and training pay back. "
            "Resumable: Cancel, then Run again."
        )
        with gr.Row():
            task = gr.Dropdown(bridge.task_names(lab), label="Task", elem_id="distill-task")
            teacher = gr.Textbox(DEFAULT_TEACHER, label="Teacher", info=TEACHER_INFO, elem_id="distill-teacher")
            student = gr.Dropdown(
                bridge.model_names(lab),
                value=lab.config.default_model,
                allow_custom_value=True,
                label="Student (the model to tune)",
                elem_id="distill-student",
            )
        with gr.Row():
            max_inputs = gr.Number(0, precision=0, minimum=0, label="Inputs to label, at most (0: all)")
            limit = gr.Number(0, precision=0, minimum=0, label="Held-out examples (0: all)")
            margin = gr.Number(
                0, minimum=0, maximum=0.5, label="Margin for 'as good' (0: the task's)", elem_id="distill-margin"
            )
        with gr.Row():
            plan = gr.Button("Plan", elem_id="distill-plan")
            run = gr.Button("Run", variant="primary", elem_id="distill-run")
            stop = gr.Button("Cancel", variant="secondary", elem_id="distill-cancel")
        confirmed = gr.State("")
        note = gr.Markdown(elem_id="distill-note")
        bar = gr.HTML(elem_id="distill-progress")
        ledger = gr.Markdown(elem_id="distill-ledger")
        timer = gr.Timer(3.0, active=False)
    inputs = [task, teacher, student, max_inputs, limit, margin]
    plan.click(_ui.wire(lab, "advisor distill", distill_plan, lab), inputs, note)
    run.click(_ui.wire(lab, "advisor distill", distill_run, lab), [*inputs, confirmed], [note, confirmed, timer])
    stop.click(_ui.wire(lab, "advisor distill", distill_cancel, lab), [task], note, concurrency_limit=None)
    watch = _ui.wire(lab, "advisor distill", distill_watch, lab)
    timer.tick(watch, [task], [bar, ledger, timer], show_progress="hidden")
    task.change(watch, [task], [bar, ledger, timer], show_progress="hidden")
    _ui.on_show(lab, "advisor distill", task_choices, [task], lab)
    _ui.on_show(lab, "advisor distill", model_choices, [student], lab)
