"""Running a learning curve (`lab curve`, the Advisor tab): the few-shot arm at each k and one
adapter per size and seed, each evaluated through the runner, on one loaded base model.

Resumable at every level: each point is an eval run tagged "curve:k4" or "curve:TASK-n100s0"
(the runner resumes a tagged run and never mixes it with others), a finished adapter whose
manifest matches the settings and subset is not trained again, an interrupted one continues
from its checkpoint. The `curves` row holds the settings and the progress the app polls;
`load_curve` rebuilds the numbers from the eval runs, so a rerun never double counts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import ladder
from ..store import now
from ..tasks import load_task
from .curve import Curve, CurveError, CurveSettings, Scores, adapter_name, build_curve, parse_ks, parse_sizes, subset
from .runner import IDENTITY_DEFAULTS, run_eval
from .sample import SAMPLE, held_out, nested_order
from .scorers import CONTINUOUS, primary_name

TAG = "curve:"


class CurveInterrupted(Exception):
    """Stopped (Ctrl-C, Cancel): what is finished is kept; running the same curve again resumes."""


@dataclass
class PlannedPoint:
    arm: str  # "few-shot" or "tune"
    x: int  # k or n
    seed: int = 0

    def tag(self, task: str, constrain: bool = False) -> str:
        return (
            TAG
            + (f"k{self.x}" if self.arm == "few-shot" else adapter_name(task, self.x, self.seed))
            + ("+constrained" if constrain else "")
        )

    def describe(self, task: str) -> str:
        return (
            f"few-shot k = {self.x}"
            if self.arm == "few-shot"
            else f"tune n = {self.x} (seed {self.seed}, adapter {adapter_name(task, self.x, self.seed)})"
        )


def plan_settings(
    task,
    sizes: str,
    ks: str,
    seeds: int = 1,
    limit: int | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    constrain: bool | None = None,
    **train,
) -> tuple[CurveSettings, list[str]]:
    """The settings from the options as typed, with notes on what was capped. `constrain`
    (default: the task's) holds every point's answers to the task's labels or schema."""
    n_train = len(task.examples("train"))
    if not n_train:
        raise CurveError(f"task '{task.name}' has no training set: a curve needs examples to train on")
    pool = len(ladder.few_shot_pool(task))
    size_list, notes = parse_sizes(sizes, n_train)
    k_list, k_notes = parse_ks(ks, pool)
    values = {
        "sizes": size_list,
        "ks": k_list,
        "seeds": seeds,
        "limit": limit,
        "max_steps": max_steps,
        "train": {k: v for k, v in train.items() if v is not None},
        "constrain": task.constrain if constrain is None else bool(constrain),
    }
    if epochs is not None:
        values["epochs"] = epochs
    return CurveSettings.model_validate(values), notes + k_notes


def points(settings: CurveSettings) -> list[PlannedPoint]:
    """Few-shot first (cheap, and it shows the bar to beat), then each seed's sizes, smallest first."""
    return [PlannedPoint("few-shot", k) for k in settings.ks] + [
        PlannedPoint("tune", n, s) for s in range(settings.seeds) for n in settings.sizes
    ]


def model_id_of(lab) -> str:
    """The default model's id, as the runner logs it (a model no file backs, a test's fake, as named)."""
    from ..models import ModelNotFound

    try:
        return lab.model_info().id
    except ModelNotFound:
        return lab.config.default_model


# ---- training data and configs ------------------------------------------------------------------


def subset_path(lab, task, n: int, seed: int) -> Path:
    return lab.home.state / "curves" / task.name / f"train-n{n}s{seed}.jsonl"


def write_subsets(lab, task, settings: CurveSettings) -> None:
    """Each seed's nested subsets as {"input", "output"} JSONL (rewritten only when different)."""
    examples = task.examples("train")
    for seed in range(settings.seeds):
        order = nested_order([e.output for e in examples], seed, stratify=task.output_format == "label")
        for n in settings.sizes:
            path = subset_path(lab, task, n, seed)
            text = "".join(
                json.dumps({"input": examples[i].input, "output": examples[i].output}, ensure_ascii=False) + "\n"
                for i in subset(order, n)
            )
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")


def train_plan(lab, task, settings: CurveSettings, n: int, seed: int):
    """lab train's settings for this machine, the curve's epochs, no validation split (n means
    n examples trained on), the cap when it bites."""
    from ..tuning.plan import make_plan, with_max_steps

    values = {
        "base_model": lab.config.default_model,
        "instruction": task.instruction or None,
        "epochs": settings.epochs,
        **settings.train,
        "name": adapter_name(task.name, n, seed),
        "data": str(subset_path(lab, task, n, seed)),
        "seed": seed,
        "val_fraction": 0.0,
        "force": True,
    }
    return with_max_steps(make_plan(lab, "lab curve", **values), settings.max_steps)


def step_counts(lab, task, settings: CurveSettings) -> dict[int, tuple[int, bool]]:
    """Per size: the optimizer steps one adapter gets, and whether --max-steps capped them."""
    plans = {n: train_plan(lab, task, settings, n, 0) for n in settings.sizes}
    return {n: (plan.steps, plan.capped) for n, plan in plans.items()}


def _train(lab, cfg, cancel: threading.Event | None, progress: bool, say: Callable[[str], None]) -> None:
    """Train (or continue) one adapter in a job process; Cancel stops it at the next step
    boundary with a checkpoint."""
    from ..tuning.jobs import continue_or_train

    continue_or_train(lab, cfg, cancel=cancel, say=say if progress else None)


# ---- the run ------------------------------------------------------------------------------------


def open_curve(lab, task, settings: CurveSettings, estimate_s: float | None = None) -> int:
    """The curves row for these settings (resumed), else a new one."""
    model_id = model_id_of(lab)
    settings_json = json.dumps(settings.model_dump(), sort_keys=True)
    return lab.store.open_curve(task.name, task.hash(), model_id, settings_json, estimate_s)


def run_curve(
    lab,
    task,
    settings: CurveSettings,
    *,
    progress: bool = True,
    cancel: threading.Event | None = None,
    say: Callable[[str], None] = print,
    estimate_s: float | None = None,
) -> int:
    """Run (or resume) the curve; returns its id. Raises CurveInterrupted on Ctrl-C or `cancel`."""
    task = load_task(task, home=lab.home)
    write_subsets(lab, task, settings)
    curve_id = open_curve(lab, task, settings, estimate_s)
    plan = points(settings)
    wall_before = lab.store.curve(curve_id)["wall_s"] or 0.0
    t0, at = time.perf_counter(), [0]  # the step in flight, for the message when it stops

    def note(i: int, doing: str, status: str = "running") -> None:
        at[0] = i
        lab.store.update_curve(
            curve_id,
            {
                "status": status,
                "wall_s": wall_before + time.perf_counter() - t0,
                "progress_json": json.dumps({"done": i, "total": len(plan), "doing": doing}),
            },
        )

    from ..tuning.trainer import sigterm_as_interrupt  # SIGTERM (kill, a scheduler) stops like Ctrl-C

    try:
        with sigterm_as_interrupt():
            _run_steps(lab, task, settings, plan, cancel, progress, say, note)
    except BaseException as e:
        from ..tuning.run import TrainingInterrupted

        stopped = isinstance(e, (KeyboardInterrupt, TrainingInterrupted, CurveInterrupted))
        i = at[0]
        note(i, "stopped" if stopped else f"failed: {e}", "interrupted" if stopped else "failed")
        if stopped:
            raise CurveInterrupted(
                f"curve of '{task.name}' stopped at step {i + 1} of {len(plan)}: what is "
                "finished is kept; run the same command again to resume"
            ) from None
        lab.store.update_curve(curve_id, {"error": f"{type(e).__name__}: {e}"})
        raise
    note(len(plan), "done", "finished")
    lab.store.update_curve(curve_id, {"finished_ts": now()})
    return curve_id


def _run_steps(lab, task, settings: CurveSettings, plan: list[PlannedPoint], cancel, progress: bool, say, note) -> None:
    from ..tuning.plan import trained_adapter

    for i, step in enumerate(plan):
        if cancel is not None and cancel.is_set():
            raise CurveInterrupted
        note(i, step.describe(task.name))
        say(f"[{i + 1}/{len(plan)}] {step.describe(task.name)}")
        adapter = None
        if step.arm == "tune":
            cfg = train_plan(lab, task, settings, step.x, step.seed).config
            if trained_adapter(lab, cfg) is None:
                _train(lab, cfg, cancel, progress, say)
            adapter = cfg.name
        run_eval(
            lab,
            task,
            [step.arm],
            limit=settings.limit,
            k=step.x if step.arm == "few-shot" else None,
            adapter=adapter,
            tag=step.tag(task.name, settings.constrain),
            constrain=settings.constrain,
            progress=progress,
            cancel=cancel,
        )
    if cancel is not None and cancel.is_set():
        raise CurveInterrupted


# ---- reading a curve back -----------------------------------------------------------------------


def tagged_run(lab, task, model_id: str, tag: str) -> dict | None:
    """The point's newest run whose examples were chosen as `held_out` chooses them: a point
    measured on the first N rows (before sampling; no "sample" key) is not read as this one."""
    return lab.store.latest_tagged_eval_run(task.name, task.hash(), model_id, tag, SAMPLE, IDENTITY_DEFAULTS["sample"])


def point_scores(lab, run_id: int, arm: str, ids: list[str]) -> tuple[Scores, int | None]:
    """{example id: primary score} of one point (repeat 0, the held-out ids asked), and the
    fewest few-shot examples that fitted the context (None: not recorded)."""
    wanted = set(ids)
    scores, used = {}, []
    for r in lab.store.eval_scores(run_id, arm, repeat=0):
        if r["example_id"] in wanted:
            scores[r["example_id"]] = json.loads(r["scores_json"] or "{}").get("primary")
            k_used = json.loads(r["extra_json"] or "{}").get("k_used")
            if k_used is not None:
                used.append(k_used)
    return scores, (min(used) if used else None)


def load_curve(lab, curve_id: int) -> Curve:
    row = lab.store.curve(curve_id)
    if not row:
        raise CurveError(f"no curve {curve_id} in {lab.store.path}")
    settings = CurveSettings.model_validate(json.loads(row["settings_json"]))
    task = load_task(row["task"], home=lab.home)
    ids = [e.id for e in held_out(task, settings.limit)]
    few, k_used, tuned = {}, {}, {}
    complete = True
    for step in points(settings):
        run = tagged_run(lab, task, row["model_id"], step.tag(task.name, settings.constrain))
        scores, used = point_scores(lab, run["id"], step.arm, ids) if run else ({}, None)
        complete = complete and len(scores) == len(ids)
        if not scores:
            continue
        if step.arm == "few-shot":
            few[step.x], k_used[step.x] = scores, used
        else:
            tuned.setdefault(step.x, []).append(scores)
    metric = primary_name(task)
    return build_curve(
        task.name,
        metric,
        task.target,
        len(task.examples("train")),
        few,
        tuned,
        graded_metric=metric in CONTINUOUS,
        k_used=k_used,
        seeds=settings.seeds,
        settings=settings.model_dump(),
        curve_id=curve_id,
        status=row["status"],
        complete=complete,
    )


def latest_curve(lab, task_name: str) -> Curve | None:
    """The task's newest curve with at least one measured point, or None."""
    for curve_id in lab.store.recent_curve_ids(task_name, 5):
        try:
            curve = load_curve(lab, curve_id)
        except Exception:  # a task edited or removed since: no curve to speak from
            continue
        if curve.few_shot or curve.tuned:
            return curve
    return None


def curve_progress(lab, curve_id: int) -> dict:
    row = lab.store.curve(curve_id)
    if not row:
        return {}
    return {
        **json.loads(row["progress_json"] or "{}"),
        "status": row["status"],
        "wall_s": row["wall_s"],
        "estimate_s": row["estimate_s"],
    }


# ---- how long it will take here -----------------------------------------------------------------


def estimate(lab, task, settings: CurveSettings) -> tuple[float, str]:
    """Seconds the rest of the curve should take here, and on what basis: lab.tuning.jobs'
    training estimate for each adapter still to train, the logged answer times for each
    held-out example still to score."""
    from ..tuning.plan import estimate as estimate_training
    from ..tuning.plan import trained_adapter
    from .speed import AnswerSpeed

    task = load_task(task, home=lab.home)
    write_subsets(lab, task, settings)
    n_ids = len(held_out(task, settings.limit))
    model_id = model_id_of(lab)
    train_s, answers, basis = 0.0, {"few-shot": 0, "tune": 0}, ""
    for step in points(settings):
        run, fresh = None, True
        if step.arm == "tune":
            plan = train_plan(lab, task, settings, step.x, step.seed)
            if trained_adapter(lab, plan.config) is None:
                secs, basis = estimate_training(lab, plan)
                train_s += secs
                fresh = False  # a new adapter starts a new eval run
        if fresh:
            run = tagged_run(lab, task, model_id, step.tag(task.name, settings.constrain))
        done = lab.store.eval_result_count(run["id"]) if run else 0
        answers[step.arm] += max(0, n_ids - done)
    speed = AnswerSpeed(lab, model_id)
    gen_s = {arm: speed.seconds(task, arm) for arm in answers}
    total = train_s + sum(answers[a] * gen_s[a][0] for a in answers)
    text = (
        f"training {train_s / 60:.1f} min ({basis or 'nothing left to train'}); "
        f"{answers['few-shot'] + answers['tune']} answers at "
        + ", ".join(f"{gen_s[a][0]:.2f} s ({a}: {gen_s[a][1]})" for a in answers)
    )
    return total, text
