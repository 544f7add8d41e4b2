"""scripts/gpu_check.py end to end on the CPU: bitsandbytes QLoRA on a random SmolLM2-shaped model
(2 blocks instead of 30, so the run takes about a minute here), export, llama.cpp serving, parity."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
@pytest.mark.slow
def test_cpu_run_prints_the_table(tmp_path):
    out_md = tmp_path / "table.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gpu_check.py"),
            "--cpu",
            "--random",
            "--layers",
            "2",
            "--steps",
            "2",
            "--seq-len",
            "1024",
            "--batch-size",
            "2",
            "--max-tokens",
            "16",
            "--home",
            str(tmp_path / "home"),
            "--out",
            str(out_md),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = out_md.read_text()
    assert table.strip() in run.stdout
    row = next(line for line in table.splitlines() if line.startswith("| bitsandbytes"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "failed" not in row, row
    s_per_step, tokens_per_s = float(cells[1]), float(cells[2])
    assert s_per_step > 0 and tokens_per_s > 0
    assert cells[3].endswith("GiB RSS") and float(cells[3].split()[0]) > 0
    assert float(cells[4].split()[0]) > 0  # the planner's estimate
    first, last = (float(x) for x in cells[5].split("->"))
    assert math.isfinite(first) and math.isfinite(last)
    assert cells[6].endswith("MiB")  # adapter.gguf exported
    rel_err, top1 = float(cells[7]), float(cells[8])
    assert 0 <= rel_err < 0.5 and 0 <= top1 <= 1  # f32 GGUF vs float32 transformers: close
    serve = next(line for line in table.splitlines() if line.startswith("| CPU |"))
    assert re.search(r"\| cpu \| [0-9.]+ \(\d+ tokens\) \|$", serve), serve
    assert "GPU" not in [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| all")]
