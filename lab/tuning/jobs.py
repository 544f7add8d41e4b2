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
import time
from dataclasses import dataclass
from pathlib import Path

from ..store import now
from . import trainer_lock
from .checkpoint import find_checkpoint
from .config import TrainConfig, TrainConfigError
from .run import TrainingError, process_started

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
        raise TrainingError(f"{trainer_lock.describe(held)}: wait for it to finish or stop it first (two trainers "
                            "on one adapter would overwrite each other)")


def start(lab, config: TrainConfig, *, overwrite: bool = False, resume: bool = False,
          restart: bool = False) -> Job:
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
    args += (["--overwrite"] if overwrite else []) + (["--resume"] if resume else []) + (["--restart"] if restart else [])
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
            job = {"name": proc.lab_name, "pid": proc.pid, "log": proc.lab_log, "pid_started": process_started(proc.pid)}
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
    return (f"Stopped training '{job['name']}' while it was loading the model (process {job['pid']}): "
            "no step had run, so there is nothing to resume.")


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
        where = (f"checkpoint at step {ckpt_step} in {ckpt}: start it again with resume" if ckpt
                 else "no checkpoint")
        lab.store.update("training_runs", run["id"], {
            "status": "died", "finished_ts": now(),
            "error": f"the trainer (process {run['pid']}) ended without finishing, killed from outside "
                     f"(out of memory? kill -9?); last step {run['last_step'] or 0}, {where}"})
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
        return (f"Run #{run_id}: not signalling process {run['pid']}: this run recorded no start time, so "
                "there is no telling that the process is still its trainer.")
    try:
        process = psutil.Process(int(run["pid"]))
        if abs(process.create_time() - run["pid_started"]) >= 0.01:
            raise psutil.NoSuchProcess(process.pid)
        process.send_signal(signal.SIGTERM)  # psutil checks again that the pid is still this process
    except psutil.NoSuchProcess:  # it ended between the check and the signal
        refresh_run_status(lab)
        return (f"Run #{run_id}: its process {run['pid']} has just ended (or is no longer the trainer); "
                "nothing signalled.")
    return f"Stopping run #{run_id} at the next step boundary (a checkpoint is kept; start again with resume)."


def reap() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)


def spawn(lab, args: list[str], log_path: Path, job_log: bool = False) -> subprocess.Popen:
    """Start a lab command as a background job: its own process session (closing the page does
    not stop it), output to `log_path`, reaped by `reap` (no zombie left). `job_log`: the child
    records its log in the trainer's lock, so a reloaded page finds the output."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(lab.home.root), env=_child_env(log_path if job_log else None),
                                start_new_session=True)
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


# ---- how long a run takes here ------------------------------------------------------------------

def tokens_per_example(path: str | Path, instruction: str | None, max_seq_len: int) -> int:
    """A rough token count of one training example (about 4 characters a token), without
    loading a tokenizer: the estimate must be instant."""
    path = Path(path)
    lines = sum(1 for line in path.open(encoding="utf-8") if line.strip()) or 1
    return min(max_seq_len, int((path.stat().st_size / lines + len(instruction or "")) / 4))


FEW_STEPS = 30  # below this a LoRA run rarely changes what the model does


def planned_steps(config: TrainConfig) -> int:
    """The optimizer steps `config` makes: max_steps, or its epochs over the training split
    (read without a tokenizer, so instant; packing would make it fewer)."""
    import math

    from .datasets import prepare

    if config.max_steps:
        return config.max_steps
    report = prepare(config.data, None, max_seq_len=config.max_seq_len, val_fraction=config.val_fraction,
                     seed=config.seed, instruction=config.instruction, force=True).report
    per_epoch = math.ceil(math.ceil(report.n_train / config.batch_size) / config.grad_accum)
    return max(1, math.ceil(per_epoch * config.epochs))


def few_steps_warning(steps: int) -> str | None:
    """What to say before and after a run too short to teach the model anything."""
    if steps >= FEW_STEPS:
        return None
    return (f"{steps} steps is very few: a run this short rarely changes what the model does (the adapter "
            f"may only echo its input). The demo trains 60 steps; {FEW_STEPS}+ is the least worth evaluating.")


def measured_seconds_per_token(lab, n_runs: int = 10) -> tuple[float, int] | None:
    """Wall seconds per training token of this lab's recent CPU runs, step to step, so the
    validation passes between steps are counted; (seconds, steps measured) or None."""
    total_s, total_tokens, measured = 0.0, 0.0, 0
    for run in [r for r in lab.store.training_runs(50) if r.get("device") == "cpu" and r["steps"] >= 3][:n_runs]:
        try:
            cfg = json.loads(run["config_json"] or "{}")
            tokens = tokens_per_example(run["dataset_path"], cfg.get("instruction"), int(cfg["max_seq_len"]))
        except (OSError, KeyError, TypeError, ValueError):  # its data is gone: its steps cannot be sized
            continue
        stamps = [_seconds(s["ts"]) for s in lab.store.training_steps(run["id"]) if s.get("ts")]
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
        if not gaps:
            continue
        median = gaps[len(gaps) // 2]
        gaps = [g for g in gaps if g <= 20 * median]  # a stop and a resume hours later is no step
        total_s += sum(gaps)
        total_tokens += len(gaps) * int(cfg.get("batch_size", 4)) * int(cfg.get("grad_accum", 1)) * tokens
        measured += len(gaps)
    return (total_s / total_tokens, measured) if total_tokens else None


def _seconds(ts: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(ts).timestamp()


# Before any run here: SmolLM2-135M on 2 cores, 4 examples of ~100 tokens a step, about 6 s
# with the validation passes spread over the steps (the README's 60 steps in ~15 min).
PRIOR_S_PER_TOKEN_2_CORES = 6 / 400
LOAD_S = 60  # loading (the first time: converting) the base model


def estimate_seconds(lab, steps: int, batch_size: int, tokens: int, grad_accum: int = 1) -> tuple[float, str]:
    """How long `steps` steps of `batch_size` x `grad_accum` examples of ~`tokens` tokens take
    here, validation included: from this lab's own CPU steps when there are any, else from
    the figure for SmolLM2-135M scaled to this machine's cores. Plus loading the model."""
    from ..config import default_threads

    measured = measured_seconds_per_token(lab)
    if measured:
        per_token, n = measured
        basis = f"from {n} steps measured on this machine, validation included"
    else:
        per_token = PRIOR_S_PER_TOKEN_2_CORES * 2 / min(default_threads(), 16)
        basis = "a first guess from the CPU figure for this model; measured once a run has trained here"
    return steps * batch_size * grad_accum * tokens * per_token + LOAD_S, basis
