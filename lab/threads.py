"""How many CPU threads a job takes: the one place that decides it, for torch (training) and
llama.cpp (generation) alike.

A thread that finds its core busy does not just go slower: torch and llama.cpp split each
operation across their threads and wait for the last one, so one thread sharing a core with
another process holds every other thread up. On a 2-core machine with one other busy job, 60 LoRA
steps ran at 30 s/step on every core and at 4.5 s/step on one thread. So a job takes the cores
this process may run on less the work already running on them, at least one; an explicit setting
(`--threads`, `n_threads` in lab.toml) always wins.

The load is measured, not guessed: the share of this process's CPUs that other processes kept busy
over a short window (`/proc/stat`, less this process's own CPU time), which sees a job that started
a second ago and forgets one that just ended (the 1-minute load average, the fallback where there
is no /proc, does neither). This process's own threads do not count: a thread pool of its own that
is still spinning after its last task (llama.cpp's, torch's) is not another job.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

WINDOW_S = 0.2  # how long the load is measured for (once, when a model or a trainer starts)
# A CPU counts as free while at most this share of it is in use by others: a thread on a core that
# is a third busy already waits for it, and oversubscribing costs far more than one idle core.
BUSY_TOLERATED = 0.3


def cpus() -> set[int]:
    """The logical CPUs this process may run on (a cgroup cpuset or `taskset` narrows them)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def smt_ratio() -> float:
    """Physical cores per logical CPU (0.5 with two hyperthreads a core, which share one core's
    arithmetic: llama.cpp and torch run one thread per physical core), 1.0 when unknown."""
    try:
        import psutil

        physical, logical = psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)
    except Exception:  # noqa: BLE001 - psutil missing or unable to tell: count every CPU
        return 1.0
    if not physical or not logical or physical >= logical:
        return 1.0
    return physical / logical


def _cpu_times(which: set[int]) -> tuple[int, int] | None:
    """(busy, total) jiffies summed over the CPUs `which`, from /proc/stat; None without it."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    busy = total = 0
    found = False
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in which):
            continue
        # user nice system idle iowait irq softirq steal (guest time is already inside user)
        t = [int(x) for x in fields[:8]]
        total += sum(t)
        busy += sum(t) - t[3] - t[4]  # idle and waiting on I/O leave the core free
        found = True
    return (busy, total) if found else None


def _own_cpu_s() -> float:
    """CPU seconds this process has used so far, all its threads."""
    t = os.times()
    return t.user + t.system


def busy_cpus(which: set[int] | None = None, window_s: float = WINDOW_S) -> float | None:
    """How many of the CPUs `which` (default: this process's) other processes kept busy over the
    next `window_s` seconds, in CPUs (0.0 to len(which)); None where /proc/stat cannot tell. The
    caller sleeps meanwhile, so it measures the work that is already there."""
    which = cpus() if which is None else which
    before, own_before = _cpu_times(which), _own_cpu_s()
    if before is None:
        return None
    time.sleep(window_s)
    after, own_after = _cpu_times(which), _own_cpu_s()
    if after is None or after[1] <= before[1]:
        return None
    try:
        hz = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in these ticks
    except (AttributeError, ValueError, OSError):
        hz = 100
    others = (after[0] - before[0]) - (own_after - own_before) * hz
    return max(0.0, len(which) * others / (after[1] - before[1]))


def load_now() -> float:
    """CPUs' worth of work running now on this process's CPUs: measured (`busy_cpus`), else the
    1-minute load average, else 0."""
    busy = busy_cpus()
    if busy is not None:
        return busy
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def threads_for_load(requested: int | None = None) -> int:
    """CPU threads for a job starting now: `requested` when it is set (a user's explicit choice
    wins), else the free physical cores (this process's CPUs less the load running on them,
    counted in physical cores), at least 1."""
    if requested:
        return max(1, int(requested))
    which = cpus()
    ratio = smt_ratio()
    free = len(which) - load_now()  # logical CPUs nobody is using
    cores = max(1, round(len(which) * ratio))
    return max(1, min(cores, math.floor(free * ratio + BUSY_TOLERATED)))
