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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import ladder
from ..store import now
from ..tasks import load_task
from .curve import (Curve, CurveError, CurveSettings, Scores, adapter_name, build_curve, parse_ks,
                    parse_sizes, steps_for, subset)
from .runner import IDENTITY_DEFAULTS, run_eval
from .sample import SAMPLE, held_out, nested_order
from .scorers import CONTINUOUS, primary_name

TAG = "curve:"
DEFAULT_GEN_S = 1.0  # seconds per answer before this lab has logged any
NOT_SETTINGS = {"threads", "eval_every", "save_every"}  # how a run was watched, not what it learned


class CurveInterrupted(Exception):
    """Stopped (Ctrl-C, Cancel): what is finished is kept; running the same curve again resumes."""


@dataclass
class Step:
    arm: str  # "few-shot" or "tune"
    x: int  # k or n
    seed: int = 0

    def tag(self, task: str, constrain: bool = False) -> str:
        return (TAG + (f"k{self.x}" if self.arm == "few-shot" else adapter_name(task, self.x, self.seed))
                + ("+constrained" if constrain else ""))

    def describe(self, task: str) -> str:
        return (f"few-shot k = {self.x}" if self.arm == "few-shot"
                else f"tune n = {self.x} (seed {self.seed}, adapter {adapter_name(task, self.x, self.seed)})")


def plan_settings(task, sizes: str, ks: str, seeds: int = 1, limit: int | None = None, epochs: float | None = None,
                  max_steps: int | None = None, constrain: bool | None = None,
                  **train) -> tuple[CurveSettings, list[str]]:
    """The settings from the options as typed, with notes on what was capped. `constrain`
    (default: the task's) holds every point's answers to the task's labels or schema."""
    n_train = len(task.examples("train"))
    if not n_train:
        raise CurveError(f"task '{task.name}' has no training set: a curve needs examples to train on")
    pool = len(ladder.few_shot_pool(task))
    size_list, notes = parse_sizes(sizes, n_train)
    k_list, k_notes = parse_ks(ks, pool)
    values = {"sizes": size_list, "ks": k_list, "seeds": seeds, "limit": limit, "max_steps": max_steps,
              "train": {k: v for k, v in train.items() if v is not None},
              "constrain": task.constrain if constrain is None else bool(constrain)}
    if epochs is not None:
        values["epochs"] = epochs
    return CurveSettings.model_validate(values), notes + k_notes


def steps(settings: CurveSettings) -> list[Step]:
    """Few-shot first (cheap, and it shows the bar to beat), then each seed's sizes, smallest first."""
    return ([Step("few-shot", k) for k in settings.ks]
            + [Step("tune", n, s) for s in range(settings.seeds) for n in settings.sizes])


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
            text = "".join(json.dumps({"input": examples[i].input, "output": examples[i].output},
                                      ensure_ascii=False) + "\n" for i in subset(order, n))
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")


def train_config(lab, task, settings: CurveSettings, n: int, seed: int):
    """lab train's settings for this machine, the curve's epochs, no validation split (n means
    n examples trained on), the cap when it bites."""
    from ..tuning.config import make_config

    values = {"base_model": lab.config.default_model, "instruction": task.instruction or None,
              "epochs": settings.epochs, **settings.train, "name": adapter_name(task.name, n, seed),
              "data": str(subset_path(lab, task, n, seed)), "seed": seed, "val_fraction": 0.0, "force": True}
    cfg = make_config("lab curve", device="auto", **values)
    if settings.max_steps and steps_for(n, cfg.epochs, cfg.batch_size, cfg.grad_accum) > settings.max_steps:
        cfg = cfg.model_copy(update={"max_steps": settings.max_steps})
    return cfg


def step_counts(lab, task, settings: CurveSettings) -> dict[int, tuple[int, bool]]:
    """Per size: the optimizer steps one adapter gets, and whether --max-steps capped them."""
    out = {}
    for n in settings.sizes:
        cfg = train_config(lab, task, settings, n, 0)
        full = steps_for(n, cfg.epochs, cfg.batch_size, cfg.grad_accum)
        out[n] = (cfg.max_steps or full, cfg.max_steps is not None and cfg.max_steps < full)
    return out


def finished_adapter(lab, cfg) -> bool:
    """An adapter of this name trained with these very settings on this very subset."""
    from ..models import sha256_of
    from ..tuning.adapters import AdapterError, find_adapter

    try:
        adapter = find_adapter(lab.home.adapters, cfg.name)
    except (AdapterError, KeyError, OSError):
        return False
    same = {k: v for k, v in (adapter.manifest.get("config") or {}).items() if k not in NOT_SETTINGS}
    want = {k: v for k, v in cfg.to_json().items() if k not in NOT_SETTINGS}
    return same == want and adapter.manifest.get("dataset", {}).get("sha256") == sha256_of(Path(cfg.data))


def _train(lab, cfg, cancel: threading.Event | None, progress: bool, say: Callable[[str], None]) -> None:
    """Train (or continue) one adapter; Cancel stops it at the next step boundary with a checkpoint."""
    from ..tuning.checkpoint import comparable_config, find_checkpoint
    from ..tuning.train import train

    ckpt = find_checkpoint(lab, cfg.name)
    resume = False
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        resume = comparable_config(state["config"]) == comparable_config(cfg.to_json())

    def on_step(row: dict) -> None:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt  # train() checkpoints the step just finished and stops

    train(cfg, lab, progress=progress, on_step=on_step, resume=resume, restart=ckpt is not None and not resume,
          overwrite=True, log=say)


# ---- the run ------------------------------------------------------------------------------------

def open_curve(lab, task, settings: CurveSettings, estimate_s: float | None = None) -> int:
    """The curves row for these settings (resumed), else a new one."""
    model_id = model_id_of(lab)
    settings_json = json.dumps(settings.model_dump(), sort_keys=True)
    rows = lab.store.query("select id from curves where task = ? and task_hash = ? and model_id = ? and "
                           "settings_json = ? order by id desc limit 1",
                           [task.name, task.hash(), model_id, settings_json])
    if rows:
        lab.store.update("curves", rows[0]["id"], {"status": "running", "error": None})
        return rows[0]["id"]
    return lab.store.insert("curves", {"ts": now(), "task": task.name, "task_hash": task.hash(),
                                       "model_id": model_id, "settings_json": settings_json, "status": "running",
                                       "estimate_s": estimate_s, "wall_s": 0.0})


def run_curve(lab, task, settings: CurveSettings, *, progress: bool = True, cancel: threading.Event | None = None,
              say: Callable[[str], None] = print, estimate_s: float | None = None) -> int:
    """Run (or resume) the curve; returns its id. Raises CurveInterrupted on Ctrl-C or `cancel`."""
    task = load_task(task, home=lab.home)
    write_subsets(lab, task, settings)
    curve_id = open_curve(lab, task, settings, estimate_s)
    plan = steps(settings)
    wall_before = lab.store.query("select wall_s from curves where id = ?", [curve_id])[0]["wall_s"] or 0.0
    t0, at = time.perf_counter(), [0]  # the step in flight, for the message when it stops

    def note(i: int, doing: str, status: str = "running") -> None:
        at[0] = i
        lab.store.update("curves", curve_id, {"status": status, "wall_s": wall_before + time.perf_counter() - t0,
                                              "progress_json": json.dumps({"done": i, "total": len(plan),
                                                                           "doing": doing})})

    from ..tuning.train import sigterm_as_interrupt  # SIGTERM (kill, a scheduler) stops like Ctrl-C

    try:
        with sigterm_as_interrupt():
            _run_steps(lab, task, settings, plan, cancel, progress, say, note)
    except BaseException as e:
        from ..tuning.run import TrainingInterrupted

        stopped = isinstance(e, (KeyboardInterrupt, TrainingInterrupted, CurveInterrupted))
        i = at[0]
        note(i, "stopped" if stopped else f"failed: {e}", "interrupted" if stopped else "failed")
        if stopped:
            raise CurveInterrupted(f"curve of '{task.name}' stopped at step {i + 1} of {len(plan)}: what is "
                                   "finished is kept; run the same command again to resume") from None
        lab.store.update("curves", curve_id, {"error": f"{type(e).__name__}: {e}"})
        raise
    note(len(plan), "done", "finished")
    lab.store.update("curves", curve_id, {"finished_ts": now()})
    return curve_id


def _run_steps(lab, task, settings: CurveSettings, plan: list[Step], cancel, progress: bool, say, note) -> None:
    for i, step in enumerate(plan):
        if cancel is not None and cancel.is_set():
            raise CurveInterrupted
        note(i, step.describe(task.name))
        say(f"[{i + 1}/{len(plan)}] {step.describe(task.name)}")
        adapter = None
        if step.arm == "tune":
            cfg = train_config(lab, task, settings, step.x, step.seed)
            if not finished_adapter(lab, cfg):
                _train(lab, cfg, cancel, progress, say)
            adapter = cfg.name
        run_eval(lab, task, [step.arm], limit=settings.limit, k=step.x if step.arm == "few-shot" else None,
                 adapter=adapter, tag=step.tag(task.name, settings.constrain), constrain=settings.constrain,
                 progress=progress, cancel=cancel)
    if cancel is not None and cancel.is_set():
        raise CurveInterrupted


# ---- reading a curve back -----------------------------------------------------------------------

def tagged_run(lab, task, model_id: str, tag: str) -> dict | None:
    """The point's newest run whose examples were chosen as `held_out` chooses them: a point
    measured on the first N rows (before sampling; no "sample" key) is not read as this one."""
    rows = lab.store.query("select * from eval_runs where task = ? and task_hash = ? and model_id = ? and "
                           "json_extract(config_json, '$.tag') = ? and "
                           "coalesce(json_extract(config_json, '$.sample'), ?) = ? order by id desc limit 1",
                           [task.name, task.hash(), model_id, tag, IDENTITY_DEFAULTS["sample"], SAMPLE])
    return rows[0] if rows else None


def point_scores(lab, run_id: int, arm: str, ids: list[str]) -> tuple[Scores, int | None]:
    """{example id: primary score} of one point (repeat 0, the held-out ids asked), and the
    fewest few-shot examples that fitted the context (None: not recorded)."""
    wanted = set(ids)
    scores, used = {}, []
    for r in lab.store.query("select example_id, scores_json, extra_json from eval_results where eval_run_id = ? "
                             "and arm = ? and repeat = 0", [run_id, arm]):
        if r["example_id"] in wanted:
            scores[r["example_id"]] = json.loads(r["scores_json"] or "{}").get("primary")
            k_used = json.loads(r["extra_json"] or "{}").get("k_used")
            if k_used is not None:
                used.append(k_used)
    return scores, (min(used) if used else None)


def load_curve(lab, curve_id: int) -> Curve:
    row = lab.store.query("select * from curves where id = ?", [curve_id])
    if not row:
        raise CurveError(f"no curve {curve_id} in {lab.store.path}")
    row = row[0]
    settings = CurveSettings.model_validate(json.loads(row["settings_json"]))
    task = load_task(row["task"], home=lab.home)
    ids = [e.id for e in held_out(task, settings.limit)]
    few, k_used, tuned = {}, {}, {}
    complete = True
    for step in steps(settings):
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
    return build_curve(task.name, metric, task.target, len(task.examples("train")), few, tuned,
                       graded_metric=metric in CONTINUOUS, k_used=k_used, seeds=settings.seeds,
                       settings=settings.model_dump(), curve_id=curve_id, status=row["status"], complete=complete)


def latest_curve(lab, task_name: str) -> Curve | None:
    """The task's newest curve with at least one measured point, or None."""
    for row in lab.store.query("select id from curves where task = ? order by id desc limit 5", [task_name]):
        try:
            curve = load_curve(lab, row["id"])
        except Exception:  # a task edited or removed since: no curve to speak from
            continue
        if curve.few_shot or curve.tuned:
            return curve
    return None


def curve_progress(lab, curve_id: int) -> dict:
    row = lab.store.query("select status, progress_json, wall_s, estimate_s from curves where id = ?", [curve_id])
    if not row:
        return {}
    return {**json.loads(row[0]["progress_json"] or "{}"), "status": row[0]["status"], "wall_s": row[0]["wall_s"],
            "estimate_s": row[0]["estimate_s"]}


# ---- how long it will take here -----------------------------------------------------------------

def seconds_per_answer(lab, arm: str) -> tuple[float, str]:
    """The mean time of this lab's logged answers of `arm` on the default model (any arm's when
    none; a default when nothing is logged)."""
    model = model_id_of(lab)
    for clause, params in (("arm = ? and ", [arm]), ("", [])):
        rows = lab.store.query(f"select avg(total_s) as s, count(*) as n from generations where {clause}"
                               "model_id = ? and error is null and total_s is not null", [*params, model])
        if rows and rows[0]["s"]:
            return rows[0]["s"], f"{arm if clause else 'all'} answers logged here ({rows[0]['n']})"
    return DEFAULT_GEN_S, "a default (no answers logged yet)"


def estimate(lab, task, settings: CurveSettings) -> tuple[float, str]:
    """Seconds the rest of the curve should take here, and on what basis: lab.tuning.jobs'
    training estimate for each adapter still to train, the logged answer times for each
    held-out example still to score."""
    from ..tuning import jobs

    task = load_task(task, home=lab.home)
    write_subsets(lab, task, settings)
    n_ids = len(held_out(task, settings.limit))
    model_id = model_id_of(lab)
    train_s, answers, basis = 0.0, {"few-shot": 0, "tune": 0}, ""
    for step in steps(settings):
        run, fresh = None, True
        if step.arm == "tune":
            cfg = train_config(lab, task, settings, step.x, step.seed)
            if not finished_adapter(lab, cfg):
                tokens = jobs.tokens_per_example(cfg.data, cfg.instruction, cfg.max_seq_len)
                n_steps = cfg.max_steps or steps_for(step.x, cfg.epochs, cfg.batch_size, cfg.grad_accum)
                secs, basis = jobs.estimate_seconds(lab, n_steps, cfg.batch_size, tokens, cfg.grad_accum)
                train_s += secs
                fresh = False  # a new adapter starts a new eval run
        if fresh:
            run = tagged_run(lab, task, model_id, step.tag(task.name, settings.constrain))
        done = lab.store.query("select count(*) as n from eval_results where eval_run_id = ?", [run["id"]])[0]["n"] \
            if run else 0
        answers[step.arm] += max(0, n_ids - done)
    gen_s = {arm: seconds_per_answer(lab, arm) for arm in answers}
    total = train_s + sum(answers[a] * gen_s[a][0] for a in answers)
    text = (f"training {train_s / 60:.1f} min ({basis or 'nothing left to train'}); "
            f"{answers['few-shot'] + answers['tune']} answers at "
            + ", ".join(f"{gen_s[a][0]:.2f} s ({a}: {gen_s[a][1]})" for a in answers))
    return total, text
