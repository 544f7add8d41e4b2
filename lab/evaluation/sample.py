"""Which held-out examples an evaluation scores: `held_out(task, limit)` is the only place that
chooses them (`lab eval --limit`, the Evaluate tab, `lab climb`, `lab curve`, `lab demo`).

A limit is a fair sample, not the file's first rows (`lab task new` used to write eval.jsonl
grouped by label, so the first 6 examples of a 10-label task were all one label). The order is
- the same on every rerun: seeded from the examples' ids through sha256 (Python's hash() of a
  string changes from process to process), and the file's order plays no part;
- stratified by label for a label task: every prefix holds each label in proportion to its share;
- nested: the first N of it is limit N, so a run resumed with a larger limit extends the rows it
  has instead of scoring another sample.

A run records how its examples were chosen (`SAMPLE`, in the runner's identity), so a run that
scored the first N rows is never resumed by a sampled call.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence

SAMPLE = "stratified-v1"  # the identity's "sample" value for runs chosen by `held_out`
SEED = b"lab held-out sample v1"  # fixed: with the ids, the only input to the order


def held_out(task, limit: int | None = None) -> list:
    """The task's held-out examples in the sampling order; the first `limit` of them (all: None)."""
    examples = sorted(task.examples("eval"), key=lambda e: e.id)  # the file's order plays no part
    order = nested_order(
        [e.output for e in examples], _seed(e.id for e in examples), stratify=task.output_format == "label"
    )
    chosen = [examples[i] for i in order]
    return chosen if limit is None else chosen[:limit]


def _seed(ids: Iterable[str]) -> int:
    h = hashlib.sha256(SEED)
    for i in ids:
        h.update(b"\0" + i.encode("utf-8"))
    return int.from_bytes(h.digest()[:8], "big")


def nested_order(labels: Sequence[str | None], seed: int, stratify: bool = True) -> list[int]:
    """An order of the examples (indices) whose every prefix is a fair subset: the 50 hold the
    25 (a learning curve's training subsets, a limit's held-out examples). Stratified: each
    label's examples are shuffled and spread evenly over the order (the i-th of a label's m
    examples sits at (i + u) / m, u random in [0, 1)), so any prefix keeps every label's share
    to within about one example."""
    rng = random.Random(seed)
    n = len(labels)
    if not stratify:
        order = list(range(n))
        rng.shuffle(order)
        return order
    groups: dict[str | None, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    keyed = []
    for label in sorted(groups, key=str):
        members = groups[label]
        rng.shuffle(members)
        m = len(members)
        keyed += [((j + rng.random()) / m, rng.random(), i) for j, i in enumerate(members)]
    return [i for _, _, i in sorted(keyed)]
