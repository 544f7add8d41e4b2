import json
import os
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from lab.cli import cli


def run_lab(home, *args, **kw):
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], env=env, capture_output=True, text=True, timeout=300, **kw
    )


def test_help_explains_commands():
    out = CliRunner().invoke(cli, ["--help"], obj={}).output
    for word in ("models", "ask", "log", "escalation ladder"):
        assert word in out


def test_models_lists_the_embedded_defaults(tmp_path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "models", "--json"], obj={})
    assert result.exit_code == 0, result.output
    ids = [m["id"] for m in json.loads(result.output)]
    assert ids[:2] == ["smollm2-135m-instruct", "gemma3-270m"]


def test_bad_model_path_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_text("definitely not gguf")
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "ask", "-m", str(bad), "hi"], obj={})
    assert result.exit_code == 2
    assert str(bad) in result.output and "not a GGUF file" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "ask", "-m", "/missing/m.gguf", "hi"], obj={})
    assert result.exit_code == 2 and "/missing/m.gguf does not exist" in result.output


def test_log_path(tmp_path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "log", "path"], obj={})
    assert result.output.strip() == str(tmp_path / "lab.db")


@pytest.mark.integration
def test_ask_streams_and_logs_a_row(tmp_path):
    proc = run_lab(tmp_path, "ask", "What is the capital of France? One sentence.", "--max-tokens", "30")
    assert proc.returncode == 0, proc.stderr
    assert "Paris" in proc.stdout
    assert "logged as generation 1" in proc.stderr
    log = run_lab(tmp_path, "log", "-n", "1", "--json")
    rows = json.loads(log.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["arm"] == "zero-shot" and row["model_id"] == "smollm2-135m-instruct"
    assert "Paris" in row["output"] and row["messages"][-1]["content"].startswith("What is the capital")
    assert len(row["model_sha"]) == 64 and row["prompt_tokens"] > 10 and row["completion_tokens"] > 1
    assert row["options"]["temperature"] == 0.0 and row["total_s"] > 0
    text = run_lab(tmp_path, "log").stdout
    assert "Q: What is the capital of France?" in text


@pytest.mark.integration
def test_ask_with_json_schema(tmp_path):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))
    proc = run_lab(tmp_path, "ask", "Capital of France as JSON", "--json-schema", str(schema), "--max-tokens", "30")
    assert proc.returncode == 0, proc.stderr
    assert "city" in json.loads(proc.stdout.strip())


def test_train_dry_run_plans_gpu_memory_from_a_config_alone(tmp_path):
    """An 8B model the lab only knows by its config.json: the plan needs no weights."""
    folder = tmp_path / "models" / "llama-3.1-8b"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": 128256,
                "max_position_embeddings": 131072,
            }
        )
    )
    data = tmp_path / "d.jsonl"
    data.write_text('{"input": "a", "output": "b"}\n')
    args = [
        "--home",
        str(tmp_path),
        "train",
        "--data",
        str(data),
        "--name",
        "big",
        "--base",
        str(folder),
        "--dry-run",
        "--method",
        "qlora",
        "--qlora-engine",
        "bitsandbytes",
        "--rank",
        "32",
        "--target-modules",
        "all-linear",
        "--batch-size",
        "1",
    ]
    fits = CliRunner().invoke(cli, args + ["--vram", "16", "--max-seq-len", "2048"])
    assert fits.exit_code == 0, fits.output
    assert "8.03 B params" in fits.output and "fits: yes" in fits.output
    too_long = CliRunner().invoke(cli, args + ["--vram", "16", "--max-seq-len", "16384"])
    assert too_long.exit_code == 0 and "fits: NO" in too_long.output and "nearest that fits" in too_long.output
    assert not (tmp_path / "adapters" / "big").exists()


# ---- your own task: `lab task new`, `lab tasks` --------------------------------------------------


def _labelled_csv(path, extra=()):
    """Made-up support messages and the team each goes to (a BOM and CRLF, as spreadsheets save)."""
    import csv

    teams = {
        "billing": "I was charged twice for invoice {i}",
        "tech": "The app crashes when I open report {i}",
        "sales": "Can I get a quote for {i} more seats",
    }
    rows = [(text.format(i=i), team) for i in range(10) for team, text in teams.items()]
    rows += [("Please delete my account number 7", "privacy"), *extra]
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, lineterminator="\r\n").writerows([("text", "label"), *rows])
    return path


def test_task_new_prints_what_it_did_and_lab_tasks_lists_it(tmp_path):
    data = _labelled_csv(tmp_path / "messages.csv", extra=[("I was charged twice for invoice 3", "billing")])
    r = CliRunner().invoke(
        cli,
        ["--home", str(tmp_path), "task", "new", "support", "--from", str(data), "--eval-size", "6", "--seed", "1"],
        obj={},
    )
    assert r.exit_code == 0, r.output
    out = r.output
    assert "tasks/support/task.toml" in out and "format: label (inferred), 4 labels" in out
    assert "4 labels: billing, sales, tech, privacy" in out  # most frequent first
    assert "train" in out and "eval 6" in out and "duplicates dropped: 1" in out
    assert "leakage check: no held-out input" in out
    assert "warning: label 'privacy' has only 1 example(s)" in out
    assert "warning: label 'privacy' has no held-out example" in out
    assert "lab eval support" in out
    r = CliRunner().invoke(cli, ["--home", str(tmp_path), "tasks"], obj={})
    assert (
        r.exit_code == 0
        and re.search(r"^\s*support\s", r.output, re.M)
        and "home" in r.output
        and "tickets" in r.output
    )
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "tasks" / "support").rename(elsewhere)
    r = CliRunner().invoke(cli, ["--home", str(tmp_path), "tasks", str(elsewhere)], obj={})
    assert r.exit_code == 0 and re.search(r"^\s*support\s", r.output, re.M) and "path" in r.output
    (elsewhere).rename(tmp_path / "tasks" / "support")
    again = CliRunner().invoke(cli, ["--home", str(tmp_path), "task", "new", "support", "--from", str(data)], obj={})
    assert again.exit_code == 2 and "already exists: pass --force" in again.output
    r = CliRunner().invoke(
        cli,
        [
            "--home",
            str(tmp_path),
            "task",
            "new",
            "support",
            "--from",
            str(data),
            "--force",
            "--json",
            "--format",
            "text",
        ],
        obj={},
    )
    assert r.exit_code == 0 and json.loads(r.output)["output_format"] == "text"


def test_task_new_bad_input_exits_2_naming_file_and_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,label\nfine,a\nnot, fine,b\n")
    r = CliRunner().invoke(cli, ["--home", str(tmp_path), "task", "new", "x", "--from", str(bad)], obj={})
    assert r.exit_code == 2 and "bad.csv: line 3: 3 fields" in r.output and "Traceback" not in r.output
    bad.write_bytes(b"text,label\nfine,a\nfine too,b\n")
    r = CliRunner().invoke(
        cli, ["--home", str(tmp_path), "task", "new", "x", "--from", str(bad), "--input", "txt"], obj={}
    )
    assert r.exit_code == 2 and "no column 'txt'" in r.output and "its columns are: text, label" in r.output
    assert not (tmp_path / "tasks" / "x").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_from_a_csv_to_a_scoreboard_in_two_commands(tmp_path):
    """The issue's 'done': `lab task new`, then `lab eval NAME` (real model, two examples), with the
    balance warnings shown, and `lab eval` warning when the task's files leak."""
    data = _labelled_csv(tmp_path / "messages.csv")
    made = run_lab(tmp_path, "task", "new", "support", "--from", str(data), "--eval-size", "6")
    assert made.returncode == 0, made.stderr
    assert "warning: label 'privacy'" in made.stderr
    task_dir = tmp_path / "tasks" / "support"
    held = json.loads((task_dir / "eval.jsonl").read_text().splitlines()[0])
    with (task_dir / "train.jsonl").open("a") as f:  # a hand edit that leaks a held-out example
        f.write(json.dumps({"id": "leak", "input": held["input"].lower(), "output": held["output"]}) + "\n")
    ev = run_lab(tmp_path, "eval", "support", "--limit", "2", "--arms", "zero-shot,few-shot")
    assert ev.returncode == 0, ev.stderr
    assert "warning: 1 held-out example(s) of 'support' share their (normalised) input" in ev.stderr
    assert "zero-shot" in ev.stdout and "few-shot" in ev.stdout and "label_accuracy" in ev.stdout


def test_n_gpu_layers_flag_reaches_the_lab_config(tmp_path):
    """`lab --n-gpu-layers N` overrides lab.toml; -1 (all) and 0 (CPU) are accepted, -2 is not."""
    from lab.cli.common import lab_of

    (tmp_path / "lab.toml").write_text("n_gpu_layers = 0\n")

    @cli.command("show-gpu-layers")
    @click.pass_context
    def show(ctx):
        click.echo(lab_of(ctx).config.n_gpu_layers)

    try:
        assert CliRunner().invoke(cli, ["--home", str(tmp_path), "show-gpu-layers"]).output.strip() == "0"
        out = CliRunner().invoke(cli, ["--home", str(tmp_path), "--n-gpu-layers", "-1", "show-gpu-layers"])
        assert out.exit_code == 0 and out.output.strip() == "-1"
        bad = CliRunner().invoke(cli, ["--home", str(tmp_path), "--n-gpu-layers", "-2", "show-gpu-layers"])
        assert bad.exit_code == 2 and "n-gpu-layers" in bad.output
    finally:
        cli.commands.pop("show-gpu-layers")


def test_task_new_takes_instructions_to_try_and_a_corpus_folder(tmp_path):
    """Issue 23: `--instruction` repeated (the first is the instruction, the others are tried beside
    it) and `--corpus` (a folder copied into the home's corpora/, or a name referenced)."""
    from lab.tasks import load_task

    home, docs = tmp_path / "home", tmp_path / "manuals"
    docs.mkdir()
    (docs / "billing.md").write_text("# Billing\nInvoices go out on the 1st.\n")
    data = _labelled_csv(tmp_path / "messages.csv")
    args = ["--home", str(home), "task", "new", "support", "--from", str(data), "--corpus", str(docs)]
    args += ["--instruction", "Name the team.", "--instruction", "You route support mail. Reply with the team only."]
    r = CliRunner().invoke(cli, args, obj={})
    assert r.exit_code == 0, r.output
    assert "instructions to try: 1 beside the instruction" in r.output and "corpus: manuals (copied from" in r.output
    task = load_task("support", home=home)
    assert task.instruction == "Name the team."
    assert task.instructions == ["You route support mail. Reply with the team only."]
    assert task.instruction_variants()[1] == task.instructions[0]
    assert task.corpus == "manuals" and (home / "corpora" / "manuals" / "billing.md").is_file()
    assert 'corpus = "manuals"' in (home / "tasks" / "support" / "task.toml").read_text(encoding="utf-8")
    r = CliRunner().invoke(cli, ["--home", str(home), "task", "new", "s2", "--from", str(data), "--corpus", "manuals"])
    assert r.exit_code == 0 and load_task("s2", home=home).corpus == "manuals"
    assert "--instruction" in CliRunner().invoke(cli, ["task", "new", "-h"], obj={}).output


def test_task_new_with_a_bad_corpus_exits_2_naming_it_and_writes_nothing(tmp_path):
    data = _labelled_csv(tmp_path / "messages.csv")
    home = tmp_path / "home"
    for bad in ("no-such-corpus", str(data)):
        r = CliRunner().invoke(cli, ["--home", str(home), "task", "new", "x", "--from", str(data), "--corpus", bad])
        assert r.exit_code == 2 and f"--corpus {bad}: " in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(
        cli,
        ["--home", str(home), "task", "new", "x", "--from", str(data), "--instruction", "A.", "--instruction", "A."],
    )
    assert r.exit_code == 2 and "the same as the task's instruction" in r.output
    assert not home.exists()


def test_index_check_chunk_sizes_prints_a_row_per_size_and_the_default_says_how(tmp_path, monkeypatch):
    """The face alone (the engine's check is tested on the sample corpus in test_retrieval.py)."""
    import re
    from types import SimpleNamespace

    import lab.evaluation.retrieval_check as retrieval_check
    import lab.retrieval as retrieval
    from lab.evaluation.retrieval_check import KRow, RetrievalCheck, RetrievalSweep

    report = SimpleNamespace(skipped=[], summary=lambda: "acme: no change", index_hash="h", path="p")
    monkeypatch.setattr(retrieval, "index_corpus", lambda *a, **kw: report)
    monkeypatch.setattr(retrieval, "sweep_chunk_sizes", lambda lab, corpus: [80, 160, 256])

    def one(size, own=False):
        rows = [KRow(k, 0.5, 10, 0.6, 10, 0.6) for k in (1, 4)]
        return RetrievalCheck("acme-facts", "acme", 10, rows, chunk_tokens=size, overlap=32, own=own, index_version=1)

    calls = []

    def fake_sweep(lab, task, ks=(1, 2, 4, 8), corpus=None, chunk_sizes=None, progress=False):
        calls.append((task.name, tuple(ks), corpus, chunk_sizes))
        return RetrievalSweep([one(n, own=n == 160) for n in chunk_sizes or (80, 160, 256)])

    monkeypatch.setattr(retrieval_check, "check_chunk_sizes", fake_sweep)
    monkeypatch.setattr(retrieval_check, "check_retrieval", lambda lab, task, ks, corpus: one(160, own=True))
    base = ["--home", str(tmp_path), "index", "acme", "--check", "acme-facts", "--k", "1,4"]
    r = CliRunner().invoke(cli, [*base, "--chunk-sizes", "256,80,160"], obj={})
    assert r.exit_code == 0, r.output
    assert calls == [("acme-facts", (1, 4), "acme", (80, 160, 256))]
    for size in ("80", "160 \\(own\\)", "256"):
        assert len(re.findall(rf"^{size}\s+(1|4 \(rag\))\s+50\.0% \(n=10\)", r.output, re.M)) == 2, size
    r = CliRunner().invoke(cli, [*base, "--chunk-sizes", "sweep"], obj={})
    assert r.exit_code == 0 and calls[-1][-1] is None  # the engine picks half, own and double
    r = CliRunner().invoke(cli, base, obj={})  # the default: today's single table, and how to compare
    assert r.exit_code == 0 and "chunk size" not in r.output.split("\n\n")[1]
    assert "compare chunkings: --chunk-sizes sweep (80,160,256: half, own and double" in r.output
    for bad, said in [("0,80", "1 token or more"), ("a,b", "whole numbers of tokens")]:
        r = CliRunner().invoke(cli, [*base, "--chunk-sizes", bad], obj={})
        assert r.exit_code == 2 and said in r.output
    r = CliRunner().invoke(cli, ["--home", str(tmp_path), "index", "acme", "--chunk-sizes", "80"], obj={})
    assert r.exit_code == 2 and "add --check TASK" in r.output
    assert "--chunk-sizes" in CliRunner().invoke(cli, ["index", "--help"], obj={}).output
