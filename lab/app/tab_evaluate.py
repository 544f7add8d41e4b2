"""Evaluate: a task's held-out examples through the chosen arms, live; then the scoreboard.

The run goes on in a worker thread (`run_eval`, which writes each result to SQLite as it is
made), so the page stays responsive; Cancel stops it after the example in flight and Run
again resumes it where it stopped (the runner never duplicates a row).
"""
from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

import gradio as gr

from ..prompts import ARMS
from . import _ui, bridge
from .tab_compare import LABELS

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

DEFAULT_TASK = "tickets"


class Jobs:
    """The evaluation running now in this app (one at a time) and how to stop it."""

    def __init__(self):
        self.cancel: threading.Event | None = None


def setup(lab: Lab):
    tasks = bridge.task_names(lab)
    adapters = bridge.adapter_names(lab)
    runs = run_choices(lab)
    return (gr.update(choices=tasks, value=DEFAULT_TASK if DEFAULT_TASK in tasks else (tasks or [None])[0]),
            gr.update(choices=adapters, value=None),
            gr.update(choices=runs, value=None))


def refresh(lab: Lab):
    return (gr.update(choices=bridge.task_names(lab)), gr.update(choices=bridge.adapter_names(lab)),
            gr.update(choices=run_choices(lab)))


def run_choices(lab: Lab) -> list[tuple[str, int]]:
    return [(f"#{r['id']} {r['task']} · {', '.join(_arms(r))} · {r['results']} results · {r['status']}", r["id"])
            for r in lab.store.eval_runs(50)]


def _arms(run: dict) -> list[str]:
    import json

    return json.loads(run.get("arms_json") or "[]")


def task_info(lab: Lab, task_name: str) -> str:
    if not task_name:
        return ""
    task = bridge.task(lab, task_name)
    n_eval = len(task.examples("eval"))
    return (f"**{task.name}** · {task.output_format} output · primary metric **{task.primary_metric}**, "
            f"target {task.target:.0%} · {n_eval} held-out examples"
            + (f" · corpus `{task.corpus}`" if task.corpus else "")
            + (f"<br>{_ui.html.escape(task.description)}" if task.description else ""))


def run(lab: Lab, jobs: Jobs, task_name: str, arms: list[str], limit: float | None, adapter: str | None,
        few_shot_mode: str, fresh: bool):
    """Start (or resume) the run; yield progress, then the scoreboard."""
    from ..evaluation import run_eval

    if not task_name:
        raise gr.Error("Pick a task.")
    arms = [a for a in ARMS if a in (arms or [])]
    if not arms:
        raise gr.Error("Choose at least one arm.")
    if jobs.cancel is not None and not jobs.cancel.is_set():
        raise gr.Error("An evaluation is already running: cancel it first.")
    task = bridge.task(lab, task_name)
    limit = int(limit) if limit else None
    n = min(limit or 10**9, len(task.examples("eval")))
    total = n * len(arms)
    cancel = jobs.cancel = threading.Event()
    results: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["run_id"] = run_eval(lab, task, arms, limit=limit, adapter=adapter or None,
                                         few_shot_mode=few_shot_mode or "fixed", progress=False,
                                         cancel=cancel, on_result=results.put, fresh=bool(fresh))
        except Exception as e:
            outcome["error"] = e
        finally:
            results.put(None)

    threading.Thread(target=work, daemon=True, name="lab-eval").start()
    empty = _empty_board()
    yield _ui.progress_bar(0, total, "starting…"), *empty
    done, recent, run_id = None, [], None
    try:
        while True:
            row = results.get()
            if row is None:
                break
            run_id = row["eval_run_id"]
            done = lab.store.eval_run(run_id)["results"] if run_id else 0
            recent.append([row["example_id"], row["arm"], _ui.html.escape((row.get("output") or "")[:80]),
                           _score(row["scores"].get("primary"))])
            label = f"run #{run_id} · {row['arm']} · {row['example_id']}"
            yield _ui.progress_bar(min(done, total), total, label), *empty[:-1], _recent_table(recent)
    finally:
        cancel.set()  # the page went away or the run ended: nothing left running
        jobs.cancel = None
    if "error" in outcome:
        raise outcome["error"]
    run_id = outcome.get("run_id", run_id)
    board = summarize(lab, run_id)
    status = lab.store.eval_run(run_id)
    note = (f"Run #{run_id}: <b>{status['status']}</b> — {status['results']} results."
            + (" Cancelled: press Run to resume where it stopped." if status["status"] == "cancelled" else ""))
    yield note, *board


def cancel(jobs: Jobs) -> str:
    if jobs.cancel is None:
        return "Nothing is running."
    jobs.cancel.set()
    return "Cancelling after the example in flight… (Run again resumes.)"


def show_run(lab: Lab, run_id: int | None):
    if not run_id:
        return ("", *_empty_board())
    status = lab.store.eval_run(int(run_id))
    return (f"Run #{run_id}: <b>{status['status']}</b> — {status['results']} results.", *summarize(lab, int(run_id)))


# ---- the scoreboard ------------------------------------------------------------------------

def summarize(lab: Lab, run_id: int):
    """(scoreboard, chart, significance, failures, disagreements) for one run."""
    from ..evaluation import summarize as _summarize
    from ..evaluation.summary import FAILURES, method_note

    board = _summarize(lab, run_id)
    head = ["arm", "n", f"{board.primary_metric} [95% CI]", f"meets {board.target:.0%}", "format valid",
            "p50", "p95", "tokens in", "tokens out", "cost / 1k requests", "training", "break-even"]
    rows = []
    for a in board.arms:
        rows.append([LABELS.get(a.arm, a.arm), a.n,
                     _ui.quality_ci(a.quality),
                     "yes" if a.meets_target else "no", _ui.pct(a.format_valid),
                     _ui.secs(a.latency_p50), _ui.secs(a.latency_p95), _num(a.prompt_tokens),
                     _num(a.completion_tokens), f"{_ui.money(a.cost.per_1k)} ({a.cost.basis} basis)" if a.cost else "—",
                     f"{_ui.secs(a.training_wall_s)} on {a.training_device} = {_ui.money(a.training_cost)}"
                     if a.training_cost is not None else "—",
                     str(a.break_even) if a.break_even else "—"])
    title = (f"**{board.task}** · run #{board.run['id']} · model {board.run['model_id']} · "
             f"{'complete' if board.complete else 'partial'} ({board.n_examples} held-out examples)\n\n")
    scoreboard = title + _ui.md_table(head, rows)
    sig = [f"**Is the difference real?** {method_note(board)}:", ""]
    sig += [f"- {_ui.comparison(c)}  \n  _{_ui.html.escape(c.reading())}_" for c in board.comparisons]
    significance = "\n".join(sig) if board.comparisons else "_One arm only: nothing to compare._"
    failures = _ui.md_table(["arm", *FAILURES, "errors"],
                            [[a.arm, *(a.failures.get(f, 0) for f in FAILURES), a.errors] for a in board.arms])
    arms = [a.arm for a in board.arms]
    disagree = [[e["id"], e["input"][:120], e["expected"][:80],
                 *(_cell(e["outputs"].get(arm)) for arm in arms)]
                for e in board.examples if e["disagree"]]
    table = gr.update(value=disagree or [["—", "the arms agree on every example", "", *([""] * len(arms))]],
                      headers=["example", "input", "expected", *arms],
                      column_widths=[120, 320, 220, *([260] * len(arms))])
    return scoreboard, chart(board), significance, failures, table


def chart(board):
    """Quality against cost per 1,000 requests, one point per arm with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    use_cost = all(a.cost for a in board.arms)
    for a in board.arms:
        if a.quality.mean is None:
            continue
        x = a.cost.per_1k if use_cost else (a.latency_p50 or 0.0)
        lo, hi = (a.quality.mean, a.quality.mean) if a.quality.lo is None else (a.quality.lo, a.quality.hi)
        yerr = [[a.quality.mean - lo], [hi - a.quality.mean]]  # one example: no interval to draw
        ax.errorbar([x], [a.quality.mean], yerr=yerr, fmt="o", capsize=4, label=a.arm)
        ax.annotate(a.arm, (x, a.quality.mean), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.axhline(board.target, linestyle="--", color="grey", linewidth=1)
    ax.text(ax.get_xlim()[0], board.target, f" target {board.target:.0%}", va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("cost per 1,000 requests" if use_cost else "latency p50 (s)")
    ax.set_ylabel(board.primary_metric)
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("Quality vs cost (cheaper and higher is better)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _empty_board():
    return ["", None, "", "", gr.update(value=[], headers=["example", "input", "expected"])]


def _recent_table(recent: list) -> object:
    return gr.update(value=recent[-12:][::-1], headers=["example", "arm", "output", "score"])


def _score(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def _num(v) -> str:
    return "—" if v is None else f"{v:.0f}"


def _cell(o: dict | None) -> str:
    if not o:
        return ""
    mark = "✗ " + (o["failure"] or "") if o.get("failure") else "✓"
    return f"{_score(o['primary'])} {mark} · {(o['output'] or o.get('error') or '')[:80]}"


# ---- layout --------------------------------------------------------------------------------

def build(lab: Lab) -> None:
    jobs = Jobs()
    gr.Markdown("The same held-out examples through every arm you tick, scored, with 95% intervals. "
                "“Fine-tuning helped” is only said when the paired difference is significant after "
                "Holm's correction, and never on fewer than 6 examples.",
                elem_classes="lab-lead")
    with gr.Row():
        task = gr.Dropdown(allow_custom_value=True, label="Task", choices=[], scale=2, elem_id="eval-task")
        arms = gr.CheckboxGroup([(LABELS[a], a) for a in ARMS], value=["zero-shot", "few-shot"], label="Arms",
                                scale=4, elem_id="eval-arms")
    about = gr.Markdown()
    with gr.Row():
        limit = gr.Number(value=20, precision=0, minimum=0, label="Examples (0 = all)", scale=1,
                          elem_id="eval-limit")
        adapter = gr.Dropdown(allow_custom_value=True, label="Adapter (tune arms; default: the task's name)",
                              choices=[], scale=1)
        mode = gr.Radio(["fixed", "similar"], value="fixed", label="Few-shot examples", scale=1)
        fresh = gr.Checkbox(False, label="Start a fresh run (instead of resuming)", scale=1)
    with gr.Row():
        start = gr.Button("Run / resume", variant="primary", elem_id="eval-run")
        stop = gr.Button("Cancel", variant="stop", elem_id="eval-cancel")
    status = gr.HTML(elem_id="eval-status")
    scoreboard = gr.Markdown(elem_id="eval-scoreboard")
    with gr.Row():
        plot = gr.Plot(label="Quality vs cost", scale=3)
        with gr.Column(scale=2):
            significance = gr.Markdown(elem_id="eval-significance")
            gr.Markdown("**Why answers were wrong**")
            failures = gr.Markdown(elem_id="eval-failures")
    gr.Markdown("**Where the arms disagree** (score ✓/✗ and the start of each answer)")
    disagreements = gr.Dataframe(interactive=False, wrap=True, max_height=420, elem_id="eval-disagree")
    past = gr.Dropdown(allow_custom_value=True, label="Show a stored run", choices=[], elem_id="eval-past")

    outputs = [status, scoreboard, plot, significance, failures, disagreements]
    _ui.on_load(lab, "evaluate", setup, [task, adapter, past], lab)
    _ui.on_select(lab, "evaluate", refresh, [task, adapter, past], lab)
    task.change(_ui.wire(lab, "evaluate", task_info, lab), task, about)
    start.click(_ui.wire(lab, "evaluate", run, lab, jobs), [task, arms, limit, adapter, mode, fresh], outputs,
                api_name="evaluate", concurrency_limit=1).then(
        _ui.wire(lab, "evaluate", lambda: gr.update(choices=run_choices(lab))), None, past)
    stop.click(_ui.wire(lab, "evaluate", cancel, jobs), None, status, concurrency_limit=None)
    past.change(_ui.wire(lab, "evaluate", show_run, lab), past, outputs)
