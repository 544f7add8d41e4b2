"""From a Table to a task plan: the format, the instruction, the seeded split, the leakage check,
the kept columns (gold_doc, aliases), the corpus to attach, the instructions to try and, for a text
task, the pairwise judge and its rubric. Nothing is written here: `write.py` puts the plan in
<home>/tasks/NAME/."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..home import LabHome
from ..retrieval.corpus import RetrievalError, corpus_to_attach
from .infer import (
    FORMATS,
    MAX_ANSWER_TOKENS,
    TEACHES,
    _as_object,
    _as_text,
    _missing,
    _scorers,
    default_instruction,
    default_judge,
    default_rubric,
    derive_schema,
    infer_format,
    infer_teaches,
    max_tokens_for,
    normalise,
)
from .read import KEPT_COLUMNS, Table, TaskImportError, kept_columns, kept_value, pick_columns, read_table

FEWSHOT = 8  # few-shot pool size (for labels: at least one per label)


class EvalSizeError(TaskImportError):
    """The held-out size cannot be used: `value`, as given. The command line names it --eval-size."""

    def __init__(self, value: int | float | None, problem: str):
        self.value = value
        super().__init__(problem)

    def command_line(self) -> str:
        return f"--eval-size {self.value}: {self.problem}"


class CorpusError(TaskImportError):
    """The corpus to attach (`corpus`, as given: a name or a folder) cannot be: `problem` says why.
    The command line names it --corpus; the app, its Corpus picker."""

    def __init__(self, corpus: str, problem: str):
        self.corpus = corpus
        super().__init__(problem)

    def command_line(self) -> str:
        return f"--corpus {self.corpus}: {self.problem}"


class InstructionsError(TaskImportError):
    """The instructions to try cannot be used as given (empty, repeated, or the task's own)."""


# ---- the plan: examples, format, split -----------------------------------------------


@dataclass
class TaskPlan:
    name: str
    source: Path
    file_format: str  # csv, tsv, jsonl, json, parquet (read.FILE_FORMATS)
    shape: str
    input_column: str
    output_column: str
    output_format: str
    inferred_format: str
    labels: list[str] | None
    schema: dict | None
    instruction: str
    scorers: list[str]
    primary_metric: str
    seed: int
    rows: int
    train: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    fewshot: list[dict] = field(default_factory=list)
    duplicates: int = 0
    leaked: int = 0
    warnings: list[str] = field(default_factory=list)
    read_from: str = ""  # chat and Alpaca rows: where input and output came from (read.Table.read_from)
    path: Path | None = None  # the task.toml, once written
    scorers_why: str = ""  # why the primary metric (one line, in the summary)
    max_tokens: int | None = None  # the answer budget task.toml gets (None: worked out by task_toml)
    max_tokens_why: str = ""
    teaches: str = "behaviour"  # task.toml's `teaches` (TEACHES)
    inferred_teaches: str = "behaviour"  # what infer_teaches says
    teaches_why: str = ""
    instructions: list[str] = field(default_factory=list)  # others to try beside `instruction`
    corpus: str | None = None  # task.toml's `corpus` (a name in the lab home's corpora/, or a sample's)
    corpus_from: Path | None = None  # a folder write_task copies into <home>/corpora/<corpus> first
    kept: dict[str, int] = field(default_factory=dict)  # kept column (read.KEPT_COLUMNS) -> examples with one
    judge: str | None = None  # task.toml's `judge`: "pairwise" for a text task (infer.default_judge)
    rubric: str = ""  # task.toml's `rubric`: what a good answer is, for a text task (infer.DEFAULT_RUBRIC)

    def label_counts(self) -> dict[str, tuple[int, int, int]]:
        """label -> (train, eval, few-shot) counts."""
        per = [Counter(e["output"] for e in split) for split in (self.train, self.eval, self.fewshot)]
        return {label: tuple(c[label] for c in per) for label in (self.labels or [])}

    def summary(self) -> str:
        inferred = (
            "inferred" if self.output_format == self.inferred_format else f"chosen; inferred {self.inferred_format}"
        )
        out = [
            f"from {self.source.name} ({self.file_format}"
            + (f", {self.shape} rows" if self.shape != "records" else "")
            + f", {self.rows} rows): "
            + (self.read_from or f"input '{self.input_column}', output '{self.output_column}'"),
            f"format: {self.output_format} ({inferred})"
            + (f", {len(self.labels)} labels: {', '.join(self.labels)}" if self.labels else "")
            + (f", schema keys: {', '.join(self.schema['properties'])}" if self.schema else ""),
            f"scorers: {', '.join(self.scorers)} (primary: {self.primary_metric}"
            + (f": {self.scorers_why})" if self.scorers_why else ")"),
        ]
        chosen = "inferred" if self.teaches == self.inferred_teaches else f"chosen; inferred {self.inferred_teaches}"
        out.append(
            f"teaches: {self.teaches} ({chosen}"
            + (f": {self.teaches_why}" if self.teaches_why else "")
            + "; edit `teaches` in task.toml if it is wrong: the climb's knowledge/behaviour fork follows it)"
        )
        if self.instructions:
            n = len(self.instructions)
            out.append(f"instructions to try: {n} beside the instruction (the prompt rung measures each)")
        if self.corpus:
            out.append(
                f"corpus: {self.corpus}"
                + (f" (copied from {self.corpus_from} into the lab home's corpora/)" if self.corpus_from else "")
            )
        if self.kept:
            n = len(self.train) + len(self.eval) + len(self.fewshot)
            out.append(
                "kept: "
                + ", ".join(f"{c} ({k} of {n} examples)" for c, k in self.kept.items())
                + " (read by recall@k, citations and the RAG failure split; aliases by contains_fact)"
            )
        if self.judge:
            out.append(
                f"judge: {self.judge} (answers also rated blind, two at a time"
                + (
                    f", by the rubric: {len(self.rubric.splitlines())} lines in task.toml; edit it freely, the "
                    "stored evaluations are kept)"
                    if self.rubric
                    else "; no rubric: write one in task.toml)"
                )
            )
        if self.max_tokens is not None:
            out.append(f"max_tokens: {self.max_tokens}" + (f" ({self.max_tokens_why})" if self.max_tokens_why else ""))
        out += [
            f"split (seed {self.seed}): train {len(self.train)} · eval {len(self.eval)} · few-shot {len(self.fewshot)}"
        ]
        if self.labels:
            width = max(len(x) for x in self.labels + ["label"])
            out.append(f"  {'label':<{width}}  train  eval  few-shot")
            out += [f"  {label:<{width}}  {a:>5}  {b:>4}  {c:>8}" for label, (a, b, c) in self.label_counts().items()]
        out.append(f"duplicates dropped: {self.duplicates}")
        out.append(
            "leakage check: "
            + (
                f"{self.leaked} example(s) shared their normalised input with a held-out "
                "one: removed from train/few-shot"
                if self.leaked
                else "no held-out input appears in train or few-shot"
            )
        )
        return "\n".join(out)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "source": str(self.source),
            "input_column": self.input_column,
            "output_column": self.output_column,
            "output_format": self.output_format,
            "inferred_format": self.inferred_format,
            "labels": self.labels,
            "schema": self.schema,
            "scorers": self.scorers,
            "primary_metric": self.primary_metric,
            "scorers_why": self.scorers_why,
            "max_tokens": self.max_tokens,
            "teaches": self.teaches,
            "inferred_teaches": self.inferred_teaches,
            "teaches_why": self.teaches_why,
            "instruction": self.instruction,
            "instructions": self.instructions,
            "corpus": self.corpus,
            "corpus_copied_from": str(self.corpus_from) if self.corpus_from else None,
            "kept": self.kept,
            "judge": self.judge,
            "rubric": self.rubric,
            "counts": {
                "rows": self.rows,
                "train": len(self.train),
                "eval": len(self.eval),
                "fewshot": len(self.fewshot),
            },
            "label_counts": self.label_counts(),
            "duplicates": self.duplicates,
            "leaked": self.leaked,
            "warnings": self.warnings,
        }


def plan_task(
    source: str | Path | Table,
    name: str,
    *,
    input_column: str | None = None,
    output_column: str | None = None,
    eval_size: int | float | None = None,
    seed: int = 0,
    output_format: str | None = None,
    labels: list[str] | None = None,
    instruction: str | None = None,
    teaches: str | None = None,
    instructions: list[str] | None = None,
    corpus: str | None = None,
    rubric: str | None = None,
    home=None,
) -> TaskPlan:
    """Read the file and decide everything `write_task` writes; nothing is written here.
    `instructions`: others to try beside the instruction (task.toml's `instructions`); `corpus`:
    a corpus to attach, the name of one in the lab home `home` or a sample one, or a folder that
    write_task copies into the home's corpora/ (retrieval.corpus.corpus_to_attach). `rubric`: a
    text task's rubric (None: infer.DEFAULT_RUBRIC; "": none); label and JSON tasks get no rubric
    and no judge (their scorers are exact), whatever is given."""
    table = source if isinstance(source, Table) else read_table(source)
    attach, attach_from = _corpus(corpus, home)
    inp, out = pick_columns(table, input_column, output_column)
    examples, duplicates = _examples(table, inp, out, name)
    outputs = [e["output"] for e in examples]
    inferred, found_labels, schema = infer_format(outputs)
    fmt = output_format or inferred
    if fmt not in FORMATS:
        raise TaskImportError(f"output format '{fmt}': use one of {', '.join(FORMATS)}")
    if teaches is not None and teaches not in TEACHES:
        raise TaskImportError(f"teaches '{teaches}': use one of {', '.join(TEACHES)}")
    if fmt == "label":
        found_labels = labels or found_labels or sorted(set(outputs))
        _check_labels(table, examples, found_labels)
    elif fmt == "json":
        schema = schema or _check_json(table, examples)
    scorers, primary, scorers_why = _scorers(fmt, outputs)
    if any("gold_doc" in e for e in examples) and "recall_at_k" not in scorers:
        scorers = [*scorers, "recall_at_k"]  # the gold documents are there to measure retrieval by
    train, evals, fewshot = split(examples, fmt, eval_size, seed, table.path)
    train, fewshot, leaked = remove_leaks(train, evals, fewshot)
    plan = TaskPlan(
        name,
        table.path,
        table.file_format,
        table.shape,
        inp,
        out,
        fmt,
        inferred,
        found_labels if fmt == "label" else None,
        schema if fmt == "json" else None,
        instruction or default_instruction(fmt, inp, out, found_labels, schema, table.instruction),
        scorers,
        primary,
        seed,
        len(table.rows),
        train,
        evals,
        fewshot,
        duplicates,
        leaked,
    )
    plan.scorers_why = scorers_why
    plan.instructions = check_instructions(plan.instruction, instructions)
    plan.corpus, plan.corpus_from = attach, attach_from
    plan.kept = {c: n for c in KEPT_COLUMNS if (n := sum(c in e for e in train + evals + fewshot))}
    plan.inferred_teaches, plan.teaches_why = infer_teaches(fmt, outputs, attach)
    plan.teaches = teaches or plan.inferred_teaches
    plan.judge = default_judge(fmt)
    plan.rubric = (default_rubric(fmt) if rubric is None else clean_rubric(rubric)) if plan.judge else ""
    plan.max_tokens, plan.max_tokens_why = max_tokens_for(
        [e["output"] for e in plan.train + plan.eval + plan.fewshot], plan.output_format, plan.labels
    )
    plan.warnings = _warnings(plan)
    if f"capped at {MAX_ANSWER_TOKENS}" in plan.max_tokens_why:  # answers longer than the cap are cut
        plan.warnings.append(f"max_tokens {plan.max_tokens}: {plan.max_tokens_why}")
    plan.read_from = table.read_from
    return plan


def check_instructions(instruction: str, instructions: list[str] | None) -> list[str]:
    """The instructions to try beside `instruction`, stripped; an empty one, one given twice or the
    task's own instruction again is an InstructionsError (the Task model refuses them too)."""
    out: list[str] = []
    own = (instruction or "").strip()
    for n, text in enumerate(instructions or [], 1):
        text = (text or "").strip()
        if not text:
            raise InstructionsError(f"instruction to try {n} is empty")
        if text == own:
            raise InstructionsError(f"instruction to try {n} is the same as the task's instruction")
        if text in out:
            raise InstructionsError(f"instructions to try {out.index(text) + 1} and {n} are the same")
        out.append(text)
    return out


def clean_rubric(text: str | None) -> str:
    """A rubric as it is kept: its line ends made "\\n", the blank edges stripped ("" for none)."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _corpus(corpus: str | None, home) -> tuple[str | None, Path | None]:
    """(task.toml's corpus name, the folder to copy into the home or None); checked, nothing written."""
    if corpus is None:
        return None, None
    try:
        return corpus_to_attach(_home(home), corpus)
    except RetrievalError as e:
        raise CorpusError(str(corpus), str(e)) from None


def _home(home) -> LabHome:
    return home if isinstance(home, LabHome) else LabHome.resolve(home)


def _examples(table: Table, inp: str, out: str, name: str) -> tuple[list[dict], int]:
    """{"id", "input", "output"} per row (ids carry the row), plus the kept columns it fills
    (read.KEPT_COLUMNS: gold_doc, aliases), exact duplicates dropped."""
    examples, seen, duplicates = [], set(), 0
    kept = kept_columns(table, inp, out)
    for i, row in enumerate(table.rows):
        for col in (inp, out):
            if _missing(row.get(col)):
                what = "output" if col == out else "input"
                raise table.error(i, f"the {what} column '{col}' is {'missing' if col not in row else 'empty'}")
        x, y = _as_text(row[inp]), _as_text(row[out])
        if (x, y) in seen:
            duplicates += 1
            continue
        seen.add((x, y))
        example = {"id": f"{name}-{table.places[i]}", "input": x, "output": y, "_row": i}
        for key, col in kept.items():
            value = kept_value(table, i, col, row.get(col))
            if value is not None:
                example[key] = value
        examples.append(example)
    return examples, duplicates


def _check_labels(table: Table, examples: list[dict], labels: list[str]) -> None:
    if len(labels) != len(set(labels)):
        raise TaskImportError("the labels given have duplicates")
    for e in examples:
        if e["output"] not in labels:
            raise table.error(e["_row"], f"output '{e['output'][:60]}' is not one of the labels ({', '.join(labels)})")


def _check_json(table: Table, examples: list[dict]) -> dict:
    objects = []
    for e in examples:
        obj = _as_object(e["output"])
        if obj is None:
            raise table.error(
                e["_row"], "the output is not a JSON object, so the task cannot be 'json': choose label or text"
            )
        objects.append(obj)
    return derive_schema(objects)


def parse_eval_size(value: str | None) -> int | float | None:
    """'50' -> 50, '0.2' -> 0.2, '' or None -> None (the default), as typed in a flag or a form."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        raise TaskImportError(f"held-out size '{value}': give a count (50) or a fraction (0.2)") from None


def eval_count(n: int, eval_size: int | float | None) -> int:
    """Held-out examples: an int, a fraction of n, or 20% by default (at least 1, at most 500)."""
    if eval_size is None:
        k = min(max(1, round(0.2 * n)), 500)
    elif 0 < eval_size < 1:
        k = max(1, round(eval_size * n))
    elif float(eval_size).is_integer() and eval_size >= 1:
        k = int(eval_size)
    else:
        raise EvalSizeError(eval_size, "give a count (e.g. 50) or a fraction between 0 and 1")
    if not 1 <= k < n:
        raise EvalSizeError(
            eval_size,
            f"{k} held-out examples of {n} leaves {'none' if k >= n else 'them all'} "
            f"for {'training' if k >= n else 'evaluation'}",
        )
    return k


def split(
    examples: list[dict], fmt: str, eval_size: int | float | None, seed: int, path: Path | str = "data"
) -> tuple[list[dict], list[dict], list[dict]]:
    """(train, eval, few-shot), seeded; stratified by label for label tasks, and the few-shot
    pool then starts with one example of every label."""
    if len(examples) < 2:
        raise TaskImportError(f"{len(examples)} example(s) after dropping duplicates: a task needs at least 2", path)
    rng = random.Random(seed)
    n_eval = eval_count(len(examples), eval_size)
    if fmt != "label":
        order = examples[:]
        rng.shuffle(order)
        rest = order[n_eval:]
        n_few = min(FEWSHOT, len(rest) // 2)
        return rest[n_few:], order[:n_eval], rest[:n_few]
    groups: dict[str, list[dict]] = {}
    for e in examples:
        groups.setdefault(e["output"], []).append(e)
    for g in groups.values():
        rng.shuffle(g)
    exact = {label: n_eval * len(g) / len(examples) for label, g in groups.items()}
    quota = {label: int(x) for label, x in exact.items()}
    for label in sorted(exact, key=lambda k: quota[k] - exact[k])[: n_eval - sum(quota.values())]:
        quota[label] += 1  # largest remainders first
    evals = [e for label, g in groups.items() for e in g[: quota[label]]]
    rest = {label: g[quota[label] :] for label, g in groups.items()}
    fewshot = [g[0] for g in rest.values() if g]  # one of every label that has one left
    pool = [e for g in rest.values() for e in g[1:]]
    rng.shuffle(pool)
    n_more = max(0, min(FEWSHOT, sum(map(len, rest.values())) // 2) - len(fewshot))
    fewshot += pool[:n_more]
    # eval.jsonl in a seeded order, not grouped by label, so its first rows are not all one label;
    # shuffled last, so the train and few-shot files stay what this seed always gave
    rng.shuffle(evals)
    return pool[n_more:], evals, fewshot


def remove_leaks(train: list[dict], evals: list[dict], fewshot: list[dict]) -> tuple[list[dict], list[dict], int]:
    """Drop train and few-shot examples whose normalised input is also held out; how many."""
    held = {normalise(e["input"]) for e in evals}
    kept_train = [e for e in train if normalise(e["input"]) not in held]
    kept_few = [e for e in fewshot if normalise(e["input"]) not in held]
    return kept_train, kept_few, len(train) - len(kept_train) + len(fewshot) - len(kept_few)


def leakage(task) -> int:
    """How many of a task's held-out examples share their normalised input with a train or
    few-shot example (0 is the only good answer: a leak inflates every tuned or few-shot score)."""
    seen = {normalise(e.input) for s in ("train", "fewshot") for e in task.examples(s)}
    return sum(normalise(e.input) in seen for e in task.examples("eval"))


def _warnings(plan: TaskPlan) -> list[str]:
    out = []
    for label, (a, b, c) in plan.label_counts().items():
        if a + b + c < 3:
            out.append(f"label '{label}' has only {a + b + c} example(s) (fewer than 3): add more or merge it")
        if b == 0:
            out.append(f"label '{label}' has no held-out example: its accuracy is not measured")
    if plan.leaked:
        out.append(
            f"leakage: {plan.leaked} example(s) had the same normalised input as a held-out one and were "
            "removed from train/few-shot"
        )
    if len(plan.train) < 20:
        # face-neutral: the command line forces it with --force, the Train tab with its box
        out.append(f"only {len(plan.train)} training examples: tuning wants 20 or more (fewer must be forced)")
    return out
