"""Advisor: the decision procedure of docs/guide.md (the ladder and its flowchart) with the numbers it
rests on. With an evaluation run it speaks from evidence; without one, from the questionnaire,
and says which experiment to run next."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from . import _ui, distill_block, export_block
from .tab_compare import LABELS
from .tab_evaluate import run_choices

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

UNKNOWN = "don't know yet"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"  # in a checkout of the lab


def guide_ref() -> str:
    """Where the lab's guide is, as text: the app is offline and serves no files, so no link."""
    return f"`{GUIDE}`" if GUIDE.is_file() else "`docs/guide.md` in the Ladder Lab's folder"


def setup(lab: Lab):
    runs = run_choices(lab)
    return gr.update(choices=[("(none: questionnaire only)", 0), *runs], value=runs[0][1] if runs else 0)


def advise(
    lab: Lab,
    run_id,
    clear_metric: bool,
    few_shot: str,
    lacks_knowledge: bool,
    behaviour: bool,
    examples: float | None,
    changes_often: bool,
    cost_pressure: bool,
    task_name: str = "TASK",
) -> str:
    from ..advisor import Questionnaire, advise_from_answers, recommend_for_run

    answers = Questionnaire(
        few_shot_reaches_90pct=None if few_shot == UNKNOWN else few_shot == "yes",
        lacks_knowledge=bool(lacks_knowledge),
        behaviour_problem=bool(behaviour),
        good_examples=int(examples or 0),
        requirements_change_often=bool(changes_often),
        cost_or_latency_pressure=bool(cost_pressure),
        clear_success_metric=bool(clear_metric),
    )
    if run_id:
        from ..evaluation import summarize

        board = summarize(lab, int(run_id))
        return render(recommend_for_run(lab, board, answers), board)
    return render(advise_from_answers(answers, task_name or "TASK"))


# The advice names its next steps as `lab` commands (the CLI's words); the page names the place
# on the page that does the same, and what the command's flags asked for.
PLACES = {
    "eval": "the **Evaluate** tab",
    "train": "the **Train** tab",
    "index": "the **Knowledge** tab",
    "models": "the **Base model** list",
    "log": "the **History** tab",
    "curve": "**How many examples?** below",
    "distill": "**Distill** below",
    "climb": "**Climb the ladder** below",
    "report": "the HTML report",
}


def app_words(text: str) -> str:
    """`lab eval T --arms tune --limit 20` -> "the **Evaluate** tab (arms tune, 20 examples)"."""

    def place(m: re.Match) -> str:
        where, flags = PLACES.get(m.group(1), "the matching tab"), m.group(2)
        asked = [f"arms {a}" for a in re.findall(r"--arms (\S+)", flags)]
        asked += [f"{n} examples" for n in re.findall(r"--limit (\d+)", flags)]
        asked += [f"{k} passages" for k in re.findall(r"--rag-k (\d+)", flags)]
        asked += [f"teacher {t}" for t in re.findall(r"--teacher (\S+)", flags)]
        return where + (f" ({', '.join(asked)})" if asked else "")

    return re.sub(r"`lab ([a-z-]+)([^`]*)`", place, text)


def render(rec, board=None) -> str:
    out = [
        f"## {rec.headline()}",  # the advisor's own words: one verdict, every face
        f"Based on: **{rec.source}**",
        "",
        "**Why**",
    ]
    out += [f"- {app_words(r)}" for r in rec.reasons]
    if board is not None:
        rows = []
        for a in board.arms + board.others:
            rows.append(
                [
                    LABELS.get(a.arm, a.arm),
                    a.n,
                    _ui.quality_ci(a.quality),
                    a.meets_cell(),
                    _ui.pct(a.format_valid),
                    f"{_ui.money(a.cost.per_1k)} ({a.cost.basis} basis)" if a.cost else "—",
                    str(a.break_even) if a.break_even else "—",
                ]
            )
        out += [
            "",
            f"**The numbers** (task {board.task}, {board.primary_metric}, target {board.target:.0%})",
            "",
            _ui.md_table(
                ["arm", "n", "quality [95% CI]", "meets target", "format valid", "cost / 1k", "tuning break-even"], rows
            ),
        ]
        if board.comparisons:
            from ..evaluation.summary import method_note

            out += ["", f"**Arm against arm** ({method_note(board)})"]
            out += [f"- {_ui.comparison(c)}  \n  _{_ui.html.escape(board.sentence(c))}_" for c in board.comparisons]
    if rec.next_steps:
        out += ["", "**Next**"] + [f"- {app_words(s)}" for s in rec.next_steps]
    if rec.would_change_if:
        out += ["", "**The answer would change if**"] + [f"- {app_words(w)}" for w in rec.would_change_if]
    out += [
        "",
        f"_Why these rules (the ladder, facts in retrieval, 200+ examples, the costs): the lab's guide, "
        f"{guide_ref()}._",
    ]
    return "\n".join(out)


def task_choices(lab: Lab):
    """A task picker's list as the lab home is now (a task made in New task shows at once)."""
    from . import bridge

    return gr.update(choices=bridge.task_names(lab))


# ---- "How many examples?": the learning curve (lab.evaluation.curve_run) -----------------------

CONFIRM_ABOVE_S = 300  # a curve estimated above this asks for a second press of Run
_CURVES: dict[str, tuple] = {}  # task -> (thread, cancel event): one curve per task at a time


def _curve_settings(lab: Lab, task_name: str, sizes: str, ks: str, seeds, limit, epochs):
    from ..evaluation.curve_run import plan_settings
    from . import bridge

    task = bridge.task(lab, task_name)
    return task, *plan_settings(
        task, sizes, ks, int(seeds or 1), int(limit) if limit else None, float(epochs) if epochs else None
    )


def curve_estimate(lab: Lab, task_name: str, sizes: str, ks: str, seeds, limit, epochs) -> str:
    from ..evaluation.curve_run import estimate, step_counts

    task, settings, notes = _curve_settings(lab, task_name, sizes, ks, seeds, limit, epochs)
    secs, basis = estimate(lab, task, settings)
    counts = ", ".join(f"n = {n}: {s} steps" for n, (s, _) in step_counts(lab, task, settings).items())
    return "\n".join(
        [
            f"**About {_ui.secs(secs)}** on this machine ({basis}).",
            f"Few-shot at k = {', '.join(map(str, settings.ks))}; one adapter per size and seed "
            f"({counts}; {settings.epochs:g} epochs each).",
        ]
        + [f"- note: {n}" for n in notes]
    )


def curve_run(lab: Lab, task_name: str, sizes: str, ks: str, seeds, limit, epochs, confirmed: str):
    """Start the curve in a background thread (one per task); returns (message, confirmation
    key, timer). Above a few minutes the first press only says how long and asks for a second."""
    import threading

    from ..evaluation.curve_run import CurveInterrupted, estimate, run_curve

    task, settings, _ = _curve_settings(lab, task_name, sizes, ks, seeds, limit, epochs)
    running = _CURVES.get(task.name)
    if running and running[0].is_alive():
        return "A curve of this task is already running: Cancel it first.", "", gr.Timer(active=True)
    secs, _basis = estimate(lab, task, settings)
    key = settings.model_dump_json()
    if secs > CONFIRM_ABOVE_S and confirmed != key:
        return (
            f"This curve takes about **{_ui.secs(secs)}** here: press **Run** again to start it.",
            key,
            gr.Timer(active=False),
        )
    cancel = threading.Event()

    def work():
        try:
            run_curve(lab, task, settings, progress=False, cancel=cancel, say=lambda m: None, estimate_s=secs)
        except CurveInterrupted:
            pass
        except Exception as e:  # shown by the progress poll (the curves row says failed)
            _ui.log_error(lab, "advisor curve", e)

    thread = threading.Thread(target=work, name=f"curve-{task.name}", daemon=True)
    _CURVES[task.name] = (thread, cancel)
    thread.start()
    return f"Started (about {_ui.secs(secs)}); Cancel stops it, Run again resumes.", "", gr.Timer(active=True)


def curve_cancel(lab: Lab, task_name: str) -> str:
    running = _CURVES.get(task_name)
    if not running or not running[0].is_alive():
        return "No curve of this task is running."
    running[1].set()
    return "Stopping after the step in flight (an adapter in training keeps a checkpoint); Run resumes."


def curve_watch(lab: Lab, task_name: str):
    """The task's latest curve: progress, chart and table; the timer stops when nothing runs."""
    from ..evaluation.curve_chart import render_svg
    from ..evaluation.curve_run import curve_progress, latest_curve

    running = _CURVES.get(task_name)
    alive = bool(running and running[0].is_alive())
    curve = latest_curve(lab, task_name) if task_name else None
    if curve is None:
        return ("No learning curve for this task yet." if not alive else "Starting…"), "", gr.Timer(active=alive)
    p = curve_progress(lab, curve.curve_id)
    bar = _ui.progress_bar(p.get("done", 0), p.get("total", 0), f"{p.get('status', '')}: {p.get('doing', '')}")
    text = "\n".join([f"```\n{curve.to_text()}\n```"])
    return text, bar + render_svg(curve, inline=True), gr.Timer(active=alive)


def build_curve_section(lab: Lab) -> None:
    from ..evaluation.curve import DEFAULT_EPOCHS, DEFAULT_KS, DEFAULT_SIZES
    from . import bridge

    with gr.Accordion("How many examples? The learning curve of few-shot against tuning", open=False):
        gr.Markdown(
            "Trains one adapter per training-set size (nested subsets, stratified by label) and scores "
            "few-shot at each k on the same held-out examples: where does tuning overtake prompting on "
            "your data, and is it still rising? Resumable: Cancel, then Run again."
        )
        with gr.Row():
            task = gr.Dropdown(bridge.task_names(lab), label="Task", elem_id="curve-task")
            sizes = gr.Textbox(DEFAULT_SIZES, label="Training-set sizes", elem_id="curve-sizes")
            ks = gr.Textbox(DEFAULT_KS, label="Few-shot k", elem_id="curve-k")
        with gr.Row():
            seeds = gr.Number(1, precision=0, minimum=1, label="Seeds per size")
            limit = gr.Number(20, precision=0, minimum=1, label="Held-out examples (limit)")
            epochs = gr.Number(DEFAULT_EPOCHS, minimum=0.1, label="Epochs per adapter")
        with gr.Row():
            est = gr.Button("Estimate", elem_id="curve-estimate")
            run = gr.Button("Run", variant="primary", elem_id="curve-run")
            stop = gr.Button("Cancel", variant="secondary", elem_id="curve-cancel")
        confirmed = gr.State("")
        note = gr.Markdown(elem_id="curve-note")
        chart = gr.HTML(elem_id="curve-chart")
        table = gr.Markdown(elem_id="curve-table")
        timer = gr.Timer(3.0, active=False)
    inputs = [task, sizes, ks, seeds, limit, epochs]
    est.click(_ui.wire(lab, "advisor curve", curve_estimate, lab), inputs, note)
    run.click(_ui.wire(lab, "advisor curve", curve_run, lab), [*inputs, confirmed], [note, confirmed, timer])
    stop.click(_ui.wire(lab, "advisor curve", curve_cancel, lab), [task], note)
    watch = _ui.wire(lab, "advisor curve", curve_watch, lab)
    timer.tick(watch, [task], [table, chart, timer], show_progress="hidden")
    task.change(watch, [task], [table, chart, timer], show_progress="hidden")
    _ui.on_show(lab, "advisor curve", task_choices, [task], lab)


def build(lab: Lab) -> None:
    gr.Markdown(
        "Try the prompt first, then retrieval, and only then fine-tune. Facts belong in retrieval; "
        "format and behaviour are where tuning wins. The advisor names the cheapest rung that meets "
        "your bar — from your own evaluation when there is one. The rules, and why: the lab's guide, "
        f"{guide_ref()}.",
        elem_classes="lab-lead",
    )
    with gr.Row():
        with gr.Column(scale=2):
            run = gr.Dropdown(
                allow_custom_value=True,
                label="Evidence: an evaluation run",
                choices=[("(none: questionnaire only)", 0)],
                value=0,
                elem_id="advisor-run",
            )
            clear_metric = gr.Checkbox(True, label="I can define what a good output is, so it can be scored")
            few_shot = gr.Radio(
                ["yes", "no", UNKNOWN],
                value=UNKNOWN,
                label="With ~20 good examples in the prompt, does the model reach 90% of the target?",
            )
            lacks_knowledge = gr.Checkbox(
                False, label="The main problem is missing knowledge (your documents, facts that change)"
            )
            behaviour = gr.Checkbox(
                False, label="The main problem is behaviour: style, tone, a strict format, a reasoning pattern"
            )
            examples = gr.Number(
                0, precision=0, minimum=0, label="High-quality examples of the desired behaviour you have"
            )
            changes = gr.Checkbox(False, label="The requirements change often (every few weeks)")
            pressure = gr.Checkbox(
                False, label="Per-request cost or latency is a pressure (thousands of requests a day)"
            )
            go = gr.Button("Advise", variant="primary", elem_id="advisor-go")
        with gr.Column(scale=3):
            out = gr.Markdown(elem_id="advisor-out")
            export_block.build(lab, app_words, run)  # the recommended rung (or one named) as a folder to ship
    _ui.on_show(lab, "advisor", setup, [run], lab)
    go.click(
        _ui.wire(lab, "advisor", advise, lab),
        [run, clear_metric, few_shot, lacks_knowledge, behaviour, examples, changes, pressure],
        out,
        api_name="advise",
    )
    build_curve_section(lab)
    distill_block.build(lab)  # a teacher's answers into a cheap student, and the ledger
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
            outcome["result"] = climb(
                lab,
                task_name,
                target=target or None,
                up_to=up_to or "tune",
                budget_min=float(budget) if budget else None,
                limit=int(limit) if limit else None,
                progress=False,
                cancel=cancel,
                say=lines.put,
            )
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
    out = [f"### Climb #{result.climb_id}: {result.status} ({result.wall_s:.0f} s)"]
    if result.path:
        out += ["```", path_text(result), "```"]
    if result.decision:  # why it stopped where it did, and what it passed over
        out.append(f"**Stopped ({result.decision['outcome']}):** {app_words(result.decision['reason'])}")
        out += [f"- skipped: {app_words(sk)}" for sk in result.skipped]
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
    gr.Markdown(
        "### Climb the ladder\nPrompt first, then RAG (with a corpus), then tune (with 200+ examples), "
        "stopping at the first rung whose 95% interval clears the target."
    )
    with gr.Row():
        with gr.Column(scale=2):
            task = gr.Dropdown(choices=bridge.task_names(lab), label="Task", elem_id="climb-task")
            # 0 means "not set": Gradio shows an empty Number as 0, and a minimum of 1 then made the
            # untouched form invalid, so Plan and Climb silently did nothing in a real browser
            target = gr.Number(0, label="Target (0: the task's own)", minimum=0, maximum=1)
            up_to = gr.Radio(["prompt", "rag", "tune"], value="tune", label="Up to")
            limit = gr.Number(0, precision=0, minimum=0, label="Held-out examples (0: all)")
            budget = gr.Number(0, minimum=0, label="Budget, minutes (0: none)", elem_id="climb-budget")
            with gr.Row():
                plan = gr.Button("Plan", elem_id="climb-plan")
                go = gr.Button("Climb", variant="primary", elem_id="climb-go")
                stop = gr.Button("Cancel", variant="secondary", elem_id="climb-cancel")
        with gr.Column(scale=3):
            out = gr.Markdown(elem_id="climb-out")
    _ui.on_show(lab, "climb", task_choices, [task], lab)
    inputs = [task, target, budget, up_to, limit]
    plan.click(_ui.wire(lab, "climb", climb_plan, lab), inputs, out)
    go.click(_ui.wire(lab, "climb", climb_run, lab, job), inputs, out)
    stop.click(_ui.wire(lab, "climb", climb_cancel, job), None, out, concurrency_limit=None)
