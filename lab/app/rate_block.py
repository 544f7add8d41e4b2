"""Rate answers blind, on the Evaluate tab: two arms' answers to the same held-out input side by
side as "Answer A" and "Answer B" (which arm is which is drawn at random per pair by the engine and
never shown), your pick stored at once. The verdict on the pairs rated shows when no pair is on
screen (a running count would name the arm just picked). Stop hides the pair; Start again resumes with the pairs not rated yet (the ratings are in SQLite).
Keys A, B, T, X and S press the buttons (a small script on the page, never while typing).

Judge: a model the lab runs asked about the same pairs in both orders (`judge_pairs`, cancellable,
resumable), then its certificate against your ratings and the gated verdict
(`preference_evidence`): a judge's verdict counts only when it is trusted, else yours does.
Only the engine's functions are called here: no model or SQL code.
"""

from __future__ import annotations

import functools
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gradio as gr
from gradio.context import Context

from ..evaluation.certificate import certificate, preference_evidence
from ..evaluation.judge import judge_name, judge_pairs, own_verdict_lines
from ..evaluation.pairwise import Pairs, Shown, default_arms, next_pair, pairs_for, preference, rate, ratings
from ..ladder import ArmError
from ..prompts import ARMS, DEFAULT_RUBRIC
from ..tasks import TaskError
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

CHOICES = {"A": "A", "B": "B", "tie": "tie", "both bad": "both bad"}
KEYS = {"a": "rate-a", "b": "rate-b", "t": "rate-tie", "x": "rate-bad", "s": "rate-skip"}
KEYS_NOTE = "Keys: **A**, **B**, **T** tie, **X** both bad, **S** skip (not while typing in a box)."
# One listener for the page: a key presses its button while the pair is on screen and the focus is
# not in a text box (the buttons are only in the page, and visible, while a pair is shown).
KEYS_JS = """() => {
  if (window.__labRateKeys) return;
  window.__labRateKeys = true;
  const keys = %s;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const el = e.target;
    if (el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName))) return;
    const id = keys[(e.key || "").toLowerCase()];
    const button = id && document.getElementById(id);
    if (!button || button.offsetParent === null || button.disabled) return;
    e.preventDefault();
    button.click();
  });
}""" % json.dumps(KEYS)
EXPECTED = (ArmError, TaskError)  # what the engine says when nothing can be rated as asked (PairwiseError too)
_JUDGING: dict[str, threading.Event] = {}  # page -> the cancel flag of its judge run


@dataclass
class Rating:
    """One page's rating session: the pairs, the pair on screen and when it was shown."""

    pairs: Pairs
    rubric: str
    shown: Shown | None = None
    shown_at: float = 0.0
    skipped: set[str] = field(default_factory=set)

    def show_next(self, lab: Lab) -> None:
        self.shown = next_pair(lab, self.pairs, skip=self.skipped)
        self.shown_at = time.monotonic()


def new_page_id() -> str:
    return uuid.uuid4().hex


def _message(e: Exception) -> str:
    return f"**Nothing to rate as asked:** {_ui.html.escape(_ui.error_text(e), quote=False)}"


# ---- the arms to compare --------------------------------------------------------------------


def arm_choices(lab: Lab, task_name: str):
    """(first arm, second arm, the rating view emptied): a new task starts a new session."""
    a, b = None, None
    if task_name:
        try:
            a, b = default_arms(lab, bridge.task(lab, task_name))
        except EXPECTED:
            pass  # the task's own box says what is wrong with it
    return (gr.update(value=a), gr.update(value=b), *view(lab, None))


# ---- the rating view ------------------------------------------------------------------------


def view(lab: Lab, rating: Rating | None, message: str = "") -> tuple:
    """(state, pane, shown id, input, rubric, answer A, answer B, progress, verdict, message)."""
    if rating is None:
        return (None, gr.update(visible=False), "", "", "", "", "", "", "", message)
    pairs, shown = rating.pairs, rating.shown
    done = len(ratings(lab, pairs))
    # Said only while no pair is on screen: a running count would tell which arm the last pick was,
    # and a rater who learns an arm's style is no longer blind.
    verdict = f"**Your verdict:** {_ui.html.escape(preference(lab, pairs).sentence)}" if done else ""
    if shown is None:
        left = len(pairs) - done
        end = (
            f"**All {len(pairs)} pairs are rated.**"
            if not left
            else f"**{done} of {len(pairs)} pairs rated**; {left} skipped or left: **Start rating** again to see them."
        )
        return (rating, gr.update(visible=False), "", "", "", "", "", "", verdict, message or end)
    progress = (
        f"**{done} of {len(pairs)} pairs rated** · eval run #{pairs.eval_run_id} · "
        "the verdict shows when you stop (sooner would tell you which arm you picked)"
    )
    rubric = f"**Rubric:** {_ui.html.escape(rating.rubric, quote=False)}"
    return (
        rating,
        gr.update(visible=True),
        shown.pair.example_id,
        shown.pair.question,
        rubric,
        shown.text("A"),
        shown.text("B"),
        progress,
        "",
        message,
    )


def start(lab: Lab, task_name: str, arm_a: str, arm_b: str) -> tuple:
    """Load the pairs of the task's newest evaluation of both arms and show the first unrated one."""
    if not task_name:
        return view(lab, None, "Pick a task.")
    try:
        task = bridge.task(lab, task_name)
        pairs = pairs_for(lab, task, [arm_a or "", arm_b or ""])
    except EXPECTED as e:
        return view(lab, None, _message(e))
    if not len(pairs):
        return view(lab, None, f"Eval run #{pairs.eval_run_id} has no example both arms answered.")
    rating = Rating(pairs, (task.rubric or DEFAULT_RUBRIC).strip())
    rating.show_next(lab)
    return view(lab, rating)


def _stale(lab: Lab, rating: Rating | None, shown_id: str) -> tuple | None:
    """The view to show when a press is not for the pair on screen (nothing shown, or a key pressed
    twice before the next pair came); None when it is."""
    if rating is None or rating.shown is None:
        return view(lab, rating, "Press **Start rating** first.")
    if shown_id and shown_id != rating.shown.pair.example_id:
        return view(lab, rating)  # the press was for the pair just rated: this one waits for yours
    return None


def rate_pair(lab: Lab, rating: Rating | None, shown_id: str, choice: str) -> tuple:
    """Store the pick for the pair on screen (timed from when it was shown); show the next one."""
    if (stale := _stale(lab, rating, shown_id)) is not None:
        return stale
    try:
        rate(lab, rating.shown, CHOICES[choice], seconds=round(time.monotonic() - rating.shown_at, 3))
    except EXPECTED as e:
        return view(lab, rating, _message(e))
    rating.show_next(lab)
    return view(lab, rating)


def skip(lab: Lab, rating: Rating | None, shown_id: str) -> tuple:
    """Leave the pair on screen unrated for this session (Start again shows it)."""
    if (stale := _stale(lab, rating, shown_id)) is not None:
        return stale
    rating.skipped.add(rating.shown.pair.example_id)
    rating.show_next(lab)
    return view(lab, rating)


def stop(lab: Lab, rating: Rating | None) -> tuple:
    """Hide the pair and say the verdict; Start rating resumes with the unrated pairs."""
    if rating is None:
        return view(lab, None)
    rating.shown = None
    return view(lab, rating, "Stopped: your ratings are saved; **Start rating** resumes with the pairs not rated yet.")


# ---- the judge ------------------------------------------------------------------------------


def judge_text(lab: Lab, pairs: Pairs, judge: str, cancelled: bool = False) -> str:
    """The judge's certificate, then what the lab uses: its verdict when trusted, else your ratings."""
    cert = certificate(lab, pairs, judge)
    evidence = preference_evidence(lab, pairs, judge)
    name = _ui.html.escape(judge_name(judge))
    head = (
        f"### ✓ The judge {name} is trusted for this task: its verdict is used"
        if cert.trusted
        else f"### ⚠ The judge {name} is not trusted for this task: your ratings are used"
    )
    said = cert.text()
    used = [line[len(said) :].strip() if line.startswith(said) else line for line in evidence.lines()]
    lines = [f"- {_ui.html.escape(line, quote=False)}" for line in used if line]
    note = "_Cancelled: **Judge these pairs** again continues where it stopped._\n\n" if cancelled else ""
    own = " ".join(own_verdict_lines(lab, pairs, judge))
    return (
        note
        + head
        + f"\n\n{_ui.html.escape(said, quote=False)}\n\n**What the lab uses:**\n"
        + "\n".join(lines or ["- nothing rated or judged yet"])
        + f"\n\n_What the judge itself said:_ {_ui.html.escape(own, quote=False)}"
    )


def judge(lab: Lab, task_name: str, arm_a: str, arm_b: str, model: str | None, page: str = "this page"):
    """Ask the judge about every pair in both orders in a worker thread; yield (progress, result)."""
    if not task_name:
        yield "", "Pick a task."
        return
    try:
        task = bridge.task(lab, task_name)
        pairs = pairs_for(lab, task, [arm_a or "", arm_b or ""])
    except EXPECTED as e:
        yield "", _message(e)
        return
    if page in _JUDGING:
        yield gr.update(), "This page is judging already: wait for it, or Cancel it."
        return
    cancel = _JUDGING[page] = threading.Event()
    try:
        yield from _judge_run(lab, task, pairs, model or None, cancel)
    finally:
        cancel.set()
        _JUDGING.pop(page, None)


def _judge_run(lab: Lab, task, pairs: Pairs, model: str | None, cancel: threading.Event):
    steps: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["run"] = judge_pairs(
                lab, task, pairs, model=model, cancel=cancel, on_step=lambda d, t: steps.put(d)
            )
        except Exception as e:
            outcome["error"] = e
        finally:
            steps.put(None)

    total = 2 * len(pairs)
    threading.Thread(target=work, daemon=True, name="lab-judge").start()
    yield _ui.progress_bar(0, total, "asking the judge (loading the model)…"), ""
    while (done := steps.get()) is not None:
        yield _ui.progress_bar(done, total, "verdicts (each pair in both orders)"), gr.update()
    if "error" in outcome:
        if isinstance(outcome["error"], EXPECTED):
            yield "", _message(outcome["error"])
            return
        raise outcome["error"]
    run = outcome["run"]
    bar = _ui.progress_bar(run.stored, total, "verdicts on record")
    yield bar, judge_text(lab, pairs, run.judge, cancelled=run.cancelled)


def judge_cancel(page: str = "this page") -> str:
    flag = _JUDGING.get(page)
    if flag is None:
        return "No judge is running on this page."
    flag.set()
    return "Cancelling after the verdict in flight… (**Judge these pairs** again continues.)"


def model_choices(lab: Lab):
    return gr.update(choices=bridge.model_names(lab), value=lab.config.default_model)


# ---- layout ---------------------------------------------------------------------------------


def build(lab: Lab, task) -> None:
    """The accordion, closed, under the scoreboard; `task` is the tab's task box."""
    page = gr.State(new_page_id)
    state = gr.State(None)
    with gr.Accordion("Rate answers blind", open=False, elem_id="rate"):
        gr.Markdown(
            "Two arms' answers to the same held-out input, side by side. Which arm wrote which is "
            "drawn at random for every pair and never shown; the verdict on the pairs rated so far "
            "(the sign test on your picks) shows when you stop. " + KEYS_NOTE,
            elem_classes="lab-lead",
        )
        with gr.Row():
            arm_a = gr.Dropdown(ARMS, label="One arm", elem_id="rate-arm-a", scale=1)
            arm_b = gr.Dropdown(ARMS, label="The other arm", elem_id="rate-arm-b", scale=1)
            go = gr.Button("Start rating", variant="primary", elem_id="rate-start", scale=1)
        message = gr.Markdown(elem_id="rate-message")
        with gr.Column(visible=False, elem_id="rate-pane") as pane:
            progress = gr.Markdown(elem_id="rate-progress")
            shown_id = gr.Textbox(visible=False, elem_id="rate-shown")  # sent with a press: which pair it was for
            question = gr.Textbox(label="Held-out input", interactive=False, lines=2, elem_id="rate-question")
            rubric = gr.Markdown(elem_id="rate-rubric")
            with gr.Row():
                answer_a = gr.Textbox(label="Answer A", interactive=False, lines=6, elem_id="rate-answer-a")
                answer_b = gr.Textbox(label="Answer B", interactive=False, lines=6, elem_id="rate-answer-b")
            with gr.Row():
                buttons = {
                    "A": gr.Button("A is better", variant="primary", elem_id="rate-a"),
                    "B": gr.Button("B is better", variant="primary", elem_id="rate-b"),
                    "tie": gr.Button("Tie", elem_id="rate-tie"),
                    "both bad": gr.Button("Both bad", elem_id="rate-bad"),
                }
                skip_button = gr.Button("Skip", elem_id="rate-skip")
                stop_button = gr.Button("Stop", variant="stop", elem_id="rate-stop")
            gr.Markdown(KEYS_NOTE)
        verdict = gr.Markdown(elem_id="rate-verdict")
        _build_judge(lab, task, arm_a, arm_b, page)
    shown = [state, pane, shown_id, question, rubric, answer_a, answer_b, progress, verdict, message]
    where = "evaluate rating"
    task.change(_ui.wire(lab, where, arm_choices, lab), task, [arm_a, arm_b, *shown], show_progress="hidden")
    for arm in (arm_a, arm_b):  # other arms: another set of pairs, Start rating loads it
        arm.change(_ui.wire(lab, where, view, lab, None), None, shown, show_progress="hidden")
    go.click(_ui.wire(lab, where, start, lab), [task, arm_a, arm_b], shown)
    for choice, button in buttons.items():
        pick = _ui.wire(lab, where, functools.partial(rate_pair, choice=choice), lab)
        button.click(pick, [state, shown_id], shown, show_progress="hidden")
    skip_button.click(_ui.wire(lab, where, skip, lab), [state, shown_id], shown, show_progress="hidden")
    stop_button.click(_ui.wire(lab, where, stop, lab), [state], shown, show_progress="hidden")
    if Context.root_block is not None:  # the keys: one listener, installed when the page loads
        Context.root_block.load(None, None, None, js=KEYS_JS)


def _build_judge(lab: Lab, task, arm_a, arm_b, page) -> None:
    gr.Markdown(
        "**Judge** · a model asked about the same pairs, each in both orders. Its verdict is used only "
        "when it agrees with your ratings well enough (the certificate below); otherwise yours is."
    )
    with gr.Row():
        model = gr.Dropdown([], label="Judge model", allow_custom_value=True, elem_id="rate-judge-model", scale=2)
        go = gr.Button("Judge these pairs", variant="primary", elem_id="rate-judge", scale=1)
        halt = gr.Button("Cancel", variant="secondary", elem_id="rate-judge-cancel", scale=1)
    bar = gr.HTML(elem_id="rate-judge-progress")
    out = gr.Markdown(elem_id="rate-judge-out")
    go.click(_ui.wire(lab, "evaluate judge", judge, lab), [task, arm_a, arm_b, model, page], [bar, out])
    halt.click(_ui.wire(lab, "evaluate judge", judge_cancel), [page], bar, concurrency_limit=None)
    _ui.on_load(lab, "evaluate judge", model_choices, [model], lab)
