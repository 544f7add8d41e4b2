"""Every `scripts/bench_*.py` still runs: each script's short setting (mostly `--quick`), as a
subprocess, the way a user runs it. Each must exit 0 and print the figures it promises (its table
headings, ratios and summary lines). No timing is asserted: the machine may be busy, and the
figures are the scripts' to report, not the suite's to judge. (The verdicts' error rates are
checked in tests/test_bench_verdicts.py; here that script runs end to end.)

The scripts that train or serve share the session's lab home (`shared_home`) for the one-off
GGUF -> transformers conversion, as other real-model tests do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
NUMBER = r"[-+]?\d+(?:\.\d+)?"


def bench(name: str, *args: str, timeout: int = 600, env: dict | None = None) -> str:
    """Run scripts/NAME with ARGS; its stdout, after checking that it exited 0."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, (
        f"{name} {' '.join(args)} exited {proc.returncode}\n--- stdout\n"
        f"{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


@pytest.fixture(autouse=True)
def _scratch_in_tmp_path(monkeypatch, tmp_path):
    """The scripts' throwaway lab homes (tempfile.mkdtemp) land in pytest's tmp_path, which pytest
    prunes, instead of piling up in /tmp."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def has(out: str, pattern: str) -> re.Match:
    m = re.search(pattern, out, re.MULTILINE)
    assert m, f"no line matching {pattern!r} in:\n{out[-4000:]}"
    return m


def test_every_bench_script_is_run_here():
    """A new bench script gets a quick setting and a test in this file."""
    here = Path(__file__).read_text()
    missing = [p.name for p in sorted(SCRIPTS.glob("bench_*.py")) if f'"{p.name}"' not in here]
    assert missing == []


@pytest.mark.integration
def test_bench_backends_prints_both_backends_their_ratio_and_the_lab_overhead(shared_home):
    out = bench("bench_backends.py", "--quick", "--home", str(shared_home))
    has(out, rf"^llama\.cpp\s+{NUMBER}\s+{NUMBER}$")
    has(out, rf"^transformers\s+{NUMBER}\s+{NUMBER}$")
    has(out, rf"^ratio llama/hf\s+{NUMBER}x\s+{NUMBER}x$")
    # the overhead side generates through Lab.generate as a ladder arm (an unknown arm is refused)
    has(
        out,
        rf"^lab overhead over llama_cpp\.Llama directly: {NUMBER} s direct vs {NUMBER} s via lab\.generate "
        rf"-> {NUMBER}%",
    )


@pytest.mark.integration
@pytest.mark.slow  # three short trainings in their own processes, one of them oversubscribed on purpose
def test_bench_training_prints_the_oversubscribed_and_chosen_threads_side_by_side(shared_home):
    out = bench("bench_training.py", "--quick", "--home", str(shared_home))
    has(out, rf"^q_proj,v_proj\s+auto \d+\s+{NUMBER}\s+\S+\s+{NUMBER}\s+{NUMBER}GB")
    every = has(out, rf"^every core \(--threads (\d+)\)\s+(\d+)\s+{NUMBER}\s+\S+\s+{NUMBER}$")
    assert every.group(1) == every.group(2)  # the run asked for every core and used them
    chosen = has(out, rf"^chosen for the load \(lab\.threads\)\s+(\d+)\s+{NUMBER}\s+\S+\s+{NUMBER}$")
    assert 1 <= int(chosen.group(1)) <= int(every.group(1))
    has(out, rf"^chosen threads are {NUMBER}x the speed of every core under this load")
    has(out, r"^GPU part skipped: --quick\.$")


@pytest.mark.integration
def test_bench_eval_prints_the_reuse_ratio_and_a_scoreboard():
    out = bench("bench_eval.py", "--quick")
    has(
        out,
        rf"^specialty\s+k=2 \(fits \d+\) n=2: reuse off {NUMBER} ex/s .* on {NUMBER} ex/s .*-> {NUMBER}x"
        r"\s+identical answers \d+/2$",
    )
    has(out, rf"^arms zero-shot,few-shot: {NUMBER} s wall, 2 examples x 2 arms = {NUMBER} ex/s$")
    has(out, r"^zero-shot\s+2\s")
    has(out, r"^few-shot\s+2\s")


@pytest.mark.integration
def test_bench_constrain_prints_off_and_on_per_arm_and_the_prompt_rung():
    out = bench("bench_constrain.py", "--quick")
    has(out, r"^arm\s+n\s+format valid\s+invalid answers\s+label_accuracy\s+gain on-off")
    for arm in ("zero-shot", "few-shot"):
        has(out, rf"^{arm}\s+2\s+\d+% -> \d+%\s+\d+ -> \d+\s+{NUMBER} -> {NUMBER}\s")
    assert out.count("<- best") == 2  # one best configuration without and one with constraints
    has(out, r"^few-shot, 2 similar examples, constrained\s")


@pytest.mark.integration
def test_bench_serving_prints_local_and_loopback_server_rows():
    out = bench("bench_serving.py", "--quick")
    has(out, rf"^local llama\.cpp\s+1\s+{NUMBER}\s+{NUMBER}\s+-$")
    for c in (1, 2):
        has(out, rf"^llama-cpp-python server \(loopback\)\s+{c}\s+{NUMBER}\s+{NUMBER}\s+\d+/2$")


@pytest.mark.integration
@pytest.mark.slow  # two `lab serve` starts, and the third arm (rag) indexes the sample corpus
def test_bench_app_prints_startup_memory_and_overhead():
    out = bench("bench_app.py", "--quick")
    has(out, rf"^1\. `lab serve` -> page answers \(HTTP 200\): {NUMBER} s")
    has(out, rf"^2\. server RSS after answering with 1 arm .* ratio {NUMBER}x")
    has(out, rf"^3\. Compare request .*-> the app adds {NUMBER} ms per request")


@pytest.mark.integration
def test_bench_retrieval_prints_corpus_synthetic_real_and_targets(tmp_path):
    # --real caches its embeddings under ~/.cache: a throwaway HOME keeps the user's cache untouched
    out = bench("bench_retrieval.py", "--quick", env={"HOME": str(tmp_path)})
    has(out, rf"^embedding throughput\s+{NUMBER} chunks/s")
    has(out, rf"^recall@10 vs exact\s+{NUMBER}")
    has(out, rf"^\s+\d+\s+{NUMBER}\s+{NUMBER} \[\s*{NUMBER}\] ms .*<- ef used$")
    has(out, rf"^\s+100\s+{NUMBER}s\s+\d+\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x$")
    has(out, r"^speed crossover: ")
    has(out, r"^embedding-like\s+recall@10 .*: (MET|NOT MET)$")
    has(out, r"^no-change re-index of the sample corpus .*: (MET|NOT MET)$")


def test_bench_side_effects_prints_false_and_true_loss_rates_and_passes_its_goal():
    out = bench("bench_side_effects.py", "--quick")
    has(out, r"^Side effects: how often a loss elsewhere is said")
    row = has(out, rf"^\s+24\s+20\s+({NUMBER})% ± +{NUMBER}\s+({NUMBER})% ±")
    assert float(row.group(2)) > 50  # a 10% perplexity rise is found
    has(out, r"^PASS goal: ")


def test_bench_verdicts_runs_end_to_end_and_passes_its_goals():
    out = bench("bench_verdicts.py", "--quick", "--reps", "40", "--test-reps", "10", "--graded-test-reps", "4")
    has(out, r"^Verdicts, false and true")
    has(out, r"^Racing the prompt sweep")
    for goal in (1, 2, 3, 4):
        has(out, rf"^PASS goal {goal}: ")


def test_bench_certificate_prints_trust_rates_by_true_kappa_and_passes_its_goals():
    out = bench("bench_certificate.py", "--quick")
    has(out, r"^The judge's certificate: how often it is trusted")
    row = has(out, rf"^\s+0\.8\s+({NUMBER})% ± +{NUMBER}\s+({NUMBER})% ±")
    assert float(row.group(2)) > 50  # a good judge clears the bar at 40 pairs
    for goal in (1, 2, 3):
        has(out, rf"^PASS goal {goal}: ")
