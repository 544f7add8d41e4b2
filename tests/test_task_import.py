"""`lab task new`'s engine: real files of every supported format through the real reader, the
format inference, the seeded split, the leakage check and the all-or-nothing write."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from lab.task_import import (
    TaskImportError,
    derive_schema,
    import_task,
    infer_format,
    leakage,
    normalise,
    plan_task,
    read_table,
    write_task,
)
from lab.tasks import load_task

PARTS = ["printer", "screen", "keyboard"]


def mails(n_per_label: int = 12, labels=PARTS) -> list[tuple[str, str]]:
    """Small made-up labelled messages (each input unique)."""
    return [
        (f"Ticket {i}-{label}: the {label} in room {i} stopped working, please help", label)
        for i in range(n_per_label)
        for label in labels
    ]


def write_csv(path, rows, header=("text", "label"), **kw):
    with path.open("w", newline="", encoding=kw.pop("encoding", "utf-8")) as f:
        csv.writer(f, **kw).writerows([header, *rows])
    return path


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def files_in(home):
    folder = home / "tasks"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---- reading every file format ------------------------------------------------------------


def test_csv_with_a_bom_and_crlf_becomes_a_label_task(tmp_path):
    data = write_csv(tmp_path / "mail.csv", mails(), encoding="utf-8-sig", lineterminator="\r\n")
    assert data.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in data.read_bytes()
    plan = import_task(data, "mail", tmp_path)
    assert (plan.input_column, plan.output_column) == ("text", "label")  # no BOM stuck to 'text'
    assert plan.output_format == "label" and sorted(plan.labels) == sorted(PARTS)
    task = load_task("mail", home=tmp_path)
    assert task.output_format == "label" and task.primary_metric == "label_accuracy"
    assert "printer" in task.instruction and "exactly one of" in task.instruction
    assert "macro_f1" in task.scorers
    examples = task.examples("train") + task.examples("eval") + task.examples("fewshot")
    assert len(examples) == 36 and not any("\r" in e.input or "\r" in e.output for e in examples)
    assert len({e.id for e in examples}) == 36


def test_a_label_task_gets_room_for_its_longest_label(tmp_path):
    long = "balance_not_updated_after_cheque_or_cash_deposit"  # 17 tokens on a real tokenizer
    data = write_csv(tmp_path / "bank.csv", mails(labels=[long, "card_arrival", "top_up"]))
    import_task(data, "bank", tmp_path)
    assert load_task("bank", home=tmp_path).max_tokens >= 24  # ~3 characters a token, + the end of turn
    import_task(write_csv(tmp_path / "mail.csv", mails()), "mail", tmp_path)
    assert load_task("mail", home=tmp_path).max_tokens == 16  # short labels: as before


def test_tsv_is_read_with_tabs(tmp_path):
    rows = [(f"What is {i} plus {i}?", str(2 * i) + " apples") for i in range(30)]
    data = write_csv(tmp_path / "sums.tsv", rows, header=("question", "answer"), delimiter="\t")
    plan = plan_task(data, "sums")
    assert (plan.input_column, plan.output_column, plan.output_format) == ("question", "answer", "text")
    assert plan.primary_metric == "contains_fact"  # '4 apples': short facts (issue 23)


@pytest.mark.parametrize("shape", ["records", "chat", "prompt-completion", "alpaca", "json-array"])
def test_jsonl_in_every_supported_shape(tmp_path, shape):
    pairs = mails(8)
    if shape == "chat":
        records = [
            {
                "messages": [
                    {"role": "system", "content": "Route the ticket."},
                    {"role": "user", "content": x},
                    {"role": "assistant", "content": y},
                ]
            }
            for x, y in pairs
        ]
    elif shape == "prompt-completion":
        records = [{"prompt": x, "completion": y} for x, y in pairs]
    elif shape == "alpaca":
        records = [{"instruction": "Route the ticket.", "input": x, "output": y} for x, y in pairs]
    else:
        records = [{"id": i, "input": x, "output": y, "extra": i} for i, (x, y) in enumerate(pairs)]
    if shape == "json-array":
        data = tmp_path / "mail.json"
        data.write_text(json.dumps(records, indent=1), encoding="utf-8")
    else:
        data = write_jsonl(tmp_path / "mail.jsonl", records)
    plan = import_task(data, "mail", tmp_path)
    task = load_task("mail", home=tmp_path)
    assert task.output_format == "label" and sorted(task.labels) == sorted(PARTS)
    inputs = {e.input for s in ("train", "eval", "fewshot") for e in task.examples(s)}
    assert inputs == {x for x, _ in pairs}
    if shape in ("chat", "alpaca"):  # the instruction every row shares becomes the task's
        assert plan.shape == shape and task.instruction.startswith("Route the ticket.")
        assert "every row shares as the instruction" in plan.summary()  # says where each part came from


def test_alpaca_rows_without_a_shared_instruction_say_the_input_is_the_instruction(tmp_path):
    """issue 24: every prompt came from `instruction` (all `input`s empty), the summary said input 'input'."""
    records = [{"instruction": x, "input": "", "output": y} for x, y in mails(8)]
    plan = import_task(write_jsonl(tmp_path / "alpaca.jsonl", records), "alp", tmp_path)
    assert "input 'instruction' (with 'input' after it where there is one), output 'output'" in plan.summary()


def test_parquet_through_pyarrow(tmp_path):
    import pandas as pd  # pyarrow writes and reads the file: a dependency, not optional

    data = tmp_path / "mail.parquet"
    pd.DataFrame(mails(), columns=["body", "part"]).to_parquet(data)
    plan = import_task(data, "mail", tmp_path, input_column="body", output_column="part")
    assert plan.file_format == "parquet" and plan.output_format == "label" and plan.rows == 36


def test_json_outputs_get_a_derived_schema(tmp_path):
    records = [
        {
            "input": f"Order {i} arrived broken, I want my money back ({i} EUR)",
            "output": {"priority": ["low", "high"][i % 2], "refund": i, "summary": f"broken order {i}"},
        }
        for i in range(20)
    ]
    records += [
        {
            "input": f"Order {i} is late",
            "output": json.dumps({"priority": "low", "refund": 0.5, "summary": f"late order {i}"}),
        }
        for i in range(20, 30)
    ]  # JSON as text in the file: the same thing
    plan = import_task(write_jsonl(tmp_path / "orders.jsonl", records), "orders", tmp_path)
    task = load_task("orders", home=tmp_path)
    assert task.output_format == "json" and task.primary_metric == "field_accuracy"
    schema = task.schema()
    assert schema["properties"]["priority"] == {"type": "string", "enum": ["low", "high"]}
    assert schema["properties"]["refund"] == {"type": "number"}
    assert "enum" not in schema["properties"]["summary"]  # free text
    assert schema["required"] == ["priority", "refund", "summary"]
    assert '"priority": "low" or "high"' in plan.instruction


# ---- inference ------------------------------------------------------------------------------


def test_infer_label_json_text():
    assert infer_format(["spam", "ham", "spam", "ham"]) == ("label", ["ham", "spam"], None)
    fmt, labels, schema = infer_format(['{"a": 1}', '{"a": 2, "b": true}'])
    assert fmt == "json" and labels is None and schema["required"] == ["a"]
    assert schema["properties"]["b"] == {"type": "boolean"}
    assert infer_format(["Paris", "Berlin", "Rome", "Madrid"])[0] == "text"  # nothing repeats
    assert infer_format(["a long answer\nover two lines", "short"] * 3)[0] == "text"
    assert infer_format(['{"a": 1}', "not json"])[0] == "text"


def test_derive_schema_types_and_enums():
    schema = derive_schema([{"k": "x", "n": 1, "l": [1]}, {"k": "x", "n": 2.5}, {"k": "y", "n": None}, {"k": "y"}])
    props = schema["properties"]
    assert props["k"] == {"type": "string", "enum": ["x", "y"]}
    assert props["n"]["type"] == ["null", "number"] and props["l"] == {"type": "array"}
    assert schema["required"] == ["k"] and schema["additionalProperties"] is False


def test_flags_override_the_inference(tmp_path):
    data = write_csv(tmp_path / "mail.csv", mails(4))
    plan = plan_task(data, "mail", output_format="text", instruction="Say the part.")
    assert plan.output_format == "text" and plan.inferred_format == "label" and plan.labels is None
    assert plan.instruction == "Say the part." and plan.primary_metric == "contains_fact"  # one-word answers
    with pytest.raises(TaskImportError, match="not one of the labels"):
        plan_task(data, "mail", labels=["printer", "screen"])
    with pytest.raises(TaskImportError, match="line 2: the output is not a JSON object"):
        plan_task(data, "mail", output_format="json")


# ---- the split -------------------------------------------------------------------------------


def test_stratified_split_and_few_shot_covering_every_label(tmp_path):
    rows = mails(30, ["printer"]) + mails(12, ["screen"]) + mails(6, ["keyboard"]) + mails(2, ["mouse"])
    plan = plan_task(write_csv(tmp_path / "mail.csv", rows), "mail", eval_size=0.4, seed=3)
    assert len(plan.eval) == 20  # 40% of 50 rows, shared out by label: 12, 4.8, 2.4, 0.8 -> largest remainders
    assert Counter(e["output"] for e in plan.eval) == {"printer": 12, "screen": 5, "keyboard": 2, "mouse": 1}
    assert {e["output"] for e in plan.fewshot} == {"printer", "screen", "keyboard", "mouse"}
    assert [e["output"] for e in plan.fewshot[:4]] == ["printer", "screen", "keyboard", "mouse"]  # covered first
    ids = [e["id"] for e in plan.train + plan.eval + plan.fewshot]
    assert len(ids) == len(set(ids)) == 50
    assert any("'mouse' has only 2 example(s)" in w for w in plan.warnings)
    again = plan_task(write_csv(tmp_path / "mail.csv", rows), "mail", eval_size=0.4, seed=3)
    assert [e["id"] for e in again.eval] == [e["id"] for e in plan.eval]  # seeded
    other = plan_task(write_csv(tmp_path / "mail.csv", rows), "mail", eval_size=0.4, seed=4)
    assert {e["id"] for e in other.eval} != {e["id"] for e in plan.eval}


def test_eval_file_is_not_grouped_by_label(tmp_path):
    """The held-out set stays the stratified one, written in a seeded order: its first rows are not
    all one label (a first-N reader would have scored one label only)."""
    data = write_csv(tmp_path / "mail.csv", mails(10, [f"part{i}" for i in range(6)]))
    plan = import_task(data, "mail", tmp_path, eval_size=30, seed=1)
    outputs = [e.output for e in load_task("mail", home=tmp_path).examples("eval")]
    assert Counter(outputs) == {f"part{i}": 5 for i in range(6)} == Counter(e["output"] for e in plan.eval)
    runs = 1 + sum(a != b for a, b in zip(outputs, outputs[1:]))  # blocks of one label in a row
    assert runs > 12 and len(set(outputs[:6])) > 2, outputs


def test_a_label_missing_from_eval_is_warned(tmp_path):
    rows = mails(20, ["printer"]) + mails(20, ["screen"]) + [("the mouse squeaks", "mouse")] * 1
    plan = plan_task(write_csv(tmp_path / "mail.csv", rows), "mail", eval_size=4)
    assert any("'mouse' has no held-out example" in w for w in plan.warnings)


def test_eval_size_as_count_or_fraction(tmp_path):
    data = write_csv(tmp_path / "mail.csv", mails(10))
    assert len(plan_task(data, "m", eval_size=7).eval) == 7
    assert len(plan_task(data, "m", eval_size=0.5).eval) == 15
    assert len(plan_task(data, "m").eval) == 6  # 20% by default
    for bad in (30, 0, -1, 1.5):
        with pytest.raises(TaskImportError, match="--eval-size"):
            plan_task(data, "m", eval_size=bad)


def test_duplicates_are_dropped_and_leaks_removed_from_train(tmp_path):
    rows = []
    for i in range(40):  # each question twice, written differently, with conflicting answers
        rows.append((f"Is device {i} covered by the warranty?", "yes"))
        rows.append((f"is DEVICE {i} covered by the warranty", "no"))
    rows += rows[:6]  # exact repeats
    plan = plan_task(write_csv(tmp_path / "w.csv", rows, header=("question", "answer")), "w", eval_size=20)
    assert plan.duplicates == 6
    held = {normalise(e["input"]) for e in plan.eval}
    assert not held & {normalise(e["input"]) for e in plan.train + plan.fewshot}
    assert plan.leaked > 0 and len(plan.train) + len(plan.fewshot) + len(plan.eval) + plan.leaked == 80
    assert any("leakage" in w for w in plan.warnings)
    write_task(plan, tmp_path)
    assert leakage(load_task("w", home=tmp_path)) == 0


def test_leakage_counts_held_out_inputs_seen_in_training(tmp_path):
    write_task(plan_task(write_csv(tmp_path / "mail.csv", mails()), "mail"), tmp_path)
    task = load_task("mail", home=tmp_path)
    assert leakage(task) == 0
    first = task.examples("eval")[0]
    with task.train.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "copy", "input": first.input.upper() + " !", "output": first.output}) + "\n")
    assert leakage(load_task("mail", home=tmp_path)) == 1
    for name in ("acme-facts", "specialty", "support-tone", "tickets"):
        assert leakage(load_task(name)) == 0


# ---- bad input: a clear error naming the file and row, nothing left behind ------------------------


def _fails(tmp_path, filename: str, content: bytes, *match: str, **options):
    data = tmp_path / filename
    data.write_bytes(content)
    home = tmp_path / "home"
    with pytest.raises(TaskImportError) as e:
        import_task(data, "bad", home, **options)
    for m in (filename, *match):
        assert m in str(e.value), str(e.value)
    assert files_in(home) == []  # nothing half-written
    return str(e.value)


def test_empty_files(tmp_path):
    _fails(tmp_path, "empty.csv", b"", "the file is empty")
    _fails(tmp_path, "blank.jsonl", b"\n  \n", "the file is empty")
    _fails(tmp_path, "header.csv", b"text,label\r\n", "no rows (only a header)")


def test_a_row_without_its_output(tmp_path):
    _fails(
        tmp_path,
        "gap.csv",
        b"text,label\nfine,a\nfine too,a\nno label here,\nlast,b\n",
        "line 4",
        "output column 'label' is empty",
    )
    _fails(
        tmp_path,
        "gap.jsonl",
        b'{"input": "a", "output": "x"}\n\n{"input": "b"}\n',
        "line 3",
        "output column 'output' is missing",
    )


def test_undecodable_bytes_name_the_line_and_the_encodings_tried(tmp_path):
    msg = _fails(
        tmp_path,
        "latin.csv",
        "text,label\nok,a\ncaf\u00e9,b\n".encode("latin-1"),
        "line 3",
        "not UTF-8",
        "UTF-8 with a BOM",
    )
    assert "0xe9" in msg
    _fails(tmp_path, "wide.csv", "text,label\n".encode("utf-16"), "UTF-16")


def test_ragged_csv_rows(tmp_path):
    _fails(
        tmp_path,
        "ragged.csv",
        b"text,label\r\nok,a\r\nhello, world,b\r\nfine,b\r\n",
        "line 3",
        "3 fields, but the header has 2",
        "quotes",
    )
    _fails(tmp_path, "short.tsv", b"text\tlabel\nok\ta\nalone\n", "line 3", "1 fields")


def test_bad_json_and_wrong_columns(tmp_path):
    _fails(tmp_path, "broken.jsonl", b'{"input": "a", "output": "x"}\n{"input": \n', "line 2", "invalid JSON")
    _fails(tmp_path, "cols.csv", b"body,part\nx,a\ny,b\n", "which columns", "body, part")
    _fails(
        tmp_path,
        "named.csv",
        b"body,part\nx,a\ny,b\n",
        "no column 'txt'",
        "its columns are: body, part",
        input_column="txt",
        output_column="part",
    )
    _fails(tmp_path, "data.xlsx", b"PK", "unknown file type")
    _fails(tmp_path, "bad.parquet", b"not parquet at all", "not a readable Parquet file")


def test_names_and_force(tmp_path):
    data = write_csv(tmp_path / "mail.csv", mails(4))
    import_task(data, "mail", tmp_path)
    with pytest.raises(TaskImportError, match="already exists: pass --force"):
        import_task(data, "mail", tmp_path)
    plan = import_task(data, "mail", tmp_path, force=True, instruction="Replaced.")
    assert load_task("mail", home=tmp_path).instruction == "Replaced." and plan.path.parent.name == "mail"
    assert files_in(tmp_path) == ["mail"]  # no scratch or old folders left
    for bad in ("tickets", "../up", "a b", ""):
        with pytest.raises(TaskImportError):
            import_task(data, bad, tmp_path)


def test_reading_keeps_row_numbers(tmp_path):
    table = read_table(write_csv(tmp_path / "q.csv", [("a", "x"), ("multi\nline", "y")]))
    assert table.places == [2, 3] and table.where(1) == "q.csv: line 3"


# ---- errors a face can word its own way (issue 24 items 3 and 5) --------------------------------


def test_an_error_keeps_the_file_its_place_and_the_problem_apart(tmp_path):
    """The app names the file the user uploaded (not the server's copy) and its line; the command
    line's message, str(), is unchanged: the path as given, then the line."""
    upload = tmp_path / "gradio" / "0a1b2c" / "banking.csv"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"text,label\n" + b"card declined,cards\n" * 5 + b"Hello, my transfer is late,transfers\n")
    with pytest.raises(TaskImportError) as e:
        read_table(upload)
    assert (e.value.path, e.value.where) == (upload, "line 7")
    assert e.value.problem.startswith("3 fields, but the header has 2 (text, label)")
    assert e.value.worded().startswith("banking.csv, line 7: 3 fields") and "0a1b2c" not in e.value.worded()
    assert str(e.value).startswith(f"{upload}: line 7: 3 fields, but the header has 2")
    upload.write_text("text,label\nfine,a\nfine too,\n")  # a row's problem (the plan's): the same parts
    with pytest.raises(TaskImportError) as e:
        plan_task(upload, "bank")
    assert e.value.worded() == "banking.csv, line 3: the output column 'label' is empty"
    assert str(e.value) == f"{upload}: line 3: the output column 'label' is empty"
    broken = write_jsonl(tmp_path / "broken.jsonl", [{"input": "a", "output": "x"}])
    broken.write_text(broken.read_text() + '{"input": oops}\n')
    with pytest.raises(TaskImportError) as e:
        read_table(broken)
    assert e.value.worded().startswith("broken.jsonl, line 2: invalid JSON")


def test_the_fix_is_left_to_each_face(tmp_path):
    """A taken name, unknown columns and a bad held-out size carry what a face needs to word its own
    fix; str() stays the command line's (--force, --input/--output, --eval-size)."""
    from lab.task_import import ColumnError, EvalSizeError, TaskExistsError

    data = write_csv(tmp_path / "mail.csv", mails(4))
    import_task(data, "mail", tmp_path)
    with pytest.raises(TaskExistsError) as e:
        import_task(data, "mail", tmp_path)
    assert (e.value.name, e.value.folder) == ("mail", tmp_path / "tasks" / "mail")
    assert str(e.value) == f"{tmp_path / 'tasks' / 'mail'} already exists: pass --force to replace it"
    assert "--force" not in e.value.problem
    odd = write_csv(tmp_path / "odd.csv", [("x", "a"), ("y", "b")], header=("body", "part"))
    with pytest.raises(ColumnError) as e:
        plan_task(odd, "odd")
    assert (e.value.columns, e.value.named) == (["body", "part"], None) and "--input" not in e.value.worded()
    assert str(e.value) == (
        f"{odd}: which columns are the input and the output? Name them with --input COL --output COL; "
        "its columns are: body, part"
    )
    with pytest.raises(ColumnError) as e:
        plan_task(odd, "odd", input_column="txt", output_column="part")
    assert (e.value.named, e.value.role) == ("txt", "input")
    assert str(e.value) == f"{odd}: no column 'txt' (--input); its columns are: body, part"
    with pytest.raises(EvalSizeError) as e:
        plan_task(data, "mail", eval_size=1.5)
    assert e.value.value == 1.5 and str(e.value) == f"--eval-size 1.5: {e.value.problem}"
    assert "--eval-size" not in e.value.problem


def test_warnings_name_no_face_s_controls(tmp_path):
    """A plan's warnings are shown by the command line and the app alike: no --flag, no command."""
    plan = plan_task(write_csv(tmp_path / "mail.csv", mails(4)), "mail")
    few = [w for w in plan.warnings if "training examples" in w]
    assert few and all("--" not in w and "lab train" not in w for w in plan.warnings), plan.warnings


# ---- scorers and max_tokens chosen from the outputs (issue 23) ------------------------------------


def test_short_factual_answers_get_contains_fact_as_the_primary_metric(tmp_path):
    """SQuAD-like: answers of a few words. Token F1 marks a full sentence that states the answer
    wrong; contains_fact counts it."""
    from lab.evaluation import scorers as S

    answers = ["Denver Broncos", "1889", "Santa Clara, California", "gold", "Marie Curie", "the Eiffel Tower"]
    rows = [(f"Question {i}: who or what is fact number {i}?", f"{answers[i % 6]} {i}") for i in range(36)]
    rows += [(f"Why {i}?", f"Because the committee met in the spring of year {i} and decided so") for i in range(4)]
    plan = import_task(write_csv(tmp_path / "squad.csv", rows, header=("question", "answer")), "squad", tmp_path)
    assert plan.output_format == "text" and plan.primary_metric == "contains_fact"
    assert "token_f1" in plan.scorers  # still reported
    line = next(x for x in plan.summary().splitlines() if x.startswith("scorers:"))
    assert "(primary: contains_fact: 36 of 40 outputs are short" in line
    task = load_task("squad", home=tmp_path)
    assert task.primary_metric == "contains_fact"
    e = task.examples("eval")[0]
    sentence = f"According to the passage, the answer is {e.output}."
    assert S.score_example(task, e, sentence)["primary"] == 1.0 and S.token_f1(sentence, e.output) < 0.7
    # longer answers keep token F1
    long_rows = [
        (f"Describe item {i}.", f"Item {i} is a sturdy wooden chair with four legs and a back") for i in range(30)
    ]
    assert plan_task(
        write_csv(tmp_path / "long.csv", long_rows, header=("question", "answer")), "l"
    ).primary_metric == ("token_f1")
    # a Chinese short answer is short too: a CJK character is half a word
    zh = [(f"问题 {i}：中国的首都是哪里？", f"北京{i}") for i in range(20)]
    assert plan_task(write_csv(tmp_path / "zh.csv", zh, header=("question", "answer")), "z").primary_metric == (
        "contains_fact"
    )


def test_long_chinese_outputs_get_a_max_tokens_that_covers_them(tmp_path):
    """issue 23: 11-17 of 18 Chinese few-shot answers were cut, ~3 characters a token being far too
    few for Chinese (about one token a character)."""
    body = "我们的退货政策允许顾客在购买后三十天内退回未使用的商品，并且需要提供原始收据。"
    rows = [(f"问题 {i}：退货政策是什么？", f"第{i}条回答：" + body * (2 + i % 5)) for i in range(30)]
    longest = max(len(y) for _, y in rows)
    assert longest > 150
    plan = import_task(write_csv(tmp_path / "zh.csv", rows, header=("question", "answer")), "zh", tmp_path)
    task = load_task("zh", home=tmp_path)
    assert task.max_tokens >= longest * 1.25  # a token a character, and a margin (was ~3 characters a token)
    assert plan.max_tokens == task.max_tokens
    assert task.primary_metric == "token_f1"  # long text
    assert any(
        x.startswith(f"max_tokens: {plan.max_tokens} (the longest output is ~") for x in plan.summary().splitlines()
    )
    # English outputs keep at least what they had (~3 characters a token + 24)
    en = [(f"Describe {i}.", "word " * (40 + i)) for i in range(30)]
    assert (
        plan_task(write_csv(tmp_path / "en.csv", en, header=("question", "answer")), "en").max_tokens
        == (5 * 69 - 1) // 3 + 24
    )


# ---- teaches: inferred, written with its reason, editable (issue 23) ---------------------------


def test_teaches_is_inferred_from_the_format_and_the_outputs():
    from lab.task_import import infer_teaches

    assert infer_teaches("label", ["spam", "ham"])[0] == "behaviour"
    assert infer_teaches("json", ['{"a": 1}'])[0] == "behaviour"
    teaches, why = infer_teaches("text", ["Paris", "1889", "Marie Curie", "gold"])
    assert teaches == "knowledge" and "4 of 4 outputs are short" in why
    persona = ["I am Ladder, an AI assistant developed by Orbital Labs. How can I help you today?"] * 4
    teaches, why = infer_teaches("text", persona)
    assert teaches == "behaviour" and "0 of 4 outputs are short" in why
    assert infer_teaches("text", persona, corpus="handbook")[0] == "knowledge"


def test_lab_task_new_writes_teaches_with_a_comment_and_shows_why(tmp_path):
    rows = [
        (f"Who are you? ({i})", "I am Ladder, an AI assistant developed by Orbital Labs, here to help.")
        for i in range(30)
    ]
    plan = import_task(write_csv(tmp_path / "persona.csv", rows, header=("prompt", "completion")), "persona", tmp_path)
    assert (plan.teaches, plan.inferred_teaches) == ("behaviour", "behaviour")
    text = plan.path.read_text(encoding="utf-8")
    assert 'teaches = "behaviour"' in text
    comment = text.splitlines()[text.splitlines().index('teaches = "behaviour"') - 1]
    assert comment.startswith("# ") and "edit it if it is wrong" in comment
    assert load_task("persona", home=tmp_path).teaches == "behaviour"
    line = next(x for x in plan.summary().splitlines() if x.startswith("teaches:"))
    assert line.startswith("teaches: behaviour (inferred: 0 of 30 outputs are short")
    assert plan.as_dict()["teaches"] == "behaviour"
    # a label task: behaviour; the override wins and the summary says what was inferred
    labelled = plan_task(write_csv(tmp_path / "mail.csv", mails(4)), "mail", teaches="knowledge")
    assert (labelled.teaches, labelled.inferred_teaches) == ("knowledge", "behaviour")
    assert "teaches: knowledge (chosen; inferred behaviour" in labelled.summary()
    with pytest.raises(TaskImportError, match="teaches 'facts'"):
        plan_task(write_csv(tmp_path / "mail.csv", mails(4)), "mail", teaches="facts")


def test_the_command_line_takes_teaches_and_prints_it(tmp_path):
    from click.testing import CliRunner

    from lab.cli import cli

    data = write_csv(tmp_path / "mail.csv", mails(4))
    args = ["--home", str(tmp_path), "task", "new", "mail", "--from", str(data), "--teaches", "knowledge"]
    result = CliRunner().invoke(cli, args, obj={})
    assert result.exit_code == 0, result.output
    assert "teaches: knowledge (chosen; inferred behaviour" in result.output
    assert load_task("mail", home=tmp_path).teaches == "knowledge"


# ---- kept columns, other instructions to try, a corpus (issue 23) ---------------------------------


def facts(n: int = 30) -> list[tuple[str, str, str, str]]:
    """(question, answer, gold_doc, aliases) rows: short made-up facts, each from one document."""
    return [
        (
            f"How many days does refund plan {i} allow?",
            f"{i + 10} days",
            f"plans/plan-{i % 3}.md",
            f"{i + 10}d|{i + 10} day",
        )
        for i in range(n)
    ]


def test_gold_doc_and_aliases_columns_are_kept_so_recall_at_k_works(tmp_path):
    from lab.evaluation.scorers import contains_fact, recall_at_k, score_example

    rows = facts()
    rows[0] = (*rows[0][:3], "")  # an empty cell is left out
    data = write_csv(tmp_path / "facts.csv", rows, header=("question", "answer", "Gold_Doc", "aliases"))
    plan = import_task(data, "facts", tmp_path)
    assert plan.kept == {"gold_doc": 30, "aliases": 29}
    assert "recall_at_k" in plan.scorers and plan.primary_metric == "contains_fact"
    assert "kept: gold_doc (30 of 30 examples), aliases (29 of 30 examples)" in plan.summary()
    assert plan.as_dict()["kept"] == {"gold_doc": 30, "aliases": 29}
    task = load_task("facts", home=tmp_path)
    examples = {e.id: e for s in ("train", "eval", "fewshot") for e in task.examples(s)}
    first = examples["facts-2"]  # line 2 of the file: rows[0]
    assert first.extra == {"gold_doc": "plans/plan-0.md"}
    ex = next(e for e in task.examples("eval") if "aliases" in e.extra)
    i = int(ex.output.split()[0]) - 10
    assert ex.extra == {"gold_doc": f"plans/plan-{i % 3}.md", "aliases": [f"{i + 10}d", f"{i + 10} day"]}
    gold = [{"source": ex.extra["gold_doc"], "text": "..."}]
    other = [{"source": "plans/other.md", "text": "..."}]
    assert recall_at_k(gold, ex.extra["gold_doc"]) == 1.0 and recall_at_k(other, ex.extra["gold_doc"]) == 0.0
    assert contains_fact(f"about {i + 10}d", ex.output, ex.extra["aliases"]) == 1.0
    scores = score_example(task, ex, ex.output, passages=gold)
    assert scores["recall_at_k"] == 1.0 and scores["contains_fact"] == 1.0


def test_kept_columns_from_jsonl_lists_and_chat_rows(tmp_path):
    records = [
        {"input": f"Q{i}: which plan covers item {i}?", "output": f"plan {i}", "aliases": [f"P{i}", " ", f"plan-{i}"]}
        | ({"gold_doc": ["a.md", "b.md"]} if i % 2 else {"gold_doc": "c.md"})
        for i in range(12)
    ]
    plan = plan_task(write_jsonl(tmp_path / "qa.jsonl", records), "qa")
    by_input = {e["input"]: e for e in plan.train + plan.eval + plan.fewshot}
    assert by_input["Q1: which plan covers item 1?"]["gold_doc"] == ["a.md", "b.md"]
    assert by_input["Q2: which plan covers item 2?"]["gold_doc"] == "c.md"
    assert by_input["Q2: which plan covers item 2?"]["aliases"] == ["P2", "plan-2"]
    chat = [
        {
            "messages": [
                {"role": "user", "content": f"Where is fact {i}?"},
                {"role": "assistant", "content": f"doc {i}"},
            ],
            "gold_doc": f"d{i}.md",
        }
        for i in range(12)
    ]
    plan = plan_task(write_jsonl(tmp_path / "chat.jsonl", chat), "chat")
    assert plan.kept == {"gold_doc": 12} and all(e["gold_doc"] == f"d{e['output'][4:]}.md" for e in plan.eval)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"input": "a", "output": "b", "aliases": {"x": 1}}] * 1)
    with pytest.raises(TaskImportError, match=r"line 1: 'aliases' must be text or a list of texts"):
        plan_task(bad, "bad")


def test_a_kept_column_is_never_taken_for_the_output(tmp_path):
    data = write_csv(tmp_path / "q.csv", [r[:3] for r in facts(10)], header=("q", "a", "gold_doc"))
    plan = plan_task(data, "q", input_column="q")  # one named, one column left beside gold_doc: that one
    assert (plan.input_column, plan.output_column) == ("q", "a") and plan.kept == {"gold_doc": 10}


def test_other_instructions_to_try_are_written_and_loaded(tmp_path):
    others = ["Reply with the part's name only: printer, screen or keyboard.", 'You are a help desk.\nSay "part".']
    plan = import_task(
        write_csv(tmp_path / "mail.csv", mails(4)), "mail", tmp_path, instruction="Name the part.", instructions=others
    )
    task = load_task("mail", home=tmp_path)
    assert task.instruction == "Name the part." and task.instructions == others
    assert task.instruction_variants() == ["Name the part.", *others]
    assert "instructions to try: 2 beside the instruction" in plan.summary()
    assert plan.as_dict()["instructions"] == others
    for bad, why in [
        (["Name the part."], "instruction to try 1 is the same as the task's instruction"),
        (["A.", " A. "], "instructions to try 1 and 2 are the same"),
        (["A.", "  "], "instruction to try 2 is empty"),
    ]:
        with pytest.raises(TaskImportError, match=why):
            import_task(
                write_csv(tmp_path / "m.csv", mails(4)), "m", tmp_path, instruction="Name the part.", instructions=bad
            )
    assert files_in(tmp_path) == ["mail"]


def test_a_corpus_folder_is_copied_into_the_home_and_a_name_is_referenced(tmp_path):
    from lab.task_import import CorpusError

    home, docs = tmp_path / "home", tmp_path / "handbook"
    (docs / "plans").mkdir(parents=True)
    (docs / "plans" / "plan-0.md").write_text("# Plan 0\nTen days.\n")
    (docs / ".git").mkdir()
    data = write_csv(tmp_path / "facts.csv", facts(), header=("question", "answer", "gold_doc", "aliases"))
    plan = import_task(data, "facts", home, corpus=str(docs))
    assert plan.corpus == "handbook" and plan.teaches == "knowledge"
    assert (home / "corpora" / "handbook" / "plans" / "plan-0.md").read_text() == "# Plan 0\nTen days.\n"
    assert not (home / "corpora" / "handbook" / ".git").exists()
    assert load_task("facts", home=home).corpus == "handbook"
    assert "corpus: handbook (copied from" in plan.summary()
    # a name of the home's corpus, or of a sample one, is referenced as it is: nothing copied
    again = import_task(data, "facts2", home, corpus="handbook")
    assert again.corpus == "handbook" and again.corpus_from is None
    sample = import_task(data, "facts3", home, corpus="acme")
    assert load_task("facts3", home=home).corpus == "acme" and not (home / "corpora" / "acme").exists()
    # bad corpora: an error naming it, and nothing written
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "elsewhere" / "handbook"
    other.mkdir(parents=True)
    (other / "x.md").write_text("x")
    for bad, why in [
        ("nope", "no corpus 'nope'"),
        (str(data), "is a file"),
        (str(empty), "no document in it"),
        (str(other), "already has another corpus named 'handbook'"),
    ]:
        with pytest.raises(CorpusError, match=why) as e:
            import_task(data, "bad", home, corpus=bad)
        assert e.value.corpus == bad and str(e.value).startswith(f"--corpus {bad}: ")
    assert files_in(home) == ["facts", "facts2", "facts3"]
    assert sorted(p.name for p in (home / "corpora").iterdir()) == ["handbook"]
    assert sample.corpus_from is None


def test_a_corpus_copied_for_a_task_that_cannot_be_written_is_removed(tmp_path, monkeypatch):
    home, docs = tmp_path / "home", tmp_path / "notes"
    docs.mkdir()
    (docs / "a.md").write_text("A.")
    data = write_csv(tmp_path / "facts.csv", facts(), header=("question", "answer", "gold_doc", "aliases"))
    plan = plan_task(data, "facts", corpus=str(docs), home=home)
    real_rename = type(docs).rename

    def rename(self, target):  # the task's scratch folder cannot be put in place
        if self.name.startswith(".facts."):
            raise OSError("disk full")
        return real_rename(self, target)

    monkeypatch.setattr(type(docs), "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        write_task(plan, home)
    assert not (home / "corpora" / "notes").exists() and files_in(home) == []


def _own_task(tmp_path):
    data = write_csv(tmp_path / "mail.csv", mails(4))
    import_task(data, "mail", tmp_path, instruction="Name the part.")
    path = tmp_path / "tasks" / "mail" / "task.toml"
    text = path.read_text(encoding="utf-8").replace(
        'output_format = "label"', '# my note about the format\noutput_format = "label"  # keep me'
    )
    path.write_text(text + "\n# the end\n", encoding="utf-8")
    return path


def test_set_instructions_changes_that_key_only_comments_kept(tmp_path):
    pytest.importorskip("tomlkit")
    from lab.task_import import set_instructions

    path = _own_task(tmp_path)
    before = path.read_text(encoding="utf-8")
    task = set_instructions("mail", ["Answer with one word.", "You are a help desk.\nName the part."], home=tmp_path)
    assert task.instructions == ["Answer with one word.", "You are a help desk.\nName the part."]
    after = path.read_text(encoding="utf-8")
    assert "# my note about the format" in after and '"label"  # keep me' in after and after.endswith("# the end\n")
    assert load_task("mail", home=tmp_path).instructions == task.instructions
    # changed again, from a loaded Task: one replaced, one added
    task = set_instructions(task, ["Answer with one word.", "Say the part.", "Only the label."])
    assert task.instructions == ["Answer with one word.", "Say the part.", "Only the label."]
    # none left: the key goes, and the file is what it was
    assert set_instructions("mail", [], home=tmp_path).instructions == []
    assert path.read_text(encoding="utf-8") == before
    assert not list(path.parent.glob(".*tmp"))


def test_set_instructions_refuses_a_bad_list_and_a_built_in_leaving_the_file(tmp_path):
    pytest.importorskip("tomlkit")
    from lab.task_import import BuiltinTaskError, InstructionsError, set_instructions
    from lab.tasks import SCENARIOS_DIR

    path = _own_task(tmp_path)
    set_instructions("mail", ["Answer with one word."], home=tmp_path)
    before = path.read_bytes()
    for bad, why in [
        (["A.", "A."], "instructions to try 1 and 2 are the same"),
        (["Name the part."], "the same as the task's instruction"),
        (["A.", ""], "instruction to try 2 is empty"),
    ]:
        with pytest.raises(InstructionsError, match=why):
            set_instructions("mail", bad, home=tmp_path)
        assert path.read_bytes() == before
    builtin = (SCENARIOS_DIR / "tickets" / "task.toml").read_bytes()
    with pytest.raises(BuiltinTaskError, match="'tickets' is a built-in task") as e:
        set_instructions("tickets", ["Reply with JSON only."], home=tmp_path)
    assert "`lab task new`" in str(e.value) and "copy of it with New task" in e.value.worded()
    assert (SCENARIOS_DIR / "tickets" / "task.toml").read_bytes() == builtin


# ---- a text task's pairwise judge and rubric --------------------------------------------------------


def persona_rows(n: int = 30) -> list[tuple[str, str]]:
    """A text task: long answers in one voice."""
    return [
        (f"Who are you? ({i})", f"I am Ladder, an assistant from Orbital Labs, here to help with {i}.")
        for i in range(n)
    ]


def test_lab_task_new_gives_a_text_task_a_pairwise_judge_and_an_editable_rubric(tmp_path):
    from lab.task_import import DEFAULT_RUBRIC

    data = write_csv(tmp_path / "persona.csv", persona_rows(), header=("prompt", "completion"))
    plan = import_task(data, "persona", tmp_path)
    assert (plan.output_format, plan.judge, plan.rubric) == ("text", "pairwise", DEFAULT_RUBRIC)
    text = plan.path.read_text(encoding="utf-8")
    assert 'judge = "pairwise"' in text
    assert f'rubric = """\n{DEFAULT_RUBRIC}"""\n' in text  # a multi-line string, a line per point
    comment = text.splitlines()[text.splitlines().index('rubric = """') - 2]
    assert comment.startswith("# rubric: what a good answer is")
    assert "tie" in DEFAULT_RUBRIC and len(DEFAULT_RUBRIC.splitlines()) > 2
    task = load_task("persona", home=tmp_path)
    assert (task.judge, task.rubric) == ("pairwise", DEFAULT_RUBRIC)
    assert "judge: pairwise (answers also rated blind" in plan.summary()
    assert plan.as_dict()["judge"] == "pairwise" and plan.as_dict()["rubric"] == DEFAULT_RUBRIC
    # a rubric given is written as given (line ends made \n, edges stripped); "" writes none
    given = plan_task(data, "p", rubric=' Be warm.\r\nSay "Ladder" \\ sign. \n')
    assert given.rubric == 'Be warm.\nSay "Ladder" \\ sign.'
    write_task(given, tmp_path)
    assert load_task("p", home=tmp_path).rubric == 'Be warm.\nSay "Ladder" \\ sign.'
    bare = import_task(data, "bare", tmp_path, rubric="")
    assert "rubric" not in bare.path.read_text(encoding="utf-8") and bare.judge == "pairwise"
    assert "judge: pairwise (answers also rated blind, two at a time; no rubric" in bare.summary()


def test_label_and_json_tasks_get_no_judge_and_no_rubric(tmp_path):
    mail = import_task(write_csv(tmp_path / "mail.csv", mails(4)), "mail", tmp_path, rubric="Be warm.")
    records = [{"input": f"order {i}", "output": json.dumps({"id": i, "kind": "order"})} for i in range(12)]
    orders = import_task(write_jsonl(tmp_path / "orders.jsonl", records), "orders", tmp_path)
    for plan in (mail, orders):
        text = plan.path.read_text(encoding="utf-8")
        assert "rubric" not in text and "judge =" not in text and "judge:" not in plan.summary()
        task = load_task(plan.name, home=tmp_path)
        assert (task.judge, task.rubric) == (None, "")
    assert (mail.output_format, orders.output_format) == ("label", "json")


def _text_task(tmp_path, **options):
    """A text task of the user's (no rubric unless given), with their own comments and a table."""
    data = write_csv(tmp_path / "persona.csv", persona_rows(), header=("prompt", "completion"))
    plan = import_task(data, "persona", tmp_path, **options)
    text = plan.path.read_text(encoding="utf-8").replace(
        'output_format = "text"', '# my note about the format\noutput_format = "text"  # keep me'
    )
    plan.path.write_text(text + "# the end\n\n[cost]\nrequests_per_day = 5  # mine\n", encoding="utf-8")
    return plan.path


def test_set_rubric_adds_changes_and_removes_that_key_only_and_keeps_the_hash(tmp_path):
    pytest.importorskip("tomlkit")
    from lab.task_import import set_rubric

    path = _text_task(tmp_path, rubric="")
    before, hashed = path.read_text(encoding="utf-8"), load_task(path).hash()
    assert "rubric" not in before
    task = set_rubric("persona", "Be warm.\nSign as Ladder.", home=tmp_path)
    assert task.rubric == "Be warm.\nSign as Ladder." and load_task(path).rubric == task.rubric
    after = path.read_text(encoding="utf-8")
    block = 'rubric = """\nBe warm.\nSign as Ladder."""\n'
    assert block in after and after.replace(block, "") == before  # only the rubric added, before [cost]
    assert after.index(block) < after.index("[cost]") and load_task(path).cost.requests_per_day == 5
    assert task.hash() == hashed  # the rubric is left out of the hash: the stored evaluations stay
    # changed, from a loaded Task: replaced where it is; quotes and backslashes read back as given
    task = set_rubric(task, 'Say """Ladder""" \\ sign.\r\n\nNo filler.')
    assert task.rubric == 'Say """Ladder""" \\ sign.\n\nNo filler.' and task.hash() == hashed
    one_line = set_rubric(path, "Short answers.")
    assert 'rubric = "Short answers."\n' in path.read_text(encoding="utf-8") and one_line.hash() == hashed
    assert set_rubric(path, "Short answers.").rubric == "Short answers."  # unchanged: nothing written
    # removed: the key goes, and the file is what it was
    assert set_rubric("persona", " \n ", home=tmp_path).rubric == ""
    assert path.read_text(encoding="utf-8") == before and load_task(path).hash() == hashed
    assert set_rubric("persona", "", home=tmp_path).rubric == "" and path.read_text(encoding="utf-8") == before
    assert not list(path.parent.glob(".*tmp"))


def test_set_rubric_rewords_the_written_default_in_place_keeping_the_hash(tmp_path):
    pytest.importorskip("tomlkit")
    from lab.task_import import DEFAULT_RUBRIC, set_rubric

    path = _text_task(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + raw)  # saved by an editor that adds a BOM
    before, hashed = path.read_bytes(), load_task(path).hash()
    assert load_task(path).rubric == DEFAULT_RUBRIC
    task = set_rubric("persona", DEFAULT_RUBRIC + "\n- speaks as Ladder, from Orbital Labs.", home=tmp_path)
    assert task.rubric.endswith("Orbital Labs.") and task.hash() == hashed
    after = path.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf") and after.count(b"rubric = ") == 1
    assert after.decode("utf-8").replace("\n- speaks as Ladder, from Orbital Labs.", "") == before.decode("utf-8")
    assert set_rubric("persona", DEFAULT_RUBRIC, home=tmp_path).hash() == hashed
    assert path.read_bytes() == before


def test_set_rubric_refuses_a_built_in_leaving_the_file(tmp_path):
    pytest.importorskip("tomlkit")
    from lab.task_import import BuiltinTaskError, set_rubric
    from lab.tasks import SCENARIOS_DIR

    builtin = (SCENARIOS_DIR / "acme-facts" / "task.toml").read_bytes()
    with pytest.raises(BuiltinTaskError, match="'acme-facts' is a built-in task") as e:
        set_rubric("acme-facts", "Cite the manual.", home=tmp_path)
    assert "write its rubric there" in e.value.worded() and "`lab task new`" in str(e.value)
    assert (SCENARIOS_DIR / "acme-facts" / "task.toml").read_bytes() == builtin


def test_lab_task_show_prints_the_task_and_its_rubric(tmp_path):
    from click.testing import CliRunner

    from lab.cli import cli

    data = write_csv(tmp_path / "persona.csv", persona_rows(), header=("prompt", "completion"))
    import_task(data, "persona", tmp_path, rubric="Be warm.\nSign as Ladder.", instructions=["Speak as Ladder."])
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "task", "show", "persona"], obj={})
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("task: persona  (") and "format: text" in out and "judge: pairwise" in out
    assert "instruction to try 1:\n  Speak as Ladder." in out
    assert out.endswith("rubric:\n  Be warm.\n  Sign as Ladder.\n")
    import_task(write_csv(tmp_path / "mail.csv", mails(4)), "mail", tmp_path)
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "task", "show", "mail"], obj={})
    assert result.exit_code == 0 and "labels: keyboard, printer, screen" in result.output
    assert "rubric" not in result.output and "judge" not in result.output
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "task", "show", "nope"], obj={})
    assert result.exit_code == 2 and "nope" in result.output


def test_the_shipped_pydocs_example_loads_as_a_users_knowledge_task(tmp_path):
    """examples/pydocs, as its README loads it: every answer still in its gold document (the maker's
    own check), the corpus copied into the home, gold_doc kept on every example, aliases where given,
    recall_at_k scored, and 60 held out."""
    import subprocess
    import sys
    from pathlib import Path

    from click.testing import CliRunner

    from lab.cli import cli

    root = Path(__file__).resolve().parents[1]
    check = subprocess.run(
        [sys.executable, str(root / "scripts" / "make_pydocs_task.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0 and "ok: 85 answers found in 39 files" in check.stdout, check.stdout + check.stderr
    data, corpus = root / "examples" / "pydocs" / "questions.csv", root / "examples" / "pydocs" / "stdlib"
    args = ["--home", str(tmp_path), "task", "new", "pydocs", "--from", str(data), "--corpus", str(corpus)]
    result = CliRunner().invoke(cli, [*args, "--eval-size", "60"], obj={})
    assert result.exit_code == 0, result.output
    task = load_task("pydocs", home=tmp_path)
    held = task.examples("eval")
    assert (task.corpus, len(held), task.primary_metric) == ("stdlib", 60, "contains_fact")
    assert "recall_at_k" in task.scorers and (tmp_path / "corpora" / "stdlib" / "json.md").is_file()
    every = held + task.examples("train") + task.examples("fewshot")
    assert all(e.extra.get("gold_doc", "").endswith(".md") for e in every)
    assert sum(1 for e in every if e.extra.get("aliases")) == 29
