"""Checkpoints resume on any device (lab/tuning/checkpoint.py): the trainer state loads on the CPU,
the optimizer moves its tensors to its parameters' device, and the CPU and CUDA generators are each
restored on their own device (issue 22: map_location=<the GPU> made every resume on CUDA fail)."""

from __future__ import annotations

import pytest
import torch

from lab.tuning.checkpoint import load_trainer_state, restore_rng, rng_states


def _save(folder, params) -> None:
    opt = torch.optim.AdamW(params, lr=0.1)
    params[0].grad = torch.ones_like(params[0])
    opt.step()
    torch.save({"optimizer": opt.state_dict(), **rng_states()}, folder / "trainer_state.pt")


def test_the_trainer_state_loads_on_the_cpu_and_the_rng_sequence_continues(tmp_path):
    torch.manual_seed(5)
    _save(tmp_path, [torch.nn.Parameter(torch.zeros(3))])
    expected = torch.rand(4)  # what the run would have drawn next
    torch.manual_seed(99)
    saved = load_trainer_state(tmp_path)
    assert saved["torch_rng"].device.type == "cpu"
    restore_rng(saved)
    assert torch.equal(torch.rand(4), expected)


def test_a_state_restores_onto_parameters_on_another_device(tmp_path):
    """Parameters on another device (meta stands in for a GPU here): the optimizer state follows
    them, and the CPU generator still takes its CPU state (the old map_location=device broke this)."""
    _save(tmp_path, [torch.nn.Parameter(torch.zeros(3))])
    saved = load_trainer_state(tmp_path)
    elsewhere = [torch.nn.Parameter(torch.zeros(3, device="meta"))]
    opt = torch.optim.AdamW(elsewhere, lr=0.1)
    opt.load_state_dict(saved["optimizer"])
    assert opt.state[elsewhere[0]]["exp_avg"].device.type == "meta"
    restore_rng(saved)  # no "expected a CPU ByteTensor" error
    with pytest.raises((TypeError, RuntimeError)):  # what loading it onto the device did
        torch.set_rng_state(saved["torch_rng"].to("meta"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_generators_round_trip(tmp_path):
    params = [torch.nn.Parameter(torch.zeros(3, device="cuda"))]
    torch.cuda.manual_seed_all(5)
    _save(tmp_path, params)
    expected = torch.rand(4, device="cuda")
    torch.cuda.manual_seed_all(99)
    saved = load_trainer_state(tmp_path)
    opt = torch.optim.AdamW(params, lr=0.1)
    opt.load_state_dict(saved["optimizer"])
    restore_rng(saved)
    assert opt.state[params[0]]["exp_avg"].is_cuda and torch.equal(torch.rand(4, device="cuda"), expected)
