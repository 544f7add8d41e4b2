"""`lab climb`: run the ladder in order (docs/guide.md) on a task's held-out set, one step at a time,
stopping where `decide.next_step` says, then ask the advisor.

Every step goes through the existing machinery: `evaluation.run_eval` (resumable, one row per
example, Ctrl-C safe) and `tuning.train` (checkpoints, resume). All steps write into one eval run
(the runner resumes the run whose settings match, and new arms join it), so the final scoreboard
pairs every rung on the same examples and the advisor reads it as it reads `lab eval`'s.
Rerunning `lab climb` with the same options continues the climb: finished evaluations are
skipped, and the climb's adapter (`<task>-climb`) is reused when its data, config and base model
still match, resumed from its checkpoint when training stopped halfway.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from . import record
from .decide import (
    RULE,
    STEP_ARMS,
    STEPS,
    ArmResult,
    Decision,
    Situation,
    best_of,
    judge,
    more_limit,
    next_step,
    step_of,
    teaches_text,
)
from .estimate import arms_through, can_constrain, estimates, more_seconds, train_plan
from .sweeps import prompt_step, rag_step, summary_of


class ClimbCancelled(Exception):
    """Cancel was pressed: the step in flight stopped at a safe point; a rerun continues."""


@dataclass
class ClimbResult:
    climb_id: int
    task: str
    status: str  # finished, cancelled
    eval_run_id: int | None
    path: list[dict]
    decision: dict
    recommendation: object | None  # advisor.Recommendation
    wall_s: float
    skipped: list[str] = field(default_factory=list)


# ---- the steps ---------------------------------------------------------------------------------


def _eval_step(lab, task, arms, *, limit, model, adapter, progress, cancel) -> int:
    from ..evaluation import run_eval

    return run_eval(lab, task, arms, limit=limit, model=model, adapter=adapter, progress=progress, cancel=cancel)


def _train_step(lab, plan, *, progress, cancel, say):
    """Train the climb's adapter in a job process (or reuse it); a checkpoint left by a stopped
    climb is continued."""
    from ..tuning.jobs import continue_or_train, step_line
    from ..tuning.plan import trained_adapter

    adapter = trained_adapter(lab, plan.config)
    if adapter is not None:
        say(f"  reusing adapter '{plan.config.name}': trained on the same data and config")
        return adapter
    every = max(1, plan.steps // 10)

    def on_step(row: dict) -> None:
        if progress and (row["step"] % every == 0 or row["step"] == row.get("total_steps")):
            say(f"  {step_line(row)}")

    return continue_or_train(lab, plan.config, on_step=on_step, cancel=cancel, say=lambda m: say(f"  {m}"))


# ---- the climb ---------------------------------------------------------------------------------


def resumed_run(lab, task, model) -> int | None:
    """The eval run the climb's evaluations will resume (the runner's own match, with its
    defaults), None if none yet."""
    from ..evaluation.runner import matching_run

    run = matching_run(lab, task, model)
    return run["id"] if run else None


def results_of(board) -> dict[str, ArmResult]:
    if board is None:
        return {}
    return {
        a.arm: ArmResult(a.arm, a.quality.mean, a.quality.lo, a.quality.hi, a.n, dict(a.failures)) for a in board.arms
    }


def climb(
    lab,
    task,
    *,
    target: float | None = None,
    up_to: str = "tune",
    budget_min: float | None = None,
    limit: int | None = None,
    train_steps: int | None = None,
    min_train: int = 200,
    model: str | None = None,
    progress: bool = True,
    cancel: threading.Event | None = None,
    say: Callable[[str], None] = print,
    on_event: Callable[[dict], None] | None = None,
    margin: float | None = None,
) -> ClimbResult:
    """Climb TASK's ladder; returns the path and the advisor's recommendation. `margin` (default: the
    task's) is how much worse a cheaper rung may be and still count as good as a costlier one.
    `on_event` gets {"event": "step" | "result" | "done", "climb_id": ..., and the event's data}.

    Raises KeyboardInterrupt on Ctrl-C (the climb is recorded as interrupted; a rerun continues)."""
    from ..evaluation.sample import held_out as sampled
    from ..tasks import load_task

    t0 = time.perf_counter()
    task = load_task(task, home=lab.home)
    target = task.target if target is None else float(target)
    # the scoreboard and the advice against --target and --margin (the measurements do not depend on them)
    judged = task.model_copy(update={"target": target, "margin": task.margin if margin is None else margin})
    info = lab.backend(model).info
    options = {
        "target": target,
        "up_to": up_to,
        "limit": limit,
        "train_steps": train_steps,
        "min_train": min_train,
        "model": info.id,
    }
    rec = record.open_climb(lab, task.name, info.id, options)
    held_out = task.examples("eval")
    ids = [e.id for e in sampled(task, limit)]
    s = Situation(
        task=task.name,
        target=target,
        output_format=task.output_format,
        has_corpus=bool(task.corpus),
        train_examples=len(task.examples("train")),
        eval_examples=len(held_out),
        limit=limit,
        up_to=up_to,
        min_train=min_train,
        teaches=task.teaches,
    )
    plan = train_plan(lab, task, train_steps, model) if task.train is not None else None
    run_id = rec.get("eval_run_id") or resumed_run(lab, task, model)
    wall_before = float(rec.get("wall_s") or 0.0)
    say(
        f"Climbing '{task.name}' on {info.id}: target {target:.2f} on {task.primary_metric}, "
        f"{len(ids)} of {len(held_out)} held-out examples"
        + (f", budget {budget_min:g} min" if budget_min is not None else "")
        + (f" (continuing climb #{rec['id']})" if rec.get("continued") else f" (climb #{rec['id']})")
        + "."
    )
    say(f"Rule: {RULE}.")
    say(f"{teaches_text(task.teaches, task.output_format)}.")

    def emit(event: str, **data):
        if on_event:
            on_event({"event": event, "climb_id": rec["id"], **data})

    def wall() -> float:
        return wall_before + time.perf_counter() - t0

    if budget_min is not None:  # the budget decides by the estimates: on a fresh home, time three answers first
        from ..evaluation.speed import AnswerSpeed

        AnswerSpeed(lab, info.id, probe=True).rates()
    extra: dict[str, ArmResult] = {}  # the prompt rung's configurations beyond the run's own arms
    try:
        while True:
            s.results = results_of(summary_of(lab, run_id, judged) if run_id else None) | extra
            est = estimates(lab, task, s, run_id, ids, info.id, plan, limit=limit, model=model)
            s.estimates = {k: v[0] for k, v in est.items()}
            if s.done and more_limit(s) is not None:  # what a 'maybe' would cost to settle
                s.estimates["more"] = more_seconds(lab, task, s.done[-1], s, run_id, more_limit(s), model, info.id)
            s.budget_left_s = None if budget_min is None else budget_min * 60 - (time.perf_counter() - t0)
            d = next_step(s)
            if rec["steps"] and s.done:
                rec["steps"][-1]["decision"] = {"outcome": d.outcome, "reason": d.reason}
            if d.action == "stop":
                break
            if d.action == "more":  # the same step again on more held-out examples (nested: none redone)
                limit = s.limit = d.limit
                ids = [e.id for e in sampled(task, limit)]
                s.done.pop()
                est[d.step] = (s.estimates["more"], "the added examples")
                say(f"\n{d.reason}")
            entry = _announce(lab, rec, d, s, est[d.step], say, emit)
            run_id, extra = _climb_step(
                lab,
                rec,
                entry,
                task,
                judged,
                d.step,
                s,
                plan,
                run_id,
                extra,
                wall,
                limit=limit,
                model=model,
                progress=progress,
                cancel=cancel,
                say=say,
            )
            emit("result", step=d.step, results=entry["results"], wall_s=entry["wall_s"])
    except (KeyboardInterrupt, ClimbCancelled, Exception) as e:
        status = {KeyboardInterrupt: "interrupted", ClimbCancelled: "cancelled"}.get(type(e), "failed")
        record.save(lab, rec, steps=rec["steps"], status=status, wall_s=wall())
        if isinstance(e, ClimbCancelled):
            say(f"\nCancelled: what finished is kept; run the climb again to continue (climb #{rec['id']}).")
            return ClimbResult(rec["id"], task.name, "cancelled", run_id, rec["steps"], {}, None, wall())
        raise
    return _finish(lab, rec, task, judged, run_id, s, d, wall(), say, emit)


def _announce(lab, rec, d: Decision, s: Situation, estimate: tuple[float, str], say, emit) -> dict:
    """Say what the next step does, why and how long it should take; record it as running."""
    n = len(s.done) + 1
    secs, basis = estimate
    step_arms = [a for a in STEP_ARMS[d.step] if s.has_corpus or a not in ("rag", "tune+rag")]
    what = "zero-shot and few-shot configurations" if d.step == "prompt" else ", ".join(step_arms)
    if d.step == "rag" and s.has_corpus:
        what += "; then rag's configurations: passages per question, chunk size, with examples"
    say(f"\nStep {n}: {d.step} ({what})\n  why: {d.reason}\n  expected: ~{_mins(secs)} ({basis})")
    for sk in d.skipped:
        say(f"  skipped: {sk}")
    emit("step", step=d.step, reason=d.reason, estimate_s=secs, n=n)
    earlier = next((x for x in rec["steps"] if x["step"] == d.step), {})  # a stopped attempt's time counts
    entry = {
        "step": d.step,
        "why": d.reason,
        "skipped": d.skipped,
        "status": "running",  # first estimate kept
        "estimate_s": earlier.get("estimate_s", secs),
        "estimate_basis": earlier.get("estimate_basis", basis),
        "wall_s": earlier.get("wall_s", 0.0),
    }
    record.save(lab, rec, steps=record.put_step(rec["steps"], entry))
    return entry


def _climb_step(
    lab, rec, entry, task, judged, step, s: Situation, plan, run_id, extra, wall, *, limit, model, progress, cancel, say
) -> tuple[int | None, dict]:
    """Run one step, record its time and results on `entry`; -> (eval run id, prompt configurations)."""
    t_step, wall_before = time.perf_counter(), entry["wall_s"]
    adapter_name = None
    try:
        new_run, adapter_name, new_extra = _run_step(
            lab, task, judged, step, s, plan, limit=limit, model=model, progress=progress, cancel=cancel, say=say
        )
        run_id = new_run or run_id  # None: cancelled inside training, before any evaluation
        extra = extra | new_extra
    finally:
        entry["wall_s"] = round(wall_before + time.perf_counter() - t_step, 1)
        record.save(
            lab,
            rec,
            steps=rec["steps"],
            eval_run_id=run_id,
            wall_s=wall(),
            **({"adapter": adapter_name} if adapter_name else {}),
        )
    if cancel is not None and cancel.is_set():
        entry["status"] = "cancelled"
        raise ClimbCancelled()
    s.results = results_of(summary_of(lab, run_id, judged)) | extra
    s.done.append(step)
    best = best_of(s, step)
    mine = {a: r for a, r in s.results.items() if step_of(r) == step}
    entry.update(
        status="done",
        results={a: asdict(r) for a, r in mine.items()},
        best=best.arm if best else None,
        verdict=judge(best, s.target) if best else None,
    )
    record.save(lab, rec, steps=rec["steps"])
    say(f"  result ({entry['wall_s']:.0f} s): " + ";\n    ".join(r.text() for r in mine.values()))
    return run_id, extra


def _run_step(lab, task, judged, step, s: Situation, plan, *, limit, model, progress, cancel, say):
    """One step: its evaluations (and, for tune, the training first).
    -> (eval run id, adapter name, the prompt rung's other configurations)."""
    adapter = None
    if step == "prompt":
        run_id, extra = prompt_step(
            lab, task, judged, limit=limit, model=model, progress=progress, cancel=cancel, say=say
        )
        return run_id, None, extra
    if step == "tune":
        from ..tuning import TrainingInterrupted

        try:
            adapter = _train_step(lab, plan, progress=progress, cancel=cancel, say=say).name
        except TrainingInterrupted as e:
            if cancel is not None and cancel.is_set():
                say(f"  {e}")
                return None, plan.config.name, {}  # cancelled: the checkpoint is kept, a rerun resumes it
            raise KeyboardInterrupt from e  # Ctrl-C / SIGTERM in the trainer
    arms = [a for a in arms_through(step, s.has_corpus)]
    run_id = _eval_step(lab, task, arms, limit=limit, model=model, adapter=adapter, progress=progress, cancel=cancel)
    if step == "rag" and s.has_corpus and not (cancel is not None and cancel.is_set()):
        extra = rag_step(lab, task, judged, run_id, limit=limit, model=model, progress=progress, cancel=cancel, say=say)
        return run_id, adapter, extra
    return run_id, adapter, {}


def _finish(lab, rec, task, judged, run_id, s: Situation, d: Decision, wall_s, say, emit) -> ClimbResult:
    from ..advisor import recommend_for_run

    say(f"\nStop: {d.reason}")
    for sk in d.skipped:
        say(f"  skipped: {sk}")
    recommendation = None
    if run_id:  # the advisor judges tuning against the prompt rung's best measured configuration
        # the advisor names the prompt rung by its best measured configuration, judged as the best of N
        recommendation = recommend_for_run(lab, summary_of(lab, run_id, judged))
    decision = d.as_dict()
    record.save(
        lab,
        rec,
        steps=rec["steps"],
        decision=decision,
        status="finished",
        wall_s=wall_s,
        recommendation=recommendation.as_dict() if recommendation else None,
        finished_ts=_now(),
    )
    emit("done", decision=decision)
    return ClimbResult(
        rec["id"], task.name, "finished", run_id, rec["steps"], decision, recommendation, wall_s, skipped=d.skipped
    )


def path_text(result_or_climb) -> str:
    """The climb as a path, one line per rung: rung, result, decision."""
    steps = result_or_climb.path if isinstance(result_or_climb, ClimbResult) else result_or_climb["steps"]
    lines = []
    for i, st in enumerate(steps, 1):
        res = st.get("results") or {}
        if len(res) > 2 and st.get("best") in res:  # a sweep (prompt, RAG): its best of many configurations
            shown = f"{ArmResult(**res[st['best']]).text()}, the best of {len(res)} configurations"
        else:
            shown = "; ".join(ArmResult(**r).text() for r in res.values()) or st.get("status", "")
        after = (st.get("decision") or {}).get("outcome", "")
        lines.append(f"{i}. {st['step']:<6} {shown}  [{st.get('wall_s', 0):.0f} s] -> {after or '...'}")
    return "\n".join(lines)


def _mins(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _now() -> str:
    from ..store import now

    return now()


def plan_text(
    lab,
    task,
    *,
    target: float | None = None,
    up_to: str = "tune",
    limit: int | None = None,
    train_steps: int | None = None,
    min_train: int = 200,
    model: str | None = None,
) -> str:
    """What a climb would do and how long each step is expected to take here, before it runs
    (the app shows it beside the Climb button). Loads the model (its id and sha name the run)."""
    from ..evaluation.sample import held_out as sampled
    from ..task_import import instructions_note
    from ..tasks import load_task

    task = load_task(task, home=lab.home)
    info = lab.backend(model).info
    options = {
        "target": task.target if target is None else float(target),
        "up_to": up_to,
        "limit": limit,
        "train_steps": train_steps,
        "min_train": min_train,
        "model": info.id,
    }
    last = lab.store.latest_climb(task.name, options_json=json.dumps(options, sort_keys=True))
    run_id = (last["eval_run_id"] if last else None) or resumed_run(lab, task, model)
    held_out = task.examples("eval")
    ids = [e.id for e in sampled(task, limit)]
    n_train = len(task.examples("train"))
    s = Situation(
        task=task.name,
        target=options["target"],
        output_format=task.output_format,
        has_corpus=bool(task.corpus),
        train_examples=n_train,
        eval_examples=len(held_out),
        teaches=task.teaches,
    )
    plan = train_plan(lab, task, train_steps, model) if task.train is not None else None
    est = estimates(lab, task, s, run_id, ids, info.id, plan, limit=limit, model=model)
    when = {
        "prompt": "always first: zero-shot, few-shot at several k with fixed and similar examples"
        + (f", each with the task's {len(task.instructions) + 1} instructions" if task.instructions else "")
        + (", the best also constrained" if can_constrain(task) and not task.constrain else "")
        + (f" ({instructions_note(task)})" if instructions_note(task) else ""),
        "rag": "if the prompt rung misses"
        + (
            ": rag at 2, 4 and 8 passages, three chunk sizes and with the best few-shot examples, raced"
            if task.corpus
            else ": skipped, the task has no corpus"
        ),
        "tune": (
            "skipped: task.toml declares the task teaches knowledge, and fine-tuning does not add facts"
            if task.teaches == "knowledge"
            else "if the rungs below miss on behaviour"
            + (" (declared in task.toml)" if task.teaches else "/format")
            + f" ({n_train} training examples"
            + (", enough)" if n_train >= min_train else f", fewer than {min_train}: it would stop)")
        ),
    }
    lines = [
        f"Climb '{task.name}' on {info.id}: target {options['target']:.2f} on {task.primary_metric}, "
        f"{len(ids)} held-out examples, up to {up_to}.",
        f"Rule: {RULE}.",
        teaches_text(task.teaches, task.output_format) + ".",
    ]
    for step in STEPS[: STEPS.index(up_to) + 1]:
        secs, basis = est[step]
        skipped = (step == "rag" and not task.corpus) or (step == "tune" and task.teaches == "knowledge")
        lines.append(f"- {step}: {when[step]}" + ("" if skipped else f"; ~{_mins(secs)} ({basis})"))
    return "\n".join(lines)
