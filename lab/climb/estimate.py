"""How long each step of a climb should take here: its answers (`evaluation.speed`) and, for tune,
its training (`tuning.plan`), counting only what the climb's runs have not done yet."""

from __future__ import annotations

from .decide import STEP_ARMS, STEPS, Situation


def eval_seconds(lab, task, arms, run_id: int | None, ids: list[str], model_id: str) -> tuple[float, str]:
    """Seconds to answer the examples of `arms` that run `run_id` has not scored yet."""
    from ..evaluation.runner import done_keys
    from ..evaluation.speed import AnswerSpeed

    done = done_keys(lab, run_id) if run_id else set()
    total, bases, speed = 0.0, set(), AnswerSpeed(lab, model_id)
    for arm in arms:
        todo = sum(1 for i in ids if (i, arm, 0) not in done)
        if todo:
            per, basis = speed.seconds(task, arm)
            total += todo * per
            bases.add(basis)
    return total, "; ".join(sorted(bases)) or "already evaluated"


def train_plan(lab, task, steps: int | None, model: str | None):
    """The climb's adapter, `<task>-climb`: the task's training set at this machine's defaults."""
    from ..tuning.plan import for_task

    return for_task(lab, task, "lab climb", name=f"{task.name}-climb", base_model=model, max_steps=steps)


def train_seconds(lab, plan) -> tuple[float, str]:
    from ..tuning.plan import estimate, trained_adapter

    if trained_adapter(lab, plan.config) is not None:
        return 0.0, "adapter already trained on this data and config"
    secs, basis = estimate(lab, plan)
    return secs, f"{plan.steps} training steps, {basis}"


def arms_through(step: str, has_corpus: bool) -> list[str]:
    """Every arm of the steps up to `step` (all go into one eval run, so they stay paired)."""
    arms = [a for s in STEPS[: STEPS.index(step) + 1] for a in STEP_ARMS[s]]
    return [a for a in arms if has_corpus or a not in ("rag", "tune+rag")]


def can_constrain(task) -> bool:
    from ..ladder import constraint_options

    return bool(constraint_options(task))


def estimates(
    lab, task, situation: Situation, run_id, ids, model_id, plan, *, limit=None, model=None
) -> dict[str, tuple[float, str]]:
    out = {}
    for step in STEPS:
        if step == "prompt":
            out[step] = (
                (0.0, "done") if step in situation.done else prompt_seconds(lab, task, ids, limit, model, model_id)
            )
            continue
        secs, basis = eval_seconds(
            lab,
            task,
            [a for a in STEP_ARMS[step] if situation.has_corpus or a not in ("rag", "tune+rag")],
            run_id,
            ids,
            model_id,
        )
        if step == "tune" and plan is not None:
            t_secs, t_basis = train_seconds(lab, plan)
            secs, basis = secs + t_secs, f"{t_basis}; answers from {basis}"
        if step == "rag" and situation.has_corpus and step not in situation.done:
            s_secs, s_basis = rag_sweep_seconds(lab, task, ids, model_id)
            secs, basis = secs + s_secs, f"{basis}; {s_basis}"
        out[step] = (secs, basis)
    return out


def rag_sweep_seconds(lab, task, ids: list[str], model_id: str) -> tuple[float, str]:
    """At most what the RAG sweep (`rag_rung`) adds to the rag arm's own run: its other
    configurations (k and chunk size, and rag with examples) on the race's slice, and about one
    more that answers every example (an upper bound: the retrieval check skips some unseen here)."""
    from ..evaluation.prompt_rung import race_slice
    from ..evaluation.rag_rung import DEFAULT_KS, RAG_K, SWEEP_SIZES

    full = eval_seconds(lab, task, ["rag"], None, ids, model_id)[0]
    others = len(set(DEFAULT_KS) | {RAG_K}) * SWEEP_SIZES  # the rag arm's own is in `full` already
    first = race_slice(len(ids))
    share = 1.0 if first is None else first / max(1, len(ids))
    secs = full * (others * share + (1.0 if first else 0.0))
    return secs, f"the RAG sweep: up to {others + 1} configurations" + (f", raced on {first} examples" if first else "")


def more_seconds(lab, task, step: str, s: Situation, run_id, limit: int, model, model_id) -> float:
    """Seconds to evaluate `step` on the first `limit` of the sample (what is done is reused)."""
    from ..evaluation.sample import held_out as sampled

    ids = [e.id for e in sampled(task, limit)]
    if step == "prompt":
        return prompt_seconds(lab, task, ids, limit, model, model_id)[0]
    arms = [a for a in arms_through(step, s.has_corpus)]
    return eval_seconds(lab, task, arms, run_id, ids, model_id)[0]


def prompt_seconds(lab, task, ids, limit, model, model_id) -> tuple[float, str]:
    """Seconds for the prompt step's configurations (`run._prompt_step`) still to answer. The constrained
    pass re-measures the best configuration: known once the others are all measured, until then
    the task's own few-shot stands in."""
    from ..evaluation.prompt_rung import best_prompt_config, config_of_run, prompt_plan
    from ..evaluation.runner import matching_run
    from ..evaluation.sample import held_out as sampled

    held_out = sampled(task, limit)
    plan = prompt_plan(lab, task, held_out, model)[0]
    total, bases, measured = 0.0, set(), []

    def add(arm, mode, k, constrain, instruction=None) -> None:
        nonlocal total
        run = matching_run(
            lab, task, model, few_shot_mode=mode, k=k or task.few_shot_k, constrain=constrain, instruction=instruction
        )
        secs, basis = eval_seconds(lab, task, [arm], run["id"] if run else None, ids, model_id)
        total += secs
        bases.add(basis)
        config = (
            config_of_run(lab, run["id"], arm, mode, k, constrain, ids, instruction, task) if run and not secs else None
        )
        if config is not None and config.score is not None:
            measured.append(config)

    for arm, mode, k, instruction in plan:
        add(arm, mode, k, task.constrain, instruction)
    if can_constrain(task) and not task.constrain:
        best = best_prompt_config(measured) if len(measured) == len(plan) and measured else None
        best_k = best.k if best else task.few_shot_k
        add("zero-shot", "fixed", 0, True)
        if best_k:
            add("few-shot", best.mode if best else "fixed", best_k, True)
    bases.discard("already evaluated")
    return total, f"{len(plan)} configurations; " + ("; ".join(sorted(bases)) or "already evaluated")
