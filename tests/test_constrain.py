"""Constrained decoding (lab/backends/constrain.py): the label grammar and trie as logic, then on
the real default model through llama.cpp (every answer a label; a JSON task's answers parse and
match the schema) and through transformers (the label trie)."""

from __future__ import annotations

import json

import pytest

from lab import models
from lab.backends import backend_class
from lab.backends.constrain import LabelTrie, choices_grammar, end_token_ids
from lab.config import GenerationOptions
from lab.engine import Lab
from lab.evaluation import run_eval, summarize
from lab.evaluation.scorers import schema_valid
from lab.home import LabHome
from lab.ladder import ArmError
from lab.tasks import load_task


def test_choices_grammar_is_one_alternative_per_label_with_quotes_escaped():
    g = choices_grammar(["Cardiologist", 'say "hi"', "back\\slash"])
    assert g == 'root ::= "Cardiologist" | "say \\"hi\\"" | "back\\\\slash"\n'
    with pytest.raises(ValueError):
        choices_grammar([])


def test_label_trie_allows_only_label_continuations_then_the_end():
    # labels as token ids: A = [1, 2], AB = [1, 2, 3], C = [4]; end token 0
    trie = LabelTrie([[1, 2], [1, 2, 3], [4]], end_ids=[0])
    assert sorted(trie.allowed([])) == [1, 4]
    assert trie.allowed([1]) == [2]
    assert sorted(trie.allowed([1, 2])) == [0, 3]  # "A" is complete, "AB" may go on
    assert trie.allowed([1, 2, 3]) == [0]
    assert trie.allowed([4]) == [0]
    assert trie.allowed([9]) == [0]  # off the trie (never happens under the constraint): stop


def test_a_text_task_cannot_be_constrained(tmp_path):
    from lab.tasks import TaskError

    (tmp_path / "eval.jsonl").write_text('{"input": "q", "output": "a"}\n')
    (tmp_path / "task.toml").write_text('name = "t"\noutput_format = "text"\neval = "eval.jsonl"\nconstrain = true\n')
    with pytest.raises(TaskError, match="constrain.*'text' task has no label set or schema"):
        load_task(tmp_path / "task.toml")


def test_the_ladder_refuses_a_label_constraint_on_an_openai_server(fake_lab):
    fake_lab.fake.info.format = "openai"
    with pytest.raises(ArmError, match="OpenAI-compatible server cannot be held to a label set"):
        fake_lab.answer("zero-shot", "chest pain", task=load_task("specialty"), constrain=True)
    fake_lab.fake.info.format = "fake"
    fake_lab.answer("zero-shot", "chest pain", task=load_task("specialty"), constrain=True)
    assert fake_lab.fake.calls[-1]["options"].choices == load_task("specialty").labels


@pytest.mark.integration
def test_llamacpp_grammar_keeps_every_answer_in_the_label_set(shared_home):
    """The real default model on specialty, zero-shot and few-shot: without the grammar some answers
    are not labels; with it every one is, and the scoreboard says both arms were constrained."""
    lab = Lab(home=shared_home)
    task = load_task("specialty")
    run_id = run_eval(lab, task, ["zero-shot", "few-shot"], limit=4, constrain=True, progress=False)
    board = summarize(lab, run_id)
    outputs = [o["output"] for e in board.examples for o in e["outputs"].values()]
    assert len(outputs) == 8 and all(out in task.labels for out in outputs), outputs
    assert all(a.format_valid == 1.0 and a.constrained for a in board.arms)
    assert "Constrained decoding" in board.to_text() and "zero-shot yes, few-shot yes" in board.to_text()


@pytest.mark.integration
def test_llamacpp_json_schema_constraint_gives_parseable_schema_valid_json(shared_home):
    lab = Lab(home=shared_home)
    task = load_task("tickets")
    run_id = run_eval(lab, task, ["zero-shot"], limit=2, constrain=True, progress=False)
    board = summarize(lab, run_id)
    for e in board.examples:
        out = e["outputs"]["zero-shot"]["output"]
        assert isinstance(json.loads(out), dict), out
        assert schema_valid(out, task.schema()) == 1.0, out
    assert board.arm("zero-shot").constrained


@pytest.mark.integration
@pytest.mark.slow
def test_transformers_label_trie_keeps_answers_in_the_label_set(shared_home):
    """The same GGUF through transformers: the trie over the labels' tokens (prefix_allowed_tokens_fn)."""
    home = LabHome.resolve(shared_home).ensure()
    info = models.resolve(home, None)
    cache = home.state / "hf" / f"{info.id}-{models.model_sha256(home, info)[:12]}"
    hf = backend_class("hf")(info, n_ctx=1024, cache_dir=cache)
    task = load_task("specialty")
    assert end_token_ids(hf.model, hf.tokenizer)
    for ex in task.examples("eval")[:3]:
        msgs = [{"role": "system", "content": task.instruction}, {"role": "user", "content": ex.input}]
        gen = hf.generate(msgs, GenerationOptions(max_tokens=16, choices=task.labels))
        assert gen.text in task.labels and gen.extra["constrained"], gen.text
    # a schema is not enforced on transformers here, and it says so
    gen = hf.generate(
        [{"role": "user", "content": "hi"}], GenerationOptions(max_tokens=4, json_schema={"type": "object"})
    )
    assert gen.extra["constrained"] is False
