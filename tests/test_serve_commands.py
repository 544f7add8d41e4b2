"""`lab adapters serve --engine ...`: the command line serving the base and the lab's adapters trained
on it, each under its lab name (what the server backend then asks for)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lab.cli import cli
from lab.engine import Lab
from lab.tuning.adapters import AdapterError
from lab.tuning.serve_commands import serve_plan


def adapter(lab, name, base_sha, rank=8):
    folder = lab.home.adapters / name
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"w")
    (folder / "adapter.gguf").write_bytes(b"GGUF")
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank}))
    (folder / "lab_adapter.json").write_text(
        json.dumps({"base_model": {"id": "smollm2-135m-instruct", "sha256": base_sha}, "adapter": {"sha256": "b" * 64}})
    )
    return folder


@pytest.fixture
def lab(tmp_path):
    lab = Lab(home=tmp_path)
    sha = lab.model_sha(lab.model_info())
    adapter(lab, "tickets", sha, rank=8)
    adapter(lab, "facts", sha, rank=32)
    adapter(lab, "elsewhere", "f" * 64)  # trained on other weights: not served with this base
    yield lab
    lab.store.close()


def test_vllm_serves_each_peft_folder_under_its_lab_name(lab):
    plan = serve_plan(lab, "vllm", port=8001)
    cmd = plan.command
    assert cmd[:2] == ["vllm", "serve"] and cmd[cmd.index("--served-model-name") + 1] == "smollm2-135m-instruct"
    assert cmd[cmd.index("--max-lora-rank") + 1] == "32" and "--enable-lora" in cmd
    modules = cmd[cmd.index("--lora-modules") + 1 :]
    assert modules == [
        f"facts={lab.home.adapters.resolve() / 'facts'}",
        f"tickets={lab.home.adapters.resolve() / 'tickets'}",
    ]
    assert plan.spec == "openai:http://127.0.0.1:8001/v1#smollm2-135m-instruct"


def test_llama_server_loads_every_gguf_adapter_and_applies_none_by_default(lab):
    cmd = serve_plan(lab, "llama-server", n_ctx=1024).command
    loras = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--lora"]
    assert [p.split("/")[-2] for p in loras] == ["facts", "tickets"]
    assert "--lora-init-without-apply" in cmd and cmd[cmd.index("-c") + 1] == str(1024 * 8)
    assert cmd[cmd.index("--alias") + 1] == "smollm2-135m-instruct"


def test_llama_cpp_python_config_has_one_alias_per_adapter(lab, tmp_path):
    out = tmp_path / "server.json"
    r = CliRunner().invoke(
        cli,
        [
            "--home",
            str(lab.home.root),
            "adapters",
            "serve",
            "--engine",
            "llama-cpp-python",
            "--port",
            "9000",
            "--write-config",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    config = json.loads(out.read_text())
    assert config["interrupt_requests"] is False and config["port"] == 9000
    assert [(m["model_alias"], bool(m.get("lora_path"))) for m in config["models"]] == [
        ("smollm2-135m-instruct", False),
        ("facts", True),
        ("tickets", True),
    ]
    assert f"--config_file {out}" in r.output and "openai:http://127.0.0.1:9000/v1#smollm2-135m-instruct" in r.output
    with pytest.raises(AdapterError, match="unknown engine"):
        serve_plan(lab, "tgi")
