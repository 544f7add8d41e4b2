"""The climb's sweeps: the prompt rung and the RAG rung measured at their best (`prompt_rung`,
`rag_rung`), each configuration beyond the climb run's own arms returned as an `ArmResult` keyed
by its label, with the ladder arm it uses, so `decide.best_of` picks among them and counts them
all as candidates (`verdict.family`)."""

from __future__ import annotations

from .decide import ArmResult
from .estimate import can_constrain


def prompt_step(lab, task, judged, *, limit, model, progress, cancel, say) -> tuple[int, dict[str, ArmResult]]:
    """The prompt rung at its best (`prompt_rung.measure_prompt_rung`): zero-shot, and few-shot
    with fixed and with similar examples at several k; then, for a task with labels or a schema
    that does not constrain already, the best of them and zero-shot once more with constrained
    output. Returns the run the later rungs join (zero-shot and few-shot at the task's k, fixed)
    and every other configuration's result, keyed by its label."""
    from ..evaluation.prompt_rung import best_prompt_config, measure_prompt_rung
    from ..evaluation.stats import proportion_interval

    def note(text: str) -> None:
        say(f"  {text}")

    common = dict(limit=limit, model=model, progress=progress, cancel=cancel, on_note=note)
    configs = measure_prompt_rung(lab, task, **common)
    cancelled = cancel is not None and cancel.is_set()
    if not configs:
        return None, {}  # cancelled before the first configuration
    main_run = configs[0].eval_run_id  # zero-shot: the run `lab eval TASK` makes by default
    if can_constrain(task) and not task.constrain and not cancelled and any(c.score is not None for c in configs):
        best = best_prompt_config(configs)
        say(f"  best so far: {best.label()} ({best.score:.3f}); measuring it with constrained output")
        configs += measure_prompt_rung(
            lab,
            task,
            constrain=True,
            ks=[best.k] if best.k else [],
            modes=[best.mode],
            instructions=[best.instruction],
            **common,
        )
    extra = {}
    for c in configs:
        if c.eval_run_id == main_run and not c.constrain:
            continue  # on the main run's scoreboard already
        board_arm = summary_of(lab, c.eval_run_id, judged).arm(c.arm)
        if board_arm is not None:
            # the configuration's own score on the climb's examples (its run may hold more of them)
            lo, hi = proportion_interval(c.score, c.n) if c.score is not None else (None, None)
            extra[c.label()] = ArmResult(
                c.label(), c.score, lo, hi, c.n, dict(board_arm.failures), dropped=c.dropped, ladder_arm=c.arm
            )
    return main_run, extra


def summary_of(lab, run_id: int, judged):
    from ..evaluation.summary import summarize

    return summarize(lab, run_id, task=judged)


def rag_step(lab, task, judged, run_id: int, *, limit, model, progress, cancel, say) -> dict[str, ArmResult]:
    """The RAG rung at its best (`rag_rung.measure_rag_rung`) after the climb run's own rag arm
    (4 passages on the corpus's own index, one of the sweep's configurations): passages per
    question, chunk size, and rag with the prompt rung's best few-shot examples (measured in the
    step before: `rag_rung.best_measured_shots`). Returns every
    other configuration answered, keyed by its label."""
    from ..evaluation.rag_rung import measure_rag_rung
    from ..evaluation.stats import proportion_interval

    configs = measure_rag_rung(
        lab, task, limit=limit, model=model, progress=progress, cancel=cancel, on_note=lambda text: say(f"  {text}")
    )
    extra = {}
    for c in configs:
        if c.eval_run_id in (None, run_id) or c.score is None or c.skipped:
            continue  # skipped, or the climb run's own rag arm (on its scoreboard already)
        board_arm = summary_of(lab, c.eval_run_id, judged).arm("rag")
        lo, hi = proportion_interval(c.score, c.n)
        failures = dict(board_arm.failures) if board_arm is not None else {}
        extra[c.label()] = ArmResult(c.label(), c.score, lo, hi, c.n, failures, dropped=c.dropped, ladder_arm="rag")
    return extra
