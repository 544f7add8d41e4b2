"""Changing a task the user made: its instructions to try (task.toml's `instructions`) and its rubric
(`rubric`: what a good answer is, for blind pairwise rating), edited in place with tomlkit, so the
user's other lines and comments stay as they were. The new file is checked by the Task model before
it is written (an invalid value is an error and the file is unchanged), then written atomically.
Both keys are left out of the task's hash (tasks.UNHASHED_KEYS), so the stored evaluations stay.
Built-in scenarios are part of the lab: never edited."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from ..config import tomllib
from ..tasks import SCENARIOS_DIR, Task, TaskError, _describe, _show, find_task_file, load_task
from .plan import InstructionsError, check_instructions, clean_rubric
from .read import TaskImportError

BOM = "\ufeff"


class BuiltinTaskError(TaskImportError):
    """A built-in scenario (`name`, its `folder`) was to be changed: it is part of the lab."""

    def __init__(self, name: str, folder: Path, then: str = "try other instructions on that one"):
        self.name, self.folder = name, folder
        super().__init__(
            f"'{name}' is a built-in task, part of the lab itself, so it stays as it is: make your own copy "
            f"of it with New task (from its data files in {folder}) and {then}"
        )

    def command_line(self) -> str:
        return (
            f"'{self.name}' is a built-in task, part of the lab itself, so it stays as it is: make your own "
            f"copy with `lab task new` (from its data files in {self.folder}) and change that one"
        )


def is_builtin(task: Task) -> bool:
    """Is this one of the lab's own scenarios (lab/scenarios/), which nothing edits?"""
    return task.source is not None and _inside(task.source, SCENARIOS_DIR)


def instructions_note(task: Task) -> str | None:
    """A task with one instruction: what to write next so the prompt rung has something to compare
    (None when it already has another to try)."""
    if task.instructions:
        return None
    return (
        f"{task.name} has one instruction, so the prompt rung has nothing to compare it with: write a "
        "second one that states the output format or the persona explicitly."
    )


def set_instructions(task: str | os.PathLike | Task, instructions: list[str], home=None) -> Task:
    """Make `instructions` the task's instructions to try beside its own (task.toml's
    `instructions`; [] removes the key) and return the task loaded again. `task`: a name in the lab
    home `home`, a task.toml or its folder, or a loaded Task. Only that key changes: the rest of the
    file, comments included, stays byte for byte. Refused for a built-in scenario
    (BuiltinTaskError); an empty instruction, one given twice or the task's own instruction again is
    an InstructionsError, and the file is left as it was."""
    import tomlkit

    path = _own_file(task, home, "try other instructions on that one")
    current = load_task(path)  # a file already broken says so first, in load_task's words
    wanted = check_instructions(current.instruction, list(instructions))
    raw = path.read_bytes()
    bom = BOM if raw.startswith(BOM.encode()) else ""  # kept as the file had it
    doc = tomlkit.parse(raw.decode("utf-8-sig"))
    if wanted and "instructions" not in doc and "instruction" in doc:
        doc = _added_after(tomlkit, doc, "instruction", "instructions", _toml_array(tomlkit, wanted))
    elif wanted:
        doc["instructions"] = _toml_array(tomlkit, wanted)  # replaced where it is, or added before any table
    elif "instructions" in doc:
        del doc["instructions"]
    else:
        return current  # nothing to remove: the file stays as it is
    return _write(path, bom, tomlkit.dumps(doc), "instructions", [], wanted, InstructionsError)


def set_rubric(task: str | os.PathLike | Task, text: str, home=None) -> Task:
    """Make `text` the task's rubric (task.toml's `rubric`: what a good answer is, read beside two
    answers rated blind) and return the task loaded again; "" (or only blanks) removes the key.
    `task`: a name in the lab home `home`, a task.toml or its folder, or a loaded Task. The rubric is
    kept stripped, with "\\n" line ends, as a multi-line string, so it stays easy to edit; only that
    key changes: the rest of the file, comments included, stays byte for byte, and so does the
    task's hash (the rubric is left out of it). Refused for a built-in scenario (BuiltinTaskError)."""
    import tomlkit

    path = _own_file(task, home, "write its rubric there")
    current = load_task(path)  # a file already broken says so first, in load_task's words
    wanted = clean_rubric(text)
    raw = path.read_bytes()
    bom = BOM if raw.startswith(BOM.encode()) else ""  # kept as the file had it
    doc = tomlkit.parse(raw.decode("utf-8-sig"))
    if wanted and wanted != current.rubric:
        doc["rubric"] = _toml_text(tomlkit, wanted)  # replaced where it is, or added before any table
    elif not wanted and "rubric" in doc:
        del doc["rubric"]
    else:
        return current  # as it is already: the file is left alone
    return _write(path, bom, tomlkit.dumps(doc), "rubric", "", wanted, TaskError)


def _own_file(task: str | os.PathLike | Task, home, then: str) -> Path:
    """The task.toml of a task the user made (BuiltinTaskError for one of the lab's own scenarios:
    `then` says what to do with a copy)."""
    path = task.source if isinstance(task, Task) else find_task_file(task, home)
    if path is None:
        raise TaskError(f"task '{task.name}' has no task.toml to change")
    path = Path(path)
    if _inside(path, SCENARIOS_DIR):
        raise BuiltinTaskError(path.parent.name, path.parent, then)
    return path


def _write(path: Path, bom: str, text: str, key: str, empty, wanted, invalid: type[TaskError]) -> Task:
    """Write `text` as the task file `path`, atomically, once it reads back with `key` as `wanted`
    (absent: `empty`) and the Task model takes it (else `invalid`, naming the file; the file is left
    as it was); the task loaded again."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # tomlkit wrote what tomllib cannot read: never written
        raise TaskError(f"{_show(path)}: the {key} could not be written as TOML ({e})") from None
    if data.get(key, empty) != wanted:  # never written unless it reads back as given
        raise TaskError(f"{_show(path)}: the {key} would read back as {data.get(key)!r}")
    try:
        Task.model_validate(data, context={"root": path.parent})
    except ValidationError as e:
        raise invalid("\n".join(f"{_show(path)}: {_describe(err)}" for err in e.errors())) from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(bom + text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_task(path)


def _added_after(tomlkit, doc, after: str, key: str, value):
    """`doc` with `key = value` right after the top-level key `after` (beside the one it varies),
    every other line as it was: rebuilt item by item, since tomlkit has no public insert."""
    new = tomlkit.document()
    for k, item in doc.body:
        new.append(k, item)
        if k is not None and k.key == after:
            new.append(key, value)
    return new


def _toml_array(tomlkit, texts: list[str]):
    """A TOML array of strings, one a line; an instruction of several lines as a multi-line string."""
    array = tomlkit.array()
    for text in texts:
        array.append(tomlkit.string(text, multiline="\n" in text))
    array.multiline(True)
    return array


def _toml_text(tomlkit, text: str):
    """`text` as a TOML string: a multi-line one (its first line under the opening quotes, as
    `lab task new` writes it) when it has several lines, else a plain one."""
    item = tomlkit.string(text, multiline="\n" in text)
    if "\n" in text:  # a newline right after the opening quotes is not part of the value (TOML)
        item = type(item)(item.type, item.value, "\n" + item.as_string()[3:-3], item.trivia)
    return item


def _inside(path: Path, root: Path) -> bool:
    path, root = Path(path).resolve(), root.resolve()
    return path == root or root in path.parents
