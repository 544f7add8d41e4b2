"""The oldest Python pyproject.toml allows (requires-python >= 3.10), proven: scripts/check_py310.sh
builds (or reuses) .venv-py310 with a 3.10 interpreter and the light dependencies, compiles lab/ and
scripts/, imports the foundation modules (tomllib's fallback to tomli taken) and runs the fast tests
that need no torch or llama.cpp. About 2.5 minutes the first time, under one minute cached."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_py310.sh"


def test_requires_python_is_the_version_the_check_proves():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^requires-python = ">=3\.10"$', text, re.M)
    assert "`python3` (3.10+)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_lab_runs_on_python_3_10():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    found = subprocess.run(["bash", str(SCRIPT), "--find"], capture_output=True, text=True, env=env, timeout=60)
    if found.returncode == 3:
        pytest.skip(f"no Python 3.10 interpreter here: {found.stderr.strip()}")
    assert found.returncode == 0, found.stderr
    run = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + "\n" + run.stderr[-3000:]
    assert re.search(r"\d+ passed", run.stdout), run.stdout[-2000:]
    assert " failed" not in run.stdout and "Python 3.10: all passed" in run.stderr
