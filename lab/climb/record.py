"""The climb's record in lab.db (`climbs`, migration m009): one row per climb, its path as JSON.

Why a table and not a file: everything else the lab does (generations, evaluations, training)
is logged in lab.db, the report and the app already read from it, and a row is updated in one
transaction, so a killed climb never leaves half a record. The path is small JSON (a few steps),
so one column holds it. A rerun with the same options continues the latest unfinished climb.
"""

from __future__ import annotations

import json


def _row(row: dict | None) -> dict | None:
    if row is None:
        return None
    for key in ("options", "steps", "decision", "recommendation"):
        row[key] = json.loads(row.get(f"{key}_json") or ("[]" if key == "steps" else "null"))
    return row


def open_climb(lab, task: str, model_id: str, options: dict) -> dict:
    """The latest unfinished climb of `task` with these options (continued), else a new one."""
    options_json = json.dumps(options, sort_keys=True)
    last = lab.store.latest_climb(task, model_id=model_id, options_json=options_json)
    if last and last["status"] != "finished":
        row = _row(last)
        lab.store.update_climb(row["id"], {"status": "running"})
        row["continued"] = True
        return row
    return get_climb(lab, lab.store.new_climb(task, model_id, options_json))


def get_climb(lab, climb_id: int) -> dict | None:
    return _row(lab.store.climb(climb_id))


def save(lab, climb: dict, **values) -> None:
    """Write the climb's path and any other columns given (steps/decision/recommendation as JSON)."""
    update = {}
    for key, value in values.items():
        if key in ("steps", "decision", "recommendation", "options"):
            update[f"{key}_json"] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            update[key] = value
        climb[key] = value
    lab.store.update_climb(climb["id"], update)


def put_step(steps: list[dict], entry: dict) -> list[dict]:
    """The path with `entry` in place of the same step's earlier attempt and anything after it
    (a continued climb redoes its steps in order; finished work inside them is reused)."""
    from .decide import STEPS

    return [s for s in steps if STEPS.index(s["step"]) < STEPS.index(entry["step"])] + [entry]


def latest_climb(lab, task: str) -> dict | None:
    return _row(lab.store.latest_climb(task))


def report_run(lab, task: str) -> int | None:
    """The eval run `lab report TASK` and `lab advise TASK` mean by default: the task's latest,
    unless it started before the latest climb finished. A climb's prompt sweep writes a run per
    configuration, and the climb's own run (every rung on the same examples) is its scoreboard."""
    from ..evaluation.runner import latest_run

    run, climb = latest_run(lab, task), latest_climb(lab, task)
    if climb and climb.get("eval_run_id") and run and (climb.get("finished_ts") or "") >= run["ts"]:
        return climb["eval_run_id"]
    return run["id"] if run else None


def climb_of_run(lab, eval_run_id: int) -> dict | None:
    """The latest climb whose evidence is eval run `eval_run_id` (the report draws its path), with
    its `history`: the climbs whose work it may have reused, itself last (`history`)."""
    row = _row(lab.store.latest_climb_of_run(eval_run_id))
    if row is not None:
        row["history"] = history(lab, row["id"])
    return row


def history(lab, climb_id: int) -> list[dict]:
    """Climb `climb_id` and the earlier climbs of its task with the same model and options or the
    same eval run (a rerun reuses their answers and adapter), oldest first."""
    return [_row(r) for r in lab.store.climb_history(climb_id)]


def step_work(step: dict) -> str:
    """What a recorded step did: "reused" when nothing was left to do as it started (its estimate
    counts only the answers and training not done yet: `estimate.py`), else what it ran."""
    if step.get("status") != "done":
        return "did not finish"
    if not step.get("estimate_s"):
        return "reused"
    if step["step"] != "tune":
        return "evaluated"
    if (step.get("estimate_basis") or "").startswith("adapter already trained"):
        return "evaluated, adapter reused"
    return "trained and evaluated"


def did_work(climb: dict) -> bool:
    """Whether the climb answered or trained anything itself (not only reused earlier work)."""
    return any(step_work(st) != "reused" for st in climb.get("steps") or [])
