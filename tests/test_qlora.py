"""QLoRA: 4-bit layers kept trainable on the CPU, Unsloth's import order and offline settings
(mocked: no GPU here), and a real CPU QLoRA run on the embedded SmolLM2 served by llama.cpp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.engine import Lab
from lab.tuning import TrainingError
from lab.tuning.loading import pick_method
from lab.tuning.qlora import cpu_qlora_problem, unsloth_env, unsloth_wanted

needs_cpu_bnb = pytest.mark.skipif(cpu_qlora_problem() is not None, reason=f"{cpu_qlora_problem()}")


# ---- choosing the method and engine --------------------------------------------------------------


def test_qlora_on_the_cpu_needs_bitsandbytes_047(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.45.5" if name == "bitsandbytes" else real(name))
    with pytest.raises(TrainingError, match="qlora on the CPU needs bitsandbytes >= 0.47: bitsandbytes 0.45.5"):
        pick_method("qlora", cuda=False)
    assert pick_method("qlora", cuda=True) == "qlora"  # CUDA: no CPU kernels needed


@needs_cpu_bnb
def test_qlora_runs_on_the_cpu_with_bitsandbytes_installed():
    assert pick_method("qlora", cuda=False) == "qlora"


def test_engine_choice(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "unsloth" else real(name, *a))
    assert not unsloth_wanted("qlora", "auto", cuda=True)  # not installed: bitsandbytes
    with pytest.raises(TrainingError, match="unsloth is not installed"):
        unsloth_wanted("qlora", "unsloth", cuda=True)
    with pytest.raises(TrainingError, match="unsloth needs a CUDA GPU"):
        unsloth_wanted("qlora", "unsloth", cuda=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "unsloth" else real(name, *a))
    assert unsloth_wanted("qlora", "auto", cuda=True)
    assert not unsloth_wanted("qlora", "auto", cuda=False) and not unsloth_wanted("lora", "auto", cuda=True)
    assert not unsloth_wanted("qlora", "bitsandbytes", cuda=True)


def test_unsloth_env_is_offline_with_its_cache_in_the_lab_home(tmp_path):
    lab = Lab(home=tmp_path)
    env = unsloth_env(lab)
    assert env["HF_HUB_OFFLINE"] == "1" and env["UNSLOTH_DISABLE_STATISTICS"] == "1"
    assert env["TRANSFORMERS_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"
    assert "UNSLOTH_LLAMA_CPP_OFFLINE" not in env  # no Unsloth release reads it (issue 22)
    assert Path(env["UNSLOTH_COMPILE_LOCATION"]).parent == lab.home.state == tmp_path.resolve() / ".lab"


def test_unsloth_is_imported_before_transformers_and_peft(tmp_path):
    """A training process on CUDA (faked) with a stand-in `unsloth` package: when it is imported,
    neither transformers nor peft is loaded yet, and its environment is set."""
    fake = tmp_path / "fake" / "unsloth"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        textwrap.dedent("""
        import json, os, sys
        print("UNSLOTH-IMPORT " + json.dumps({
            "loaded": [m for m in ("transformers", "peft", "bitsandbytes") if m in sys.modules],
            "env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "UNSLOTH_DISABLE_STATISTICS",
                                                    "UNSLOTH_COMPILE_LOCATION", "TRANSFORMERS_OFFLINE")}}))
        raise SystemExit(0)  # stop the run here: there is no GPU to go on with
    """)
    )
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"input": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(25)))
    script = textwrap.dedent(f"""
        from lab.engine import Lab
        from lab.tuning import make_config, train, trainer
        trainer.cuda_available = lambda: True
        train(make_config(name="u", data={str(data)!r}, method="qlora"), Lab(home={str(tmp_path / "home")!r}))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(Path(__file__).parents[1])]))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("UNSLOTH-IMPORT ")), None)
    assert line, out.stdout + out.stderr
    seen = json.loads(line.split(" ", 1)[1])
    assert seen["loaded"] == []
    assert seen["env"]["HF_HUB_OFFLINE"] == "1" and seen["env"]["UNSLOTH_DISABLE_STATISTICS"] == "1"
    assert seen["env"]["TRANSFORMERS_OFFLINE"] == "1"
    assert seen["env"]["UNSLOTH_COMPILE_LOCATION"].startswith(str((tmp_path / "home" / ".lab").resolve()))


# ---- 4-bit layers on the CPU ---------------------------------------------------------------------


@needs_cpu_bnb
def test_4bit_layers_stay_trainable_after_a_no_grad_forward(tmp_path):
    """bitsandbytes repacks a Linear4bit in place on its first no-grad CPU forward (on AVX512-BF16
    CPUs), after which no gradient flows through it. The validation loss is such a forward."""
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from test_targets import tiny_model  # tests/ is on sys.path (pytest rootdir, no package)
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from lab.tuning.qlora import keep_trainable_layout

    torch.manual_seed(0)
    tiny_model("llama").save_pretrained(tmp_path)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, quantization_config=quant, device_map={"": "cpu"})
    assert keep_trainable_layout(model) == 2 * 7  # every linear layer of both blocks is 4-bit
    model = get_peft_model(
        prepare_model_for_kbit_training(model, use_gradient_checkpointing=False),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"),
    )
    ids = torch.randint(0, 256, (2, 8))
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)
    model.train()
    model(input_ids=ids).logits.float().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert len(grads) == 8 and all(g is not None and g.abs().sum() > 0 for g in grads.values())


# ---- a real QLoRA run on the CPU -----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
@needs_cpu_bnb
def test_qlora_on_the_cpu_trains_exports_and_llamacpp_serves_it(shared_home, monkeypatch):
    from test_tuning import INSTRUCTION, ticket_rows, tiny_config, write_jsonl

    import lab.tuning.qlora as qlora
    from lab.tuning import train

    layers = []
    real_keep = qlora.keep_trainable_layout
    monkeypatch.setattr(qlora, "keep_trainable_layout", lambda model: layers.append(real_keep(model)) or layers[-1])
    lab = Lab(home=shared_home)
    data = write_jsonl(shared_home / "tickets-tiny.jsonl", ticket_rows(40))
    steps = []
    adapter = train(
        tiny_config(data, "qlora-cpu", method="qlora", max_steps=6),
        lab,
        progress=False,
        on_step=steps.append,
        overwrite=True,
    )
    assert layers == [30 * 7]  # SmolLM2-135M: 30 blocks of 7 linear layers, all 4-bit
    m = adapter.manifest
    assert (m["method"], m["engine"], m["device"]) == ("qlora", "peft+bitsandbytes", "cpu")
    losses = [s["loss"] for s in steps]
    assert len(losses) == 6 and sum(losses[-2:]) / 2 < 0.7 * losses[0], losses
    assert m["metrics"]["val_loss"] < 0.7 * m["metrics"]["first_loss"]
    assert (adapter.path / "adapter_model.safetensors").is_file() and (adapter.path / "adapter.gguf").is_file()
    print(
        json.dumps(
            {
                "losses": losses,
                "s_per_step": m["metrics"]["s_per_step"],
                "wall_s": m["wall_s"],
                "peak_rss_mb": m["peak_rss_bytes"] / 1e6,
            }
        )
    )
    question = "Urgent: vpn problem since Monday."
    options = lab.options(max_tokens=12)
    base = lab.answer("zero-shot", question, system=INSTRUCTION, options=options).generation
    ans = lab.answer("tune", question, adapter="qlora-cpu", options=options)
    tuned, row_id = ans.generation, ans.row_id
    assert tuned.text != base.text, tuned.text
    row = lab.store.query("select * from generations where id = ?", [row_id])[0]
    assert row["adapter_id"] == "qlora-cpu" and row["adapter_sha"] == adapter.sha256 and row["backend"] == "llamacpp"
