"""Adapters without training. `write_fake_adapter`: a fake trainer's output for unit tests of logic
(the curve, the distillation, the app's sections), an adapter folder whose manifest matches the
config it was "trained" with, so `tuning.plan.trained_adapter` finds it and the runner's tune arm
resolves it. `random_adapter`: real LoRA weights, drawn at random, for the real model (the serving
and side-effects tests). Training itself is tested on the real model elsewhere (test_tuning,
test_jobs, the slow tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def write_fake_adapter(lab, cfg, **manifest) -> None:
    """adapters/<cfg.name>/ with a stand-in adapter.gguf and a lab_adapter.json for `cfg`;
    `manifest` adds keys (wall_s, device)."""
    from lab.models import sha256_of

    folder = lab.home.adapters / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter.gguf").write_bytes(cfg.name.encode())
    base = {
        "base_model": {"id": "fake", "sha256": "fake"},
        "adapter": {"sha256": hashlib.sha256(cfg.name.encode()).hexdigest()},
        "config": cfg.to_json(),
        "dataset": {"sha256": sha256_of(cfg.data)},
    }
    (folder / "lab_adapter.json").write_text(json.dumps({**base, **manifest}))


def random_adapter(lab, name: str, rank: int = 4, b_std: float = 0.3) -> Path:
    """A LoRA adapter (PEFT files, adapter.gguf, manifest) on the default model's attention q/v with
    random weights: no training, yet strong enough to change the answers, so the alias with the
    adapter is told apart from the base. b_std=0 writes an adapter that changes nothing (B = 0)."""
    import numpy as np
    from safetensors.numpy import save_file

    from lab.gguf_meta import read_metadata
    from lab.models import sha256_of
    from lab.tuning.export_gguf import export_gguf

    info = lab.model_info()
    meta = read_metadata(info.path)
    arch = meta["general.architecture"]
    n_layer, d = meta[f"{arch}.block_count"], meta[f"{arch}.embedding_length"]
    d_kv = d // meta[f"{arch}.attention.head_count"] * meta[f"{arch}.attention.head_count_kv"]
    folder = lab.home.adapters / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(n_layer):
        for proj, n_out in (("q_proj", d), ("v_proj", d_kv)):
            prefix = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            tensors[f"{prefix}.lora_A.weight"] = (rng.standard_normal((rank, d)) / d**0.5).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = (rng.standard_normal((n_out, rank)) * b_std).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "v_proj"]})
    )
    export_gguf(folder, info.path)
    (folder / "lab_adapter.json").write_text(
        json.dumps(
            {
                "base_model": {"id": info.id, "sha256": lab.model_sha(info), "path": str(info.path)},
                "adapter": {"sha256": sha256_of(folder / "adapter_model.safetensors")},
                "config": {},
            }
        )
    )
    return folder
