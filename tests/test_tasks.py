"""Task files, the built-in scenarios and their generator (fast: no model, no index)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from lab.tasks import (
    SCENARIOS_DIR,
    DataError,
    Example,
    Task,
    TaskError,
    builtin_tasks,
    home_tasks,
    home_tasks_dir,
    load_task,
    read_examples,
    task_names,
)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "acme"
GENERATOR = ROOT / "scripts" / "make_scenarios.py"
BUILTINS = ["acme-facts", "specialty", "support-tone", "tickets"]


# ---- the built-in scenarios ---------------------------------------------------------------


def test_builtins_are_listed():
    assert builtin_tasks() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_with_enough_disjoint_data(name):
    task = load_task(name)
    assert task.name == name and task.instruction.strip()
    assert task.source == SCENARIOS_DIR / name / "task.toml"
    train, evals, fewshot = (task.examples(s) for s in ("train", "eval", "fewshot"))
    assert len(train) >= 300 and len(evals) >= 60 and len(fewshot) >= 12
    ids = [e.id for e in train + evals + fewshot]
    assert len(ids) == len(set(ids))
    eval_inputs = {e.input for e in evals}
    assert not eval_inputs & {e.input for e in train}
    assert not eval_inputs & {e.input for e in fewshot}
    assert all(e.id.startswith(f"{name}-") for e in train + evals + fewshot)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_has_a_readme_with_a_prediction(name):
    text = (SCENARIOS_DIR / name / "README.md").read_text()
    assert "What the guide predicts" in text and "measurements win" in text


def test_tickets_outputs_match_the_schema():
    task = load_task("tickets")
    schema = task.schema()
    assert schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    for split in ("train", "eval", "fewshot"):
        for ex in task.examples(split):
            ticket = json.loads(ex.output)
            validator.validate(ticket)
            assert list(ticket) == ["priority", "category", "summary"]  # key order is part of the format
            assert len(ticket["summary"].split()) <= 12
            assert ex.output == json.dumps(ticket, separators=(",", ":"), ensure_ascii=False)


def test_specialty_outputs_are_labels():
    task = load_task("specialty")
    assert task.output_format == "label" and len(task.labels) >= 10
    for split in ("train", "eval", "fewshot"):
        outputs = {ex.output for ex in task.examples(split)}
        assert outputs <= set(task.labels)
    assert {ex.output for ex in task.examples("eval")} == set(task.labels)


SIGN_OFF = "\u2014 Maya, Customer Care"


def test_support_tone_is_a_text_task_judged_pairwise_whose_replies_keep_the_house_style():
    task = load_task("support-tone")
    assert task.output_format == "text" and task.judge == "pairwise" and task.rubric.strip()
    assert task.baseline_arm == "few-shot" and task.win_rate_target == 0.6
    assert SIGN_OFF in task.rubric and "Hi <first name>," in task.rubric
    assert "Maya" not in task.instruction  # the prompt leaves the style to the examples and to tuning
    issues = {}
    for split in ("train", "eval", "fewshot"):
        for ex in task.examples(split):
            first = re.fullmatch(r"Hi (\w+),", ex.output.split("\n")[0])
            assert first, f"{ex.id}: no greeting by first name"
            signature = ex.input.split("\n\n")[-1]  # the customer's closing and name
            assert re.search(rf"\b{first[1]}\b", signature), f"{ex.id}: {first[1]} did not sign the message"
            assert ex.output.endswith(f"\n\n{SIGN_OFF}") and ex.output.count(SIGN_OFF) == 1
            assert len(ex.output.split()) <= 60, f"{ex.id}: {len(ex.output.split())} words"
            assert "apologi" not in ex.output.lower()
            issues.setdefault(split, set()).add(ex.extra["issue"])
    assert issues["eval"] == issues["train"] == issues["fewshot"] and len(issues["fewshot"]) >= 10


def test_acme_answers_are_in_their_gold_documents():
    task = load_task("acme-facts")
    assert task.corpus == "acme"
    for split in ("train", "eval", "fewshot"):
        for ex in task.examples(split):
            doc = CORPUS / ex.extra["gold_doc"]
            assert doc.is_file(), f"{ex.id}: missing gold doc {doc}"
            assert ex.output in doc.read_text(encoding="utf-8"), f"{ex.id}: {ex.output!r} not in {doc}"
            assert isinstance(ex.extra["aliases"], list)
    evals = task.examples("eval")
    assert {ex.extra["seen_in_train"] for ex in evals} == {True, False}


def test_acme_corpus_has_every_format():
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    by_suffix = {s: [p for p in files if p.suffix == s] for s in (".md", ".txt", ".html", ".jsonl")}
    assert len(by_suffix[".md"]) >= 45
    assert all(by_suffix.values())
    assert not (CORPUS / "README.md").exists()  # it would be indexed as a document
    for line in by_suffix[".jsonl"][0].read_text().splitlines():
        assert {"id", "title", "text"} <= set(json.loads(line))


def test_probe_old_appears_once_in_its_document():
    probe = load_task("acme-facts").probe
    text = (CORPUS / probe.doc).read_text(encoding="utf-8")
    assert text.count(probe.old) == 1
    assert probe.new not in text


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generator_is_deterministic(tmp_path):
    for n in (1, 2):
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(tmp_path / f"s{n}"), "--corpus-out", str(tmp_path / f"c{n}")],
            check=True,
            capture_output=True,
        )
    scenarios, corpus = files_under(tmp_path / "s1"), files_under(tmp_path / "c1")
    assert scenarios == files_under(tmp_path / "s2") and corpus == files_under(tmp_path / "c2")
    # ...and the committed files are what the generator makes today (nobody edited them by hand).
    committed = files_under(SCENARIOS_DIR)
    assert {k: committed.get(k) for k in scenarios} == scenarios
    assert files_under(CORPUS) == corpus


# ---- bad task files ---------------------------------------------------------------------


def write_task(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.jsonl").write_text('{"id": "a", "input": "hi", "output": "there"}\n')
    (folder / "task.toml").write_text(body)
    return folder / "task.toml"


def error_for(path) -> str:
    with pytest.raises(TaskError) as e:
        load_task(path)
    return str(e.value)


def test_custom_task_defaults_and_relative_paths(tmp_path):
    path = write_task(tmp_path / "mine", 'name = "mine"\neval = "eval.jsonl"\n')
    task = load_task(tmp_path / "mine")  # the folder works as well as the file
    assert task.eval == (tmp_path / "mine" / "eval.jsonl").resolve()
    assert task.train is None and task.examples("train") == []
    assert task.output_format == "text" and task.few_shot_k == 8 and task.cost.requests_per_day == 10000
    assert task.examples("eval") == [Example("a", "hi", "there", {})]
    before = task.hash()
    (tmp_path / "mine" / "eval.jsonl").write_text('{"id": "a", "input": "hi", "output": "changed"}\n')
    assert load_task(path).hash() != before


@pytest.mark.parametrize(
    "line, field, says",
    [
        ("target = 1.5", "target", "must be between 0 and 1"),
        ('output_format = "xml"', "output_format", "must be one of"),
        ("few_shot_k = -1", "few_shot_k", "greater than or equal to 0"),
        ('max_tokens = "many"', "max_tokens", "must be a valid integer"),
        ('primary_metrc = "x"', "primary_metrc", "did you mean 'primary_metric'"),
        ('train = "nowhere.jsonl"', "train", "file not found"),
        ("[cost]\ngpu_hour_price = -1", "cost.gpu_hour_price", "greater than or equal to 0"),
        ('[probe]\ndoc = "a.md"\nold = "x"', "probe.new", "is required"),
    ],
)
def test_bad_field_is_named(tmp_path, line, field, says):
    path = write_task(tmp_path / "bad", f'name = "bad"\neval = "eval.jsonl"\n{line}\n')
    msg = error_for(path)
    assert msg.split(": ")[0].endswith("task.toml")  # the message starts with the file
    assert f"field '{field}'" in msg and says in msg


def test_missing_required_field_and_label_rules(tmp_path):
    assert "field 'eval': is required" in error_for(write_task(tmp_path / "a", 'name = "a"\n'))
    msg = error_for(write_task(tmp_path / "b", 'name = "b"\neval = "eval.jsonl"\noutput_format = "label"\n'))
    assert "labels" in msg


def test_bad_toml_and_unknown_names(tmp_path):
    assert "not valid TOML" in error_for(write_task(tmp_path / "t", "name = \n"))
    msg = error_for("no-such-scenario")
    assert all(name in msg for name in BUILTINS)
    assert "no task.toml" in error_for(tmp_path / "empty-folder.toml")


def test_bad_schema_file_is_named(tmp_path):
    path = write_task(
        tmp_path / "j", 'name = "j"\neval = "eval.jsonl"\noutput_format = "json"\njson_schema = "s.json"\n'
    )
    (tmp_path / "j" / "s.json").write_text("{not json")
    with pytest.raises(TaskError, match="s.json"):
        load_task(path).schema()


# ---- JSONL data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_line, says",
    [
        ('{"id": "x", "input": "a", "output": ', "invalid JSON"),
        ('{"id": "x", "output": "b"}', "missing field 'input'"),
        ('["a", "b"]', "must be a JSON object"),
        ('{"id": "x", "input": "a", "output": 3}', "field 'output' must be a string"),
        ('{"id": "ok", "input": "a", "output": "b"}', "duplicate id 'ok'"),
    ],
)
def test_malformed_jsonl_line_names_its_number(tmp_path, bad_line, says):
    path = tmp_path / "data.jsonl"
    path.write_text('{"id": "ok", "input": "a", "output": "b"}\n\n' + bad_line + "\n")
    with pytest.raises(DataError) as e:
        read_examples(path)
    assert "data.jsonl:3:" in str(e.value) and says in str(e.value)


def test_read_examples_fields_and_extras(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "a", "a": {"k": 1}, "gold_doc": "x.md"}\n')
    [ex] = read_examples(path, input_field="q", output_field="a")
    assert ex == Example("d-1", "a", '{"k":1}', {"gold_doc": "x.md"})
    with pytest.raises(DataError, match="not found"):
        read_examples(tmp_path / "missing.jsonl")


def test_a_utf8_bom_is_not_part_of_the_first_line(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "input": "q", "output": "x"}\n')
    assert [e.id for e in read_examples(path)] == ["a"]


def test_a_line_that_is_not_utf8_is_a_data_error_naming_it(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"id": "a", "input": "q", "output": "x"}\n{"id": "b", "input": "caf\xe9", "output": "x"}\n')
    with pytest.raises(DataError, match=r"latin.jsonl:2: byte 0xe9 at column 26 is not UTF-8"):
        read_examples(path)


def test_a_task_file_that_is_not_utf8_is_a_task_error(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"input": "q", "output": "x"}\n')
    (tmp_path / "task.toml").write_bytes(b'eval = "e.jsonl"\nname = "caf\xe9"\n')
    with pytest.raises(TaskError, match=r"task.toml: line 2: byte 0xe9 is not UTF-8"):
        load_task(tmp_path / "task.toml")


def test_an_eval_file_of_blank_lines_is_an_error_not_an_empty_evaluation(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n   \n\n")
    task = Task.model_validate({"name": "x", "eval": "e.jsonl"}, context={"root": tmp_path})
    with pytest.raises(DataError, match="e.jsonl: no examples"):
        task.examples("eval")


def test_task_model_validates_in_code(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    task = Task.model_validate({"name": "x", "eval": "e.jsonl"}, context={"root": tmp_path})
    assert task.eval == (tmp_path / "e.jsonl").resolve() and task.source is None
    assert len(task.hash()) == 64


# ---- tasks in the lab home ---------------------------------------------------------------------


def test_home_tasks_load_by_name(tmp_path, monkeypatch):
    home = tmp_path / "home"
    assert home_tasks(home) == [] and task_names(home) == BUILTINS
    write_task(home_tasks_dir(home) / "mine", 'name = "mine"\neval = "eval.jsonl"\n')
    write_task(home_tasks_dir(home) / "tickets", 'name = "shadowed"\neval = "eval.jsonl"\n')
    (home_tasks_dir(home) / "not-a-task").mkdir()
    assert home_tasks(home) == ["mine", "tickets"]
    assert task_names(home) == BUILTINS + ["mine"]  # a built-in's name stays the built-in
    task = load_task("mine", home=home)
    assert task.name == "mine" and task.source == home / "tasks" / "mine" / "task.toml"
    assert load_task("tickets", home=home).source == SCENARIOS_DIR / "tickets" / "task.toml"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAB_HOME", raising=False)
    msg = error_for("mine")  # the default home is the current directory, which has no tasks/
    assert "unknown task 'mine'" in msg and "lab task new" in msg
    monkeypatch.setenv("LAB_HOME", str(home))  # ...or LAB_HOME, as for the Lab
    assert load_task("mine").name == "mine"
    with pytest.raises(TaskError) as e:
        load_task("nope", home=home)
    assert "mine" in str(e.value) and all(name in str(e.value) for name in BUILTINS)


# ---- teaches: what the climb's knowledge/behaviour fork follows (issue 23) ----------------


def test_teaches_round_trips_and_defaults_to_undeclared(tmp_path):
    for value in ("knowledge", "behaviour"):
        path = write_task(tmp_path / value, f'name = "t"\neval = "eval.jsonl"\nteaches = "{value}"\n')
        assert load_task(path).teaches == value
    assert load_task(write_task(tmp_path / "none", 'name = "t"\neval = "eval.jsonl"\n')).teaches is None


def test_a_bad_teaches_names_the_file_and_the_field(tmp_path):
    msg = error_for(write_task(tmp_path / "bad", 'name = "bad"\neval = "eval.jsonl"\nteaches = "behavior"\n'))
    assert msg.split(": ")[0].endswith("task.toml")
    assert "field 'teaches': must be one of 'knowledge' or 'behaviour' (got 'behavior')" in msg


def test_builtins_declare_what_they_teach():
    assert {name: load_task(name).teaches for name in BUILTINS} == {
        "acme-facts": "knowledge",  # facts about a company no model knows: RAG
        "specialty": "behaviour",  # a narrow classifier's judgement
        "support-tone": "behaviour",  # a house style and tone
        "tickets": "behaviour",  # JSON format
    }
