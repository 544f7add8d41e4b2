"""One trainer per adapter: a lock file per adapter name in `.lab/training/locks/`, held (flock)
for as long as the trainer process lives, whoever started it (`lab train`, the app's job).

Two trainers writing one adapter's checkpoint and folder would overwrite each other, so the
second one is refused, naming the first. The lock is the kernel's: a trainer killed with -9
releases it at once, and a stale file is harmless (the next trainer locks it). A trainer that
ends removes its file (while still holding it), so a refused `lab train` leaves nothing behind;
one that opened the file just before it was removed sees the path changed and opens it again.
The file also records who holds it (pid, start time, log), which is how the app finds a run
that is still loading its model.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from ..home import lock_file, unlock_file
from .run import TrainingError, process_started


def lock_path(lab, name: str) -> Path:
    return lab.home.state / "training" / "locks" / f"{name}.lock"


def holder(lab, name: str) -> dict | None:
    """Who trains adapter `name` now ({pid, pid_started, ...}), None when no process does."""
    try:
        f = open(lock_path(lab, name), encoding="utf-8")  # never created here: only a trainer makes it
    except FileNotFoundError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            try:
                return json.loads(f.read() or "{}") | {"name": name}
            except json.JSONDecodeError:  # the holder is writing it this very moment
                return {"name": name}
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def holders(lab) -> list[dict]:
    """Every adapter being trained now, with its holder."""
    folder = lab.home.state / "training" / "locks"
    found = [holder(lab, p.stem) for p in sorted(folder.glob("*.lock"))] if folder.is_dir() else []
    return [h for h in found if h is not None]


def describe(held: dict) -> str:
    pid = f"process {held['pid']}" if held.get("pid") else "another process"
    log = f", log {held['log']}" if held.get("log") else ""
    return f"'{held['name']}' is already being trained by {pid}{log}"


def acquire(lab, name: str, log: str | None = None):
    """Take adapter `name`'s lock for this process (returns the open file: keep it, `release`
    it when done); TrainingError naming the trainer that holds it."""
    try:
        f = lock_file(lock_path(lab, name), wait=False)
    except BlockingIOError:
        held = holder(lab, name) or {"name": name}
        raise TrainingError(
            f"{describe(held)}: wait for it to finish or stop it first (two trainers "
            "on one adapter would overwrite each other)"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "pid_started": process_started(os.getpid()), "log": log}))
    f.flush()
    return f


def release(f) -> None:
    """Remove the lock file, then let go of it (in that order: no one locks a file on its way out)."""
    if f is None or f.closed:
        return
    unlock_file(f, remove=True)
