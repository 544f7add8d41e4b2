"""`lab export`: the rung as a folder other engines run, and `--verify`, the round trip.

Fast tests of the files' logic (the Modelfile, a request, the pre-checks, the verdict of a
verification); then, on the real embedded model with real tiny adapters, every rung kind exported
from one real evaluation, a verification that passes (an adapter on llama-cpp-python's server on
loopback) and ones that must fail: a wrong chat template, an adapter exported for another base,
an adapter of zeros that does nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_adapters import random_adapter  # tests/ is on the path, as for every test

from lab.cli import cli
from lab.engine import Lab
from lab.evaluation.runner import run_eval
from lab.export import ExportError, Verification, export_rung, verify_export
from lab.export.bundle import _write_atomically
from lab.export.serving import MODELFILE_TEMPLATE_PLAIN, modelfile, request_body
from lab.export.verify import check_files


def _prompt(**kw) -> dict:
    p = {
        "task": "t",
        "name": "few-shot, 2 fixed examples",
        "eval_run_id": 7,
        "instruction": "Label it.",
        "examples": {"mode": "fixed", "k": 2, "pairs": [{"input": "a", "output": "x"}, {"input": "b", "output": "y"}]},
        "options": {"temperature": 0.0, "top_p": 1.0, "seed": 0, "max_tokens": 12, "stop": [], "repeat_penalty": 1.0},
        "constraint": None,
        "n_ctx": 2048,
    }
    return {**p, **kw}


# ---- the files --------------------------------------------------------------------------------


def test_modelfile_holds_what_was_evaluated():
    text = modelfile(_prompt(), "/m/base.gguf", "/a/adapter.gguf", True, "<|im_end|>")
    lines = text.splitlines()
    assert lines[1:3] == ["FROM /m/base.gguf", "ADAPTER /a/adapter.gguf"]
    assert 'SYSTEM """Label it."""' in lines
    assert lines.index('MESSAGE user """a"""') + 1 == lines.index('MESSAGE assistant """x"""')
    assert "PARAMETER temperature 0" in lines and "PARAMETER num_ctx 2048" in lines
    assert "PARAMETER num_predict 12" in lines and 'PARAMETER stop "<|im_end|>"' in lines
    assert not any(x.startswith("TEMPLATE") for x in lines)  # the GGUF's own template is what was evaluated


def test_modelfile_without_a_chat_template_writes_the_plain_format_and_says_why():
    text = modelfile(_prompt(), "/m/base.gguf", None, False, None)
    assert "ADAPTER" not in text and "no chat template" in text
    assert MODELFILE_TEMPLATE_PLAIN in text and 'PARAMETER stop "\\nInput:"' in text


def test_the_plain_chat_template_renders_what_the_lab_prompted():
    import jinja2

    from lab.backends.base import plain_render
    from lab.export.serving import JINJA_TEMPLATE_PLAIN

    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "q?"},
    ]
    assert jinja2.Template(JINJA_TEMPLATE_PLAIN).render(messages=msgs) == plain_render(msgs)


def test_similar_examples_are_not_pretended_in_a_modelfile():
    similar = {"mode": "similar", "k": 4, "pairs": [{"input": "a", "output": "x"}]}
    text = modelfile(_prompt(examples=similar), "/m/b.gguf", None, True, None)
    assert "MESSAGE" not in text and "4 most similar examples per question" in text


def test_a_constrained_request_carries_the_constraint_each_engine_takes():
    c = {"labels": ["x", "y"], "grammar": 'root ::= "x" | "y"\n'}
    body = request_body(_prompt(constraint=c), "m", "q?", "llama-server")
    assert body["grammar"] == c["grammar"] and body["repeat_penalty"] == 1.0
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    vllm = request_body(_prompt(constraint=c), "m", "q?", "vllm")
    assert vllm["structured_outputs"] == {"choice": ["x", "y"]} and "repeat_penalty" not in vllm


def test_the_folder_is_swapped_in_whole_and_a_foreign_folder_is_refused(tmp_path):
    dest = tmp_path / "ship"
    _write_atomically(dest, {"export.json": "{}", "a.txt": "1"}, {})
    _write_atomically(dest, {"export.json": "{}", "b.txt": "2"}, {})
    assert sorted(p.name for p in dest.iterdir()) == ["b.txt", "export.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["ship"]  # no temporary or old folder left
    (tmp_path / "mine").mkdir()
    with pytest.raises(ExportError, match="not a lab export"):
        _write_atomically(tmp_path / "mine", {"export.json": "{}"}, {})


def test_files_that_are_not_the_evaluated_ones_are_named_before_anything_runs(tmp_path):
    base, other, lora = tmp_path / "base.gguf", tmp_path / "other.gguf", tmp_path / "a.gguf"
    base.write_bytes(b"base")
    other.write_bytes(b"other")
    lora.write_bytes(b"lora")
    from lab.models import sha256_of

    manifest = {
        "model": {"id": "m", "sha256": sha256_of(base)},
        "adapter": {"name": "a", "base_sha256": sha256_of(base), "gguf_sha256": sha256_of(lora)},
    }
    good = {"models": [{"model": str(base)}, {"model": str(base), "lora_path": str(lora)}]}
    assert check_files(manifest, good) == []
    wrong_base = {"models": [{"model": str(base)}, {"model": str(other), "lora_path": str(lora)}]}
    assert "an adapter for another base" in check_files(manifest, wrong_base)[0]
    gone = {"models": [{"model": str(tmp_path / "gone.gguf")}]}
    assert "does not exist" in check_files(manifest, gone)[0]


def test_a_verification_passes_only_when_every_answer_is_identical_and_nothing_is_flagged():
    assert Verification(n=3, identical=3).ok
    assert not Verification(n=3, identical=2).ok
    assert not Verification(n=0).ok
    flagged = Verification(n=3, identical=3, adapter_noop=True)
    assert not flagged.ok and "does nothing" in flagged.lines()[1]
    mismatch = Verification(n=2, identical=2, template_mismatch=[{"example_id": "e1", "evaluated": 10, "export": 12}])
    assert not mismatch.ok and "template mismatch" in " ".join(mismatch.lines())
    assert Verification(problems=["x"]).lines() == ["not verified: x"]


def test_nothing_to_export_says_what_to_run(fake_lab):
    with pytest.raises(ExportError, match="lab eval tickets"):
        export_rung(fake_lab, "tickets")
    with pytest.raises(ExportError, match="unknown rung"):
        export_rung(fake_lab, "tickets", rung="best")
    with pytest.raises(ExportError, match="lab distill tickets"):
        export_rung(fake_lab, "tickets", rung="distilled")


def test_the_distilled_rung_is_the_student_of_the_latest_distillation(fake_lab):
    from lab.export import pick_rung
    from lab.tasks import load_task

    lab = fake_lab
    config = {"model": "fake", "adapter": {"name": "tickets-distilled", "sha": "s"}, "max_tokens": 64}
    run_id = lab.store.new_eval_run("tickets~distilled", "h", ["tune"], "fake", config)
    ledger = {"rows": [{"role": "distilled", "how": "adapter tickets-distilled", "eval_run_id": run_id}]}
    ledger["sentence"] = "The distilled student is as good as the teacher within 5 points."
    distill_id = lab.store.open_distill("tickets", "tickets-distilled", "{}")
    lab.store.update_distill(distill_id, {"ledger_json": json.dumps(ledger), "status": "finished"})
    pick = pick_rung(lab, load_task("tickets", home=lab.home), "distilled")
    assert (pick.arm, pick.eval_run_id, pick.adapter) == ("tune", run_id, "tickets-distilled")
    assert pick.notes == [ledger["sentence"]]


# ---- the real model ---------------------------------------------------------------------------

TASK, ARMS = "acme-facts", ["zero-shot", "few-shot", "rag", "tune", "tune+rag"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A home where acme-facts was evaluated on every arm (3 examples) with a real LoRA adapter
    (random weights strong enough to change the answers) and the embedded model."""
    home = tmp_path_factory.mktemp("export-home")
    lab = Lab(home=home)
    random_adapter(lab, TASK)
    run_eval(lab, TASK, ARMS, limit=3, progress=False)
    yield lab
    lab.store.close()


@pytest.mark.integration
@pytest.mark.slow
def test_every_rung_kind_is_exported_as_it_was_evaluated(evaluated, tmp_path):
    lab = evaluated
    for rung in ARMS:
        done = export_rung(lab, TASK, rung, tmp_path / rung)
        prompt = json.loads((done.folder / "prompt.json").read_text())
        assert prompt["arm"] == rung and prompt["options"]["temperature"] == 0.0
        assert (done.folder / "rag.json").exists() == (rung in ("rag", "tune+rag"))
        modelfile_text = (done.folder / "Modelfile").read_text()
        assert ("ADAPTER " in modelfile_text) == (rung in ("tune", "tune+rag"))
        assert ("MESSAGE user" in modelfile_text) == (rung == "few-shot")
        evidence = (done.folder / "EVIDENCE.md").read_text()
        assert prompt["model"]["sha256"] in evidence and "## The scoreboard" in evidence
        assert "lab eval acme-facts" in evidence
        if rung == "tune":
            assert prompt["adapter"]["sha256"] in evidence and "Side effects" in evidence
            assert "--lora" in (done.folder / "SERVE.md").read_text()
        if rung == "rag":
            rag = json.loads((done.folder / "rag.json").read_text())
            assert rag["k"] == 4 and rag["index_hash"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "tune").iterdir()}
    export_rung(lab, TASK, "tune", tmp_path / "tune")  # the same inputs write the same bytes
    assert {p.name: p.read_bytes() for p in (tmp_path / "tune").iterdir()} == before
    copied = export_rung(lab, TASK, "tune", tmp_path / "copied", copy_models=True).folder
    config = json.loads((copied / "llama-cpp-server.json").read_text())
    assert sorted(p.name for p in (copied / "models").iterdir()) == sorted(
        {Path(m["model"]).name for m in config["models"]} | {f"{TASK}.gguf"}
    )
    assert all(Path(m["model"]).parent == copied.resolve() / "models" for m in config["models"])
    assert "FROM models/" in (copied / "Modelfile").read_text()
    auto = export_rung(lab, TASK, "auto", tmp_path / "auto")
    assert auto.pick.rung in ARMS and auto.pick.advice is not None


@pytest.mark.integration
@pytest.mark.slow
def test_verify_passes_for_a_tuned_export_and_fails_for_a_wrong_template(evaluated, tmp_path):
    lab = evaluated
    folder = export_rung(lab, TASK, "tune", tmp_path / "tune").folder
    result = verify_export(lab, folder, n=3)
    assert result.ok, result.lines()
    assert result.identical == 3 and not result.adapter_noop and result.score_export == result.score_evaluated

    config_file = folder / "llama-cpp-server.json"
    config = json.loads(config_file.read_text())
    for m in config["models"]:
        m["chat_format"] = "llama-2"  # not the GGUF's own template
    config_file.write_text(json.dumps(config))
    wrong = verify_export(lab, folder, n=2)
    assert not wrong.ok and wrong.template_mismatch


@pytest.mark.integration
@pytest.mark.slow
def test_verify_refuses_an_adapter_served_on_another_base(evaluated, tmp_path):
    from lab.models import resolve

    lab = evaluated
    folder = export_rung(lab, TASK, "tune", tmp_path / "tune").folder
    config_file = folder / "llama-cpp-server.json"
    config = json.loads(config_file.read_text())
    config["models"][-1]["model"] = str(resolve(lab.home, "gemma3-270m").path)
    config_file.write_text(json.dumps(config))
    runner = CliRunner()
    r = runner.invoke(
        cli, ["--home", str(lab.home.root), "export", TASK, "--rung", "tune", "--to", str(folder), "--verify-only"]
    )
    assert r.exit_code == 1 and "an adapter for another base" in r.output, r.output


@pytest.mark.integration
@pytest.mark.slow
def test_an_adapter_of_zeros_is_flagged_as_doing_nothing(evaluated, tmp_path):
    lab = evaluated
    random_adapter(lab, "zeros", b_std=0.0)
    run_eval(lab, TASK, ["zero-shot", "tune"], adapter="zeros", limit=2, progress=False)
    folder = export_rung(lab, TASK, "tune", tmp_path / "zeros").folder
    assert json.loads((folder / "export.json").read_text())["adapter"]["name"] == "zeros"
    result = verify_export(lab, folder, n=2)
    assert result.identical == 2 and result.adapter_noop and not result.ok
    assert any("does nothing" in line for line in result.lines())


def test_the_cli_offers_the_engines_rungs_and_default():
    from lab.cli.export import export_cmd
    from lab.export import DEFAULT_N, RUNGS

    params = {p.name: p for p in export_cmd.params}
    assert list(params["rung"].type.choices) == list(RUNGS) and params["n"].default == DEFAULT_N


def test_cli_export_errors_exit_2_without_a_traceback(tmp_path):
    r = CliRunner().invoke(cli, ["--home", str(tmp_path), "export", "tickets"])
    assert r.exit_code == 2 and "lab eval tickets" in r.output and "Traceback" not in r.output
