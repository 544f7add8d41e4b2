"""Advisor: the seeds' decision procedure (the ladder and its flowchart) with the numbers it
rests on. With an evaluation run it speaks from evidence; without one, from the questionnaire,
and says which experiment to run next."""
from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from . import _ui
from .tab_compare import LABELS
from .tab_evaluate import run_choices

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

UNKNOWN = "don't know yet"
RUNG_TITLES = {"zero-shot": "Prompt (zero-shot)", "few-shot": "Prompt (few-shot)", "rag": "RAG",
               "tune": "Fine-tune (LoRA)", "tune+rag": "Fine-tune + RAG", "revisit": "Revisit the problem"}


def setup(lab: Lab):
    runs = run_choices(lab)
    return gr.update(choices=[("(none: questionnaire only)", 0), *runs], value=runs[0][1] if runs else 0)


def advise(lab: Lab, run_id, clear_metric: bool, few_shot: str, lacks_knowledge: bool, behaviour: bool,
           examples: float | None, changes_often: bool, cost_pressure: bool, task_name: str = "TASK") -> str:
    from ..advisor import Questionnaire, advise_from_answers, recommend_for_run

    answers = Questionnaire(
        few_shot_reaches_90pct=None if few_shot == UNKNOWN else few_shot == "yes",
        lacks_knowledge=bool(lacks_knowledge), behaviour_problem=bool(behaviour),
        good_examples=int(examples or 0), requirements_change_often=bool(changes_often),
        cost_or_latency_pressure=bool(cost_pressure), clear_success_metric=bool(clear_metric))
    if run_id:
        from ..evaluation import summarize

        board = summarize(lab, int(run_id))
        return render(recommend_for_run(lab, board, answers), board)
    return render(advise_from_answers(answers, task_name or "TASK"))


def render(rec, board=None) -> str:
    out = [f"## Recommendation: {RUNG_TITLES.get(rec.rung, rec.rung)}"
           + (" *(provisional: nothing measured yet)*" if rec.provisional else "")
           + (" *(evidence too thin: a first look, not a recommendation)*" if rec.thin_evidence
              else ""),
           f"Based on: **{rec.source}**", "", "**Why**"]
    out += [f"- {r}" for r in rec.reasons]
    if board is not None:
        rows = []
        for a in board.arms:
                rows.append([LABELS.get(a.arm, a.arm), a.n,
                         _ui.quality_ci(a.quality),
                         "yes" if a.meets_target else "no", _ui.pct(a.format_valid),
                         f"{_ui.money(a.cost.per_1k)} ({a.cost.basis} basis)" if a.cost else "—",
                         str(a.break_even) if a.break_even else "—"])
        out += ["", f"**The numbers** (task {board.task}, {board.primary_metric}, target {board.target:.0%})", "",
                _ui.md_table(["arm", "n", "quality [95% CI]", "meets target", "format valid", "cost / 1k",
                              "tuning break-even"], rows)]
        if board.comparisons:
            from ..evaluation.summary import method_note

            out += ["", f"**Arm against arm** ({method_note(board)})"]
            out += [f"- {_ui.comparison(c)}  \n  _{_ui.html.escape(board.sentence(c))}_" for c in board.comparisons]
    if rec.next_steps:
        out += ["", "**Next**"] + [f"- {s}" for s in rec.next_steps]
    if rec.would_change_if:
        out += ["", "**The answer would change if**"] + [f"- {w}" for w in rec.would_change_if]
    return "\n".join(out)


def build(lab: Lab) -> None:
    gr.Markdown("Try the prompt first, then retrieval, and only then fine-tune. Facts belong in retrieval; "
                "format and behaviour are where tuning wins. The advisor names the cheapest rung that meets "
                "your bar — from your own evaluation when there is one.", elem_classes="lab-lead")
    with gr.Row():
        with gr.Column(scale=2):
            run = gr.Dropdown(allow_custom_value=True, label="Evidence: an evaluation run",
                              choices=[("(none: questionnaire only)", 0)], value=0, elem_id="advisor-run")
            clear_metric = gr.Checkbox(True, label="I can define what a good output is, so it can be scored")
            few_shot = gr.Radio(["yes", "no", UNKNOWN], value=UNKNOWN,
                                label="With ~20 good examples in the prompt, does the model reach 90% of the target?")
            lacks_knowledge = gr.Checkbox(
                False, label="The main problem is missing knowledge (your documents, facts that change)")
            behaviour = gr.Checkbox(
                False, label="The main problem is behaviour: style, tone, a strict format, a reasoning pattern")
            examples = gr.Number(0, precision=0, minimum=0,
                                 label="High-quality examples of the desired behaviour you have")
            changes = gr.Checkbox(False, label="The requirements change often (every few weeks)")
            pressure = gr.Checkbox(
                False, label="Per-request cost or latency is a pressure (thousands of requests a day)")
            go = gr.Button("Advise", variant="primary", elem_id="advisor-go")
        with gr.Column(scale=3):
            out = gr.Markdown(elem_id="advisor-out")
    _ui.on_show(lab, "advisor", setup, [run], lab)
    go.click(_ui.wire(lab, "advisor", advise, lab),
             [run, clear_metric, few_shot, lacks_knowledge, behaviour, examples, changes, pressure], out,
             api_name="advise")
    build_climb(lab)


# ---- Climb: `lab climb` from the page -------------------------------------------------------------

class ClimbJob:
    """The climb running now in this app (one at a time) and how to cancel it."""

    def __init__(self):
        self.cancel = None


def climb_plan(lab: Lab, task_name: str, target, budget, up_to: str, limit) -> str:
    from ..climb import plan_text

    if not task_name:
        return "Pick a task."
    text = plan_text(lab, task_name, target=target or None, up_to=up_to or "tune", limit=int(limit) if limit else None)
    if budget:
        text += f"\n- budget: {float(budget):g} min; a step that would not fit is skipped"
    return text.replace("\n", "  \n")


def climb_run(lab: Lab, job: ClimbJob, task_name: str, target, budget, up_to: str, limit):
    """Run the climb in a worker thread; yield its log as it grows, then the path and the advice."""
    import queue
    import threading

    from ..climb import climb, path_text

    if not task_name:
        raise gr.Error("Pick a task.")
    if job.cancel is not None and not job.cancel.is_set():
        raise gr.Error("A climb is already running: cancel it first.")
    cancel = job.cancel = threading.Event()
    lines: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["result"] = climb(lab, task_name, target=target or None, up_to=up_to or "tune",
                                      budget_min=float(budget) if budget else None,
                                      limit=int(limit) if limit else None, progress=False, cancel=cancel,
                                      say=lines.put)
        except BaseException as e:  # shown on the page; the climb's record says where it stopped
            outcome["error"] = e
        finally:
            lines.put(None)

    threading.Thread(target=work, daemon=True, name="lab-climb").start()
    log: list[str] = []
    try:
        while (line := lines.get()) is not None:
            log.append(line)
            yield "```\n" + "\n".join(log)[-6000:] + "\n```"
    finally:
        cancel.set()  # the page went away or the climb ended: nothing left running
        job.cancel = None
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    out = [f"### Climb #{result.climb_id}: {result.status} ({result.wall_s:.0f} s)", "```", path_text(result), "```"]
    if result.recommendation is not None:
        from ..evaluation import summarize

        out.append(render(result.recommendation, summarize(lab, result.eval_run_id)))
    elif result.status == "cancelled":
        out.append("Cancelled: press Climb again to continue where it stopped.")
    yield "\n".join(out)


def climb_cancel(job: ClimbJob) -> str:
    if job.cancel is None:
        return "Nothing is climbing."
    job.cancel.set()
    return "Cancelling at the next safe point (the example in flight, or the training step)… Climb again continues."


def build_climb(lab: Lab) -> None:
    """The Climb block: the plan with its time estimate, Climb, live progress, Cancel, the advice."""
    from . import bridge

    job = ClimbJob()
    gr.Markdown("### Climb the ladder\nPrompt first, then RAG (with a corpus), then tune (with 200+ examples), "
                "stopping at the first rung whose 95% interval clears the target.")
    with gr.Row():
        with gr.Column(scale=2):
            task = gr.Dropdown(choices=bridge.task_names(lab), label="Task", elem_id="climb-task")
            target = gr.Number(None, label="Target (empty: the task's own)", minimum=0, maximum=1)
            up_to = gr.Radio(["prompt", "rag", "tune"], value="tune", label="Up to")
            limit = gr.Number(None, precision=0, minimum=1, label="Held-out examples (empty: all)")
            budget = gr.Number(None, minimum=0, label="Budget, minutes (empty: none)")
            with gr.Row():
                plan = gr.Button("Plan", elem_id="climb-plan")
                go = gr.Button("Climb", variant="primary", elem_id="climb-go")
                stop = gr.Button("Cancel", variant="stop", elem_id="climb-cancel")
        with gr.Column(scale=3):
            out = gr.Markdown(elem_id="climb-out")
    inputs = [task, target, budget, up_to, limit]
    plan.click(_ui.wire(lab, "climb", climb_plan, lab), inputs, out)
    go.click(_ui.wire(lab, "climb", climb_run, lab, job), inputs, out)
    stop.click(_ui.wire(lab, "climb", climb_cancel, job), None, out, concurrency_limit=None)
