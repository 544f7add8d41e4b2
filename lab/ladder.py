"""One question through one rung of the ladder: the only place that decides how an arm answers.

    lab.answer("zero-shot", "My invoice is wrong", task=tickets)
    lab.answer("few-shot", question, task=tickets)               # the task's first k examples
    lab.answer("rag", "What does the FL-200 cost?", corpus="acme")
    lab.answer("tune+rag", question, task=facts, adapter="acme-facts")

The CLI's `lab ask`, the app's Compare tab, the evaluation runner and the probe all call
`answer` (through `Lab.answer`), so an arm answers the same way wherever it is asked, and
every generation is logged under one of `ARMS` by `Lab.generate` (or as `JUDGE`: a judge model
comparing two arms' answers, `lab.evaluation.judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import default_backend_for
from .backends.base import Generation, OnText
from .prompts import ARMS, few_shot, zero_shot

if TYPE_CHECKING:  # typing only: the tuning package loads lazily
    import threading

    from .tasks import Task
    from .tuning.adapters import AdapterInfo

JUDGE = "judge"  # the generations row of a judge's verdict: logged like an answer, never an arm
RAG_ARMS = {"rag", "tune+rag"}
TUNE_ARMS = {"tune", "tune+rag"}


class ArmError(ValueError):
    """An arm cannot answer as asked (unknown arm, no corpus, no adapter...); says why."""


@dataclass
class Answer:
    arm: str
    generation: Generation
    row_id: int  # the `generations` row it was logged as
    passages: list | None = None  # rag arms: the passages in the prompt, in citation order
    adapter: AdapterInfo | None = None  # tune arms: the adapter that was served
    shots: int | None = None  # few-shot: examples that fitted the context

    @property
    def text(self) -> str:
        return self.generation.text


def check_logged(arm: str) -> None:
    """What a generations row may be logged under: one of the ladder's arms, or the judge."""
    if arm != JUDGE:
        check_arms([arm])


def check_arms(arms: Sequence[str]) -> list[str]:
    """The chosen arms in ladder order, without repeats; unknown names are an error."""
    arms = [a.strip() for a in arms if a and a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ArmError(f"unknown arm(s) {', '.join(unknown)}: choose from {', '.join(ARMS)}")
    if not arms:
        raise ArmError(f"no arms chosen: choose from {', '.join(ARMS)}")
    return sorted(dict.fromkeys(arms), key=ARMS.index)


# ---- few-shot examples ----------------------------------------------------------------------


def few_shot_pool(task) -> list:
    """The examples few-shot prompts draw from: the task's few-shot file, else its training set."""
    return task.examples("fewshot") or task.examples("train")


def fixed_shots(pool: Sequence, k: int) -> list[tuple[str, str]]:
    """The first k examples of the pool: the same for every question, so the prompt prefix
    (system + k examples) is shared and stays in the model's KV cache."""
    return [(e.input, e.output) for e in list(pool)[:k]]


class SimilarShots(list):
    """Examples ordered least to most similar (the most similar next to the question): `answer`
    trims them from the front, so a short context drops the least similar first."""


def similar_shots(lab, pool: Sequence, question: str, k: int) -> list[tuple[str, str]]:
    """The k pool examples most similar to the question (cosine of the lab's embedder), the
    most similar last, next to the question (a `SimilarShots`)."""
    import numpy as np

    if k <= 0 or not pool:
        return []
    cache = lab.__dict__.setdefault("_pool_vectors", {})
    key = tuple(e.id for e in pool)
    if key not in cache:
        cache[key] = _unit(lab.embedder().encode([e.input for e in pool]))
    q = _unit(lab.embedder().encode([question]))[0]
    order = np.argsort(-(cache[key] @ q))[:k][::-1]
    return SimilarShots((pool[i].input, pool[i].output) for i in order)


def _unit(vectors):
    import numpy as np

    v = np.asarray(vectors, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def fit_shots(
    lab,
    model: str | None,
    question: str,
    shots: list,
    instruction: str | None,
    max_tokens: int,
    engine: str | None = None,
    trim_front: bool | None = None,
) -> list:
    """Drop examples until the prompt and the answer fit the context window: from the end for
    fixed examples (the front stays, so the shared prefix of the other questions is still
    reused), from the front with `trim_front` (default: for `SimilarShots`, the least similar go
    first)."""
    trim_front = isinstance(shots, SimilarShots) if trim_front is None else trim_front
    shots = list(shots)
    backend = lab.backend(model, engine)
    while shots:
        n = backend.count_tokens(backend.render(few_shot(question, shots, instruction)))
        if n + max_tokens <= backend.n_ctx - 8:
            break
        shots = shots[1:] if trim_front else shots[:-1]
    return shots


# ---- the answer's token budget -----------------------------------------------------------------

# Tokens beyond the longest label's own length: the end-of-turn token (llama.cpp stops with
# "length" when the label's last token fills max_tokens) and a leading space or so.
LABEL_ALLOWANCE = 4


def answer_budget(lab, task, model: str | None = None, engine: str | None = None, constrain: bool = False) -> int:
    """The completion budget for an answer to `task`: its max_tokens, raised for a label task to
    fit the longest label plus LABEL_ALLOWANCE, since a label cut short is always wrong, whatever
    the model knew. The label's length: its token count by the model's own tokenizer; constrained,
    its UTF-8 bytes, because a grammar lets the model spell a label in any split of tokens (SmolLM2
    wrote a 17-token label in 29), and the grammar ends the answer with the label anyway."""
    labels = task.labels if task.output_format == "label" else None
    if not labels:
        return task.max_tokens
    if constrain:  # every token is at least one byte
        return max(task.max_tokens, max(len(x.encode("utf-8")) for x in labels) + LABEL_ALLOWANCE)
    backend = lab.backend(model, engine)  # loads the model, to count with its tokenizer
    cache = lab.__dict__.setdefault("_label_tokens", {})  # counted once per model and label set
    key = (backend.info.id, engine, tuple(labels))
    if key not in cache:
        cache[key] = max(backend.count_tokens(label) for label in labels)
    return max(task.max_tokens, cache[key] + LABEL_ALLOWANCE)


# ---- constrained output ------------------------------------------------------------------------


def constraint_options(task) -> dict[str, Any]:
    """What constrained decoding restricts a task's answers to, as GenerationOptions fields: a
    label task's labels, a JSON task's schema (any JSON object without one); {} for free text."""
    if task.output_format == "label" and task.labels:
        return {"choices": list(task.labels)}
    if task.output_format == "json":
        return {"json_schema": task.schema() or {"type": "object"}}
    return {}


def constrained(lab, task, options, model: str | None, engine: str | None):
    """`options` with the task's constraint on; refused where the backend cannot honour it."""
    if task is None:
        raise ArmError("constrained output needs a task: its labels or JSON schema say what to allow")
    update = constraint_options(task)
    if not update:
        raise ArmError(f"task '{task.name}' is free text: there is no label set or schema to constrain to")
    if "choices" in update and lab.backend(model, engine).info.format == "openai":
        raise ArmError(
            "an OpenAI-compatible server cannot be held to a label set by the lab "
            "(only a JSON schema, as response_format): evaluate without --constrain"
        )
    return options.model_copy(update=update)


# ---- corpora and adapters ---------------------------------------------------------------------


def task_corpus(lab, task) -> str:
    """What to hand the retrieval API for the task's corpus: its name when <home>/corpora/<name>
    exists, else the checkout's sample folder of that name (a lab home elsewhere still finds
    `acme`), else the name as a path."""
    from .retrieval.corpus import RetrievalError, resolve_corpus

    name = getattr(task, "corpus", None)
    if not name:
        raise ArmError(f"task '{task.name}' names no corpus (add corpus = \"NAME\" to its task.toml)")
    try:
        _, folder = resolve_corpus(lab.home, name)  # the one rule: the home's, the sample, a path
    except RetrievalError as e:
        raise ArmError(f"task '{task.name}': {e}") from e
    return name if folder == (lab.home.corpora / name).resolve() else str(folder)


def resolve_adapter(lab, name: str, model: str | None = None) -> AdapterInfo:
    """The adapter `name`, checked against the model that will serve it."""
    from .tuning.adapters import AdapterError
    from .tuning.adapters import resolve_adapter as _resolve

    try:
        return _resolve(lab, name, model)
    except AdapterError as e:
        raise ArmError(f"the tune arms need an adapter: {e}") from e


# ---- one question through one arm -------------------------------------------------------------


def instruction_for(task: Task | None, system: str | None = None, tuned: AdapterInfo | None = None) -> str | None:
    """The system prompt an arm answers with: `system` when given; else a tuned arm's adapter's
    own (served with what it was trained with); else the task's instruction."""
    if system is not None:
        return system
    if tuned is not None and tuned.instruction is not None:
        return tuned.instruction
    return (task.instruction or None) if task else None


def answer(
    lab,
    arm: str,
    question: str,
    *,
    task: Task | None = None,
    corpus: str | Path | None = None,
    adapter: str | AdapterInfo | None = None,
    model: str | None = None,
    engine: str | None = None,
    options=None,
    system: str | None = None,
    shots: list | None = None,
    k: int | None = None,
    rag_k: int = 4,
    log: dict | None = None,
    on_text: OnText | None = None,
    cancel: threading.Event | None = None,
    constrain: bool = False,
    chunk_tokens: int | None = None,
) -> Answer:
    """`question` through `arm`, logged. The task (optional) gives the instruction, the few-shot
    pool, the corpus and the answer length; explicit arguments win over it.

    few-shot: `shots` as (input, output) pairs, else the task's first `k` (default its few_shot_k),
    trimmed to fit the context. rag arms: `corpus` (default: the task's), `rag_k` passages from its
    index chunked at `chunk_tokens` (default: the corpus's own), and `shots` when given (rag with
    worked examples: they keep at most half the context, the passages fill the rest).
    tune arms: `adapter` (a name or an AdapterInfo), served with the instruction it was trained
    with unless `system` is given. `log` adds context to the generation row (eval_run_id, ...).
    `constrain`: the answer is held to the task's labels or JSON schema (constrained decoding)."""
    check_arms([arm])
    if options is None:
        options = lab.options(max_tokens=task.max_tokens) if task else lab.options()
    if constrain:
        options = constrained(lab, task, options, model, engine)
    tuned = None
    if arm in TUNE_ARMS:
        if adapter is None:
            raise ArmError(
                f"no adapter chosen for the {arm} arm: train one (`lab train`, or the Train tab) and pick it"
            )
        tuned = resolve_adapter(lab, adapter, model) if isinstance(adapter, str) else adapter
        model = model or tuned.base_model
    instruction = instruction_for(task, system, tuned)
    if task is not None:  # never below what the longest label needs, whoever set the options
        budget = max(options.max_tokens, answer_budget(lab, task, model, engine, constrain))
        options = options.model_copy(update={"max_tokens": budget})
    served = _adapter_kw(lab, tuned, model, engine)
    if arm in RAG_ARMS:
        from .retrieval import ask_rag

        where = corpus or (task_corpus(lab, task) if task else None)
        if not where:
            raise ArmError(f"no corpus chosen for the {arm} arm: pick one (see `lab index` or the Knowledge tab)")
        if shots:  # worked examples take at most half the context: the passages need the rest
            half = lab.backend(model, engine).n_ctx // 2
            shots = fit_shots(lab, model, question, shots, instruction, options.max_tokens + half, engine)
        gen, row_id, passages = ask_rag(
            lab,
            where,
            question,
            model=model,
            k=rag_k,
            system=instruction,
            options=options,
            on_text=on_text,
            engine=engine,
            arm=arm,
            log_extra=log,
            cancel=cancel,
            chunk_tokens=chunk_tokens,
            shots=list(shots) if shots else None,
            **served,
        )
        return Answer(arm, gen, row_id, list(passages), tuned, len(shots) if shots else None)
    used = None
    if arm == "few-shot":
        if shots is None:
            if task is None:
                raise ArmError("the few-shot arm needs example answers: pick a task (its few-shot pool is used)")
            shots = fixed_shots(few_shot_pool(task), task.few_shot_k if k is None else k)
        shots = fit_shots(lab, model, question, shots, instruction, options.max_tokens, engine)
        messages, used = few_shot(question, shots, instruction), len(shots)
    else:  # zero-shot and tune: the instruction and the question only
        messages = zero_shot(question, instruction)
    gen, row_id = lab.generate(
        messages,
        arm=arm,
        model=model,
        engine=engine,
        options=options,
        log=log,
        on_text=on_text,
        cancel=cancel,
        **served,
    )
    return Answer(arm, gen, row_id, None, tuned, used)


def _adapter_kw(lab, tuned, model: str | None, engine: str | None) -> dict[str, Any]:
    """What `Lab.generate` needs to serve the adapter: the file this backend loads (adapter.gguf
    for llama.cpp, the PEFT folder for transformers), its sha256 and name for the log."""
    if tuned is None:
        return {}
    from .tuning.adapters import AdapterError

    served_by = engine or default_backend_for(lab.backend(model, engine).info)
    try:
        path = tuned.serve_path(served_by)
    except AdapterError as e:
        raise ArmError(str(e)) from e
    return {"adapter": path, "adapter_sha": tuned.sha256, "adapter_id": tuned.name}
