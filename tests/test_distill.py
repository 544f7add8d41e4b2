"""lab distill: the teacher spec, the verdict on constructed scores, the run's resume and cancel on
the fake model (fake adapters), the command line's errors, and a tiny real distillation killed
mid-training and resumed on the embedded model."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner
from fake_adapters import write_fake_adapter

from lab.distill import DistillError, DistillInterrupted, ledger_lines, parse_teacher, run_distill, settings_for
from lab.distill import run as distill_run
from lab.evaluation import verdict

# ---- the teacher spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, model, how, k, mode, constrain",
    [
        ("default", None, "best-prompt", None, "fixed", False),
        ("default:few-shot@8+constrained", None, "few-shot", 8, "fixed", True),
        ("gemma3-270m:similar@4", "gemma3-270m", "few-shot", 4, "similar", False),
        ("openai:http://gpu:8000/v1#llama-8b:rag@6", "openai:http://gpu:8000/v1#llama-8b", "rag", 6, "fixed", False),
        (
            "openai:http://gpu:8000/v1#llama-8b",
            "openai:http://gpu:8000/v1#llama-8b",
            "best-prompt",
            None,
            "fixed",
            False,
        ),
        ("/models/x.gguf:best-rag", "/models/x.gguf", "best-rag", None, "fixed", False),
    ],
)
def test_teacher_specs_read_as_written(text, model, how, k, mode, constrain):
    spec = parse_teacher(text)
    assert (spec.model, spec.how, spec.k, spec.mode, spec.constrain) == (model, how, k, mode, constrain)


@pytest.mark.parametrize("text, says", [("", "empty"), (":rag", "names no model"), ("default:fewshot", "'fewshot'")])
def test_a_bad_teacher_spec_names_itself(text, says):
    with pytest.raises(DistillError, match=says):
        parse_teacher(text)


# ---- the verdict on constructed scores ------------------------------------------------------------


def _ni(student, teacher, margin=0.05):
    return verdict.as_good_as(
        dict(enumerate(student)), dict(enumerate(teacher)), margin, "binary", name_cheap="s", name_costly="t"
    )


def test_a_student_that_agrees_with_its_teacher_is_shown_as_good_and_cheaper():
    teacher = [1.0] * 150 + [0.0] * 50
    ni = _ni(teacher, teacher)
    assert ni.shown
    text = verdict.distill_sentence(ni, 6.0, "1,000 requests vs the teacher")
    assert text.startswith("The distilled student is as good as the teacher within 5 points")
    assert "6.0x cheaper" in text and "after 1,000 requests" in text


def test_a_clearly_worse_student_is_said_to_be_worse():
    teacher = [1.0] * 200
    student = [1.0] * 120 + [0.0] * 80
    ni = _ni(student, teacher)
    assert not ni.shown
    assert "looks worse than the teacher" in verdict.distill_sentence(ni, 6.0, None)


def test_too_few_examples_says_how_many_would_tell():
    teacher = [1.0, 0.0] * 6
    ni = _ni(teacher, teacher)
    assert not ni.shown and ni.n == 12
    text = verdict.distill_sentence(ni, 2.0, None)
    assert text.startswith("Too few examples to tell") and "would tell" in text


def test_a_dearer_student_never_pays_back():
    ni = _ni([1.0] * 100, [1.0] * 100)
    text = verdict.distill_sentence(ni, 0.5, "never")
    assert "costs 2.0x more per request" in text and "paying back" not in text


# ---- the run on the fake model --------------------------------------------------------------------


@pytest.fixture
def distill_lab(fake_lab, monkeypatch):
    """The fake lab answering "Cardiologist" (a valid label of the specialty task), with `_train`
    writing an adapter folder whose manifest matches the config; every training is recorded."""
    from lab import ladder
    from lab.tuning.adapters import find_adapter

    trained = []

    def fake_train(lab, cfg, cancel, progress, say):
        write_fake_adapter(lab, cfg, wall_s=12.0, device="cpu")
        trained.append(cfg.name)

    monkeypatch.setattr(distill_run, "_train", fake_train)
    monkeypatch.setattr(ladder, "resolve_adapter", lambda lab, name, model=None: find_adapter(lab.home.adapters, name))
    fake_lab.fake.default = "Cardiologist"
    fake_lab.trained = trained
    return fake_lab


def _label_run(lab) -> dict:
    return lab.store.query("select * from eval_runs where task like 'specialty~%'")[0]


def _label_generations(lab) -> int:
    run = _label_run(lab)
    return lab.store.query("select count(*) as n from generations where eval_run_id = ?", [run["id"]])[0]["n"]


def test_a_distillation_labels_trains_scores_and_a_rerun_redoes_nothing(distill_lab):
    from lab.tasks import load_task

    task = load_task("specialty")
    lab = distill_lab
    lab.fake.queue("I am not sure", "")  # two answers that break the label format
    settings = settings_for(task, "default:few-shot@2", max_inputs=6, limit=4)
    distill_id = run_distill(lab, task, settings, progress=False, say=lambda m: None)
    row = lab.store.distill(distill_id)
    ledger = json.loads(row["ledger_json"])
    assert row["status"] == "finished"
    assert ledger["labels"]["inputs"] == 6 and ledger["labels"]["dropped"] == 2 and ledger["labels"]["kept"] == 4
    labels = (lab.home.state / "distill" / "specialty" / "specialty-distilled" / "labels.jsonl").read_text()
    assert [json.loads(x)["output"] for x in labels.splitlines()] == ["Cardiologist"] * 4
    assert lab.trained == ["specialty-distilled", "specialty-distilled-gold"]
    assert [r["role"] for r in ledger["rows"]] == ["teacher", "zero-shot", "distilled", "gold"]
    assert all(r["n"] == 4 for r in ledger["rows"])
    assert ledger["one_off"]["training"]["distilled"]["wall_s"] == 12.0
    assert ledger["sentence"] and "Inputs: 6 labelled" in "\n".join(ledger_lines(ledger))
    assert _label_generations(lab) == 6
    # the task's own evaluation is not one of the distillation's runs
    from lab.evaluation.runner import latest_run

    latest = latest_run(lab, "specialty")
    assert latest is None or json.loads(latest["config_json"]).get("sweep") == "distill"

    calls = len(lab.fake.calls)
    assert run_distill(lab, task, settings, progress=False, say=lambda m: None) == distill_id
    assert len(lab.fake.calls) == calls and lab.trained == ["specialty-distilled", "specialty-distilled-gold"]


def test_cancel_mid_labelling_then_rerun_loses_and_repeats_nothing(distill_lab):
    from lab.tasks import load_task

    task, lab = load_task("specialty"), distill_lab
    cancel = threading.Event()
    real = lab.fake.generate

    def generate(*a, **kw):
        if len(lab.fake.calls) == 3:
            cancel.set()  # the runner stops after the answer in flight
        return real(*a, **kw)

    lab.fake.generate = generate
    settings = settings_for(task, "default:zero-shot", max_inputs=6, limit=3, gold=False)
    with pytest.raises(DistillInterrupted, match="run the same command again"):
        run_distill(lab, task, settings, progress=False, cancel=cancel, say=lambda m: None)
    assert lab.store.latest_distill("specialty", finished=False)["status"] == "interrupted"
    done = _label_generations(lab)
    assert 0 < done < 6 and lab.trained == []
    run_distill(lab, task, settings, progress=False, say=lambda m: None)
    assert _label_generations(lab) == 6  # only the missing ones were asked
    dup = lab.store.query(
        "select eval_run_id, example_id, arm, count(*) as c from eval_results group by 1, 2, 3 having c > 1"
    )
    assert dup == [] and lab.trained == ["specialty-distilled"]


def test_the_teacher_never_sees_the_input_it_labels_among_its_examples(distill_lab, tmp_path):
    from lab.tasks import load_task

    task = load_task("specialty").model_copy(update={"fewshot": None})  # its pool: the training set
    first = [e.input for e in task.examples("train")[:3]]
    path = tmp_path / "inputs.jsonl"
    path.write_text("".join(json.dumps({"input": x}) + "\n" for x in first))
    settings = settings_for(task, "default:few-shot@2", inputs=str(path), limit=2)
    run_distill(distill_lab, task, settings, progress=False, say=lambda m: None)
    label_calls = distill_lab.fake.calls[:3]
    for call in label_calls:
        question = call["messages"][-1]["content"]
        shown = [m["content"] for m in call["messages"][1:-1] if m["role"] == "user"]
        assert len(shown) == 2 and question not in shown
    assert {call["messages"][-1]["content"] for call in label_calls} == set(first)


def test_inputs_from_a_file_leave_out_held_out_questions_and_have_no_gold(distill_lab, tmp_path):
    from lab.tasks import load_task

    task = load_task("specialty")
    held = task.examples("eval")[0].input
    path = tmp_path / "log.csv"
    path.write_text(
        'question\n"' + held + '"\n"My knee hurts after running"\n"My knee hurts after running"\n"Itchy rash"\n'
    )
    settings = settings_for(task, "default:zero-shot", inputs=str(path), limit=3)
    items, left = distill_run.gather_inputs(task, settings)
    assert [i["input"] for i in items] == ["My knee hurts after running", "Itchy rash"]
    assert left == {"held_out": 1, "repeated": 1} and all(i["gold"] is None for i in items)
    run_distill(distill_lab, task, settings, progress=False, say=lambda m: None)
    assert distill_lab.trained == ["specialty-distilled"]  # no gold answers: no gold-tuned student


def test_an_inputs_file_without_an_input_column_names_its_columns(tmp_path):
    from lab.tasks import load_task

    task = load_task("specialty")
    path = tmp_path / "log.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DistillError, match="which column is the input.*a, b"):
        distill_run.gather_inputs(task, settings_for(task, "default", inputs=str(path)))


# ---- the command line -----------------------------------------------------------------------------


def _cli(tmp_path, *args):
    from lab.cli import cli

    return CliRunner().invoke(cli, ["--home", str(tmp_path), "distill", "specialty", *args], obj={})


def test_cli_bad_spec_exits_2_naming_it(tmp_path):
    result = _cli(tmp_path, "--teacher", "default:fewshot")
    assert result.exit_code == 2 and "'default:fewshot'" in result.output and "Traceback" not in result.output


def test_cli_unreachable_teacher_server_exits_2_naming_it(tmp_path):
    spec = "openai:http://127.0.0.1:9/v1#big"
    t0 = time.perf_counter()
    result = _cli(tmp_path, "--teacher", spec + ":few-shot", "--estimate-only")
    assert result.exit_code == 2, result.output
    assert spec in result.output and "Traceback" not in result.output
    assert time.perf_counter() - t0 < 60


def test_cli_unknown_student_exits_2(tmp_path):
    result = _cli(tmp_path, "--teacher", "default:zero-shot", "--student", "no-such-model", "--estimate-only")
    assert result.exit_code == 2 and "no-such-model" in result.output


# ---- the real model: a tiny distillation killed mid-training and resumed ---------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_a_tiny_real_distillation_killed_mid_training_resumes(shared_home):
    from lab.engine import Lab
    from lab.tasks import load_task

    lab = Lab(home=shared_home)
    task = load_task("specialty")
    settings = settings_for(
        task,
        "default:few-shot@2+constrained",
        name="specialty-tiny-distilled",
        max_inputs=8,
        limit=4,
        gold=False,
        max_steps=6,
        train={"batch_size": 2, "max_seq_len": 256, "threads": 1},
    )
    cancel = threading.Event()

    def watch():  # cancel once the trainer has logged a step: a stop mid-training, with a checkpoint
        while not cancel.is_set():
            if lab.store.query(
                "select count(*) as n from training_steps s join training_runs r on r.id = s.run_id "
                "where r.adapter_name = 'specialty-tiny-distilled'"
            )[0]["n"]:
                cancel.set()
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    with pytest.raises(DistillInterrupted):
        run_distill(lab, task, settings, progress=False, cancel=cancel, say=lambda m: None)
    labelled = _label_generations_named(lab, "specialty~specialty-tiny-distilled")
    assert labelled == 8  # every teacher answer was kept
    distill_id = run_distill(lab, task, settings, progress=False, say=lambda m: None)
    assert _label_generations_named(lab, "specialty~specialty-tiny-distilled") == 8  # none asked twice
    runs = lab.store.query("select * from training_runs where adapter_name = 'specialty-tiny-distilled'")
    assert len(runs) == 1 and "resume" in (runs[0]["events_json"] or "")  # continued, not started over
    ledger = json.loads(lab.store.distill(distill_id)["ledger_json"])
    assert ledger["labels"]["dropped"] == 0  # constrained: every answer is a label
    assert [r["role"] for r in ledger["rows"]] == ["teacher", "zero-shot", "distilled"]
    assert all(r["n"] == 4 and r["per_1k"] is not None for r in ledger["rows"])
    assert (lab.home.adapters / "specialty-tiny-distilled" / "adapter.gguf").exists()
    text = "\n".join(ledger_lines(ledger))
    assert ledger["sentence"] in text and "training distilled" in text
    lab.store.close()
    # the command line with the same settings: nothing left to do, the ledger printed
    from lab.cli import cli

    args = ["--teacher", "default:few-shot@2+constrained", "--name", "specialty-tiny-distilled", "--max-inputs", "8"]
    args += ["--limit", "4", "--no-gold", "--max-steps", "6", "--batch-size", "2", "--max-seq-len", "256"]
    result = CliRunner().invoke(
        cli, ["--home", str(shared_home), "distill", "specialty", *args, "--threads", "1"], obj={}
    )
    assert result.exit_code == 0, result.output
    assert "plan: The teacher smollm2-135m-instruct (few-shot, 2 fixed examples, constrained)" in result.output
    assert ledger["sentence"] in result.output and "student, distilled" in result.output


def _label_generations_named(lab, task_name: str) -> int:
    return lab.store.query(
        "select count(*) as n from generations g join eval_runs r on r.id = g.eval_run_id where r.task = ?", [task_name]
    )[0]["n"]


def test_best_prompt_is_what_a_sweep_measured_for_that_model_else_the_tasks_few_shot(fake_lab):
    from lab.distill.spec import resolve
    from lab.evaluation.runner import run_eval
    from lab.evaluation.sample import held_out
    from lab.tasks import load_task

    task = load_task("specialty")
    spec = parse_teacher("default")
    none = resolve(fake_lab, task, spec, "fake")
    assert (none.arm, none.k) == ("few-shot", task.few_shot_k) and "no prompt sweep measured" in none.note
    fake_lab.fake.default = "not a label"
    gold = [e.output for e in held_out(task, 3)]
    for k in (1, 2, 4):  # a sweep on a sample of 3: k = 2 answers every one right
        if k == 2:
            fake_lab.fake.queue(*gold)
        run_eval(fake_lab, task, ["few-shot"], limit=3, k=k, progress=False, sweep="prompt")
    best = resolve(fake_lab, task, spec, "fake")
    assert (best.arm, best.k) == ("few-shot", 2) and "best of 3" in best.note
    held = resolve(fake_lab, task, parse_teacher("default:best-prompt+constrained"), "fake")
    assert held.constrain and held.label.endswith(", constrained")
