"""Doing the demo's plan: `prepare` runs the steps not done yet, recording the run as a
`demo_runs` row; `start_job` runs `lab demo prepare` as a background process for the app, which
polls `latest_run` and stops it with `stop_job`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..evaluation.runner import run_eval
from ..store import now
from ..tuning import jobs
from .steps import DEFAULT_LIMIT, DemoStep, plan, total_seconds


@dataclass
class PrepareResult:
    status: str  # "done", "cancelled" (cancel set), "interrupted" (Ctrl-C / SIGTERM)
    steps: list[DemoStep]
    wall_s: float
    run_id: int


# ---- doing it -----------------------------------------------------------------------------------

Progress = Callable[[dict], None]


def prepare(
    lab,
    *,
    cancel: threading.Event | None = None,
    on_progress: Progress | None = None,
    limit: int = DEFAULT_LIMIT,
    train_overrides: dict | None = None,
    progress: bool = False,
    only: list[str] | None = None,
) -> PrepareResult:
    """Do the steps of `plan` that are not done, recording the run (a `demo_runs` row) as it goes.
    `cancel` (set from another thread) stops at the next answer or training step; Ctrl-C and
    SIGTERM stop the same way. Either way what is finished stays (a checkpoint, the answers so
    far) and the next `prepare` continues. `on_progress(event)` gets {step, steps, action, name,
    message, fraction, remaining_s, elapsed_s}. `progress`: terminal progress bars."""
    steps = plan(lab, limit=limit, train_overrides=train_overrides, only=only)
    t0 = time.perf_counter()
    run_id = lab.store.new_demo_run(
        {
            "pid": os.getpid(),
            "pid_started": jobs.process_started(os.getpid()),
            "steps": len(steps),
            "estimate_s": total_seconds(steps),
            "plan_json": json.dumps([s.as_dict() for s in steps], default=str),
        }
    )
    status = "done"

    def report(i: int, step: DemoStep, fraction: float, message: str) -> None:
        left = step.seconds * (1 - fraction) + sum(s.seconds for s in steps[i + 1 :] if not s.done)
        event = {
            "step": i + 1,
            "steps": len(steps),
            "action": step.action,
            "name": step.name,
            "message": message,
            "fraction": fraction,
            "remaining_s": left,
            "elapsed_s": time.perf_counter() - t0,
        }
        lab.store.update_demo_run(
            run_id,
            {"step": i + 1, "message": message, "fraction": fraction, "estimate_s": left, "wall_s": event["elapsed_s"]},
        )
        if on_progress:
            on_progress(event)

    try:
        for i, step in enumerate(steps):
            if step.done:
                continue
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            report(i, step, 0.0, f"{step.what}...")
            if not _RUNNERS[step.action](
                lab, step, cancel, lambda f, msg, i=i, step=step: report(i, step, f, msg), progress
            ):
                status = "cancelled"
                break
            step.done, step.seconds = True, 0.0
            report(i, step, 1.0, f"done: {step.what}")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside training: the answers so far are kept
        status = "interrupted"
    except BaseException as e:
        lab.store.update_demo_run(
            run_id,
            {
                "status": "failed",
                "error": f"{type(e).__name__}: {e}",
                "finished_ts": now(),
                "wall_s": time.perf_counter() - t0,
            },
        )
        raise
    wall = time.perf_counter() - t0
    lab.store.update_demo_run(
        run_id, {"status": status, "finished_ts": now(), "wall_s": wall, "estimate_s": total_seconds(steps)}
    )
    return PrepareResult(status, steps, wall, run_id)


def _run_index(lab, step: DemoStep, cancel, report, progress: bool) -> bool:
    from ..retrieval import index_corpus

    r = index_corpus(lab, step.corpus, progress=progress)
    report(1.0, r.summary())
    return True


def _run_eval(lab, step: DemoStep, cancel, report, progress: bool) -> bool:
    answered = [0]

    def on_result(row: dict) -> None:
        answered[0] += 1
        report(
            min(1.0, answered[0] / max(1, step.todo)),
            f"evaluating {step.name}: {answered[0]} of {step.todo} answers ({row['arm']})",
        )

    run_id = run_eval(
        lab,
        step.task,
        step.arms,
        limit=step.limit,
        adapter=step.adapter,
        progress=progress,
        cancel=cancel,
        on_result=on_result,
    )
    return lab.store.eval_run(run_id)["status"] != "cancelled"


def _run_train(lab, step: DemoStep, cancel, report, progress: bool) -> bool:
    from ..tuning import TrainingInterrupted

    config = step.config

    def on_step(row: dict) -> None:
        report(row["step"] / max(1, row["total_steps"] or 1), f"training '{config.name}': {jobs.step_line(row)}")

    try:
        jobs.continue_or_train(
            lab,
            config,
            overwrite=config.name != step.task,
            on_step=on_step,
            cancel=cancel,
            say=(lambda msg: print(msg, file=sys.stderr)) if progress else None,
        )
    except TrainingInterrupted:
        if cancel is not None and cancel.is_set():
            return False
        raise KeyboardInterrupt from None  # Ctrl-C / SIGTERM: the whole run stops
    return True


_RUNNERS = {"index": _run_index, "eval": _run_eval, "train": _run_train}


# ---- as a background job (the app) -------------------------------------------------------------


def start_job(lab, limit: int = DEFAULT_LIMIT) -> subprocess.Popen:
    """Start `lab demo prepare` in its own process session (closing the page does not stop it);
    its output goes to a log file in the home's state folder; the page polls `latest_run`."""
    folder = lab.home.state / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"prepare-{time.strftime('%Y%m%d-%H%M%S')}.log"
    args = [sys.executable, "-m", "lab", "--home", str(lab.home.root), "demo", "prepare", "--limit", str(limit)]
    proc = jobs.spawn(lab, args, log_path)  # reaped with the training jobs, so no zombie is left
    proc.lab_log = str(log_path)
    _STARTED[str(lab.home.root)] = proc, _row_id(lab.store.latest_demo_run())
    return proc


# The prepare this process started last, per lab home: until it writes its row (it plans first,
# seconds of imports), `latest_run` reports it as starting, so a page polling right after the
# click sees the job it started rather than the previous run.
_STARTED: dict[str, tuple[subprocess.Popen, int]] = {}  # home -> (process, the newest row when it started)


def _row_id(run: dict | None) -> int:
    return 0 if run is None else run["id"]


def _started_row(lab, run: dict | None) -> dict | None:
    """The row a just-started prepare would have while no row is newer than its start: running
    (still planning) or, when it ended first, cancelled or failed with where its log is."""
    proc, before = _STARTED.get(str(lab.home.root), (None, 0))
    if proc is None or _row_id(run) != before:
        return None
    code = proc.poll()
    if code is None:
        row = {"status": "running", "step": 0, "steps": 0, "message": "starting", "fraction": 0.0}
        return row | {"pid": proc.pid, "pid_started": jobs.process_started(proc.pid), "estimate_s": None}
    if code == 0:
        return None
    if code == -signal.SIGTERM:  # cancelled while it was starting
        return {"status": "cancelled", "pid": proc.pid}
    return {
        "status": "failed",
        "pid": proc.pid,
        "error": f"it ended (exit {code}) before its first step; log: {proc.lab_log}",
    }


def latest_run(lab) -> dict | None:
    """The newest `demo_runs` row; a "running" one whose process is gone is marked died first."""
    run = lab.store.latest_demo_run()
    started = _started_row(lab, run)
    jobs.reap()
    if started is not None:
        return started
    if run is None:
        return None
    if run["status"] == "running" and jobs.trainer_alive(run) is False:
        lab.store.update_demo_run(
            run["id"],
            {"status": "died", "finished_ts": now(), "error": f"process {run['pid']} ended without finishing"},
        )
        run = {**run, "status": "died"}
    return run


def stop_job(lab) -> str:
    """SIGTERM to the running prepare: it stops at the next answer or training step, keeping what
    is done (a rerun continues). Only that very process is signalled (pid and start time)."""
    import psutil

    run = latest_run(lab)
    if run is None or run["status"] != "running":
        return "No demo preparation is running."
    try:
        process = psutil.Process(int(run["pid"]))
        if run["pid_started"] is None or abs(process.create_time() - run["pid_started"]) >= 0.01:
            raise psutil.NoSuchProcess(process.pid)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return "The demo preparation has just ended."
    return "Stopping the demo preparation at the next step (what is done is kept; start it again to continue)."
