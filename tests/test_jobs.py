"""Training jobs (lab/tuning/jobs.py): the app's way to train, `python -m lab.tuning` in its own
process. A real one-step LoRA job on the embedded model, a bad config refused with exit 2, the
time estimate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lab.engine import Lab
from lab.tasks import load_task
from lab.tuning import jobs, make_config
from lab.tuning.run import checkpoint_dir, process_started


def _wait(proc_pid: int, timeout: float) -> int:
    """The exit code of our own child job (reaped through jobs' list of children)."""
    child = next(p for p in jobs._CHILDREN if p.pid == proc_pid)
    return child.wait(timeout=timeout)


@pytest.mark.integration
@pytest.mark.slow
def test_a_job_trains_in_its_own_process_and_logs_to_the_lab(shared_home):
    lab = Lab(home=shared_home)
    task = load_task("tickets")
    config = make_config(
        "test",
        name="job-tiny",
        data=str(task.train),
        system=task.instruction + " 🙂",
        max_steps=1,
        batch_size=2,
        max_seq_len=384,
        eval_every=5,
        save_every=5,
    )
    job = jobs.start(lab, config, overwrite=True)
    assert job.config_path.suffix == ".json"
    assert json.loads(job.config_path.read_text(encoding="utf-8"))["instruction"].endswith("🙂")
    code = _wait(job.pid, timeout=900)
    log = job.log_path.read_text(encoding="utf-8", errors="replace")
    assert code == 0, log
    assert "adapter 'job-tiny'" in log
    run = lab.store.training_runs(1, adapter="job-tiny")[0]
    assert run["status"] == "done" and run["steps"] == 1
    assert run["pid"] == job.pid and run["pid_started"]  # the trainer recorded its start time
    assert (lab.home.adapters / "job-tiny" / "lab_adapter.json").exists()
    jobs.reap()
    assert all(p.pid != job.pid for p in jobs._CHILDREN)


def test_a_bad_config_exits_2_naming_the_field(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"input": "a", "output": "b"}\n')
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"name": "bad", "data": str(data), "rank": -1}))
    proc = subprocess.run(
        [sys.executable, "-m", "lab.tuning", "--home", str(tmp_path), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "run.json: field 'rank'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "adapters" / "bad").exists()


def test_stopping_a_run_that_is_not_running_says_so(tmp_path):
    lab = Lab(home=tmp_path)
    run_id = lab.store.insert("training_runs", {"ts": "t", "adapter_name": "x", "status": "done"})
    assert "not running (done)" in jobs.stop(lab, run_id)


def test_the_eta_counts_the_validation_passes_to_come():
    from types import SimpleNamespace

    from lab.tuning.loop import eta_seconds, validations_left

    assert validations_left(5, 10, 10) == 1 and validations_left(10, 10, 10) == 0
    assert validations_left(3, 25, 10) == 3 and validations_left(20, 25, 10) == 1
    run = SimpleNamespace(
        steps_this_session=4,
        val_s=20.0,
        val_passes=1,
        step=10,
        total=20,
        loop_s=lambda: 60.0,
        config=SimpleNamespace(eval_every=10, batch_size=4, grad_accum=1),
        data=SimpleNamespace(val=[1] * 8),
    )
    assert eta_seconds(run) == pytest.approx(10 * 10 + 20)  # 10 steps of 10 s, then the last validation
    run.val_passes, run.val_s = 0, 0.0  # before the first pass: a third of a step per batch of 4
    assert eta_seconds(run) == pytest.approx(10 * 15 + 15 * 8 / 4 / 3)


HOLD_LOCK = """
import sys, time
from lab.engine import Lab
from lab.tuning import trainer_lock
lock = trainer_lock.acquire(Lab(home=sys.argv[1]), sys.argv[2], log="first.log")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_trainer_for_one_adapter_is_refused_naming_the_first(tmp_path, monkeypatch):
    from lab.tuning import TrainingError, train, trainer_lock

    lab = Lab(home=tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text("".join('{"input": "q%d", "output": "a"}\n' % i for i in range(30)))
    config = make_config("test", name="same", data=str(data), max_steps=1)
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path), "same"], stdout=subprocess.PIPE, text=True
    )
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a second trainer must not start"))
    try:
        assert first.stdout.readline().strip() == "locked"
        with pytest.raises(TrainingError, match=rf"'same' is already being trained by process {first.pid}"):
            jobs.start(lab, config)  # the app's Start
        with pytest.raises(TrainingError, match=rf"process {first.pid}, log first.log"):
            train(config, lab)  # `lab train` and the job itself
        trainer_lock.release(trainer_lock.acquire(lab, "other"))  # another adapter is free
        assert not trainer_lock.lock_path(lab, "other").exists()  # and a finished trainer leaves no file
        assert [h["name"] for h in jobs.active_jobs(lab)] == ["same"]
    finally:
        first.kill()
        first.wait(timeout=10)
    assert trainer_lock.holder(lab, "same") is None and jobs.active_jobs(lab) == []


def test_a_job_not_yet_holding_its_lock_is_refused_too(tmp_path, monkeypatch):
    from lab.tuning import TrainingError

    lab = Lab(home=tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text("".join('{"input": "q%d", "output": "a"}\n' % i for i in range(30)))
    config = make_config("test", name="early", data=str(data), max_steps=1)
    sleeper = _sleeper()  # stands in for a job still importing torch
    sleeper.lab_name, sleeper.lab_log = "early", "early.log"
    jobs._CHILDREN.append(sleeper)
    try:
        with pytest.raises(TrainingError, match=f"process {sleeper.pid}"):
            jobs.start(lab, config)
        assert jobs.active_jobs(lab)[0]["pid"] == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
        jobs.reap()


def test_the_bitsandbytes_kernel_download_warning_is_silenced():
    import logging

    import lab.tuning.trainer  # noqa: F401  (the import silences it)

    assert logging.getLogger("bitsandbytes.backends.cpu.ops").getEffectiveLevel() >= logging.ERROR


def _sleeper() -> subprocess.Popen:
    """A plain process standing in for a trainer (or for whatever took a dead trainer's pid)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _running_row(lab, pid: int, started: float | None, steps: int = 0) -> int:
    run_id = lab.store.insert(
        "training_runs", {"ts": "t", "adapter_name": "x", "status": "running", "pid": pid, "pid_started": started}
    )
    for step in range(1, steps + 1):
        lab.store.upsert("training_steps", {"run_id": run_id, "step": step, "loss": 1.0}, pk=("run_id", "step"))
    return run_id


def test_a_trainer_killed_with_sigkill_is_marked_died_with_its_last_step_and_checkpoint(tmp_path):
    lab = Lab(home=tmp_path)
    proc = _sleeper()
    try:
        run_id = _running_row(lab, proc.pid, process_started(proc.pid), steps=7)
        ckpt = checkpoint_dir(lab, "x")
        ckpt.mkdir(parents=True)
        (ckpt / "state.json").write_text(json.dumps({"step": 6}))
        assert jobs.refresh_run_status(lab) == []  # alive: left running
        assert lab.store.training_run(run_id)["status"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert jobs.refresh_run_status(lab) == [run_id]
        run = lab.store.training_run(run_id)
        assert run["status"] == "died" and run["finished_ts"]
        assert "last step 7" in run["error"] and f"checkpoint at step 6 in {ckpt}" in run["error"]
        assert "already died" in jobs.stop(lab, run_id)
        assert jobs.refresh_run_status(lab) == []  # once
    finally:
        proc.kill()


def test_stop_never_signals_a_process_that_is_not_the_trainer(tmp_path):
    lab = Lab(home=tmp_path)
    other = _sleeper()  # holds the pid the row names, but started at another time: the pid was reused
    try:
        run_id = _running_row(lab, other.pid, process_started(other.pid) - 30.0, steps=2)
        message = jobs.stop(lab, run_id)
        assert "Stopping" not in message and "already died" in message and "last step 2" in message
        assert lab.store.training_run(run_id)["status"] == "died"
        legacy = _running_row(lab, other.pid, None)  # a row with no start time cannot vouch for the pid
        assert "not signalling" in jobs.stop(lab, legacy)
        assert lab.store.training_run(legacy)["status"] == "running"
        time.sleep(0.3)
        assert other.poll() is None  # never signalled
    finally:
        other.kill()
        other.wait(timeout=10)


def test_a_lock_removed_by_the_trainer_before_is_taken_afresh(tmp_path):
    """A trainer that opened the lock file just as the one before removed it locks the path's new
    file, not the removed one (else a third trainer could start beside it)."""
    from lab.tuning import TrainingError, trainer_lock

    lab = Lab(home=tmp_path)
    first = trainer_lock.acquire(lab, "a")
    stale = open(trainer_lock.lock_path(lab, "a"), "a+")  # opened before the first lets go
    trainer_lock.release(first)
    second = trainer_lock.acquire(lab, "a")
    assert os.fstat(second.fileno()).st_ino != os.fstat(stale.fileno()).st_ino
    with pytest.raises(TrainingError):
        trainer_lock.acquire(lab, "a")
    trainer_lock.release(second)
    stale.close()
    assert trainer_lock.holder(lab, "a") is None and not trainer_lock.lock_path(lab, "a").exists()
