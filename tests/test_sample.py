"""`lab.evaluation.sample.held_out`: the held-out examples a limit evaluates are a seeded,
label-stratified, nested sample, the same on every rerun, whatever the file's order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from lab.evaluation.sample import held_out
from lab.tasks import load_task

LABELS = [f"label{i}" for i in range(10)]


def make_task(folder: Path, examples: list[tuple[str, str]], labels: list[str] | None = LABELS):
    """A task whose eval.jsonl holds `examples` (id, output) in the order given."""
    folder.mkdir(parents=True, exist_ok=True)
    head = f'output_format = "label"\nlabels = {json.dumps(labels)}\n' if labels else 'output_format = "text"\n'
    (folder / "task.toml").write_text(f'name = "t"\n{head}eval = "eval.jsonl"\n')
    (folder / "eval.jsonl").write_text(
        "".join(json.dumps({"id": i, "input": f"question {i}", "output": out}) + "\n" for i, out in examples)
    )
    return load_task(folder / "task.toml")


def grouped(per_label: dict[str, int]) -> list[tuple[str, str]]:
    """Examples written grouped by label, as `lab task new` used to write eval.jsonl."""
    return [(f"{label}-{j}", label) for label, n in per_label.items() for j in range(n)]


def test_every_prefix_of_a_balanced_task_holds_each_label_equally(tmp_path):
    task = make_task(tmp_path / "t", grouped({label: 5 for label in LABELS}))
    order = held_out(task)
    assert len({e.output for e in order[:10]}) == 10  # the first 10: one of each label
    for n in range(1, len(order) + 1):
        counts = Counter(e.output for e in order[:n])
        assert max(counts.values()) - min(counts.get(label, 0) for label in LABELS) <= 1, n


def test_every_prefix_keeps_each_labels_share(tmp_path):
    sizes = {label: 2 + 3 * i for i, label in enumerate(LABELS)}  # 2 to 29 examples a label
    task = make_task(tmp_path / "t", grouped(sizes))
    order, total = held_out(task), sum(sizes.values())
    for n in range(1, total + 1):
        counts = Counter(e.output for e in order[:n])
        for label, m in sizes.items():
            assert abs(counts.get(label, 0) - n * m / total) < 2, (n, label)


def test_a_limit_is_the_start_of_a_larger_one(tmp_path):
    task = make_task(tmp_path / "t", grouped({label: 4 for label in LABELS}))
    assert held_out(task, 6) == held_out(task, 20)[:6] == held_out(task)[:6]
    assert len(held_out(task, 20)) == 20 and held_out(task, 0) == []
    assert sorted(e.id for e in held_out(task)) == sorted(e.id for e in task.examples("eval"))
    assert held_out(task, 1000) == held_out(task)


def test_the_same_order_on_every_run_and_whatever_the_file_order(tmp_path):
    examples = grouped({label: 3 for label in LABELS})
    task = make_task(tmp_path / "a", examples)
    ids = [e.id for e in held_out(task)]
    assert ids == [e.id for e in held_out(task)]
    assert ids == [e.id for e in held_out(make_task(tmp_path / "b", examples[::-1]))]
    assert ids != [e.id for e in task.examples("eval")]  # not the file's order
    # another process (another PYTHONHASHSEED) draws the same order: no hash() in the seed
    code = (
        "import sys; from lab.tasks import load_task; from lab.evaluation.sample import held_out; "
        "print(' '.join(e.id for e in held_out(load_task(sys.argv[1]))))"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "a" / "task.toml")],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=Path(__file__).resolve().parents[1],
        )
        assert out.stdout.split() == ids


def test_a_free_text_task_is_shuffled_with_a_seed(tmp_path):
    examples = [(f"q{i:02d}", f"answer {i}") for i in range(30)]
    task = make_task(tmp_path / "t", examples, labels=None)
    ids = [e.id for e in held_out(task)]
    assert ids != [i for i, _ in examples] and sorted(ids) == sorted(i for i, _ in examples)
    assert ids == [e.id for e in held_out(make_task(tmp_path / "again", examples[::-1], labels=None))]
    assert [e.id for e in held_out(task, 7)] == ids[:7]
