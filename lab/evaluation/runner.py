"""The evaluation runner: every held-out example through every chosen arm, one row at a time.

- One `eval_results` row per (example, arm, repeat), committed as soon as it is scored, so a
  killed run loses at most the example in flight.
- Resumable: running the same task (same hash), model and settings again continues the
  existing run; the primary key (eval_run_id, example_id, arm, repeat) makes duplicates
  impossible. New arms join the same run, so `--arms tune` after training adds a column to
  the scoreboard instead of starting over.
- Arm by arm: the few-shot arm's system prompt + k examples is an identical prefix for every
  question, and llama.cpp keeps the longest common token prefix in its KV cache, so looping
  over examples inside one arm makes the few-shot prompt cost little more than zero-shot.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence

from .. import ladder
from ..backends.base import BackendError, ServerUnavailable
from ..ladder import ArmError
from ..store import now
from ..tasks import load_task
from .sample import SAMPLE
from .sample import held_out as sampled
from .scorers import check_task, score_example


class EvalError(ArmError):
    """An evaluation cannot run as asked (unknown arm, no corpus, no adapter...); says why."""


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


DETERMINISTIC = {"temperature": 0.0, "seed": 0}
SAMPLING_TEMPERATURE = 0.7


def _identity(
    task,
    model_id: str,
    model_sha: str,
    repeats: int,
    few_shot_mode: str,
    k: int,
    rag_k: int,
    constrain: bool = False,
    tag: str | None = None,
    variant: dict | None = None,
) -> dict:
    """What makes two evaluations comparable row for row (the run is resumed when it matches).
    `tag` keeps a run apart from every other (a learning curve's points: `lab curve`); `sample`
    says how a limit chose its examples (`sample.held_out`); `variant` holds what a sweep varies
    beyond k (`VARIANT_KEYS`: another instruction, another chunk size, rag with examples)."""
    return {
        **{key: (variant or {}).get(key) for key in VARIANT_KEYS},
        "sample": SAMPLE,
        "model_sha": model_sha,
        "repeats": repeats,
        "few_shot_mode": few_shot_mode,
        "few_shot_k": k,
        "rag_k": rag_k,
        "max_tokens": task.max_tokens,  # callers: the effective budget
        "sampling": DETERMINISTIC if repeats == 1 else {"temperature": SAMPLING_TEMPERATURE},
        "constrain": constrain,
        "tag": tag,
    }


# Identity keys added later, with the value every older run had (runs before constrained
# decoding were unconstrained, runs before curves untagged, runs before `sample.held_out` scored
# the first N rows of the file), so those runs keep their meaning and never mix with new ones.
IDENTITY_DEFAULTS = {
    "constrain": False,
    "tag": None,
    "sample": "first",
    "instruction": None,  # None: the task's own instruction (else one of its `instructions` to try)
    "chunk_tokens": None,  # None: the corpus's own index (else its version chunked at that size)
    "rag_shots": None,  # None: rag without worked examples (else {"mode", "k"} as the few-shot arm's)
    "tune_instruction": None,  # None: the tune arms answer with the adapter's instruction ("task": the task's)
}
VARIANT_KEYS = ("instruction", "chunk_tokens", "rag_shots", "tune_instruction")


def find_run(lab, task_name: str, task_hash: str, model_id: str, identity: dict) -> dict | None:
    for run in lab.store.eval_runs_matching(task_name, task_hash, model_id):
        config = json.loads(run["config_json"] or "{}")
        if {k: config.get(k, IDENTITY_DEFAULTS.get(k)) for k in identity} == identity:
            return run
    return None


def latest_run(lab, task_name: str) -> dict | None:
    """The task's newest evaluation, leaving out tagged runs (a learning curve's points) and, while
    there is another, the runs a sweep made for one configuration each (`run_eval(sweep=)`)."""
    return lab.store.latest_untagged_eval_run(task_name)


def done_keys(lab, run_id: int) -> set[tuple[str, str, int]]:
    return lab.store.eval_result_keys(run_id)


def matching_run(
    lab,
    task,
    model: str | None = None,
    *,
    repeats: int = 1,
    few_shot_mode: str = "fixed",
    k: int | None = None,
    rag_k: int = 4,
    constrain: bool | None = None,
    instruction: str | None = None,
    chunk_tokens: int | None = None,
    rag_shots: dict | None = None,
) -> dict | None:
    """The stored run that `run_eval` with these settings would resume (None: it would start
    one), found without loading the model (except for an unconstrained label task: its answer
    budget is counted with the model's tokenizer); `lab demo` uses it to tell what is already done."""
    from ..models import ModelNotFound

    task = load_task(task, home=lab.home)
    try:
        info = lab.model_info(model)
    except ModelNotFound:  # a backend registered by hand (a test's fake) has no file to resolve
        info = lab.backend(model).info
    k = task.few_shot_k if k is None else k
    # constrain defaults as run_eval's does (the task's own setting), or a constrained task never matches
    constrain = task.constrain if constrain is None else bool(constrain)
    if instruction is not None and instruction.strip() == (task.instruction or "").strip():
        instruction = None  # the task's own, as run_eval reads it
    variant = {"instruction": instruction, "chunk_tokens": chunk_tokens, "rag_shots": rag_shots}
    identity = _identity(task, info.id, lab.model_sha(info), repeats, few_shot_mode, k, rag_k, constrain, None, variant)
    identity["max_tokens"] = ladder.answer_budget(lab, task, model, constrain=constrain)  # as run_eval's
    return find_run(lab, task.name, task.hash(), info.id, identity)


def config_label(
    arm: str, mode: str = "fixed", k: int | None = None, constrain: bool = False, variant: dict | None = None
) -> str:
    """A configuration's one name, wherever it is shown: "few-shot, 8 similar examples,
    constrained"; "zero-shot, instruction 2"; "rag, 8 passages of 96 tokens, 4 fixed examples"."""
    what = arm
    if arm == "few-shot" and k is not None:
        what = f"few-shot, {k} {mode} example{'s' if k != 1 else ''}"
    v = variant or {}
    if arm in ladder.RAG_ARMS and v.get("rag_k"):
        size = f" of {v['chunk_tokens']} tokens" if v.get("chunk_tokens") else ""
        what += f", {v['rag_k']} passage{'s' if v['rag_k'] != 1 else ''}{size}"
    if arm in ladder.RAG_ARMS and v.get("rag_shots"):
        n, mode_ = v["rag_shots"]["k"], v["rag_shots"]["mode"]
        what += f", {n} {mode_} example{'s' if n != 1 else ''}"
    if v.get("instruction_no"):
        what += f", instruction {v['instruction_no']}"
    return what + (", constrained" if constrain else "")


def run_eval(
    lab,
    task,
    arms: Sequence[str] = ("zero-shot", "few-shot"),
    limit: int | None = None,
    repeats: int = 1,
    model: str | None = None,
    adapter: str | None = None,
    few_shot_mode: str = "fixed",
    k: int | None = None,
    rag_k: int = 4,
    progress: bool = True,
    cancel: threading.Event | None = None,
    on_result: Callable[[dict], None] | None = None,
    fresh: bool = False,
    constrain: bool | None = None,
    concurrency: int | None = None,
    tag: str | None = None,
    instruction: str | None = None,
    chunk_tokens: int | None = None,
    rag_shots: dict | None = None,
    sweep: str | None = None,
    hide_own_example: bool = False,
    tune_instruction: str | None = None,
) -> int:
    """Run (or resume) an evaluation; returns its eval_run_id.

    `k`: few-shot examples (default: the task's few_shot_k); `rag_k`: passages per question.
    `repeats` > 1 samples at temperature 0.7 with one seed per repeat (a stability check).
    `cancel` (set from another thread) stops after the example in flight; `on_result(row)` is
    called after each row is written. `fresh=True` starts a new run instead of resuming.
    `constrain` (default: the task's `constrain`) holds every arm's answers to the task's labels or
    JSON schema; constrained and unconstrained runs are separate runs.
    `concurrency` (default: lab.toml's): requests in flight at once, for a backend that takes
    them (`backend.concurrent`, a server); local backends answer one at a time.
    `tag` names a run that only a call with the same tag resumes (a learning curve's point).
    What a sweep varies, each part of the run's identity: `instruction` (one of the task's
    `instructions` to try, instead of its own), `chunk_tokens` (the rag arms search the corpus
    chunked at that size, `retrieval.index_root`), `rag_shots` ({"mode", "k"}: the rag arms get
    worked examples too, chosen as the few-shot arm's). `sweep` ("prompt", "rag") marks a run made
    for one configuration of a sweep (not part of its identity): `latest_run` passes over it, and
    a call without it (`lab eval`, a climb's step) that resumes the run clears the mark.
    `hide_own_example`: worked examples never include one whose input is the question's (a teacher
    labelling the training inputs would otherwise copy the gold answer: `lab distill`, whose tag
    keeps such runs apart).
    `tune_instruction="task"`: the tune arms answer with the task's instruction, not the one the
    adapter was trained with (an adapter measured on a task it was not trained for, beside the
    base model asked the same way: `side_effects`)."""
    task = load_task(task, home=lab.home)
    arms = ladder.check_arms(arms)
    check_task(task)
    if repeats < 1:
        raise EvalError(f"repeats must be at least 1 (got {repeats})")
    if few_shot_mode not in ("fixed", "similar"):
        raise EvalError(f"few_shot_mode must be 'fixed' or 'similar' (got {few_shot_mode!r})")
    k = task.few_shot_k if k is None else k
    constrain = task.constrain if constrain is None else bool(constrain)
    if constrain and not ladder.constraint_options(task):
        raise EvalError(f"task '{task.name}' is free text: there is no label set or schema to constrain to")
    corpus = ladder.task_corpus(lab, task) if set(arms) & ladder.RAG_ARMS else None  # fails early without one
    pool = ladder.few_shot_pool(task) if "few-shot" in arms else []
    if "few-shot" in arms and k > 0 and not pool:
        raise EvalError(f"task '{task.name}' has no few-shot pool (fewshot or train file) for the few-shot arm")
    if rag_shots and set(arms) & ladder.RAG_ARMS:
        pool = pool or ladder.few_shot_pool(task)
    fixed = ladder.fixed_shots(pool, k)
    if instruction is not None and instruction.strip() == (task.instruction or "").strip():
        instruction = None  # the task's own: the same run as without it
    if tune_instruction not in (None, "task"):
        raise EvalError(f"tune_instruction must be None or 'task' (got {tune_instruction!r})")
    variant = {
        "instruction": instruction,
        "chunk_tokens": chunk_tokens,
        "rag_shots": rag_shots,
        "tune_instruction": tune_instruction,
    }
    backend = lab.backend(model)  # loads the model once, up front
    info = backend.info
    workers = max(1, concurrency or lab.config.concurrency) if getattr(backend, "concurrent", False) else 1
    the_adapter = None
    if set(arms) & ladder.TUNE_ARMS:  # fails early if the adapter is missing or was trained on other weights
        served_as = info.extra.get("spec", info.id)  # a server is named by its whole spec
        the_adapter = ladder.resolve_adapter(lab, adapter or task.name, served_as)
    model_sha = lab.model_sha(info)
    identity = _identity(task, info.id, model_sha, repeats, few_shot_mode, k, rag_k, constrain, tag, variant)
    # the budget the answers get (raised to fit a label task's longest label): a run made under
    # another budget is not resumed, its answers were cut at another length
    identity["max_tokens"] = ladder.answer_budget(lab, task, model, constrain=constrain)
    adapter_rec = {"name": the_adapter.name, "sha": the_adapter.sha} if the_adapter else None
    run_id = _open_run(lab, task, arms, info.id, identity, adapter_rec, fresh, sweep)

    held_out = sampled(task, limit)
    if corpus:  # bring the index up to date with the documents (incremental: cheap when it is)
        from ..retrieval import loaded_index

        loaded_index(lab, corpus, progress=progress, chunk_tokens=chunk_tokens, update=True)
    done = done_keys(lab, run_id)
    todo = [(arm, r, ex) for arm in arms for r in range(repeats) for ex in held_out if (ex.id, arm, r) not in done]
    bar = _bar(len(todo), progress, task.name)

    def work(arm, repeat, ex):
        return _one(
            lab,
            task,
            arm,
            repeat,
            ex,
            run_id=run_id,
            model=model,
            repeats=repeats,
            shots=fixed if few_shot_mode == "fixed" else None,
            pool=pool,
            k=k,
            rag_k=rag_k,
            adapter=the_adapter,
            corpus=corpus,
            constrain=constrain,
            variant=variant,
            hide_own=hide_own_example,
        )

    def finished(row):  # the bar names the configuration: a prompt-rung sweep runs several
        bar.set_postfix_str(config_label(row["arm"], few_shot_mode, k, constrain), refresh=False)
        bar.update(1)
        if on_result:
            on_result(row)

    try:
        status = run_all(todo, work, finished, workers, cancel)
    except BaseException as e:  # Ctrl-C included: the rows written so far stay, a rerun resumes
        lab.store.set_eval_run_status(run_id, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    finally:
        bar.close()
    if status == "running":
        total = len(task.examples("eval")) * len(lab.store.eval_run_arms(run_id)) * repeats
        complete = len(done_keys(lab, run_id)) >= total
        status = "finished" if complete else "partial"
    lab.store.set_eval_run_status(run_id, status, finished=True)
    return run_id


def run_all(
    todo: list[tuple],
    work: Callable[..., dict],
    finished: Callable[[dict], None],
    workers: int,
    cancel: threading.Event | None,
) -> str:
    """`work(*item)` for every item, at most `workers` at once, `finished(row)` in this thread as
    each one ends (in the order they end). Stops taking new items once `cancel` is set
    ("cancelled") or an item fails (re-raised after the ones in flight have ended: their rows are
    written); returns "running" when every item was done."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    items = iter(todo)
    if workers <= 1:
        for item in items:
            if cancel is not None and cancel.is_set():
                return "cancelled"
            finished(work(*item))
        return "running"
    status, failure = "running", None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval") as executor:
        in_flight: set = set()
        while True:
            while failure is None and status == "running" and len(in_flight) < workers:
                if cancel is not None and cancel.is_set():
                    status = "cancelled"
                    break
                item = next(items, None)
                if item is None:
                    break
                in_flight.add(executor.submit(work, *item))
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:
                    failure = failure or future.exception()
                else:
                    finished(future.result())
    if failure is not None:
        raise failure
    return status


def _open_run(
    lab, task, arms: list[str], model_id: str, identity: dict, adapter_rec: dict | None, fresh: bool, sweep=None
) -> int:
    """The eval_runs row to write into: the matching run (resumed, with any new arms joining it),
    else a new one. Another adapter than the run's starts afresh: its rows would not compare."""
    task_hash = task.hash()
    run = None if fresh else find_run(lab, task.name, task_hash, model_id, identity)
    if run is not None and adapter_rec:
        old = json.loads(run["config_json"]).get("adapter")
        if old and old != adapter_rec:
            run = None  # another adapter: its tune rows would not be comparable, start afresh
    if run is None:
        config = {
            **identity,
            "adapter": adapter_rec,
            "model": model_id,
            "task_source": str(task.source) if task.source else None,
            **({"sweep": sweep} if sweep else {}),
        }
        run_id = lab.store.new_eval_run(task.name, task_hash, arms, model_id, config)
    else:
        run_id = run["id"]
        config = json.loads(run["config_json"])
        if adapter_rec:
            config["adapter"] = adapter_rec
        if not sweep:
            config.pop("sweep", None)  # asked for as an evaluation of its own: the task's latest again
        all_arms = ladder.check_arms(json.loads(run["arms_json"] or "[]") + arms)
        lab.store.resume_eval_run(run_id, all_arms, config)
    return run_id


def _one(
    lab,
    task,
    arm: str,
    repeat: int,
    ex,
    *,
    run_id: int,
    model: str | None,
    repeats: int,
    shots,
    pool,
    k: int,
    rag_k: int,
    adapter,
    corpus: str | None,
    constrain: bool = False,
    variant: dict | None = None,
    hide_own: bool = False,
) -> dict:
    """One (example, arm, repeat): generate, score, write the row. Worked examples go to the
    few-shot arm, and to the rag arms when the run gives them some (`variant["rag_shots"]`);
    `hide_own`: none whose input is this question's."""
    sampling = repeats > 1
    options = lab.options(
        max_tokens=task.max_tokens,
        temperature=SAMPLING_TEMPERATURE if sampling else 0.0,
        seed=1000 + repeat if sampling else 0,
    )
    extra: dict = {"seed": options.seed}
    variant = variant or {}
    if hide_own and pool:
        from ..task_import.infer import normalise

        own = normalise(ex.input)
        kept = [e for e in pool if normalise(e.input) != own]
        if len(kept) < len(pool):
            pool, shots = kept, (ladder.fixed_shots(kept, k) if shots is not None else None)
    rag_shots = variant.get("rag_shots") if arm in ladder.RAG_ARMS else None
    if rag_shots:
        n = rag_shots["k"]
        shots = (
            ladder.fixed_shots(pool, n)
            if rag_shots["mode"] == "fixed"
            else ladder.similar_shots(lab, pool, ex.input, n)
        )
    elif arm != "few-shot":
        shots = None
    elif shots is None:
        shots = ladder.similar_shots(lab, pool, ex.input, k)
    log = {"eval_run_id": run_id, "example_id": ex.id}
    system = variant.get("instruction")
    if system is None and arm in ladder.TUNE_ARMS and variant.get("tune_instruction") == "task":
        system = task.instruction or ""  # "": no system prompt, as the zero-shot arm has none then
    gen_id, error, passages = None, None, None
    try:
        ans = lab.answer(
            arm,
            ex.input,
            task=task,
            model=model,
            options=options,
            shots=shots,
            adapter=adapter,
            corpus=corpus,
            rag_k=rag_k,
            log=log,
            constrain=constrain,
            system=system,
            chunk_tokens=variant.get("chunk_tokens"),
        )
        output, gen_id, passages = ans.text, ans.row_id, ans.passages
        if constrain:  # what the backend actually enforced (transformers has no JSON-schema constraint)
            extra["constrained"] = bool(ans.generation.extra.get("constrained"))
        if ans.shots is not None:
            extra["k_used"] = ans.shots
    except ServerUnavailable:  # nothing was answered: stop the run (a rerun resumes), score nothing
        raise
    except BackendError as e:  # context too long, adapter failed to load...: a failed answer
        output, error = "", f"{type(e).__name__}: {e}"
    scores = score_example(task, ex, output, passages)
    if error:
        scores.update({"primary": 0.0, "format_valid": 0.0 if scores.get("format_valid") is not None else None})
    if passages is not None:
        extra["passages"] = [{"source": p.source, "chunk_id": p.chunk_id, "score": p.score} for p in passages]
    row = {
        "eval_run_id": run_id,
        "example_id": ex.id,
        "arm": arm,
        "repeat": repeat,
        "generation_id": gen_id,
        "scores_json": dumps(scores),
        "ts": now(),
        "error": error,
        "extra_json": dumps(extra),
    }
    lab.store.add_eval_result(row)  # the pk makes a duplicate a no-op
    return {**row, "scores": scores, "output": output}


def _bar(total: int, progress: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not progress, desc=f"eval {desc}", unit="ex", dynamic_ncols=True)
