"""Training runs as background jobs: start, stop, and estimate one (the app's Train tab, the
demo adapter). `lab train` trains in the foreground; a job is the same `train()` in its own
process, started as `python -m lab.tuning --home HOME --config RUN.json` (see __main__.py).

The job runs in its own process session, so closing the page or stopping the app does not stop
it. Its row records the trainer's pid and start time: a run whose trainer was killed from
outside is marked died (`refresh_run_status`), and Stop signals only that very process. It writes every step to lab.db (`training_runs`, `training_steps`), which the page polls,
and its output to a log file beside its config. The config travels as JSON (a real writer, so
any text in a system prompt survives the trip).
"""

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
from pathlib import Path

from ..store import now
from . import trainer_lock
from .checkpoint import find_checkpoint
from .config import TrainConfig, TrainConfigError
from .run import TrainingError, TrainingInterrupted, process_started

_CHILDREN: list[subprocess.Popen] = []  # reaped when polled, so no zombie is left


@dataclass
class Job:
    pid: int
    name: str
    config_path: Path
    log_path: Path
    pid_started: float | None = None  # with the pid, names this very process

    def to_dict(self) -> dict:
        return {"pid": self.pid, "name": self.name, "log": str(self.log_path), "pid_started": self.pid_started}


def check_not_training(lab, name: str) -> None:
    """TrainingError when adapter `name` is being trained now: by a trainer holding its lock, or
    by a job this process started that has not taken the lock yet (still importing torch)."""
    held = trainer_lock.holder(lab, name) or next((j for j in _starting(lab) if j["name"] == name), None)
    if held:
        raise TrainingError(
            f"{trainer_lock.describe(held)}: wait for it to finish or stop it first (two trainers "
            "on one adapter would overwrite each other)"
        )


def start(lab, config: TrainConfig, *, overwrite: bool = False, resume: bool = False, restart: bool = False) -> Job:
    """Start training `config` in a background process; returns at once. Refused (TrainingError)
    while another trainer works on the same adapter."""
    check_not_training(lab, config.name)
    folder = lab.home.state / "training"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = config.to_json()
    data["data"] = str(Path(config.data).resolve())
    config_path = folder / f"{config.name}-{stamp}.json"
    config_path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    log_path = folder / f"{config.name}-{stamp}.log"
    args = [sys.executable, "-m", "lab.tuning", "--home", str(lab.home.root), "--config", str(config_path)]
    args += (
        (["--overwrite"] if overwrite else []) + (["--resume"] if resume else []) + (["--restart"] if restart else [])
    )
    proc = spawn(lab, args, log_path, job_log=True)
    proc.lab_name, proc.lab_log = config.name, str(log_path)
    return Job(proc.pid, config.name, config_path, log_path, process_started(proc.pid))


def active_jobs(lab) -> list[dict]:
    """The trainers working now ({name, pid, pid_started, log}), a run still loading its model
    (no training_runs row yet) included: what a freshly loaded page follows."""
    found = {h["name"]: h for h in trainer_lock.holders(lab) if h.get("pid")}
    for job in _starting(lab):
        found.setdefault(job["name"], job)
    return list(found.values())


def _starting(lab) -> list[dict]:
    """Jobs this process started that live but hold no lock yet (still importing torch). One
    whose run has ended (it released its lock and is exiting) is not one."""
    out = []
    for proc in _CHILDREN:
        if proc.poll() is None and getattr(proc, "lab_name", None):
            job = {
                "name": proc.lab_name,
                "pid": proc.pid,
                "log": proc.lab_log,
                "pid_started": process_started(proc.pid),
            }
            run = run_of(lab, job)
            if run is None or run["status"] == "running":
                out.append(job)
    return out


def job_running(job: dict) -> bool:
    """Whether the job's very process still runs (its pid, started when the job says)."""
    started = process_started(int(job["pid"]))
    if started is None:
        return False
    return job.get("pid_started") is None or abs(started - job["pid_started"]) < 0.01


def run_of(lab, job: dict) -> dict | None:
    """The training_runs row the job's process writes (a resumed run: the row it took over),
    None while it is still loading its model."""
    for run in lab.store.training_runs(50, adapter=job["name"]):
        if run.get("pid") == job["pid"]:
            return run
    return None


def stop_job(lab, job: dict) -> str:
    """Stop the job the page started: through its run once it has one (a checkpoint is kept),
    else (still loading the model, nothing trained yet) by signalling its very process."""
    import psutil

    run = run_of(lab, job)
    if run is not None:
        return stop(lab, run["id"])
    try:
        process = psutil.Process(int(job["pid"]))
        if job.get("pid_started") is not None and abs(process.create_time() - job["pid_started"]) >= 0.01:
            raise psutil.NoSuchProcess(process.pid)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return f"Training '{job['name']}' (process {job['pid']}) has already ended: see its log."
    return (
        f"Stopped training '{job['name']}' while it was loading the model (process {job['pid']}): "
        "no step had run, so there is nothing to resume."
    )


def trainer_alive(run: dict) -> bool | None:
    """Whether the process that trains `run` still runs: True, False (gone, or its pid now
    names another process), or None when the row cannot tell (no pid or no start time)."""
    if not run.get("pid"):
        return None
    started = process_started(int(run["pid"]))
    if started is None:
        return False
    if run.get("pid_started") is None:
        return None  # a row from before start times were recorded
    return abs(started - run["pid_started"]) < 0.01  # psutil's create_time: 1/100 s ticks


def refresh_run_status(lab) -> list[int]:
    """Mark the runs whose trainer is gone (OOM killer, kill -9, a reboot) as died, with their
    last step and checkpoint in `error`, so none stays "running" forever. Returns their ids."""
    died = []
    for run in lab.store.running_training_runs():
        if trainer_alive(run) is not False:
            continue
        ckpt = find_checkpoint(lab, run["adapter_name"])
        ckpt_step = json.loads((ckpt / "state.json").read_text()).get("step") if ckpt else None
        where = f"checkpoint at step {ckpt_step} in {ckpt}: start it again with resume" if ckpt else "no checkpoint"
        lab.store.update_training_run(
            run["id"],
            {
                "status": "died",
                "finished_ts": now(),
                "error": f"the trainer (process {run['pid']}) ended without finishing, killed from outside "
                f"(out of memory? kill -9?); last step {run['last_step'] or 0}, {where}",
            },
        )
        lab.store.training_event(run["id"], "died", run["last_step"] or 0)
        died.append(run["id"])
    return died


def stop(lab, run_id: int) -> str:
    """SIGTERM: the trainer stops at a step boundary and keeps a checkpoint (resumable). Only
    the trainer is signalled: never a process that took its pid after it died."""
    import psutil

    if lab.store.training_run(run_id) is None:
        raise TrainConfigError(f"no training run #{run_id}")
    reap()
    refresh_run_status(lab)
    run = lab.store.training_run(run_id)
    if run["status"] == "died":
        return f"Run #{run_id} had already died: {run['error']}."
    if run["status"] != "running" or not run.get("pid"):
        return f"Run #{run_id} is not running ({run['status']})."
    if run.get("pid_started") is None:
        return (
            f"Run #{run_id}: not signalling process {run['pid']}: this run recorded no start time, so "
            "there is no telling that the process is still its trainer."
        )
    try:
        process = psutil.Process(int(run["pid"]))
        if abs(process.create_time() - run["pid_started"]) >= 0.01:
            raise psutil.NoSuchProcess(process.pid)
        process.send_signal(signal.SIGTERM)  # psutil checks again that the pid is still this process
    except psutil.NoSuchProcess:  # it ended between the check and the signal
        refresh_run_status(lab)
        return (
            f"Run #{run_id}: its process {run['pid']} has just ended (or is no longer the trainer); nothing signalled."
        )
    return f"Stopping run #{run_id} at the next step boundary (a checkpoint is kept, to resume from)."


def reap() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)


def spawn(lab, args: list[str], log_path: Path, job_log: bool = False) -> subprocess.Popen:
    """Start a lab command as a background job: its own process session (closing the page does
    not stop it), output to `log_path`, reaped by `reap` (no zombie left). `job_log`: the child
    records its log in the trainer's lock, so a reloaded page finds the output."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(lab.home.root),
            env=_child_env(log_path if job_log else None),
            start_new_session=True,
        )
    _CHILDREN.append(proc)
    return proc


def _child_env(log_path: Path | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if log_path is not None:  # recorded in the trainer's lock: a reloaded page finds the output
        env["LAB_JOB_LOG"] = str(log_path)
    # The child imports `lab` from the same place this process did (a checkout or a wheel).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---- training in a job process, waited for ------------------------------------------------------


def train_in_job(
    lab,
    config: TrainConfig,
    *,
    resume: bool = False,
    restart: bool = False,
    overwrite: bool = False,
    on_step: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
    say: Callable[[str], None] | None = None,
    poll_s: float = 0.2,
):
    """Train `config` in its own process and wait for it: how `lab climb`, `lab curve` and `lab demo`
    train. A fresh process imports Unsloth before anything has loaded transformers (this one has,
    for the embedder), which its patches need. Each logged step goes to `on_step` (with
    `total_steps`), each line the trainer writes to `say`. `cancel` set, or Ctrl-C here, stops the
    trainer at a step boundary with a checkpoint: TrainingInterrupted, as train() raises it.
    Returns the finished AdapterInfo; a refusal or failure is a TrainingError with the trainer's words."""
    from .adapters import read_adapter
    from .trainer import sigterm_as_interrupt

    job = start(lab, config, overwrite=overwrite, resume=resume, restart=restart)
    proc = next(p for p in _CHILDREN if p.pid == job.pid)
    watch = _JobWatch(lab, job, on_step, say)
    stopping = False
    try:
        with sigterm_as_interrupt():  # a SIGTERM here stops the trainer too, as Ctrl-C does
            _wait(proc, watch, cancel, poll_s)
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        stopping = True
    stopping = stopping or (cancel is not None and cancel.is_set())
    watch.follow()
    reap()
    if proc.returncode == 0:
        return read_adapter(lab.home.adapters / config.name)
    if proc.returncode != 2 and (proc.returncode == 130 or stopping):
        step, where = _checkpoint_of(lab, config.name)
        raise TrainingInterrupted(config.name, step, where)
    raise TrainingError(watch.last_error() or f"the trainer ended with exit code {proc.returncode}: see {job.log_path}")


def _wait(proc: subprocess.Popen, watch: _JobWatch, cancel: threading.Event | None, poll_s: float) -> None:
    signalled = False
    while proc.poll() is None:
        if cancel is not None and cancel.is_set() and not signalled:
            proc.send_signal(signal.SIGTERM)  # the trainer checkpoints the last whole step
            signalled = True
        watch.follow()
        time.sleep(poll_s)


def _checkpoint_of(lab, name: str) -> tuple[int, Path | None]:
    folder = find_checkpoint(lab, name)
    if folder is None:
        return 0, None
    return int(json.loads((folder / "state.json").read_text()).get("step") or 0), folder


class _JobWatch:
    """What a waiting caller sees of a job: its new steps from lab.db, its new log lines."""

    def __init__(self, lab, job: Job, on_step, say):
        self.lab, self.job, self.on_step, self.say = lab, job, on_step, say
        self.seen_step, self.offset, self.lines = 0, 0, []

    def follow(self) -> None:
        self._lines()
        run = run_of(self.lab, self.job.to_dict())
        if run is None or self.on_step is None:
            return
        for row in self.lab.store.training_steps(run["id"]):
            if row["step"] > self.seen_step:
                self.seen_step = row["step"]
                self.on_step(dict(row, total_steps=run.get("total_steps")))

    def _lines(self) -> None:
        try:
            with open(self.job.log_path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # whole lines only; the rest is read next time
        self.offset += end
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            self.lines = (self.lines + [line])[-50:]
            if self.say is not None and line.strip():
                self.say(line)

    def last_error(self) -> str | None:
        """The trainer's own message ("Error: ..." on a refusal), else the last lines it wrote."""
        errors = [line[len("Error: ") :] for line in self.lines if line.startswith("Error: ")]
        if errors:
            return errors[-1]
        tail = "\n".join(self.lines[-8:]).strip()
        return f"the trainer failed (log {self.job.log_path}):\n{tail}" if tail else None


def continue_or_train(lab, config: TrainConfig, *, overwrite: bool = True, **wait):
    """`train_in_job`, continuing the adapter's checkpoint when it fits `config` (the same settings,
    data and base weights) and starting afresh over one that does not: how the climb, the curve and
    the demo pick up where a stopped run left off."""
    from .checkpoint import checkpoint_step
    from .plan import base_sha

    step, why_not = checkpoint_step(lab, config, base_sha(lab, config.base_model))
    return train_in_job(lab, config, resume=step is not None, restart=bool(why_not), overwrite=overwrite, **wait)


def step_line(row: dict) -> str:
    """One logged step as a line: "step 12 of 60, loss 1.234 (val 1.301)"."""
    loss = f", loss {row['loss']:.3f}" if row.get("loss") is not None else ""
    val = f" (val {row['val_loss']:.3f})" if row.get("val_loss") is not None else ""
    return f"step {row['step']} of {row.get('total_steps') or '?'}{loss}{val}"
