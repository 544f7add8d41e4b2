"""A fake trainer's output for unit tests of logic (the curve, the distillation, the app's
sections): an adapter folder whose manifest matches the config it was "trained" with, so
`tuning.plan.trained_adapter` finds it and the runner's tune arm resolves it. Training itself is
tested on the real model elsewhere (test_tuning, test_jobs, the slow tests)."""

from __future__ import annotations

import hashlib
import json


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
