"""Compare: one question through the chosen arms of the ladder, side by side, streaming.

Every arm runs on the one loaded base model (the engine caches it), so five columns cost one
model in memory; the arms answer in turn, each streaming into its own column. Under each answer: latency, tokens, cost per 1,000 such requests and, for
the retrieval arms, the passages the answer could cite.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ..evaluation.costs import per_1k_requests
from ..prompts import ARMS
from ..tasks import Cost, Task
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

NO_TASK = "(no task: a free question)"
LABELS = {
    "zero-shot": "Prompt · zero-shot",
    "few-shot": "Prompt · few-shot",
    "rag": "RAG",
    "tune": "Tune (LoRA)",
    "tune+rag": "Tune + RAG",
}
DEFAULT_ARMS = ["zero-shot", "few-shot", "rag", "tune"]
DEFAULT_QUESTION = "What is the warranty period of the Acme product you know best?"


# ---- choices -------------------------------------------------------------------------------


def setup(lab: Lab):
    """Tasks, models, corpora and adapters as they are now, with defaults (on page load)."""
    tasks = [NO_TASK] + bridge.task_names(lab)
    default_task = next((t for t in ("acme-facts", "tickets") if t in tasks), NO_TASK)
    models = bridge.model_names(lab)
    corpora = bridge.corpora(lab)  # name -> what retrieval is handed (a name, or the sample's folder)
    adapters = bridge.adapter_names(lab)
    return (
        gr.update(choices=tasks, value=default_task),
        gr.update(choices=models, value=lab.config.default_model),
        gr.update(choices=list(corpora.items()), value=corpora.get("acme") or next(iter(corpora.values()), None)),
        gr.update(choices=adapters, value=adapters[0] if adapters else None),
        *tune_offer(lab, adapters),
        gr.update(value=answerable_arms(default_task != NO_TASK, bool(corpora), bool(adapters))),
    )


def answerable_arms(task: bool, corpus: bool, adapter: bool) -> list[str]:
    """The default arms ticked: only those that can answer (few-shot needs a task, RAG a corpus,
    tune an adapter), so a first question carries no warning."""
    can = {"zero-shot": True, "few-shot": task, "rag": corpus, "tune": adapter}
    return [arm for arm in DEFAULT_ARMS if can[arm]]


def refresh(lab: Lab, adapter: str | None):
    """When the tab is opened again: new adapters, corpora, models; the user's choices stay."""
    corpora = bridge.corpora(lab)
    adapters = bridge.adapter_names(lab)
    return (
        gr.update(choices=[NO_TASK] + bridge.task_names(lab)),
        gr.update(choices=bridge.model_names(lab)),
        gr.update(choices=list(corpora.items())),
        gr.update(choices=adapters, value=adapter if adapter in adapters else (adapters or [None])[0]),
        *tune_offer(lab, adapters),
    )


def tune_offer(lab: Lab, adapters: list[str]):
    """With no adapter yet, the Tune column says so and offers to train the demo adapter."""
    if adapters:
        return gr.update(value="", visible=False), gr.update(visible=False)
    text = f"**No adapter for {lab.config.default_model} yet.** The tune arms need one. " + bridge.demo_training_offer(
        lab
    )
    return gr.update(value=text, visible=True), gr.update(visible=True)


def task_changed(lab: Lab, task_name: str):
    """Examples of the task's held-out set, and the task's corpus and adapter as defaults. The
    answers on screen belong to the task before: cleared. A name that is no task (mistyped)
    leaves the controls as they were, with a warning."""
    cleared = [{}] + ["", "", ""] * len(ARMS)
    if not task_name or task_name == NO_TASK:
        return gr.update(choices=[], value=None), gr.update(), gr.update(), *cleared
    try:
        task = bridge.task(lab, task_name)
    except Exception as e:  # a mistyped name: say so, keep the rest of the form as it was
        gr.Warning(f"No task '{task_name}': {_ui.error_text(e)}. Pick one from the list.")
        return gr.update(), gr.update(), gr.update(), *cleared
    examples = task.examples("eval")[:200]
    choices = [(f"{e.id}: {e.input[:70]}", e.id) for e in examples]
    adapters = bridge.adapter_names(lab)
    return (
        gr.update(choices=choices, value=None),
        gr.update(value=bridge.corpora(lab).get(task.corpus, task.corpus)) if task.corpus else gr.update(),
        gr.update(value=task.name) if task.name in adapters else gr.update(),
        *cleared,
    )


def pick_example(lab: Lab, task_name: str, example_id: str):
    if not example_id or task_name == NO_TASK:
        return gr.update()
    task = bridge.task(lab, task_name)
    ex = next((e for e in task.examples("eval") if e.id == example_id), None)
    return gr.update(value=ex.input) if ex else gr.update()


def show_columns(arms: list[str]):
    return [gr.update(visible=arm in (arms or [])) for arm in ARMS]


# ---- answering -----------------------------------------------------------------------------


def _task_for(lab: Lab, task_name: str) -> Task | None:
    """The task the arms read their instruction, few-shot pool and costs from; None for a free
    question (no instruction, no few-shot pool)."""
    return bridge.task(lab, task_name) if task_name and task_name != NO_TASK else None


def _stats(gen, task: Task | None) -> str:
    cost = per_1k_requests(task.cost if task else Cost(), gen.prompt_tokens, gen.completion_tokens, gen.total_s, "cpu")
    rate = f"{gen.tokens_per_s:.0f} tok/s · " if gen.tokens_per_s else ""
    return (
        f"**{_ui.secs(gen.total_s)}** total · first token {_ui.secs(gen.ttft_s)} · {rate}"
        f"{gen.prompt_tokens} tokens in / {gen.completion_tokens} out · "
        f"**{_ui.money(cost.per_1k) if cost else '—'}** per 1,000 such requests"
        + (f" ({cost.basis})" if cost else "")
        + (f" · adapter `{_adapter_name(gen.adapter_id)}`" if gen.adapter_id else "")
    )


def _adapter_name(adapter_id: str) -> str:
    """adapters/<name>/adapter.gguf (what llama.cpp loaded) -> <name>."""
    path = Path(adapter_id)
    return path.parent.name if path.suffix == ".gguf" else path.name


def _sources(passages, text: str = "") -> str:
    """The passages the prompt held; whether the answer cited any of them as [n]."""
    from ..evaluation.scorers import cited

    if not passages:
        return ""
    numbers = [n for n in cited(text) if 1 <= n <= len(passages)]
    said = (
        f"The answer cites {', '.join(f'[{n}]' for n in numbers)}."
        if numbers
        else "_The answer cites none of them (no [n] in its text): check it against them yourself._"
    )
    lines = [said, "", "**Sources in the prompt**"]
    for i, p in enumerate(passages, 1):
        snippet = " ".join(p.text.split())[:220]
        lines.append(f"{i}. `{p.source}` · score {p.score:.3f}<br><small>{_ui.html.escape(snippet)}…</small>")
    return "\n".join(lines)


def answer(
    lab: Lab,
    question: str,
    task_name: str,
    model: str,
    arms: list[str],
    corpus: str | None,
    adapter: str | None,
    max_tokens: int,
):
    """Stream every chosen arm's answer into its column. Yields (row ids, then per arm:
    answer, stats, sources). Gradio closes this generator when the page is closed or Stop is
    pressed; the worker's cancel event is set then, so the model (and its lock) is free at the
    next token instead of finishing answers nobody reads."""
    question = (question or "").strip()
    if not question:
        raise gr.Error("Type a question (or pick an example from a task) first.")
    arms = [a for a in ARMS if a in (arms or [])]
    if not arms:
        raise gr.Error("Choose at least one arm.")
    task = _task_for(lab, task_name)
    options = lab.options(max_tokens=int(max_tokens))
    text = {a: "" for a in ARMS}
    stats = {a: "" for a in ARMS}
    sources = {a: "" for a in ARMS}
    row_ids: dict[str, int] = {}
    events: queue.Queue = queue.Queue()
    cancel = threading.Event()
    for arm in arms:
        stats[arm] = WAITING
    model = model or None

    def work(arm: str):
        try:
            ans = lab.answer(
                arm,
                question,
                task=task,
                corpus=corpus or None,
                adapter=adapter or None,
                model=model,
                options=options,
                cancel=cancel,
                on_text=lambda piece: events.put((arm, "piece", piece)),
            )
            events.put((arm, "done", ans))
        except Exception as e:  # shown in that column; the other arms go on
            _ui.log_error(lab, f"compare/{arm}", e)
            events.put((arm, "error", e))

    def work_all():
        # One model, one llama.cpp context: generations take turns anyway, so the arms run one
        # after another in ladder order; a retrieval embedding running beside a generation would
        # only fight it for the same cores.
        for arm in arms:
            if cancel.is_set():  # stopped: the arms not yet asked are not asked
                events.put((arm, "error", RuntimeError("stopped before this arm was asked")))
            else:
                work(arm)

    threading.Thread(target=work_all, daemon=True, name="compare").start()

    def outputs():
        out = [dict(row_ids)]
        for a in ARMS:
            out += [text[a], stats[a], sources[a]]
        return out

    try:
        yield from _stream_columns(
            events, arms, task, text, stats, sources, row_ids, outputs, waiting=lambda: queued_note(lab)
        )
    finally:  # finished, failed, or closed by Gradio (page closed, Stop): free the model
        cancel.set()


IDLE_YIELD_S = 0.5  # while no text arrives, yield this often so Gradio can close the generator
WAITING = "_waiting for the model…_"
QUEUED_AFTER_S = 1.0  # an arm that has waited this long for the model says what it waits behind


def queued_note(lab: Lab) -> str | None:
    """What a Compare answer waits behind: an evaluation running (it takes the one model for
    each example in turn), or None."""
    running = next((r for r in lab.store.eval_runs(5) if r["status"] == "running"), None)
    if running is None:
        return None
    return (
        f"_queued behind evaluation run #{running['id']} ({running['task']}): the model answers its "
        "examples one at a time, this question gets its turn between two of them…_"
    )


def _stream_columns(
    events: queue.Queue,
    arms: list[str],
    task: Task | None,
    text: dict,
    stats: dict,
    sources: dict,
    row_ids: dict,
    outputs,
    waiting=lambda: None,
):
    yield outputs()
    pending, last, t0 = set(arms), 0.0, time.monotonic()
    while pending:
        try:
            arm, event, value = events.get(timeout=IDLE_YIELD_S)  # every worker ends with "done" or "error"
        except queue.Empty:  # (a generator blocked here could not be closed until the next event)
            if time.monotonic() - t0 > QUEUED_AFTER_S:
                note = waiting()
                for a in arms:
                    if a in pending and not text[a] and stats[a].startswith(("_waiting", "_queued")):
                        stats[a] = note or WAITING
            yield outputs()
            continue
        if event == "piece":
            if not text[arm]:
                stats[arm] = "_generating…_"
            text[arm] += value
        elif event == "done":
            text[arm] = value.text or "(empty answer)"
            stopped = " · **stopped**" if value.generation.finish_reason == "cancelled" else ""
            stats[arm] = _stats(value.generation, task) + stopped + f" · logged as #{value.row_id}"
            sources[arm] = _sources(value.passages, text[arm])
            row_ids[arm] = value.row_id
            pending.discard(arm)
        else:
            stats[arm] = f"⚠️ **{_ui.error_text(value)}**"
            pending.discard(arm)
        now = time.monotonic()
        if event != "piece" or now - last > 0.05 or events.empty():
            last = now
            yield outputs()
    yield outputs()


def rate(lab: Lab, row_ids: dict, arm: str, verdict: str) -> str:
    row_id = (row_ids or {}).get(arm)
    if row_id is None:
        raise gr.Error(f"Ask a question first: there is no {arm} answer to rate yet.")
    lab.store.rate(row_id, verdict)
    return f"Saved: {verdict} (generation #{row_id})"


# ---- layout --------------------------------------------------------------------------------


def build(lab: Lab) -> None:
    gr.Markdown(
        "Ask once; every rung you tick answers the same question on the same base model. "
        "Climb only as far as you must: prompt → RAG → tune.",
        elem_classes="lab-lead",
    )
    with gr.Row():
        task = gr.Dropdown(
            allow_custom_value=True,
            label="Task (instruction, few-shot pool, costs)",
            choices=[NO_TASK, *bridge.task_names(lab)],
            value=NO_TASK,
            scale=2,
            elem_id="compare-task",
        )
        example = gr.Dropdown(
            label="Example from the task's held-out set", choices=[], scale=3, elem_id="compare-example"
        )
        model = gr.Dropdown(
            allow_custom_value=True,
            label="Base model",
            choices=[lab.config.default_model],
            value=lab.config.default_model,
            scale=1,
            min_width=280,  # the whole model name
            elem_id="compare-model",
        )
    question = gr.Textbox(label="Question", lines=2, value=DEFAULT_QUESTION, elem_id="compare-question")
    with gr.Row():
        arms = gr.CheckboxGroup(
            [(LABELS[a], a) for a in ARMS], value=DEFAULT_ARMS, label="Arms", scale=3, elem_id="compare-arms"
        )
        corpus = gr.Dropdown(
            allow_custom_value=True, label="Corpus (RAG arms)", choices=[], scale=1, elem_id="compare-corpus"
        )
        adapter = gr.Dropdown(
            allow_custom_value=True, label="Adapter (tune arms)", choices=[], scale=1, elem_id="compare-adapter"
        )
        max_tokens = gr.Slider(16, 512, value=128, step=16, label="Max answer tokens", scale=1)
    with gr.Row():
        # disabled until the lab is ready (first launch: indexing) and while a question runs
        ask = gr.Button(NOT_READY, variant="primary", elem_id="compare-ask", scale=4, interactive=False)
        stop = gr.Button("Stop", variant="secondary", elem_id="compare-stop", scale=1)
    row_ids = gr.State({})
    ready = gr.State(False)  # set once the page's startup (indexing the sample corpus) is done

    # no adapter yet: the offer stands above the columns (the Tune column is not ticked then)
    with gr.Row(equal_height=True):
        tune_note = gr.Markdown(visible=False, elem_id="tune-offer")
        train_demo = gr.Button("Train the demo adapter", visible=False, size="sm", elem_id="train-demo", scale=0)
    train_status = gr.Markdown()
    columns, outs, rate_buttons = [], [], []
    with gr.Row(equal_height=False):
        for arm in ARMS:
            with gr.Column(
                visible=arm in DEFAULT_ARMS,
                min_width=220,
                elem_classes="lab-arm",
                elem_id=f"col-{arm.replace('+', '-')}",
            ) as col:
                gr.Markdown(f"### {LABELS[arm]}")
                answer_box = gr.Textbox(
                    label=f"{arm} answer",
                    show_label=False,
                    lines=6,
                    max_lines=18,
                    interactive=False,
                    elem_id=f"answer-{arm.replace('+', '-')}",
                )
                stats = gr.Markdown(elem_classes="lab-stats", elem_id=f"stats-{arm.replace('+', '-')}")
                sources = gr.Markdown(elem_classes="lab-sources")
                with gr.Row():
                    better = gr.Button("▲ Better", size="sm", min_width=60)
                    worse = gr.Button("▼ Worse", size="sm", min_width=60)
                rated = gr.Markdown()
            columns.append(col)
            outs += [answer_box, stats, sources]
            rate_buttons.append((arm, better, worse, rated))

    _ui.on_load(lab, "compare", setup, [task, model, corpus, adapter, tune_note, train_demo, arms], lab)
    _ui.on_select(lab, "compare", refresh, [task, model, corpus, adapter, tune_note, train_demo], lab, inputs=[adapter])
    task.change(_ui.wire(lab, "compare", task_changed, lab), task, [example, corpus, adapter, row_ids, *outs])
    example.change(_ui.wire(lab, "compare", pick_example, lab), [task, example], question)
    arms.change(show_columns, arms, columns, show_progress="hidden")
    run = _ui.wire(lab, "compare", answer, lab)
    inputs = [question, task, model, arms, corpus, adapter, max_tokens]
    rated_notes = [rated for _arm, _better, _worse, rated in rate_buttons]  # a new question clears them
    starting = functools.partial(busy, n_cleared=len(rated_notes))
    asked = ask.click(starting, ready, [ask, *rated_notes], queue=False, show_progress="hidden").success(
        run, inputs, [row_ids, *outs], api_name="compare", concurrency_limit=2
    )
    submitted = question.submit(starting, ready, [ask, *rated_notes], queue=False, show_progress="hidden").success(
        run, inputs, [row_ids, *outs], concurrency_limit=2
    )
    for event in (asked, submitted):
        event.then(idle, ready, ask, show_progress="hidden")
    # Cancelling closes the answer generator, whose finally sets the model's cancel event.
    stop.click(None, None, None, cancels=[asked, submitted]).then(idle, ready, ask, show_progress="hidden")
    for arm, better, worse, rated in rate_buttons:
        better.click(_ui.wire(lab, "rating", rate, lab), [row_ids, gr.State(arm), gr.State("better")], rated)
        worse.click(_ui.wire(lab, "rating", rate, lab), [row_ids, gr.State(arm), gr.State("worse")], rated)
    train_demo.click(_ui.wire(lab, "train", bridge.start_demo_training, lab), None, train_status)
    return ask, ready


ASK = "Ask every arm"
NOT_READY = "Getting the lab ready…"


def busy(ready: bool, n_cleared: int = 0):
    """The first step of Ask: refused until the lab is ready; the button shows a question runs,
    and the `n_cleared` rating notes of the last answers go."""
    if not ready:
        raise gr.Error(
            "The lab is still getting ready (indexing the sample corpus): ask once the banner above says it is done."
        )
    button = gr.update(interactive=False, value="Answering…")
    return (button, *[""] * n_cleared) if n_cleared else button


def idle(ready: bool):
    """After a question (or Stop): Ask again, unless the lab is still getting ready."""
    return gr.update(interactive=True, value=ASK) if ready else gr.update(interactive=False, value=NOT_READY)


def when_ready(startup, controls) -> None:
    """Once the page's startup event (`startup`: the first-launch indexing) is done, Ask works."""
    ask, ready = controls
    startup.then(lambda: (gr.update(interactive=True, value=ASK), True), None, [ask, ready], show_progress="hidden")
