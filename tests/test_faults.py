"""The fault drill at a small scale: Hypothesis-drawn JSONL and task-file breakage against the
readers, a sample of malformed inputs through the CLI, 2 SIGKILLs per long job, and a small load
test of the app while a trainer writes. The drill's functions live in scripts/fault_drill.py
(and its inputs in scripts/fault_inputs.py); `python scripts/fault_drill.py` runs them at scale."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.tasks import DataError, TaskError, load_task, read_examples  # noqa: E402
from lab.tuning import datasets  # noqa: E402
from scripts import fault_drill as drill  # noqa: E402
from scripts.fault_inputs import LINE_BREAKAGES, broken_line, broken_task, jsonl_with, valid_records  # noqa: E402

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---- the readers, on Hypothesis-drawn breakage (fast) --------------------------------------------


@FAST
@given(breakage=st.sampled_from(LINE_BREAKAGES), at=st.integers(1, 25), data=st.data())
def test_a_broken_eval_line_is_a_task_error_naming_the_file_and_line(tmp_path, breakage, at, data):
    path = tmp_path / "eval.jsonl"
    path.write_bytes(jsonl_with(data.draw(broken_line(breakage)), at))
    with pytest.raises(DataError) as e:
        read_examples(path)
    assert "eval.jsonl" in str(e.value) and f":{at}:" in str(e.value)


@FAST
@given(breakage=st.sampled_from(LINE_BREAKAGES), at=st.integers(1, 25), data=st.data())
def test_a_broken_training_line_is_a_dataset_error_naming_the_line(tmp_path, breakage, at, data):
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl_with(data.draw(broken_line(breakage, strict_types=False)), at))
    with pytest.raises(datasets.DatasetError) as e:
        datasets.read_examples(path)
    assert e.value.problems[0][0] == at and "train.jsonl" in str(e.value)


@FAST
@given(drawn=broken_task())
def test_a_broken_task_file_is_a_task_error_naming_the_field(tmp_path, drawn):
    breakage, text, field = drawn
    (tmp_path / "train.jsonl").write_bytes(jsonl_with(b"", 1))
    (tmp_path / "eval.jsonl").write_bytes(jsonl_with(b"", 1))
    (tmp_path / "task.toml").write_text(text)
    with pytest.raises(TaskError) as e:
        load_task(tmp_path / "task.toml")
    assert "task.toml" in str(e.value) and field in str(e.value), (breakage, text)


def test_the_valid_padding_itself_reads(tmp_path):
    """The breakage above is the only thing wrong with those files."""
    path = tmp_path / "eval.jsonl"
    path.write_bytes(jsonl_with(b"", 1))
    assert len(read_examples(path)) == len(valid_records())


# ---- through the CLI (real model files, real processes) -------------------------------------------


@pytest.fixture
def home(tmp_path):
    return drill.make_home(tmp_path)


@pytest.mark.integration
@pytest.mark.slow
def test_a_sample_of_bad_inputs_is_handled_cleanly_through_the_cli(home, tmp_path):
    out = drill.drill_bad_inputs(home, tmp_path / "cases", sample=8, seed=1)
    assert out.tried == 8
    assert out.problems == []


@pytest.mark.integration
@pytest.mark.slow
def test_killed_evals_resume_without_duplicate_or_lost_rows(home):
    out = drill.drill_eval(home, 2, random.Random(0), limit=2)
    assert (out.tried, out.problems) == (2, [])


@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_reindex_leaves_the_previous_version_serving(home):
    out = drill.drill_index(home, 2, random.Random(0))
    assert (out.tried, out.problems) == (2, [])


@pytest.mark.integration
@pytest.mark.slow
def test_killed_training_leaves_no_half_adapter_is_marked_died_and_resumes(home):
    out = drill.drill_train(home, 2, random.Random(0), window=(6.0, 20.0))
    assert (out.tried, out.problems) == (2, [])
    assert list((home / "adapters").glob("drill-*/lab_adapter.json"))  # the final resume finished one


@pytest.mark.integration
@pytest.mark.slow
def test_the_app_answers_concurrent_compares_while_a_trainer_writes(home):
    out, figures = drill.drill_load(home, requests=4, max_tokens=16)  # the Compare slider's minimum
    assert out.problems == []
    assert figures["answered"] == figures["rows_logged"] == 4
