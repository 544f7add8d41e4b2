"""The one training plan (lab/tuning/plan.py): steps and epochs as the trainer counts them, the
identity that reuses or refuses an adapter or a checkpoint, and the time estimate from this
device's own measured steps."""

from __future__ import annotations

import json

import pytest

from lab.engine import Lab
from lab.tuning import make_config
from lab.tuning import plan as training_plan
from lab.tuning.checkpoint import checkpoint_step
from lab.tuning.plan import LOAD_S, estimate, make_plan, measured_seconds_per_token, steps_for, tokens_per_example


def _data(tmp_path, n=40, chars=0):
    data = tmp_path / "d.jsonl"
    data.write_text("".join('{"input": "q%d%s", "output": "a"}\n' % (i, "x" * chars) for i in range(n)))
    return data


def test_steps_count_whole_batches_then_whole_accumulations():
    assert steps_for(25, 2, 4) == 14 and steps_for(100, 2, 4) == 50
    assert steps_for(100, 2, 4, grad_accum=2) == 26
    assert steps_for(1, 0.1, 4) == 1


def test_a_plan_counts_the_split_the_steps_the_epochs_and_a_cap(tmp_path):
    lab = Lab(home=tmp_path)
    plan = make_plan(
        lab, "test", device="cpu", name="x", data=str(_data(tmp_path)), batch_size=4, epochs=2.0, val_fraction=0.1
    )
    assert plan.n_train == 36 and plan.steps == 18 and plan.full_steps == 18 and not plan.capped
    assert plan.epochs == pytest.approx(2.0)  # 36 training examples, 9 batches, 2 epochs
    capped = make_plan(
        lab, "test", device="cpu", name="x", data=str(_data(tmp_path)), batch_size=4, epochs=2.0, max_steps=6
    )
    assert capped.steps == 6 and capped.capped and capped.epochs == pytest.approx(2.0 * 6 / 18)
    longer = make_plan(lab, "test", device="cpu", name="x", data=str(_data(tmp_path)), max_steps=50)
    assert longer.steps == 50 and not longer.capped  # max_steps overrides epochs, as the trainer does
    assert "5 steps is very few" in training_plan.few_steps_warning(5) and "echo" in training_plan.few_steps_warning(5)
    assert training_plan.few_steps_warning(60) is None


def test_cuda_defaults_accumulate_and_the_estimate_counts_it(tmp_path):
    """issue 22: the climb's and the curve's estimates ignored grad_accum (2 by default on CUDA)."""
    lab = Lab(home=tmp_path)
    data = str(_data(tmp_path))
    gpu = make_plan(lab, "test", device="cuda", name="x", data=data)
    assert gpu.device == "cuda" and gpu.config.grad_accum == 2 and gpu.examples_per_step == 16
    one = make_plan(lab, "test", device="cpu", name="x", data=data, grad_accum=1, max_steps=10)
    two = make_plan(lab, "test", device="cpu", name="x", data=data, grad_accum=2, max_steps=10)
    assert estimate(lab, two)[0] - LOAD_S == pytest.approx(2 * (estimate(lab, one)[0] - LOAD_S))


def _measured_run(lab, data, device="cpu", base_model=None, step_s=10):
    run_id = lab.store.insert(
        "training_runs",
        {
            "ts": "t",
            "adapter_name": "x",
            "status": "done",
            "device": device,
            "dataset_path": str(data),
            "base_model": base_model,
            "config_json": json.dumps({"batch_size": 2, "max_seq_len": 512}),
        },
    )
    # step_s a step, one step twice as long (a validation pass): counted; a 2-hour gap (stopped, resumed): not
    for step, t in enumerate([0, step_s, 3 * step_s, 4 * step_s, 7200 + 4 * step_s, 7200 + 5 * step_s], 1):
        lab.store.upsert(
            "training_steps",
            {
                "run_id": run_id,
                "step": step,
                "ts": f"2026-01-01T{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}+00:00",
            },
            pk=("run_id", "step"),
        )


def test_the_estimate_uses_steps_measured_on_this_device_validation_included(tmp_path):
    lab = Lab(home=tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join('{"input": "%s", "output": "b"}\n' % ("x" * 371) for _ in range(10))
    )  # 400 chars: 100 tokens
    plan = make_plan(lab, "test", device="cpu", name="x", data=str(data), batch_size=2, max_steps=10, val_fraction=0)
    secs, basis = estimate(lab, plan)
    assert "first guess" in basis and secs > LOAD_S
    assert tokens_per_example(data, None, 512) == 100
    _measured_run(lab, data, device="cuda", step_s=1)  # a GPU's steps never size a CPU run
    assert "first guess" in estimate(lab, plan)[1]
    _measured_run(lab, data, device="cpu")
    per_token, n = measured_seconds_per_token(lab, "cpu")
    assert n == 4 and per_token == pytest.approx(50 / (4 * 2 * 100))
    secs, basis = estimate(lab, plan)
    assert "4 steps measured on this machine" in basis and "validation included" in basis
    assert secs == pytest.approx(10 * 12.5 + LOAD_S)
    gpu = make_plan(
        lab, "test", device="cuda", name="x", data=str(data), batch_size=2, grad_accum=1, max_steps=10, val_fraction=0
    )
    secs, basis = estimate(lab, gpu)
    assert "this GPU" in basis and secs == pytest.approx(10 * 1.25 + LOAD_S)


def test_identity_ignores_how_a_run_was_watched_not_what_it_learned(tmp_path):
    cfg = make_config("test", name="x", data=str(tmp_path / "d.jsonl")).to_json()
    assert training_plan.learned(cfg) == training_plan.learned(
        {**cfg, "threads": 3, "eval_every": 99, "name": "y", "data": "/elsewhere"}
    )
    assert training_plan.learned(cfg) != training_plan.learned({**cfg, "rank": 64})
    assert training_plan.resumable_settings(cfg) == training_plan.resumable_settings({**cfg, "max_steps": 500})
    assert training_plan.learned(cfg) != training_plan.learned({**cfg, "max_steps": 500})


def test_a_checkpoint_fits_the_same_settings_and_data_only(tmp_path):
    lab = Lab(home=tmp_path)
    data = _data(tmp_path)
    config = make_config("test", name="x", data=str(data), rank=8)
    assert checkpoint_step(lab, config) == (None, "")
    folder = lab.home.adapters / ".runs" / "x" / "checkpoint"
    folder.mkdir(parents=True)
    from lab.models import sha256_of

    (folder / "state.json").write_text(
        json.dumps({"step": 7, "config": config.to_json(), "base_sha": "b", "dataset_sha": sha256_of(data)})
    )
    assert checkpoint_step(lab, config.model_copy(update={"max_steps": 99})) == (7, "")  # longer: continues
    step, why = checkpoint_step(lab, config.model_copy(update={"rank": 16}))
    assert step is None and "other settings (rank)" in why
    step, why = checkpoint_step(lab, config, base_sha="another")
    assert step is None and "base model changed" in why
    data.write_text(data.read_text() + '{"input": "new", "output": "a"}\n')
    step, why = checkpoint_step(lab, config)
    assert step is None and "data changed" in why
