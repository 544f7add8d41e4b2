"""Checkpoints of a run in `adapters/.runs/<name>/checkpoint/`: adapter weights, optimizer, RNG
and position, swapped in whole (written beside, then renamed), so a kill at any moment leaves
the last complete one; `resume=True` continues from it with the same batches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..models import sha256_of
from ..store import now
from .plan import resumable_settings
from .run import TrainingError, TrainRun, checkpoint_dir, runs_dir


def find_checkpoint(lab, name: str) -> Path | None:
    """The last complete checkpoint of run `name` (the current one, or the one being replaced)."""
    for folder in (checkpoint_dir(lab, name), checkpoint_dir(lab, name).with_name("checkpoint.old")):
        if (folder / "state.json").exists():
            return folder
    return None


def read_resumable(run: TrainRun, folder: Path) -> dict:
    """The checkpoint's state.json, once it is known to fit this run's settings, model and data."""
    state = json.loads((folder / "state.json").read_text())
    why = misfit(state, run.config, run.base_sha)
    if why:
        raise TrainingError(f"{why} (in {folder}), or delete {runs_dir(run.lab, run.name)} to start afresh")
    return state


def save_checkpoint(run: TrainRun) -> None:
    """Checkpoint the run at its current step."""
    import torch

    folder = checkpoint_dir(run.lab, run.name)
    tmp, old = folder.with_name("checkpoint.partial"), folder.with_name("checkpoint.old")
    shutil.rmtree(tmp, ignore_errors=True)
    run.model.save_pretrained(str(tmp))
    saved = {"optimizer": run.optimizer.state_dict(), **rng_states()}
    if run.precision.scaler is not None:
        saved["scaler"] = run.precision.scaler.state_dict()
    torch.save(saved, tmp / "trainer_state.pt")
    state = {
        "step": run.step,
        "run_id": run.run_id,
        "config": run.config.to_json(),
        "base_sha": run.base_sha,
        "dataset_sha": run.data.report.sha256,
        "first_loss": run.first_loss,
        "wall_s": run.wall_s(),
        "ts": now(),
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    run.ckpt_step = run.step


def rng_states() -> dict:
    """The random generators' states a resume restores: the CPU's, and every CUDA device's."""
    import torch

    out = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda_rng"] = torch.cuda.get_rng_state_all()
    return out


def load_trainer_state(folder: Path) -> dict:
    """A checkpoint's optimizer, scaler and RNG states, loaded on the CPU whatever the training
    device: torch.set_rng_state takes only a CPU ByteTensor (loading with map_location="cuda" made
    every resume on a GPU fail), and the optimizer moves its tensors to their parameters itself."""
    import torch

    return torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=False)


def restore_rng(saved: dict) -> None:
    """Put the CPU and CUDA generators back where the checkpoint left them, each on its own device."""
    import torch

    torch.set_rng_state(saved["torch_rng"].cpu())
    if saved.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in saved["cuda_rng"]])


def restore_checkpoint(run: TrainRun, folder: Path, state: dict) -> None:
    """Put the adapter weights, optimizer, RNG and position of checkpoint `folder` into the run."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(run.model, load_file(str(folder / "adapter_model.safetensors"), device=run.device))
    saved = load_trainer_state(folder)
    run.optimizer.load_state_dict(saved["optimizer"])  # moves each state tensor to its parameter's device
    if run.precision.scaler is not None and "scaler" in saved:
        run.precision.scaler.load_state_dict(saved["scaler"])
    restore_rng(saved)
    run.step = run.ckpt_step = state["step"]
    run.run_id, run.wall_before = state["run_id"], state.get("wall_s", 0.0)
    run.first_loss = state.get("first_loss")


def misfit(state: dict, config, base_sha: str | None = None) -> str:
    """Why a checkpoint (its state.json) cannot be continued with `config`: other settings, other
    data, or (when `base_sha` is given) other base weights; "" when it can. The one check behind
    `resume` and every offer to resume."""
    theirs, ours = resumable_settings(state.get("config") or {}), resumable_settings(config.to_json())
    changed = sorted(k for k in set(ours) | set(theirs) if theirs.get(k) != ours.get(k))
    at = f"the checkpoint at step {state.get('step')}"
    if changed:
        return f"{at} was made with other settings ({', '.join(changed)}): put them back to resume it"
    if state.get("dataset_sha") != sha256_of(Path(config.data)):
        return f"the data changed since {at}"
    if base_sha is not None and state.get("base_sha") != base_sha:
        return f"the base model changed since {at}"
    return ""


def checkpoint_step(lab, config, base_sha: str | None = None) -> tuple[int | None, str]:
    """Whether `config` can continue adapter `config.name`'s checkpoint (`misfit`; the base
    weights too when `base_sha` is given): (its step, "") when it can; (None, why not) when it
    cannot; (None, "") when there is none."""
    folder = find_checkpoint(lab, config.name)
    if folder is None:
        return None, ""
    state = json.loads((folder / "state.json").read_text())
    why = misfit(state, config, base_sha)
    return (None, why) if why else (int(state.get("step") or 0), "")


def checkpoint_config(lab, name: str) -> dict | None:
    """The settings adapter `name`'s checkpoint was made with (TrainConfig fields), None if none."""
    folder = find_checkpoint(lab, name)
    if folder is None:
        return None
    return json.loads((folder / "state.json").read_text()).get("config")
