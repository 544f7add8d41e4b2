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
from .checkpoint import find_checkpoint
from .config import TrainConfig, TrainConfigError
from .run import process_started

_CHILDREN: list[subprocess.Popen] = []  # reaped when polled, so no zombie is left


@dataclass
class Job:
    pid: int
    name: str
    config_path: Path
    log_path: Path


def start(lab, config: TrainConfig, *, overwrite: bool = False, resume: bool = False,
          restart: bool = False) -> Job:
    """Start training `config` in a background process; returns at once."""
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
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(lab.home.root), env=_child_env(), start_new_session=True)
    _CHILDREN.append(proc)
    return Job(proc.pid, config.name, config_path, log_path)


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


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
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


def estimate_seconds(lab, steps: int, batch_size: int, tokens: int) -> tuple[float, str]:
    """How long `steps` steps of `batch_size` examples of ~`tokens` tokens take here: from this
    lab's own CPU runs (tokens/s) when there are any, else from the figure measured for
    SmolLM2-135M (1.5 s per step of 4 x ~100 tokens on 2 cores), scaled to this machine's
    cores. Plus about a minute to load (the first time: convert) the base model."""
    from ..config import default_threads

    rate = lab.store.cpu_training_tokens_per_s()
    if rate:
        basis = "from this lab's earlier training runs"
    else:
        rate = 4 * 100 / 1.5 * min(default_threads(), 16) / 2
        basis = "from the CPU figure for this model, scaled to this machine's cores"
    return steps * batch_size * tokens / rate + 60, basis
