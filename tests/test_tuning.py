"""The tune rung: dataset formats and validation, a real LoRA run on the embedded model (CPU),
adapters saved/loaded/refused, the GGUF export served by llama.cpp against HF + PEFT, killed and
resumed runs, the CLI. CUDA paths are marked `gpu` and skip without a GPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import cli
from lab.engine import Lab
from lab.tuning import (
    AdapterError,
    DatasetError,
    TrainConfigError,
    TrainingError,
    load_train_config,
    make_config,
    prepare,
    read_examples,
    resolve_adapter,
    train,
)
from lab.tuning.datasets import split_indices
from lab.tuning.trainer import checkpoint_dir, lr_at, pick_method

INSTRUCTION = "Label the IT ticket. Reply with JSON."
WORDS = {
    "hardware": ["printer", "laptop", "monitor", "keyboard"],
    "billing": ["invoice", "refund", "charge", "payment"],
    "access": ["password", "login", "account", "badge"],
    "network": ["wifi", "vpn", "network", "internet"],
}
TEMPLATES = [
    "My {} is not working today.",
    "Question about my {} please.",
    "Urgent: {} problem since Monday.",
    "Can you help with the {}?",
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def ticket_rows(n: int = 40) -> list[dict]:
    rows = [
        {"input": t.format(w), "output": {"label": label}} for t in TEMPLATES for label, ws in WORDS.items() for w in ws
    ]
    return rows[:n]


# ---- datasets (no model) -------------------------------------------------------------------------


def test_detects_the_four_formats(tmp_path):
    cases = {
        "chat": {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "A"},
            ]
        },
        "prompt-completion": {"prompt": "Q", "completion": "A"},
        "alpaca": {"instruction": "Do it", "input": "Q", "output": "A"},
        "input-output": {"input": "Q", "output": {"k": 1}},
    }
    for fmt, row in cases.items():
        got_fmt, examples = read_examples(write_jsonl(tmp_path / f"{fmt}.jsonl", [row]), instruction="SYS")
        assert got_fmt == fmt
        msgs = examples[0].messages
        assert msgs[-1]["role"] == "assistant" and msgs[0]["role"] == "system"
    _, ex = read_examples(tmp_path / "alpaca.jsonl")
    assert ex[0].messages == [{"role": "user", "content": "Do it\n\nQ"}, {"role": "assistant", "content": "A"}]
    _, ex = read_examples(tmp_path / "input-output.jsonl", instruction="SYS")
    assert ex[0].messages[-1]["content"] == '{"k":1}'  # JSON outputs as compact text, like lab.tasks
    _, ex = read_examples(tmp_path / "chat.jsonl", instruction="OTHER")
    assert ex[0].messages[0]["content"] == "S"  # an example's own system turn wins


def test_a_training_file_with_a_utf8_bom_reads(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"prompt": "a", "completion": "b"}\n')
    fmt, examples = read_examples(path)
    assert fmt == "prompt-completion" and examples[0].line == 1


def test_a_training_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "caf\xe9", "completion": "b"}\n')
    with pytest.raises(DatasetError, match=f"{path}:2: not UTF-8 text"):
        read_examples(path)


def test_malformed_lines_are_named_with_their_number(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "a", "completion": "b"},
            "",
            '{"prompt": "a", completion}',
            {"prompt": "x", "completion": ""},
            {"foo": 1},
            {"messages": [{"role": "user", "content": "hi"}]},
        ],
    )
    with pytest.raises(DatasetError) as e:
        read_examples(path)
    text = str(e.value)
    assert f"{path}:3: not valid JSON" in text
    assert f"{path}:4: the completion/output is empty" in text
    assert f"{path}:5: unknown format" in text and "['foo']" in text
    assert f"{path}:6: this line is chat but line 1 is prompt-completion" in text
    assert [line for line, _ in e.value.problems] == [3, 4, 5, 6]


def test_chat_errors_say_which_message(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 3}]},
    ]
    with pytest.raises(DatasetError) as e:
        read_examples(write_jsonl(tmp_path / "chat.jsonl", rows))
    msgs = dict(e.value.problems)
    assert "messages[1].role is 'bot'" in msgs[1]
    assert "last message must be the assistant" in msgs[2]
    assert "messages[1].content must be a string" in msgs[3]


def test_few_examples_refused_unless_forced_and_warned_under_200(tmp_path):
    path = write_jsonl(tmp_path / "few.jsonl", ticket_rows(10))
    with pytest.raises(DatasetError, match="only 10 examples.*--force"):
        prepare(path)
    report = prepare(path, force=True).report
    assert report.count == 10 and any("under 200" in w for w in report.warnings)
    report = prepare(write_jsonl(tmp_path / "dups.jsonl", ticket_rows(30) + ticket_rows(5))).report
    assert report.count == 35 and report.duplicates == 5 and report.n_train + report.n_val == 30


def test_split_is_seeded_and_disjoint():
    a = split_indices(50, 0.2, seed=1)
    assert a == split_indices(50, 0.2, seed=1) != split_indices(50, 0.2, seed=2)
    train, val = a
    assert len(val) == 10 and not set(train) & set(val) and len(train) + len(val) == 50


def test_config_from_toml_and_flags(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ticket_rows(25))
    (tmp_path / "run.toml").write_text(
        '[train]\nname = "t"\ndata = "d.jsonl"\nrank = 4\ntarget_modules = "q_proj, k_proj"\nsystem = "Be brief."\n'
    )
    cfg = load_train_config(tmp_path / "run.toml", rank=16)
    assert cfg.rank == 16 and cfg.target_modules == ["q_proj", "k_proj"] and cfg.instruction == "Be brief."
    assert cfg.data == tmp_path / "d.jsonl"  # relative to the TOML file
    (tmp_path / "bad.toml").write_text('name = "t"\ndata = "d.jsonl"\nrnak = 4\n')
    with pytest.raises(TrainConfigError, match=r"bad.toml: field 'rnak'"):
        load_train_config(tmp_path / "bad.toml")
    with pytest.raises(TrainConfigError, match="field 'name'"):
        make_config(name="no spaces please", data="x")


def test_device_defaults_in_one_place(tmp_path):
    from lab.tuning import TrainConfig, device_defaults

    cpu, cuda = device_defaults("cpu"), device_defaults("cuda:0")
    assert (cpu["method"], cpu["rank"], cpu["alpha"], cpu["dropout"], cpu["target_modules"]) == (
        "lora",
        8,
        16,
        0.05,
        ["q_proj", "v_proj"],
    )
    assert (cpu["learning_rate"], cpu["epochs"], cpu["batch_size"], cpu["grad_accum"], cpu["max_seq_len"]) == (
        1e-3,
        1.0,
        4,
        1,
        512,
    )
    assert (cuda["method"], cuda["rank"], cuda["alpha"], cuda["dropout"], cuda["target_modules"]) == (
        "qlora",
        16,
        32,
        0.0,
        "all-linear",
    )
    assert (
        cuda["learning_rate"],
        cuda["epochs"],
        cuda["batch_size"],
        cuda["grad_accum"],
        cuda["max_seq_len"],
        cuda["gradient_checkpointing"],
    ) == (2e-4, 2.0, 8, 2, 1024, True)
    cpu["target_modules"].append("k_proj")
    assert device_defaults("cpu")["target_modules"] == ["q_proj", "v_proj"]  # a copy each time
    cfg = TrainConfig.for_device("cuda", name="t", data="d.jsonl", rank=4, dropout=None)
    assert cfg.rank == 4 and cfg.dropout == 0.0 and cfg.method == "qlora" and cfg.batch_size == 8
    assert make_config(device="cpu", name="t", data="d.jsonl").learning_rate == 1e-3
    assert make_config(name="t", data="d.jsonl").learning_rate == 2e-4  # no device: the field defaults
    with pytest.raises(TrainConfigError, match="arguments: field 'rank'"):
        TrainConfig.for_device("cpu", name="t", data="d.jsonl", rank=0)
    with pytest.raises(TrainConfigError, match="device 'tpu'"):
        device_defaults("tpu")
    write_jsonl(tmp_path / "d.jsonl", ticket_rows(25))
    (tmp_path / "run.toml").write_text('name = "t"\ndata = "d.jsonl"\nrank = 4\n')
    cfg = load_train_config(tmp_path / "run.toml", device="cuda", alpha=8)
    assert (cfg.rank, cfg.alpha, cfg.batch_size, cfg.target_modules) == (4, 8, 8, "all-linear")  # flags > TOML > device


def test_method_choice_and_lr_schedule():
    assert pick_method("auto", cuda=False) == "lora" and pick_method("auto", cuda=True) == "qlora"
    lrs = [lr_at(s, 10, 2, 1.0) for s in range(10)]
    assert lrs[0] < lrs[1] < lrs[2] == 1.0 and lrs[-1] > 0 and lrs[2:] == sorted(lrs[2:], reverse=True)


def test_cli_bad_data_exits_2_naming_the_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", ticket_rows(25) + ['{"input": "x"'])
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "train", "--data", str(path), "--name", "x"], obj={})
    assert result.exit_code == 2
    assert f"{path}:26: not valid JSON" in result.output
    assert not (tmp_path / "adapters" / "x").exists()
    assert "130" in CliRunner().invoke(cli, ["train", "--help"], obj={}).output


def test_a_checkpoint_is_never_dropped_unasked(tmp_path):
    """Without --resume or --restart, a run's checkpoint stops `lab train` (exit 2) and is kept."""
    data = write_jsonl(tmp_path / "d.jsonl", ticket_rows(25))
    ckpt = checkpoint_dir(Lab(home=tmp_path), "half")
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"step": 6}))
    args = ["--home", str(tmp_path), "train", "--data", str(data), "--name", "half"]
    result = CliRunner().invoke(cli, args, obj={})
    assert result.exit_code == 2, result.output
    assert f"'half' has a checkpoint at step 6 in {ckpt}" in result.output
    assert "--resume" in result.output and "--restart" in result.output
    assert (ckpt / "state.json").exists()
    result = CliRunner().invoke(cli, args + ["--resume", "--restart"], obj={})
    assert result.exit_code == 2 and "pass one of them" in result.output
    assert (ckpt / "state.json").exists()


def _fake_adapter(home: Path, name: str, base_id: str, base_sha: str) -> Path:
    folder = home / "adapters" / name
    folder.mkdir(parents=True)
    (folder / "lab_adapter.json").write_text(
        json.dumps(
            {
                "base_model": {"id": base_id, "sha256": base_sha},
                "adapter": {"sha256": "ab" * 32},
                "config": {"instruction": "I"},
                "metrics": {"steps": 3},
            }
        )
    )
    return folder


def test_adapter_for_other_weights_is_refused(tmp_path):
    lab = Lab(home=tmp_path)
    _fake_adapter(tmp_path, "other", "smollm2-135m-instruct", "0" * 64)
    with pytest.raises(AdapterError, match="trained on smollm2-135m-instruct.*but the model being served"):
        resolve_adapter(lab, "other")
    with pytest.raises(AdapterError, match="no adapter 'missing'.*known: other"):
        resolve_adapter(lab, "missing")
    (tmp_path / "adapters" / "half").mkdir()  # no manifest: a half-written adapter is never listed
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "adapters", "--json"], obj={})
    assert result.exit_code == 0 and [a["name"] for a in json.loads(result.stdout)] == ["other"]


def test_export_refuses_an_adapter_for_another_model(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    from lab.home import LabHome
    from lab.models import resolve
    from lab.tuning.export_gguf import ExportError, export_gguf

    info = resolve(LabHome.resolve(tmp_path), "smollm2-135m-instruct")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file(
        {
            f"{prefix}.lora_A.weight": np.zeros((4, 1024), np.float32),  # SmolLM2-135M is 576 wide
            f"{prefix}.lora_B.weight": np.zeros((576, 4), np.float32),
        },
        str(tmp_path / "adapter_model.safetensors"),
    )
    with pytest.raises(ExportError, match="do not fit blk.0.attn_q.weight"):
        export_gguf(tmp_path, info.path)
    assert not (tmp_path / "adapter.gguf").exists()


# ---- a real LoRA run on the embedded model (CPU) ---------------------------------------------------

STEPS = 8


def tiny_config(data: Path, name: str, **kw):
    values = dict(
        name=name,
        data=str(data),
        instruction=INSTRUCTION,
        max_steps=STEPS,
        batch_size=4,
        learning_rate=3e-3,
        eval_every=4,
        save_every=4,
        val_fraction=0.1,
        max_seq_len=128,
        target_modules="q_proj,v_proj",
        force=False,
        method="lora",
    )
    values.update(kw)
    return make_config(**values)


@pytest.fixture(scope="module")
def trained(shared_home):
    """One real training run shared by the integration tests (cold home: includes the one-off
    GGUF -> transformers conversion)."""
    lab = Lab(home=shared_home)
    data = write_jsonl(shared_home / "tickets-tiny.jsonl", ticket_rows(40))
    steps = []
    adapter = train(tiny_config(data, "tiny"), lab, progress=False, on_step=steps.append, overwrite=True)
    return lab, adapter, data, steps


@pytest.mark.integration
@pytest.mark.slow
def test_loss_falls_and_steps_are_logged(trained):
    lab, adapter, _, steps = trained
    assert [s["step"] for s in steps] == list(range(1, STEPS + 1))
    rows = lab.store.query("select * from training_steps where run_id = ? order by step", [adapter.run_id])
    assert len(rows) == STEPS and all(r["lr"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-2:]) / 2
    assert last < 0.7 * first, (first, last)
    vals = [r["val_loss"] for r in rows if r["val_loss"] is not None]
    assert len(vals) == 2 and vals[-1] < vals[0] * 1.05
    run = lab.store.query("select * from training_runs where id = ?", [adapter.run_id])[0]
    assert run["status"] == "done" and run["total_steps"] == STEPS and run["adapter_sha"] == adapter.sha256
    assert not (lab.home.adapters / ".runs" / "tiny").exists()  # checkpoint dropped once finished


@pytest.mark.integration
@pytest.mark.slow
def test_manifest_is_complete(trained):
    lab, adapter, data, _ = trained
    m = adapter.manifest
    for f in ("adapter_config.json", "adapter_model.safetensors", "adapter.gguf", "lab_adapter.json"):
        assert (adapter.path / f).is_file()
    info = lab.model_info()
    assert m["base_model"]["id"] == info.id and m["base_model"]["sha256"] == lab.model_sha(info)
    assert m["dataset"]["sha256"] and m["dataset"]["count"] == 40
    assert m["dataset"]["n_train"] + m["dataset"]["n_val"] == 40 and m["dataset"]["lengths"]["max"] < 128
    assert m["config"]["rank"] == 8 and m["config"]["instruction"] == INSTRUCTION
    assert m["metrics"]["train_loss"] < m["metrics"]["first_loss"] and m["metrics"]["val_loss"] > 0
    assert m["wall_s"] > 0 and m["peak_mem_bytes"] > 100e6 and m["lab_version"]
    assert m["device"] == ("cuda" if _cuda() else "cpu")
    assert m["adapter"]["sha256"] == adapter.sha256 and m["method"] == "lora"
    assert not [p for p in lab.home.adapters.iterdir() if ".partial" in p.name]


@pytest.mark.integration
def test_loss_is_on_the_answer_tokens_only(trained):
    from lab.tuning.datasets import IGNORE, encode
    from lab.tuning.trainer import load_tokenizer

    lab = trained[0]
    tok = load_tokenizer(lab, lab.model_info())
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "first"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "second"},
    ]
    enc = encode(tok, msgs, 512, weights=[0, 1])  # OpenAI-style weight 0: the first answer is context
    learned = tok.decode([i for i, lab_ in zip(enc.input_ids, enc.labels) if lab_ != IGNORE])
    assert learned == "second<|im_end|>\n"
    assert tok.decode(enc.input_ids) == tok.apply_chat_template(msgs, tokenize=False)  # the model's own template
    short = encode(tok, msgs, 10)
    assert len(short.input_ids) == 10 and short.length == len(enc.input_ids)


@pytest.mark.integration
@pytest.mark.slow
def test_peft_adapter_loads_and_changes_the_answer(trained):
    lab, adapter, _, _ = trained
    question = "My laptop is not working today."
    options = lab.options(max_tokens=12)
    base, _ = lab.generate(
        [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": question}],
        arm="zero-shot",
        engine="hf",
        options=options,
    )
    ans = lab.answer("tune", question, adapter="tiny", engine="hf", options=options)
    tuned, row_id = ans.generation, ans.row_id
    assert tuned.text != base.text
    assert tuned.text.startswith('{"label"'), tuned.text
    row = lab.store.query("select * from generations where id = ?", [row_id])[0]
    assert row["arm"] == "tune" and row["adapter_id"] == "tiny" and row["adapter_sha"] == adapter.sha256
    again, _ = lab.generate(
        [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": question}],
        arm="zero-shot",
        engine="hf",
        options=options,
    )
    assert again.text == base.text  # adapter off again on the same loaded model


@pytest.mark.integration
@pytest.mark.slow
def test_llamacpp_serves_the_gguf_adapter_on_the_same_model(trained):
    lab, adapter, _, _ = trained
    question = "Urgent: vpn problem since Monday."
    options = lab.options(max_tokens=12)
    base = lab.answer("zero-shot", question, system=INSTRUCTION, options=options).generation
    backend = lab.backend()
    llm = backend.llm
    ans = lab.answer("tune", question, adapter="tiny", options=options)
    tuned, row_id = ans.generation, ans.row_id
    assert backend.llm is llm  # the same Llama: not loaded twice
    assert tuned.text != base.text and tuned.text.startswith('{"label"'), (base.text, tuned.text)
    again = lab.answer("zero-shot", question, system=INSTRUCTION, options=options).generation
    assert again.text == base.text  # switched off again
    row = lab.store.query("select * from generations where id = ?", [row_id])[0]
    assert row["adapter_id"] == "tiny" and row["adapter_sha"] == adapter.sha256 and row["backend"] == "llamacpp"


@pytest.mark.integration
@pytest.mark.slow
def test_llamacpp_adapter_matches_hf_peft_within_quantisation_noise(trained):
    from lab.prompts import zero_shot
    from lab.tuning.parity import compare

    lab, adapter, _, _ = trained
    questions = ["Can you help with the printer?", "Question about my refund please.", "My badge is not working today."]
    r = compare(lab, adapter, [zero_shot(q, INSTRUCTION) for q in questions], max_tokens=12)
    print(json.dumps({k: v for k, v in r.items() if k != "answers"}, indent=1))
    # The adapter changes the model a lot; llama.cpp and HF agree with it on as well as without it.
    assert r["top1_same_as_base_hf"] < 0.9
    assert r["top1_agree_tuned"] >= r["top1_agree_base"] - 0.1
    assert r["kl_tuned"] < max(3 * r["kl_base"], 0.02)
    assert r["adapter_effect_rel_err"] < 0.2  # measured 0.08; the same adapter with unpermuted q rows: 0.35
    assert r["same_text"] >= 2, r["answers"]


def _spawn_training(home: Path, data: Path, name: str, steps: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "lab.cli",
        "--home",
        str(home),
        "train",
        "--data",
        str(data),
        "--name",
        name,
        "-s",
        INSTRUCTION,
        "--method",
        "lora",
        "--max-steps",
        str(steps),
        "--batch-size",
        "4",
        "--lr",
        "3e-3",
        "--eval-every",
        "100",
        "--save-every",
        "2",
        "--val-fraction",
        "0.1",
        "--max-seq-len",
        "128",
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )


def _wait_for_step(lab: Lab, name: str, step: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        rows = lab.store.query(
            "select max(s.step) as n from training_steps s join training_runs r "
            "on r.id = s.run_id where r.adapter_name = ?",
            [name],
        )
        if rows and rows[0]["n"] and rows[0]["n"] >= step:
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited early ({proc.returncode}): {proc.stdout.read()}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail("training did not reach step %d in time" % step)


@pytest.mark.integration
@pytest.mark.slow
def test_killed_run_leaves_no_adapter_and_resume_continues(trained):
    lab, _, data, _ = trained
    proc = _spawn_training(lab.home.root, data, "killed", steps=200)
    _wait_for_step(lab, "killed", 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (lab.home.adapters / "killed").exists()
    assert not [p for p in lab.home.adapters.glob("*/lab_adapter.json") if "killed" in str(p)]
    state = json.loads((checkpoint_dir(lab, "killed") / "state.json").read_text())
    assert state["step"] >= 2
    config = tiny_config(
        data, "killed", max_steps=state["step"] + 2, eval_every=100, save_every=2, target_modules=["q_proj", "v_proj"]
    )
    with pytest.raises(TrainingError, match="--resume.*--restart"):  # never dropped unasked
        train(config, lab, progress=False)
    adapter = train(config, lab, progress=False, resume=True)
    assert adapter.run_id == state["run_id"] and adapter.metrics["steps"] == state["step"] + 2
    steps = [
        r["step"]
        for r in lab.store.query("select step from training_steps where run_id = ? order by step", [adapter.run_id])
    ]
    assert steps == list(range(1, state["step"] + 3))
    assert (adapter.path / "lab_adapter.json").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_sigterm_stops_cleanly_with_exit_130_and_a_checkpoint(trained):
    lab, _, data, _ = trained
    proc = _spawn_training(lab.home.root, data, "stopped", steps=200)
    _wait_for_step(lab, "stopped", 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "--resume" in out
    assert not (lab.home.adapters / "stopped").exists()
    state = json.loads((checkpoint_dir(lab, "stopped") / "state.json").read_text())
    run = lab.store.training_run(state["run_id"])
    assert run["status"] == "interrupted" and state["step"] >= 1
    assert [(e["event"], e["step"]) for e in json.loads(run["events_json"])] == [("stopped", state["step"])]
    # --restart drops that checkpoint and trains a new run from step 1
    adapter = train(
        tiny_config(data, "stopped", max_steps=2, eval_every=100, save_every=100), lab, progress=False, restart=True
    )
    assert adapter.run_id != state["run_id"] and adapter.metrics["steps"] == 2
    assert not checkpoint_dir(lab, "stopped").exists()


@pytest.mark.integration
def test_adapters_cli_lists_the_trained_adapter(trained):
    lab, adapter, _, _ = trained
    result = CliRunner().invoke(cli, ["--home", str(lab.home.root), "adapters"], obj={})
    assert result.exit_code == 0 and "tiny" in result.output and "smollm2-135m-instruct" in result.output


# ---- CUDA (skipped without a GPU) -----------------------------------------------------------------


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.integration
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("engine", ["bitsandbytes", "unsloth"])
def test_qlora_on_cuda(shared_home, engine):
    from lab.tuning.trainer import unsloth_available

    if engine == "unsloth" and not unsloth_available():
        pytest.skip("unsloth is not installed")
    lab = Lab(home=shared_home)
    data = write_jsonl(shared_home / "tickets-tiny.jsonl", ticket_rows(40))
    adapter = train(
        tiny_config(data, f"qlora-{engine}", method="qlora", qlora_engine=engine, dropout=0.0),
        lab,
        progress=False,
        overwrite=True,
    )
    m = adapter.manifest
    assert m["method"] == "qlora" and m["device"] == "cuda" and m["peak_gpu_bytes"] > 0
    assert m["metrics"]["train_loss"] < m["metrics"]["first_loss"]
    assert (adapter.path / "adapter.gguf").exists()
