"""Evaluate: a task's held-out examples through the chosen arms, live; then the scoreboard.

The run goes on in a worker thread (`run_eval`, which writes each result to SQLite as it is
made), so the page stays responsive; Cancel stops it after the example in flight and Run
again resumes it where it stopped (the runner never duplicates a row). **Instructions to try**
(`instructions_block`) shows the task's instruction and the others its prompt rung measures,
editable for your own tasks. **Rate answers blind** (`rate_block`) shows two arms' answers to the
same input side by side, unnamed, for you (or a certified judge model) to pick the better one.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from ..evaluation.summary import status_words
from ..prompts import ARMS
from . import _ui, bridge, instructions_block, rate_block
from .tab_compare import LABELS

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

DEFAULT_TASK = "tickets"
THIS_PAGE = "this page"  # the page id when a callback is called without one (tests, the API)


@dataclass
class Running:
    """One page's evaluation in flight."""

    task: str
    cancel: threading.Event
    started: str  # wall-clock time, for the message another page sees


class Jobs:
    """The evaluations running in this app. Each belongs to the page that started it (a Gradio
    session): only that page's Cancel stops it, and a page runs one at a time. Two pages may
    evaluate different tasks side by side (the model answers them in turn); the same task
    twice would resume the same run twice, so the second page is told to wait."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running: dict[str, Running] = {}  # page -> its evaluation

    def start(self, page: str, task: str) -> threading.Event | str:
        """The cancel flag of this page's new evaluation, or why it cannot start now."""
        with self.lock:
            mine = self.running.get(page)
            if mine is not None:
                return (
                    f"This page's evaluation of {mine.task} (started {mine.started}) "
                    "is still running: wait for it to finish, or Cancel it first."
                )
            other = next((r for r in self.running.values() if r.task == task), None)
            if other is not None:
                return (
                    f"Another page is evaluating {task} right now (started "
                    f"{other.started}): wait for it to finish (only that page can cancel it), or pick "
                    "another task."
                )
            run = self.running[page] = Running(task, threading.Event(), time.strftime("%H:%M:%S"))
            return run.cancel

    def finish(self, page: str, cancel: threading.Event) -> None:
        cancel.set()
        with self.lock:
            if page in self.running and self.running[page].cancel is cancel:
                del self.running[page]

    def cancel(self, page: str) -> str:
        with self.lock:
            mine = self.running.get(page)
        if mine is None:
            others = len(self.running)
            return "This page has no evaluation running." + (
                f" ({others} started on another page: only that page can cancel it.)" if others else ""
            )
        mine.cancel.set()
        return "Cancelling after the example in flight… (Run again resumes.)"

    def busy(self, page: str) -> bool:
        return page in self.running


def new_page_id() -> str:
    """A fresh id for each page that loads (gr.State calls it per session)."""
    return uuid.uuid4().hex


def setup(lab: Lab):
    tasks = bridge.task_names(lab)
    adapters = bridge.adapter_names(lab)
    runs = run_choices(lab)
    return (
        gr.update(choices=tasks, value=DEFAULT_TASK if DEFAULT_TASK in tasks else (tasks or [None])[0]),
        gr.update(choices=adapters, value=None),
        gr.update(choices=runs, value=None),
    )


def refresh(lab: Lab):
    return (
        gr.update(choices=bridge.task_names(lab)),
        gr.update(choices=bridge.adapter_names(lab)),
        gr.update(choices=run_choices(lab)),
    )


def run_choices(lab: Lab) -> list[tuple[str, int]]:
    return [
        (
            f"#{r['id']} {r['task']} · {', '.join(_arms(r))} · {r['results']} results · {status_words(r['status'])}",
            r["id"],
        )
        for r in lab.store.eval_runs(50)
    ]


def _arms(run: dict) -> list[str]:
    import json

    return json.loads(run.get("arms_json") or "[]")


def task_info(lab: Lab, task_name: str) -> str:
    if not task_name:
        return ""
    task = bridge.task(lab, task_name)
    n_eval = len(task.examples("eval"))
    return (
        f"**{task.name}** · {task.output_format} output · primary metric **{task.primary_metric}**, "
        f"target {task.target:.0%} · {n_eval} held-out examples"
        + (f" · corpus `{task.corpus}`" if task.corpus else "")
        + (f"<br>{_ui.html.escape(task.description)}" if task.description else "")
    )


def run(
    lab: Lab,
    jobs: Jobs,
    task_name: str,
    arms: list[str],
    limit: float | None,
    adapter: str | None,
    few_shot_mode: str,
    fresh: bool,
    page: str = THIS_PAGE,
):
    """Start (or resume) the run; yield progress, then the scoreboard. `page`: the page that
    asks (its evaluation is its own); a page that already has one running is told so."""
    from ..evaluation import run_eval

    if not task_name:
        raise gr.Error("Pick a task.")
    arms = [a for a in ARMS if a in (arms or [])]
    if not arms:
        raise gr.Error("Choose at least one arm.")
    task = bridge.task(lab, task_name)
    cancel = jobs.start(page or THIS_PAGE, task.name)
    if isinstance(cancel, str):  # refused: say why (a toast, and the status line), leave the board as it is
        gr.Warning(cancel)
        yield _ui.html.escape(cancel), *([gr.update()] * (len(_empty_board())))
        return
    try:
        yield from _run(lab, task, arms, limit, adapter, few_shot_mode, fresh, cancel, run_eval)
    finally:
        jobs.finish(page or THIS_PAGE, cancel)  # ended, failed, or the page went away: nothing left running


def _run(lab: Lab, task, arms, limit, adapter, few_shot_mode, fresh, cancel, run_eval):
    limit = int(limit) if limit else None
    n = min(limit or 10**9, len(task.examples("eval")))
    total = n * len(arms)
    results: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["run_id"] = run_eval(
                lab,
                task,
                arms,
                limit=limit,
                adapter=adapter or None,
                few_shot_mode=few_shot_mode or "fixed",
                progress=False,
                cancel=cancel,
                on_result=results.put,
                fresh=bool(fresh),
            )
        except Exception as e:
            outcome["error"] = e
        finally:
            results.put(None)

    threading.Thread(target=work, daemon=True, name="lab-eval").start()
    empty = _empty_board()
    yield _ui.progress_bar(0, total, "starting…"), *empty
    recent, run_id = [], None
    while True:
        row = results.get()
        if row is None:
            break
        run_id = row["eval_run_id"]
        done = lab.store.eval_run(run_id)["results"] if run_id else 0
        # a Dataframe shows text as text: escaping it here would show "&#x27;" for an apostrophe
        recent.append(
            [
                row["example_id"],
                row["arm"],
                " ".join((row.get("output") or "").split())[:120],
                _score(row["scores"].get("primary")),
            ]
        )
        label = f"run #{run_id} · {row['arm']} · {row['example_id']}"
        yield _ui.progress_bar(min(done, total), total, label), *empty[:-2], *_recent_table(recent)
    if "error" in outcome:
        raise outcome["error"]
    yield show_run(lab, outcome.get("run_id", run_id))


def status_note(board) -> str:
    """ "Run #3: 5 of 84 examples, complete as asked — 10 results: 5 examples × 2 arms."""
    from ..evaluation.summary import coverage, results_note

    return (
        f"Run #{board.run['id']}: <b>{_ui.html.escape(coverage(board))}</b> — {_ui.html.escape(results_note(board))}."
    )


def cancel(jobs: Jobs, page: str = THIS_PAGE) -> str:
    return jobs.cancel(page or THIS_PAGE)


def show_run(lab: Lab, run_id: int | None):
    """(status, scoreboard, chart, significance, failures, examples title, examples) of a run."""
    from ..evaluation import summarize as _summarize

    if not run_id:
        return ("", *_empty_board())
    board = _summarize(lab, int(run_id))
    return (status_note(board), *board_outputs(board))


# ---- the scoreboard ------------------------------------------------------------------------


def board_outputs(board):
    """(scoreboard, chart, significance, failures, examples title, examples table) for one run."""
    from ..evaluation.attribution import split_note
    from ..evaluation.summary import COST_BASIS_NOTES, FAILURE_NOTES, FAILURES, coverage, method_note

    head = [
        "arm",
        "n",
        f"{board.primary_metric} [95% CI]",
        f"meets {board.target:.0%}",
        "format valid",
        "p50",
        "p95",
        "tokens in",
        "tokens out",
        "cost / 1k requests",
        "training",
        "break-even",
    ]
    rows = []
    for a in board.arms:
        rows.append(
            [
                LABELS.get(a.arm, a.arm),
                a.n,
                _ui.quality_ci(a.quality),
                a.meets_cell(),
                _ui.pct(a.format_valid),
                _ui.secs(a.latency_p50),
                _ui.secs(a.latency_p95),
                _num(a.prompt_tokens),
                _num(a.completion_tokens),
                f"{_ui.money(a.cost.per_1k)} ({a.cost.basis} basis)" if a.cost else "—",
                f"{_ui.secs(a.training_wall_s)} on {a.training_device} = {_ui.money(a.training_cost)}"
                if a.training_cost is not None
                else "—",
                str(a.break_even) if a.break_even else "—",
            ]
        )
    title = (
        f"**{board.task}** · run #{board.run['id']} · model {board.run['model_id']} · "
        f"{coverage(board)} ({board.n_examples} held-out examples in the task)\n\n"
    )
    bases = sorted({a.cost.basis for a in board.arms if a.cost})
    basis = "".join(f"\n\n_Cost, {COST_BASIS_NOTES[b]}._" for b in bases if b in COST_BASIS_NOTES)
    scoreboard = title + _ui.md_table(head, rows) + basis
    sig = [f"**Is the difference real?** {method_note(board)}:", ""]
    sig += [f"- {_ui.comparison(c)}  \n  _{_ui.html.escape(board.sentence(c))}_" for c in board.comparisons]
    significance = "\n".join(sig) if board.comparisons else "_One arm only: nothing to compare._"
    failures = _ui.md_table(
        ["arm", *FAILURES, "errors"], [[a.arm, *(a.failures.get(f, 0) for f in FAILURES), a.errors] for a in board.arms]
    )
    seen = [f for f in FAILURES if any(a.failures.get(f) for a in board.arms)]
    failures += "".join(f"\n\n**{f}**: {_ui.html.escape(FAILURE_NOTES[f])}." for f in seen)
    if note := split_note(board):  # where a RAG answer's failure could not be placed, said once
        failures += f"\n\n_{_ui.html.escape(note.strip())}_"
    return (scoreboard, chart(board), significance, failures, *examples_table(board))


def summarize(lab: Lab, run_id: int):
    """board_outputs of a stored run."""
    from ..evaluation import summarize as _summarize

    return board_outputs(_summarize(lab, run_id))


def examples_table(board, most: int = 50):
    """(title, table): the examples where the arms disagree; where they agree on every example,
    every example's outputs, and the title says whether they all failed or all succeeded."""
    arms = [a.arm for a in board.arms]
    disagree = [e for e in board.examples if e["disagree"]]
    shown = disagree or board.examples
    if disagree:
        title = f"**Where the arms disagree**: {len(disagree)} of {len(board.examples)} examples"
    elif not board.examples:
        title = "**No example scored yet.**"
    elif len(arms) == 1:
        title = f"**{arms[0]}'s answers** ({len(board.examples)} examples)"
    else:
        means = {a.quality.mean for a in board.arms}
        n = len(board.examples)
        title = (
            "**Every arm failed on every example**"
            if means == {0.0}
            else "**Every arm got every example right**"
            if means == {1.0}
            else "**The arms scored the same on every example**"
        ) + f" ({n}): their outputs"
    title += " (score ✓/✗ and the start of each answer)" if shown else ""
    rows = [
        [e["id"], e["input"][:120], e["expected"][:80], *(_cell(e["outputs"].get(arm)) for arm in arms)]
        for e in shown[:most]
    ]
    table = gr.update(
        value=rows or [["—", "", "", *([""] * len(arms))]],
        headers=["example", "input", "expected", *arms],
        column_widths=[120, 320, 220, *([260] * len(arms))],
    )
    return title, table


def chart(board):
    """Quality against cost per 1,000 requests, one point per arm with its 95% interval. Both
    axes start at zero, so a few milliseconds of latency noise does not look like a gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    use_cost = all(a.cost for a in board.arms)
    xs = []
    for a in board.arms:
        if a.quality.mean is None:
            continue
        x = a.cost.per_1k if use_cost else (a.latency_p50 or 0.0)
        xs.append(x)
        lo, hi = (a.quality.mean, a.quality.mean) if a.quality.lo is None else (a.quality.lo, a.quality.hi)
        yerr = [[a.quality.mean - lo], [hi - a.quality.mean]]  # one example: no interval to draw
        ax.errorbar([x], [a.quality.mean], yerr=yerr, fmt="o", capsize=4, label=a.arm)
        ax.annotate(a.arm, (x, a.quality.mean), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlim(0, 1.25 * max(xs) if xs and max(xs) > 0 else 1.0)
    ax.axhline(board.target, linestyle="--", color="grey", linewidth=1)
    ax.text(0, board.target, f" target {board.target:.0%}", va="bottom", fontsize=8, color="grey")
    basis = sorted({a.cost.basis for a in board.arms if a.cost})
    ax.set_xlabel(
        f"cost per 1,000 requests, $ ({' / '.join(basis)} basis: see below the table)"
        if use_cost
        else "latency p50 (s)"
    )
    ax.set_ylabel(board.primary_metric)
    ax.set_ylim(0, 1.05)
    ax.set_title("Quality vs cost (cheaper and higher is better)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _empty_board():
    return ["", None, "", "", "", gr.update(value=[], headers=["example", "input", "expected"])]


def _recent_table(recent: list) -> tuple:
    return (
        "**Latest results** (newest first)",
        gr.update(value=recent[-12:][::-1], headers=["example", "arm", "output", "score"]),
    )


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
    page = gr.State(new_page_id)  # one id per page load: whose evaluation is whose
    gr.Markdown(
        "The same held-out examples through every arm you tick, scored, with 95% intervals. "
        "“Fine-tuning helped” is only said when the paired difference is significant after "
        "Holm's correction, and never on fewer than 6 examples. For tone and style no score tells: "
        "**Rate answers blind** (below the results) shows two arms' answers side by side, unnamed, for you to pick.",
        elem_classes="lab-lead",
    )
    with gr.Row():
        task = gr.Dropdown(allow_custom_value=True, label="Task", choices=[], scale=2, elem_id="eval-task")
        arms = gr.CheckboxGroup(
            [(LABELS[a], a) for a in ARMS], value=["zero-shot", "few-shot"], label="Arms", scale=4, elem_id="eval-arms"
        )
    about = gr.Markdown()
    instructions = instructions_block.build()  # the task's instruction and the others to try
    with gr.Row():
        limit = gr.Number(value=20, precision=0, minimum=0, label="Examples (0 = all)", scale=1, elem_id="eval-limit")
        adapter = gr.Dropdown(
            allow_custom_value=True, label="Adapter (tune arms; default: the task's name)", choices=[], scale=1
        )
        mode = gr.Radio(["fixed", "similar"], value="fixed", label="Few-shot examples", scale=1)
        fresh = gr.Checkbox(False, label="Start a fresh run (instead of resuming)", scale=1)
    with gr.Row():
        start = gr.Button("Run / resume", variant="primary", elem_id="eval-run")
        stop = gr.Button("Cancel", variant="secondary", elem_id="eval-cancel")
    status = gr.HTML(elem_id="eval-status")
    scoreboard = gr.Markdown(elem_id="eval-scoreboard")
    with gr.Row():
        plot = gr.Plot(label="Quality vs cost", scale=3)
        with gr.Column(scale=2):
            significance = gr.Markdown(elem_id="eval-significance")
            gr.Markdown("**Why answers were wrong**")
            failures = gr.Markdown(elem_id="eval-failures")
    examples_title = gr.Markdown(
        "**Where the arms disagree** (score ✓/✗ and the start of each answer)", elem_id="eval-examples-title"
    )
    disagreements = gr.Dataframe(interactive=False, wrap=True, max_height=420, elem_id="eval-disagree")
    past = gr.Dropdown(allow_custom_value=True, label="Show a stored run", choices=[], elem_id="eval-past")

    outputs = [status, scoreboard, plot, significance, failures, examples_title, disagreements]
    _ui.on_load(lab, "evaluate", setup, [task, adapter, past], lab)
    _ui.on_select(lab, "evaluate", refresh, [task, adapter, past], lab)
    task.change(_ui.wire(lab, "evaluate", task_info, lab), task, about)
    instructions_block.wire(lab, task, instructions)
    # No queue limit: a second Run must be answered at once ("already running"), not wait its turn
    # silently behind the first; Jobs allows one evaluation per page, never the same task twice.
    start.click(
        _ui.wire(lab, "evaluate", run, lab, jobs),
        [task, arms, limit, adapter, mode, fresh, page],
        outputs,
        api_name="evaluate",
        concurrency_limit=None,
        trigger_mode="multiple",
    ).then(_ui.wire(lab, "evaluate", lambda: gr.update(choices=run_choices(lab))), None, past)
    stop.click(_ui.wire(lab, "evaluate", cancel, jobs), page, status, concurrency_limit=None)
    past.change(_ui.wire(lab, "evaluate", show_run, lab), past, outputs)
    rate_block.build(lab, task)  # blind pairwise rating of two arms' answers, and the judge
