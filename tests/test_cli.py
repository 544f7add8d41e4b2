import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lab.cli import cli


def run_lab(home, *args, **kw):
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300, **kw)


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
    schema.write_text(json.dumps({"type": "object", "properties": {"city": {"type": "string"}},
                                  "required": ["city"]}))
    proc = run_lab(tmp_path, "ask", "Capital of France as JSON", "--json-schema", str(schema), "--max-tokens", "30")
    assert proc.returncode == 0, proc.stderr
    assert "city" in json.loads(proc.stdout.strip())
