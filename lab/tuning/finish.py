"""The end of a run: the finished adapter is assembled in a temporary folder (PEFT files, the
GGUF export for a GGUF base, the manifest written last) and renamed to `adapters/<name>/`, so a
killed run never leaves something that looks like a finished adapter."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .. import __version__
from ..home import replace_folder
from ..models import sha256_of
from ..store import now
from .adapters import MANIFEST, AdapterInfo, read_adapter
from .run import TrainingError, TrainRun, runs_dir


def manifest(run: TrainRun, folder: Path, gguf_sha: str | None) -> dict:
    """What the adapter says about itself: base model, data, settings, metrics, versions."""
    import peft
    import torch
    import transformers

    info, cfg, steps, loop_s = run.info, run.config, run.step, run.loop_s()
    mem = run.peak.report()
    files = {"peft": "adapter_model.safetensors", **({"gguf": "adapter.gguf"} if gguf_sha else {})}
    return {
        "format": "lab-adapter/1",
        "name": cfg.name,
        "created": now(),
        "lab_version": __version__,
        # "kind": the base model's format (ModelInfo.format); the key every lab-adapter/1 manifest has
        "base_model": {
            "id": info.id,
            "kind": info.format,
            "path": str(info.path),
            "sha256": run.base_sha,
            "architecture": info.architecture,
        },
        "adapter": {
            "sha256": sha256_of(folder / "adapter_model.safetensors"),
            "gguf_sha256": gguf_sha,
            "files": files,
            "rank": cfg.rank,
            "alpha": cfg.alpha,
            "target_modules": run.targets,
        },
        "dataset": run.data.report.as_dict(),
        "config": cfg.to_json(),
        "method": run.method,
        "engine": run.engine,
        "device": run.device,
        "run_id": run.run_id,
        "metrics": {
            "steps": steps,
            "first_loss": run.first_loss,
            "train_loss": run.loss,
            "val_loss": run.val_loss,
            "tokens": run.tokens_seen,
            "tokens_per_s": run.tokens_seen / loop_s if loop_s > 0 else None,
            "s_per_step": loop_s / max(1, run.steps_this_session),
        },
        "wall_s": round(run.wall_s(), 2),
        "peak_mem_bytes": mem.get("peak_gpu_bytes", mem["peak_rss_bytes"]),
        **mem,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }


def _move_into_place(run: TrainRun, tmp: Path, final: Path) -> None:
    if final.exists() and not run.overwrite:
        raise TrainingError(f"adapter '{run.name}' appeared in {final} while training; kept in {tmp}")
    replace_folder(tmp, final)


def finish(run: TrainRun) -> AdapterInfo:
    """Save the adapter (+ adapter.gguf) and its manifest, move it into place, record the run as
    done and drop its checkpoint."""
    final = run.lab.home.adapters / run.name
    tmp = run.lab.home.adapters / f".{run.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    run.model.save_pretrained(str(tmp))
    gguf_sha = None
    if run.info.format == "gguf":
        from .export_gguf import export_gguf

        gguf_sha = sha256_of(export_gguf(tmp, run.info.path))
    about = manifest(run, tmp, gguf_sha)
    (tmp / MANIFEST).write_text(json.dumps(about, indent=2, ensure_ascii=False))  # last: marks it complete
    _move_into_place(run, tmp, final)
    adapter = read_adapter(final)
    run.lab.store.update_training_run(
        run.run_id,
        {
            "status": "done",
            "finished_ts": now(),
            "wall_s": about["wall_s"],
            "peak_mem": about["peak_mem_bytes"],
            "adapter_path": str(final),
            "adapter_sha": adapter.sha256,
            "train_loss": run.loss,
            "val_loss": run.val_loss,
        },
    )
    shutil.rmtree(runs_dir(run.lab, run.name), ignore_errors=True)
    return adapter
