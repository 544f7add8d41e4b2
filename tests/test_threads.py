"""lab.threads: the CPU threads a job takes are the free cores now (this process's CPUs less the
load running on them), at least one, and an explicit setting wins; torch (training) and llama.cpp
(generation) both ask it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lab import threads

LAB = Path(__file__).resolve().parents[1] / "lab"


@pytest.fixture
def machine(monkeypatch):
    """A machine with `cpus` logical CPUs (SMT ratio `smt`) and `busy` CPUs' worth of other work."""

    def set_up(cpus: int, busy: float | None, smt: float = 1.0, loadavg: float = 0.0):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
        monkeypatch.setattr(threads, "smt_ratio", lambda: smt)
        monkeypatch.setattr(threads, "busy_cpus", lambda *a, **k: busy)
        monkeypatch.setattr(os, "getloadavg", lambda: (loadavg, loadavg, loadavg))

    return set_up


def test_an_explicit_setting_wins_whatever_the_load(machine):
    machine(cpus=2, busy=2.0)
    assert threads.threads_for_load(4) == 4
    assert threads.threads_for_load(1) == 1


def test_an_idle_machine_gets_every_core(machine):
    machine(cpus=8, busy=0.0)
    assert threads.threads_for_load(None) == 8


def test_one_busy_job_on_two_cores_leaves_one_thread(machine):
    # the case: 60 LoRA steps at 30 s/step on both cores, 4.5 s/step on one
    machine(cpus=2, busy=1.0)
    assert threads.threads_for_load(None) == 1


def test_a_core_counts_as_free_only_while_it_is_mostly_idle(machine):
    machine(cpus=2, busy=0.2)  # background noise does not cost a thread
    assert threads.threads_for_load(None) == 2
    machine(cpus=2, busy=0.5)  # a thread there would wait for half a core, holding the others up
    assert threads.threads_for_load(None) == 1
    machine(cpus=16, busy=3.9)
    assert threads.threads_for_load(None) == 12


def test_at_least_one_thread_however_busy(machine):
    machine(cpus=2, busy=2.0)
    assert threads.threads_for_load(None) == 1
    machine(cpus=1, busy=1.0)
    assert threads.threads_for_load(None) == 1


def test_the_affinity_narrows_the_cores(machine, monkeypatch):
    machine(cpus=1, busy=0.0)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the host's count is not this process's
    assert threads.threads_for_load(None) == 1


def test_hyperthreads_count_as_their_physical_cores(machine):
    machine(cpus=8, busy=0.0, smt=0.5)
    assert threads.threads_for_load(None) == 4
    machine(cpus=8, busy=2.0, smt=0.5)
    assert threads.threads_for_load(None) == 3


def test_without_proc_stat_the_load_average_stands_in(machine):
    machine(cpus=4, busy=None, loadavg=3.0)
    assert threads.load_now() == 3.0
    assert threads.threads_for_load(None) == 1
    machine(cpus=4, busy=None, loadavg=0.1)
    assert threads.threads_for_load(None) == 4


def test_busy_cpus_is_the_share_of_this_process_cpus_that_others_keep_busy(monkeypatch):
    hz = os.sysconf("SC_CLK_TCK")
    samples = iter([(100, 400), (250, 600)])  # (busy, total) ticks: 150 busy of 200 over the window
    monkeypatch.setattr(threads, "_cpu_times", lambda which: next(samples))
    monkeypatch.setattr(threads, "_own_cpu_s", iter([10.0, 10.0]).__next__)  # this process idle
    assert threads.busy_cpus({0, 1}, window_s=0) == pytest.approx(1.5)
    # this process's own threads (a pool still spinning) were 50 of those ticks: not another job's
    samples = iter([(100, 400), (250, 600)])
    monkeypatch.setattr(threads, "_own_cpu_s", iter([10.0, 10.0 + 50 / hz]).__next__)
    assert threads.busy_cpus({0, 1}, window_s=0) == pytest.approx(1.0)
    monkeypatch.setattr(threads, "_cpu_times", lambda which: None)
    monkeypatch.setattr(threads, "_own_cpu_s", lambda: 0.0)
    assert threads.busy_cpus({0, 1}, window_s=0) is None


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux only")
def test_busy_cpus_reads_this_machine():
    which = threads.cpus()
    busy = threads.busy_cpus(which, window_s=0.05)
    assert busy is not None and 0.0 <= busy <= len(which)
    assert 1 <= threads.threads_for_load(None) <= len(which)


def test_every_thread_choice_in_the_lab_goes_through_threads_for_load():
    """One place decides: each torch.set_num_threads and llama.cpp's n_threads ask threads_for_load."""
    calls = []
    for path in LAB.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"set_num_threads\(|self\.n_threads\s*=", line) and "def " not in line:
                calls.append((path.relative_to(LAB).as_posix(), n, line.strip()))
    assert any(c[0].startswith("tuning/") for c in calls) and any(c[0] == "backends/llamacpp.py" for c in calls)
    assert [c for c in calls if "threads_for_load(" not in c[2]] == []


@pytest.mark.integration
def test_llamacpp_takes_the_free_cores_unless_told(monkeypatch, tmp_path):
    from lab.backends.llamacpp import LlamaCppBackend
    from lab.engine import Lab

    info = Lab(home=tmp_path).model_info()
    monkeypatch.setattr(threads, "cpus", lambda: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "smt_ratio", lambda: 1.0)
    monkeypatch.setattr(threads, "load_now", lambda: 3.0)
    assert LlamaCppBackend(info, n_ctx=256).n_threads == 1
    assert LlamaCppBackend(info, n_ctx=256, n_threads=2).n_threads == 2
