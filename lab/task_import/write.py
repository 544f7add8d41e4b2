"""The all-or-nothing write of a TaskPlan into <home>/tasks/NAME/: the task name checked, the task.toml
text, the train/eval/fewshot JSONL files (with the kept columns), the schema, the attached corpus
copied into the home's corpora/, everything built aside and renamed into place. Also the JSONL
`lab train` reads from any table (`training_file`)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from ..retrieval.corpus import RetrievalError, copy_into_home
from ..tasks import TASK_FILE, builtin_tasks, home_tasks_dir, load_task
from .infer import max_tokens_for
from .plan import FEWSHOT, CorpusError, TaskPlan, _corpus, _examples, _home, plan_task
from .read import KEPT_COLUMNS, TaskImportError, pick_columns, read_table

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TaskExistsError(TaskImportError):
    """tasks/NAME is taken (`name`, its `folder`). The command line's fix is --force; the app's, its
    Replace box: each face words its own."""

    def __init__(self, name: str, folder: Path):
        self.name, self.folder = name, folder
        super().__init__("already exists", folder)

    def command_line(self) -> str:
        return f"{self.folder} already exists: pass --force to replace it"


def check_name(name: str, home=None, force: bool = False) -> Path:
    """The task's folder in the lab home, once the name is usable and free (or --force)."""
    if not NAME.match(name or ""):
        raise TaskImportError(f"task name '{name}': use letters, digits, '-', '_' or '.' (64 at most)")
    if name in builtin_tasks():
        raise TaskImportError(f"'{name}' is a built-in task: pick another name")
    folder = home_tasks_dir(home) / name
    if folder.exists() and not force:
        raise TaskExistsError(name, folder)
    return folder


def write_task(plan: TaskPlan, home=None, force: bool = False) -> Path:
    """Write tasks/NAME/ in the lab home, all or nothing: built in a scratch folder, loaded back
    (so the task.toml is known to be valid), then renamed into place. A corpus folder to attach
    (`plan.corpus_from`) is copied into the home's corpora/ just before, and removed again if the
    task cannot be put in place. Returns the task.toml."""
    folder = check_name(plan.name, home, force)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{plan.name}.", dir=folder.parent))
    copied = None
    try:
        for split_name in ("train", "eval", "fewshot"):
            rows = getattr(plan, split_name)
            if rows:
                keys = ("id", "input", "output", *KEPT_COLUMNS)
                text = "".join(json.dumps({k: e[k] for k in keys if k in e}, ensure_ascii=False) + "\n" for e in rows)
                (scratch / f"{split_name}.jsonl").write_text(text, encoding="utf-8")
        if plan.schema:
            (scratch / "schema.json").write_text(
                json.dumps(plan.schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        (scratch / TASK_FILE).write_text(task_toml(plan), encoding="utf-8")
        load_task(scratch)  # a task file the lab cannot load is never put in place
        if plan.corpus_from is not None:
            name, source = _corpus(str(plan.corpus_from), home)  # checked again: the home may have changed
            if source is not None:
                try:
                    copied = copy_into_home(_home(home), source, name)
                except RetrievalError as e:
                    raise CorpusError(str(plan.corpus_from), str(e)) from None
        old = None
        if folder.exists():
            old = folder.parent / f".{plan.name}.old-{scratch.name}"
            folder.rename(old)
        scratch.rename(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if copied is not None:
            shutil.rmtree(copied, ignore_errors=True)
        raise
    plan.path = folder / TASK_FILE
    return plan.path


def import_task(source: str | Path, name: str, home=None, force: bool = False, **options) -> TaskPlan:
    """plan_task + write_task; the name is checked first, so a taken name fails before any reading."""
    check_name(name, home, force)
    plan = plan_task(source, name, home=home, **options)
    write_task(plan, home, force)
    return plan


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")  # a JSON string is a TOML basic string


def _multiline(s: str) -> str:
    plain = '"""' not in s and "\\" not in s and not s.endswith('"') and all(c >= " " or c in "\n\t" for c in s)
    return f'"""\n{s}"""' if plain and s.strip() else _string(s)


def task_toml(plan: TaskPlan) -> str:
    k = min(len(plan.fewshot), max(FEWSHOT, len(plan.labels or [])))
    max_tokens = (
        plan.max_tokens
        or max_tokens_for(
            [e["output"] for e in plan.train + plan.eval + plan.fewshot], plan.output_format, plan.labels
        )[0]
    )
    lines = [
        f"# Made by `lab task new` from {plan.source.name}; edit freely (output_format, scorers, instruction...).",
        f"name = {_string(plan.name)}",
        f"description = {_string(f'{plan.input_column} -> {plan.output_column}, from {plan.source.name}.')}",
        f"instruction = {_multiline(plan.instruction)}",
    ]
    if plan.instructions:
        lines += [
            "# Other instructions to try: the prompt rung measures each beside `instruction` (edit freely:",
            "# adding one keeps the stored evaluations).",
            "instructions = [",
            *(f"  {_multiline(s) if chr(10) in s else _string(s)}," for s in plan.instructions),
            "]",
        ]
    lines += [
        f"output_format = {_string(plan.output_format)}",
        '# teaches: "knowledge" (facts the model lacks: RAG\'s job) or "behaviour" (format, style, a persona:',
        "# tuning's job); `lab climb` follows it where the ladder forks. "
        + (
            f"Inferred ({plan.teaches_why})"
            if plan.teaches == plan.inferred_teaches
            else f"Chosen (inferred: {plan.inferred_teaches})"
        )
        + "; edit it if it is wrong.",
        f"teaches = {_string(plan.teaches)}",
    ]
    if plan.corpus:
        lines.append(
            f"corpus = {_string(plan.corpus)}  # corpora/{plan.corpus} in the lab home (or a sample corpus)"
            + ("; each example's gold_doc is relative to it" if "gold_doc" in plan.kept else "")
        )
    if plan.labels:
        lines.append(f"labels = {json.dumps(plan.labels, ensure_ascii=False)}")
    if plan.schema:
        lines.append('json_schema = "schema.json"')
    lines += [
        f"scorers = {json.dumps(plan.scorers)}",
        f"primary_metric = {_string(plan.primary_metric)}",
        "target = 0.80",
    ]
    lines += [f'{s} = "{s}.jsonl"' for s in ("train", "eval", "fewshot") if getattr(plan, s)]
    lines += [f"few_shot_k = {k}", f"max_tokens = {max_tokens}"]
    if plan.judge:
        lines += [
            "# judge: the answers are also rated blind, two at a time (you, or a judge model), beside the scorers.",
            f"judge = {_string(plan.judge)}",
        ]
    if plan.rubric:
        lines += [
            "# rubric: what a good answer is, read beside the two answers (house style, tone, a persona). Edit it",
            "# freely: it is left out of the task's hash, so rewording it keeps the stored evaluations.",
            f"rubric = {_multiline(plan.rubric)}",
        ]
    lines.append("")
    return "\n".join(lines)


def training_file(source: str | Path, out_dir: Path) -> Path:
    """A file `lab train` reads: a JSONL as it is (its own formats: chat, prompt/completion, Alpaca,
    input/output), any other table (CSV, TSV, JSON, Parquet) as input/output JSONL from its guessed
    columns, written to `out_dir` (the Train tab's uploads)."""
    source = Path(source)
    if source.suffix.lower() == ".jsonl":
        return source
    table = read_table(source)
    inp, out = pick_columns(table)
    examples, _duplicates = _examples(table, inp, out, source.stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.jsonl"
    tmp = target.with_suffix(".partial")
    tmp.write_text(
        "".join(json.dumps({"input": e["input"], "output": e["output"]}, ensure_ascii=False) + "\n" for e in examples),
        encoding="utf-8",
    )
    tmp.replace(target)
    return target
