"""The offline demo (lab/demo.py): the plan's done/not-done detection and estimates on a fake model,
then a real tiny prepare (one scenario, two held-out examples, a one-step adapter) whose rerun
does nothing, and a prepare cancelled mid-training that a rerun resumes from its checkpoint."""

from __future__ import annotations

import json
import re
import threading

import gradio as gr
import pytest

from lab import demo
from lab.demo import build
from lab.engine import Lab
from lab.evaluation import run_eval
from lab.evaluation.runner import matching_run
from lab.tasks import load_task
from lab.tuning.run import checkpoint_dir


def _by(steps, action, name=None):
    return [s for s in steps if s.action == action and (name is None or s.name == name or s.task == name)]


def _fake_adapter(lab, name: str, config, dataset_sha: str, base_sha: str = "fake") -> None:
    folder = lab.home.adapters / name
    folder.mkdir(parents=True)
    (folder / "lab_adapter.json").write_text(
        json.dumps(
            {
                "base_model": {"id": "fake", "sha256": base_sha},
                "adapter": {"sha256": "0" * 64},
                "dataset": {"sha256": dataset_sha},
                "config": config.to_json(),
            }
        )
    )


def _dataset_sha(task_name: str) -> str:
    from lab.models import sha256_of

    return sha256_of(load_task(task_name).train)


# ---- the plan (fake model) ------------------------------------------------------------------------


def test_a_fresh_home_plans_every_step_not_done_with_an_estimate(fake_lab):
    steps = demo.plan(fake_lab, limit=5)
    assert [s.action for s in steps] == ["index"] + ["eval"] * 3 + ["train"] * 3 + ["eval"] * 3
    # the demo's three scenarios, not every built-in (support-tone only when named)
    assert {s.task for s in _by(steps, "eval")} == {"acme-facts", "specialty", "tickets"}
    assert not any(s.done for s in steps)
    assert all(s.seconds > 0 and s.basis and s.why for s in steps)
    assert demo.total_seconds(steps) == pytest.approx(sum(s.seconds for s in steps))
    # the tune evaluations use the adapters the train steps make, all arms of each scenario covered
    facts = _by(steps, "eval", "acme-facts")
    assert facts[0].arms == ["zero-shot", "few-shot", "rag"]
    assert facts[1].arms == ["zero-shot", "few-shot", "rag", "tune", "tune+rag"]  # run_eval skips rows it has
    assert facts[1].adapter == "acme-facts" and _by(steps, "eval", "tickets")[0].arms == ["zero-shot", "few-shot"]
    assert all(
        s.todo == 5 * len([a for a in s.arms if a.startswith("tune") == bool(s.adapter)]) for s in _by(steps, "eval")
    )  # the prompt arms' rows are the first eval steps' work
    assert "evaluate acme-facts on tune, tune+rag with 'acme-facts'" in facts[1].what
    # no answer logged yet: three probe answers were timed (and logged) for the estimate
    assert "probe" in _by(steps, "eval")[0].basis
    assert len(fake_lab.store.recent_generations(10)) == 3
    text = demo.describe(steps)
    assert "0 of 10 steps done" in text and "train the demo adapter 'tickets'" in text


def test_a_built_in_outside_the_demo_is_prepared_only_when_named(fake_lab):
    steps = demo.plan(fake_lab, limit=2, only=["support-tone"])
    assert [s.action for s in steps] == ["eval", "train", "eval"]
    assert _by(steps, "eval")[0].task == "support-tone" and _by(steps, "eval")[0].arms == ["zero-shot", "few-shot"]


def test_a_stored_evaluation_counts_as_done_and_a_partial_one_as_what_is_left(fake_lab):
    run_eval(fake_lab, "specialty", ["zero-shot", "few-shot"], limit=3, progress=False)
    step = _by(demo.plan(fake_lab, limit=3, only=["specialty"]), "eval")[0]
    assert step.done and step.seconds == 0 and step.todo == 0
    step = _by(demo.plan(fake_lab, limit=5, only=["specialty"]), "eval")[0]
    assert not step.done and step.todo == 4 and step.state == "6 of 10 answered"
    assert step.basis.startswith("this task's earlier")  # its own timings, from the log


def test_an_adapter_with_the_same_data_and_config_is_reused(fake_lab):
    config = demo.adapter_plan(fake_lab, load_task("tickets")).config
    _fake_adapter(fake_lab, "tickets", config, _dataset_sha("tickets"))
    train, tune_eval = (
        _by(demo.plan(fake_lab, only=["tickets"]), "train")[0],
        _by(demo.plan(fake_lab, only=["tickets"]), "eval")[1],
    )
    assert train.done and train.name == "tickets" and train.seconds == 0
    assert tune_eval.adapter == "tickets" and not tune_eval.done


@pytest.mark.parametrize("change", ["data", "config", "base"])
def test_another_adapter_of_the_scenarios_name_is_kept_and_the_demo_trains_its_own(fake_lab, change):
    config = demo.adapter_plan(fake_lab, load_task("tickets")).config
    if change == "config":
        config = config.model_copy(update={"rank": 4})
    _fake_adapter(
        fake_lab,
        "tickets",
        config,
        "x" if change == "data" else _dataset_sha("tickets"),
        base_sha="other" if change == "base" else "fake",
    )
    steps = demo.plan(fake_lab, only=["tickets"])
    train = _by(steps, "train")[0]
    assert not train.done and train.name == "tickets-demo" and "'tickets' holds another" in train.state
    assert _by(steps, "eval")[1].adapter == "tickets-demo"


def _checkpoint(lab, name: str, step: int, config, dataset_sha: str) -> None:
    folder = checkpoint_dir(lab, name)
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(
        json.dumps({"step": step, "config": config.to_json(), "base_sha": "fake", "dataset_sha": dataset_sha})
    )


def test_a_checkpoint_of_the_demo_config_is_resumed_and_counted(fake_lab):
    config = demo.adapter_plan(fake_lab, load_task("specialty"), {"max_steps": 30}).config
    _checkpoint(fake_lab, "specialty", 20, config, _dataset_sha("specialty"))
    train = _by(demo.plan(fake_lab, only=["specialty"], train_overrides={"max_steps": 30}), "train")[0]
    assert train.name == "specialty" and train.todo == 10 and train.state == "checkpoint at step 20 of 30"
    # max_steps is a change the trainer resumes with, too
    longer = _by(demo.plan(fake_lab, only=["specialty"], train_overrides={"max_steps": 60}), "train")[0]
    assert longer.name == "specialty" and longer.todo == 40 and longer.seconds > train.seconds


def test_a_checkpoint_of_other_settings_is_left_alone(fake_lab):
    config = demo.adapter_plan(fake_lab, load_task("specialty")).config.model_copy(update={"rank": 4})
    _checkpoint(fake_lab, "specialty", 20, config, _dataset_sha("specialty"))
    train = _by(demo.plan(fake_lab, only=["specialty"]), "train")[0]
    assert train.name == "specialty-demo" and train.todo == demo.CPU_STEPS
    assert "'specialty' holds another" in train.state


def test_needed_only_while_the_home_lacks_adapters_or_evaluations(fake_lab):
    assert demo.needed(fake_lab)
    run_eval(fake_lab, "specialty", ["zero-shot"], limit=1, progress=False)
    assert demo.needed(fake_lab)  # still no adapter
    _fake_adapter(fake_lab, "tickets", demo.adapter_plan(fake_lab, load_task("tickets")).config, "x")
    assert not demo.needed(fake_lab)


def test_an_unknown_scenario_is_an_error_naming_the_built_ins(fake_lab):
    from lab.tasks import TaskError

    with pytest.raises(TaskError, match="not a built-in scenario: nope.*tickets"):
        demo.plan(fake_lab, only=["nope"])


# ---- the job and the app's first-launch block ----------------------------------------------------


def _sleeper():
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _row(lab, proc, **values) -> int:
    from lab.tuning.run import process_started

    return lab.store.insert(
        "demo_runs",
        {
            "ts": "t",
            "pid": proc.pid,
            "pid_started": process_started(proc.pid),
            "status": "running",
            "step": 2,
            "steps": 10,
            "fraction": 0.5,
            "message": "evaluating tickets",
            "estimate_s": 600.0,
            **values,
        },
    )


def test_stop_signals_the_running_preparation_and_a_dead_one_is_marked_died(fake_lab):
    proc = _sleeper()
    try:
        _row(fake_lab, proc)
        assert demo.latest_run(fake_lab)["status"] == "running"
        assert demo.stop_job(fake_lab).startswith("Stopping")
        assert proc.wait(timeout=10) != 0  # SIGTERM
        assert demo.latest_run(fake_lab)["status"] == "died"
        assert demo.stop_job(fake_lab) == "No demo preparation is running."
    finally:
        proc.kill()


def test_the_first_launch_block_offers_the_demo_with_an_estimate_then_hides(fake_lab):
    from lab.app import demo_block

    block, note, button, cancel, status, timer = demo_block.offer(fake_lab)
    assert block["visible"] and "First launch" in note and not cancel["visible"]
    assert re.fullmatch(r"Prepare the demo \(about \d+ min, a first estimate\)", button["value"])
    assert fake_lab.store.recent_generations(5) == []  # no probe answers from a page load
    run_eval(fake_lab, "specialty", ["zero-shot"], limit=1, progress=False)
    _fake_adapter(fake_lab, "tickets", demo.adapter_plan(fake_lab, load_task("tickets")).config, "x")
    assert demo_block.offer(fake_lab)[0]["visible"] is False


def test_the_block_shows_a_running_preparations_progress_and_its_end(fake_lab, monkeypatch):
    from lab.app import demo_block

    proc = _sleeper()
    try:
        monkeypatch.setattr(demo, "start_job", lambda lab: proc)
        text, button, cancel, _timer = demo_block.start(fake_lab)
        assert f"process {proc.pid}" in text and not button["visible"] and cancel["visible"]
        run_id = _row(fake_lab, proc)
        status, button, cancel, _timer = demo_block.poll(fake_lab)
        assert "step 2 of 10: evaluating tickets" in status and "10 min left" in status and cancel["visible"]
        assert "1 / 10" not in status  # no count that contradicts "step 2 of 10"
        assert "Already preparing" in demo_block.start(fake_lab)[0]
        fake_lab.store.update("demo_runs", run_id, {"status": "done"})
        status, button, cancel, _timer = demo_block.poll(fake_lab)
        assert "The demo is ready" in status and not button["visible"] and not cancel["visible"]
    finally:
        proc.kill()


def test_a_just_started_preparation_shows_as_starting_before_it_writes_its_row(fake_lab, monkeypatch):
    """The page polls 2 s after the click; the job plans first (imports, seconds) and writes its row
    after: the poll must show the job it started, with Cancel, not the previous run's end."""
    from lab.app import demo_block
    from lab.tuning import jobs

    old = _sleeper()
    old.kill()
    old.wait()
    fake_lab.store.update("demo_runs", _row(fake_lab, old), {"status": "cancelled"})  # an earlier, stopped run
    proc = _sleeper()
    monkeypatch.setattr(jobs, "spawn", lambda lab, args, log_path: proc)
    try:
        demo_block.start(fake_lab)
        status, button, cancel, timer = demo_block.poll(fake_lab)
        assert "starting" in status and cancel["visible"] and not button["visible"] and timer.active
        assert demo.stop_job(fake_lab).startswith("Stopping")  # Cancel reaches the starting process
        proc.wait(timeout=10)
        status, button, cancel, timer = demo_block.poll(fake_lab)
        assert "Stopped" in status and button["visible"] and not cancel["visible"] and not timer.active
    finally:
        proc.kill()
        build._STARTED.clear()


# ---- real model, real index, real training ---------------------------------------------------------

# a step or two of short batches, no validation pass: minutes on a busy 2-core machine
TINY = {"max_steps": 1, "batch_size": 2, "max_seq_len": 384, "val_fraction": 0.0}
TINY2 = {**TINY, "max_steps": 2}


def _counts(lab) -> dict:
    q = lambda sql: lab.store.query(sql)[0]["n"]  # noqa: E731
    return {
        "generations": q("select count(*) as n from generations"),
        "eval_results": q("select count(*) as n from eval_results"),
        "training_runs": q("select count(*) as n from training_runs"),
        "training_steps": q("select count(*) as n from training_steps"),
    }


@pytest.mark.integration
@pytest.mark.slow
def test_a_tiny_real_prepare_builds_everything_and_a_rerun_does_nothing(shared_home):
    lab = Lab(home=shared_home)  # shared: the model's conversion for training is done once
    events = []
    result = demo.prepare(lab, only=["tickets"], limit=2, train_overrides=TINY, on_progress=events.append)
    assert result.status == "done", result
    assert [s.action for s in result.steps] == ["eval", "train", "eval"] and all(s.done for s in result.steps)
    assert (lab.home.adapters / "tickets" / "adapter.gguf").exists()
    run = matching_run(lab, "tickets")  # the tune arm joined the run of the prompt arms
    board = lab.store.query(
        "select arm, count(*) as n from eval_results where eval_run_id = ? group by arm", [run["id"]]
    )
    assert {r["arm"] for r in board} == {"few-shot", "tune", "zero-shot"} and all(r["n"] >= 2 for r in board)
    assert events[-1]["fraction"] == 1.0 and events[-1]["step"] == 3
    row = lab.store.query("select * from demo_runs where id = ?", [result.run_id])[0]
    assert row["status"] == "done" and row["step"] == 3 and row["wall_s"] > 0

    before = _counts(lab)
    again = demo.plan(lab, only=["tickets"], limit=2, train_overrides=TINY)
    assert all(s.done for s in again), demo.describe(again)
    rerun = demo.prepare(lab, only=["tickets"], limit=2, train_overrides=TINY)
    assert rerun.status == "done" and _counts(lab) == before  # nothing generated, trained or scored twice


@pytest.mark.integration
@pytest.mark.slow
def test_a_prepare_cancelled_mid_training_resumes_from_its_checkpoint(shared_home):
    lab = Lab(home=shared_home)
    cancel = threading.Event()

    def cancel_after_first_step(event):
        if event["action"] == "train" and "step 1 of" in event["message"]:
            cancel.set()

    first = demo.prepare(
        lab, only=["specialty"], limit=1, train_overrides=TINY2, cancel=cancel, on_progress=cancel_after_first_step
    )
    assert first.status == "cancelled"
    assert [s.done for s in first.steps] == [True, False, False]
    assert (checkpoint_dir(lab, "specialty") / "state.json").exists()
    assert not (lab.home.adapters / "specialty").exists()
    train = _by(demo.plan(lab, only=["specialty"], limit=1, train_overrides=TINY2), "train")[0]
    assert train.state == "checkpoint at step 1 of 2" and train.todo == 1

    second = demo.prepare(lab, only=["specialty"], limit=1, train_overrides=TINY2)
    assert second.status == "done" and [s.done for s in second.steps] == [True, True, True]
    runs = lab.store.training_runs(5, adapter="specialty")
    assert len(runs) == 1 and runs[0]["status"] == "done"  # the same run, continued
    steps = lab.store.query("select step from training_steps where run_id = ? order by step", [runs[0]["id"]])
    assert [r["step"] for r in steps] == [1, 2]  # step 1 was not trained twice
    run = matching_run(lab, "specialty")  # the demo's run (the shared home holds other tests' runs too)
    assert {r["arm"] for r in lab.store.query("select arm from eval_results where eval_run_id = ?", [run["id"]])} == {
        "zero-shot",
        "few-shot",
        "tune",
    }


def test_the_offer_follows_what_happens_elsewhere_without_replanning(fake_lab, monkeypatch):
    """An evaluation run in another tab: the note stops saying "First launch?"; an adapter too:
    the block goes. Nothing is planned again while the note still fits."""
    from lab.app import demo_block

    block, note, *_ = demo_block.offer(fake_lab)
    assert "First launch?" in note
    planned = []
    monkeypatch.setattr(demo, "plan", lambda lab, **kw: planned.append(1) or [])
    assert demo_block.recheck(fake_lab, note) == (gr.update(), gr.update()) and planned == []
    run_eval(fake_lab, "specialty", ["zero-shot"], limit=1, progress=False)
    block, note = demo_block.recheck(fake_lab, note)
    assert note.startswith("**No adapter yet:**") and block["visible"] and planned == [1]
    _fake_adapter(fake_lab, "tickets", demo.adapter_plan(fake_lab, load_task("tickets")).config, "x")
    assert demo_block.recheck(fake_lab, note)[0] == gr.update(visible=False)
