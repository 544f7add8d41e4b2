"""`lab distill`: a teacher's answers to the inputs, a cheap student trained on them, and the
ledger that says whether the student is as good for less (`ledger.py`).

The steps, each resumable as the machinery it uses is:
1. the inputs (the task's training inputs, their gold answers set aside; or a file of the user's
   own): held-out inputs dropped and counted, written to `state/distill/TASK/NAME/inputs.jsonl`;
2. the teacher labels them: one eval run tagged "distill:NAME" through the runner (every answer
   logged in `generations`, a rerun resumes), its worked examples never the input itself; answers
   that break the task's format are dropped and counted, the rest written to `labels.jsonl`;
3. the student (default: the lab's default model) trains an adapter NAME on them, with the task's
   short instruction and no examples (its cheap prompt), in a job process that continues its
   checkpoint; with the gold answers, NAME-gold on the same inputs, for what the teacher's labels
   cost against real ones;
4. every arm of the ledger scored on the same held-out examples.
The `distills` row holds the settings, the progress the app polls and, at the end, the ledger.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..store import now
from ..tasks import load_task
from .spec import ArmConfig, DistillError, parse_teacher, resolve

TAG = "distill:"


class DistillInterrupted(Exception):
    """Stopped (Ctrl-C, Cancel): what is finished is kept; running the same distillation again resumes."""


class DistillSettings(BaseModel):
    """What a distillation was asked to do; the `distills` row is found again by these."""

    model_config = ConfigDict(extra="forbid")

    teacher: str
    student: str | None = None  # None: the lab's default model
    inputs: str | None = None  # a file of inputs (None: the task's training inputs)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=90)
    limit: int | None = Field(None, ge=1)  # held-out examples in the ledger (None: all)
    max_inputs: int | None = Field(None, ge=1)
    margin: float | None = Field(None, gt=0.0, le=0.5)  # None: the task's
    gold: bool = True  # also train on the gold answers, where the inputs have them
    epochs: float | None = Field(None, gt=0)
    max_steps: int | None = Field(None, ge=1)
    train: dict = Field(default_factory=dict)  # other TrainConfig values (batch_size, threads, ...)


def default_name(task_name: str) -> str:
    return f"{task_name}-distilled"


def settings_for(task, teacher: str, name: str | None = None, **values) -> DistillSettings:
    """Settings from the options as typed (None ones left at their defaults); the spec is checked."""
    parse_teacher(teacher)
    given = {k: v for k, v in values.items() if v is not None}
    return DistillSettings(teacher=teacher, name=name or default_name(task.name), **given)


# ---- who answers ----------------------------------------------------------------------------------


def model_info(lab, model: str | None, what: str):
    """The model a spec names (a backend registered by hand, a test's fake, as it is), or a
    DistillError naming the spec (an unknown model, a server that cannot be reached: the server
    is asked now, not on the first answer)."""
    from ..backends.base import BackendError
    from ..models import ModelNotFound

    try:
        try:
            info = lab.model_info(model)
        except ModelNotFound:
            return lab.backend(model).info  # registered by hand, else the same error
        if info.format == "openai":
            lab.backend(model)  # asks /v1/models: unreachable or not served is said here
        return info
    except ModelNotFound as e:
        raise DistillError(f"{what} {model or lab.config.default_model!r}: {e}") from None
    except BackendError as e:
        raise DistillError(f"{what} {model!r}: {e}") from None


def teacher_of(lab, task, settings: DistillSettings) -> tuple[str | None, str, ArmConfig]:
    """(model spec, model id, arm configuration) of the teacher."""
    spec = parse_teacher(settings.teacher)
    info = model_info(lab, spec.model, f"teacher {settings.teacher!r}: model")
    how = resolve(lab, task, spec, info.id)
    if info.format == "openai" and how.constrain and task.output_format == "label":
        raise DistillError(  # a server takes a JSON schema (response_format), not a label set
            f"teacher {settings.teacher!r}: a model server cannot be held to the task's labels; "
            "leave out +constrained (answers that are not a label are dropped and counted)"
        )
    return spec.model, info.id, how


def student_of(lab, settings: DistillSettings) -> tuple[str | None, str]:
    info = model_info(lab, settings.student, "student")
    if info.format == "openai":
        raise DistillError(f"student {settings.student!r}: a served model cannot be trained here; name a local model")
    return settings.student, info.id


# ---- the inputs -----------------------------------------------------------------------------------


def folder(lab, task_name: str, name: str) -> Path:
    return lab.home.state / "distill" / task_name / name


def _write_if_changed(path: Path, text: str) -> None:
    """Rewritten only when different, atomically: a killed write leaves the old file, never half of one."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def gather_inputs(task, settings: DistillSettings) -> tuple[list[dict], dict]:
    """[{id, input, gold}] to label (gold None for a file's inputs), and counts of what was left
    out: inputs that are held-out questions ("held_out"), repeats ("repeated")."""
    from ..evaluation.sample import nested_order
    from ..task_import.infer import normalise

    if settings.inputs:
        rows = [{"input": text, "gold": None} for text in read_inputs(Path(settings.inputs), task)]
    else:
        train = task.examples("train")
        if not train:
            raise DistillError(f"task '{task.name}' has no training inputs: give a file of inputs to label")
        order = nested_order([e.output for e in train], 0, stratify=task.output_format == "label")
        rows = [{"input": train[i].input, "gold": train[i].output} for i in order]
    held = {normalise(e.input) for e in task.examples("eval")}
    kept, seen, counts = [], set(), {"held_out": 0, "repeated": 0}
    for row in rows:
        key = normalise(row["input"])
        if key in held:
            counts["held_out"] += 1
        elif key in seen:
            counts["repeated"] += 1
        else:
            seen.add(key)
            kept.append({"id": "in-" + hashlib.sha256(key.encode()).hexdigest()[:12], **row})
    if settings.max_inputs:
        kept = kept[: settings.max_inputs]
    if not kept:
        raise DistillError("no inputs left to label (every one is a held-out question or a repeat)")
    return kept, counts


def read_inputs(path: Path, task) -> list[str]:
    """The input column of a file `lab task new` reads (CSV, TSV, JSONL, JSON, Parquet): the task's
    input field, else `input`, else the file's only column."""
    from ..task_import.read import TaskImportError, read_table

    try:
        table = read_table(path)
    except TaskImportError as e:
        raise DistillError(f"inputs {e}") from None
    for column in (task.input_field, "input", "question", "prompt"):
        if column in table.columns:
            break
    else:
        if len(table.columns) != 1:
            raise DistillError(
                f"inputs {path}: which column is the input? name it '{task.input_field}' or 'input' "
                f"(its columns: {', '.join(table.columns)})"
            )
        column = table.columns[0]
    texts = []
    for i, row in enumerate(table.rows):
        value = row.get(column)
        if value is None or not str(value).strip():
            raise DistillError(f"inputs {table.where(i)}: the input ('{column}') is empty")
        texts.append(str(value))
    return texts


def labelling_task(lab, task, settings: DistillSettings, inputs: list[dict]):
    """The task with the inputs as its examples to answer (under another name, so its run is
    never the task's own evaluation); the gold answers ride along to say how often the teacher
    agrees with them."""
    path = folder(lab, task.name, settings.name) / "inputs.jsonl"
    text = "".join(
        json.dumps(
            {"id": r["id"], task.input_field: r["input"], task.output_field: r["gold"] or ""}, ensure_ascii=False
        )
        + "\n"
        for r in inputs
    )
    _write_if_changed(path, text)
    return task.model_copy(update={"name": f"{task.name}~{settings.name}", "eval": path})


# ---- the teacher's labels -------------------------------------------------------------------------


def kept_labels(lab, task, run_id: int, inputs: list[dict]) -> tuple[list[dict], dict]:
    """The teacher's usable answers as training rows {input, output, gold}, and counts: answered,
    dropped for breaking the task's format (failed, empty, not a label, not valid JSON)."""
    from ..evaluation.scorers import extract_label

    by_id = {r["id"]: r for r in inputs}
    rows = {r["example_id"]: r for r in lab.store.eval_result_rows(run_id) if r["repeat"] == 0}
    kept, dropped = [], 0
    for ex_id, item in by_id.items():
        row = rows.get(ex_id)
        if row is None:
            continue
        output = (row.get("output") or "").strip()
        scores = json.loads(row.get("scores_json") or "{}")
        if task.output_format == "label" and output:
            output = extract_label(output, task.labels or []) or ""
        if row.get("error") or not output or scores.get("format_valid") == 0.0:
            dropped += 1
            continue
        kept.append({"input": item["input"], "output": output, "gold": item["gold"]})
    return kept, {"answered": len(rows), "dropped": dropped, "kept": len(kept)}


def write_training_files(lab, task, settings: DistillSettings, kept: list[dict]) -> dict[str, Path]:
    """labels.jsonl (the teacher's answers) and, where every kept input has one, gold.jsonl."""
    base = folder(lab, task.name, settings.name)

    def jsonl(field: str) -> str:
        return "".join(json.dumps({"input": r["input"], "output": r[field]}, ensure_ascii=False) + "\n" for r in kept)

    paths = {"labels": base / "labels.jsonl"}
    _write_if_changed(paths["labels"], jsonl("output"))
    if settings.gold and kept and all(r["gold"] for r in kept):
        paths["gold"] = base / "gold.jsonl"
        _write_if_changed(paths["gold"], jsonl("gold"))
    return paths


# ---- training -------------------------------------------------------------------------------------


def train_config(lab, task, settings: DistillSettings, data: Path, name: str):
    """The student's training: the task's instruction, no validation split (every label counts),
    this machine's defaults for the rest, capped at max_steps when that bites."""
    from ..tuning.plan import make_plan, with_max_steps

    values = {
        "base_model": settings.student or lab.config.default_model,
        "instruction": task.instruction or None,
        "epochs": settings.epochs,
        **settings.train,
        "name": name,
        "data": str(data),
        "val_fraction": 0.0,
        "force": True,
    }
    return with_max_steps(make_plan(lab, "lab distill", **values), settings.max_steps)


def _train(lab, cfg, cancel, progress: bool, say: Callable[[str], None]) -> None:
    """Train (or continue) one adapter in a job process; Cancel stops it with a checkpoint."""
    from ..tuning.jobs import continue_or_train

    continue_or_train(lab, cfg, cancel=cancel, say=say if progress else None)


def adapter_names(settings: DistillSettings) -> dict[str, str]:
    return {"distilled": settings.name, "gold": f"{settings.name}-gold"}


# ---- the run --------------------------------------------------------------------------------------


def run_distill(
    lab,
    task,
    settings: DistillSettings,
    *,
    progress: bool = True,
    cancel: threading.Event | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Run (or resume) the distillation; returns its id (the ledger is in its row). Raises
    DistillInterrupted on Ctrl-C, SIGTERM or `cancel`."""
    from ..tuning.run import TrainingInterrupted
    from ..tuning.trainer import sigterm_as_interrupt

    task = load_task(task, home=lab.home)
    distill_id = lab.store.open_distill(task.name, settings.name, settings.model_dump_json())
    wall_before = lab.store.distill(distill_id)["wall_s"] or 0.0
    t0, at = time.perf_counter(), [0, 1]

    def note(i: int, total: int, doing: str, status: str = "running") -> None:
        at[:] = [i, total]
        progress_json = json.dumps({"done": i, "total": total, "doing": doing})
        wall = wall_before + time.perf_counter() - t0
        lab.store.update_distill(distill_id, {"status": status, "wall_s": wall, "progress_json": progress_json})

    try:
        with sigterm_as_interrupt():
            ledger = _run_steps(lab, task, settings, cancel, progress, say, note)
    except BaseException as e:
        stopped = isinstance(e, (KeyboardInterrupt, TrainingInterrupted, DistillInterrupted))
        note(at[0], at[1], "stopped" if stopped else f"failed: {e}", "interrupted" if stopped else "failed")
        if stopped:
            raise DistillInterrupted(
                f"distillation '{settings.name}' of '{task.name}' stopped at step {at[0] + 1} of {at[1]}: "
                "what is finished is kept; run the same command again to resume"
            ) from None
        lab.store.update_distill(distill_id, {"error": f"{type(e).__name__}: {e}"})
        raise
    note(at[1], at[1], "done", "finished")
    lab.store.update_distill(distill_id, {"ledger_json": json.dumps(ledger, default=str), "finished_ts": now()})
    return distill_id


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise DistillInterrupted


def _run_steps(lab, task, settings: DistillSettings, cancel, progress: bool, say, note):
    from ..evaluation.runner import run_eval
    from ..tuning.plan import trained_adapter
    from .ledger import build_ledger

    teacher, teacher_id, how = teacher_of(lab, task, settings)
    student, student_id = student_of(lab, settings)
    inputs, left_out = gather_inputs(task, settings)
    has_gold = settings.gold and all(r["gold"] for r in inputs)
    steps = ["label", "train", *(["train gold"] if has_gold else []), "teacher", "zero-shot", "distilled"]
    steps += ["gold"] if has_gold else []
    total = len(steps)
    names = adapter_names(settings)

    def step(what: str, doing: str) -> None:
        _check(cancel)
        i = steps.index(what)
        note(i, total, doing)
        say(f"[{i + 1}/{total}] {doing}")

    step("label", f"the teacher ({teacher_id}, {how.label}) answers {len(inputs)} inputs")
    labelling = labelling_task(lab, task, settings, inputs)
    tag = TAG + settings.name
    label_run = run_eval(
        lab,
        labelling,
        [how.arm],
        model=teacher,
        tag=tag,
        hide_own_example=True,
        progress=progress,
        cancel=cancel,
        **how.run_kwargs(),
    )
    _check(cancel)
    kept, counts = kept_labels(lab, task, label_run, inputs)
    if not kept:
        raise DistillError(f"the teacher gave no usable answer to {len(inputs)} inputs: nothing to train on")
    files = write_training_files(lab, task, settings, kept)
    trained = {}
    for what, key in (("train", "distilled"), ("train gold", "gold")):
        if what not in steps or key == "gold" and "gold" not in files:
            continue
        cfg = train_config(lab, task, settings, files["labels" if key == "distilled" else "gold"], names[key])
        step(what, f"the student ({student_id}) learns from {len(kept)} {key} answers: adapter {cfg.config.name}")
        if trained_adapter(lab, cfg.config) is None:
            _train(lab, cfg.config, cancel, progress, say)
        trained[key] = cfg.config.name
    runs = {}
    limit = settings.limit
    step("teacher", f"the teacher answers the held-out examples ({how.label})")
    runs["teacher"] = run_eval(
        lab,
        task,
        [how.arm],
        limit,
        model=teacher,
        sweep="distill",
        progress=progress,
        cancel=cancel,
        **how.run_kwargs(),
    )
    # the student answers under the teacher's constraint (or the task's): the ledger compares the
    # prompt and the tuning, not the decoding
    held = {"constrain": how.constrain, "progress": progress, "cancel": cancel}
    step("zero-shot", "the student answers them zero-shot")
    runs["zero-shot"] = run_eval(lab, task, ["zero-shot"], limit, model=student, sweep="distill", **held)
    for key in ("distilled", "gold"):
        if key in trained:
            step(key, f"the student answers them with adapter {trained[key]}")
            runs[key] = run_eval(
                lab, task, ["tune"], limit, model=student, adapter=trained[key], tag=f"{TAG}{trained[key]}", **held
            )
    _check(cancel)
    return build_ledger(
        lab,
        task,
        settings,
        teacher=(teacher, teacher_id, how),
        student_id=student_id,
        runs=runs,
        label_run=label_run,
        labels=counts | {"inputs": len(inputs), **left_out},
        adapters=trained,
    )


# ---- reading it back, and how long it will take -----------------------------------------------------


def latest_ledger(lab, task_name: str) -> dict | None:
    """The task's newest finished distillation's ledger (as stored), with its id; None: none yet."""
    row = lab.store.latest_distill(task_name)
    if not row:
        return None
    return {**json.loads(row["ledger_json"]), "distill_id": row["id"]}


def plan_lines(lab, task, settings: DistillSettings) -> list[str]:
    """What a run would do, in words (nothing is run): who teaches and how (what best-prompt
    resolved to), the inputs, the student and its adapters, the held-out examples, the margin."""
    from ..evaluation.sample import held_out

    task = load_task(task, home=lab.home)
    _, teacher_id, how = teacher_of(lab, task, settings)
    _, student_id = student_of(lab, settings)
    inputs, left_out = gather_inputs(task, settings)
    source = "the inputs in " + Path(settings.inputs).name if settings.inputs else "the task's training inputs"
    left = [
        f"{n} {what}"
        for what, n in (("held-out questions", left_out["held_out"]), ("repeats", left_out["repeated"]))
        if n
    ]
    gold = settings.gold and all(r["gold"] for r in inputs)
    names = adapter_names(settings)
    return [
        f"The teacher {teacher_id} ({how.label}{'; ' + how.note if how.note else ''}) answers {len(inputs)} of "
        f"{source}{' (' + ', '.join(left) + ' left out)' if left else ''}; answers that break the task's format "
        "are dropped.",
        f"The student {student_id} is tuned on its answers as adapter {names['distilled']}"
        + (f", and on the gold answers of the same inputs as {names['gold']}" if gold else "")
        + ".",
        f"Teacher, student zero-shot and the tuned student{'s' if gold else ''} answer "
        f"{len(held_out(task, settings.limit))} held-out examples; the ledger says whether the student is as good "
        f"as the teacher within {100 * (settings.margin or task.margin):g} points, and for how much less.",
    ]


def distill_progress(lab, distill_id: int) -> dict:
    row = lab.store.distill(distill_id)
    if not row:
        return {}
    return {**json.loads(row["progress_json"] or "{}"), "status": row["status"], "wall_s": row["wall_s"]}


def estimate(lab, task, settings: DistillSettings) -> tuple[float, str]:
    """Seconds the rest should take here, and on what basis: the teacher's and the student's
    logged answer times for each answer still to give, the training plan's estimate per adapter."""
    from ..evaluation.sample import held_out
    from ..evaluation.speed import AnswerSpeed
    from ..tuning.plan import estimate as estimate_training

    task = load_task(task, home=lab.home)
    teacher, teacher_id, how = teacher_of(lab, task, settings)
    student, student_id = student_of(lab, settings)
    inputs, _ = gather_inputs(task, settings)
    n_eval = len(held_out(task, settings.limit))
    t_s, t_basis = AnswerSpeed(lab, teacher_id).seconds(task, how.arm)
    s_s, s_basis = AnswerSpeed(lab, student_id).seconds(task, "tune")
    has_gold = settings.gold and all(r["gold"] for r in inputs)
    # the labels are not known before the teacher answers: the plan is made on the inputs as they are
    probe = folder(lab, task.name, settings.name) / "plan.jsonl"
    _write_if_changed(
        probe, "".join(json.dumps({"input": r["input"], "output": r["gold"] or "x"}) + "\n" for r in inputs)
    )
    train_s, basis = estimate_training(lab, train_config(lab, task, settings, probe, settings.name))
    train_s *= 2 if has_gold else 1
    answers_s = len(inputs) * t_s + n_eval * (t_s + s_s * (3 if has_gold else 2))
    text = (
        f"{len(inputs)} inputs for the teacher at {t_s:.2f} s ({t_basis}); training {train_s / 60:.1f} min "
        f"({basis}){' for two adapters (teacher labels and gold)' if has_gold else ''}; {n_eval} held-out "
        f"examples per arm (student {s_s:.2f} s, {s_basis}); answers already given are not asked again"
    )
    return train_s + answers_s, text
