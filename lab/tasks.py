"""Task files: one `task.toml` says what the task is, where its data lives and how it is scored.

    name = "tickets"
    instruction = "Turn the email into a JSON ticket ..."   # the system prompt
    output_format = "json"                                 # "text" | "label" | "json"
    teaches = "behaviour"                                  # "knowledge" | "behaviour" (optional)
    json_schema = "schema.json"                            # paths are relative to the toml
    train = "train.jsonl"
    eval = "eval.jsonl"
    fewshot = "fewshot.jsonl"
    [cost]
    requests_per_day = 10000

`load_task("tickets")` finds a built-in scenario (lab/scenarios/<name>/task.toml), then a task
in the lab home (<home>/tasks/<name>/task.toml, made by `lab task new`, see lab.task_import);
`load_task("path/to/task.toml")` or `load_task("path/to/folder")` loads any other.
Every problem is a `TaskError` naming the file and the field (or the JSONL line), so a
typo in a task file is a one-line fix, not a stack trace.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .config import tomllib
from .home import LabHome

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
TASK_FILE = "task.toml"
SPLITS = ("train", "eval", "fewshot")
UNHASHED_KEYS = ("instructions", "rubric")  # task.toml keys an evaluation does not depend on
HOME_TASKS = "tasks"  # <lab home>/tasks/<name>/task.toml: tasks made with `lab task new`


class TaskError(ValueError):
    """A task file, or one of its data files, is wrong; the message names the file and field or line."""


class DataError(TaskError):
    """A JSONL data file is wrong; the message names the file and the line number."""


# ---- the task model ------------------------------------------------------------------


class Cost(BaseModel):
    """What a request and a compute hour cost, to compare rungs in money and not only in quality.

    Token prices are 0 by default because the lab runs local models; put an API's prices here
    to compare against it. `cpu_hour_price` is what an hour of this machine costs (power and
    wear, about a small cloud vCPU); `gpu_hour_price` is an on-demand single-GPU cloud hour,
    so a fine-tune is never counted as free just because it ran on your own card.
    """

    model_config = ConfigDict(extra="forbid")

    requests_per_day: int = Field(10_000, ge=0)  # the seeds' cost table uses 10,000 a day
    price_per_1k_prompt_tokens: float = Field(0.0, ge=0.0)
    price_per_1k_completion_tokens: float = Field(0.0, ge=0.0)
    gpu_hour_price: float = Field(1.20, ge=0.0)
    cpu_hour_price: float = Field(0.05, ge=0.0)


class Probe(BaseModel):
    """The staleness probe: edit `doc` (old -> new), re-index, ask `question` again.

    RAG should now answer `new`; a model fine-tuned on the old facts keeps answering `old`.
    `doc` is relative to the task's corpus folder.
    """

    model_config = ConfigDict(extra="forbid")

    doc: str = Field(min_length=1)
    old: str = Field(min_length=1)
    new: str = Field(min_length=1)
    question: str = Field(min_length=1)

    @model_validator(mode="after")
    def _changes_something(self) -> Probe:
        if self.old == self.new:
            raise ValueError("'old' and 'new' must differ")
        return self


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    instruction: str = ""  # the system prompt every rung starts from
    # Other instructions the prompt rung's sweep tries beside `instruction` (a clearer format, the
    # persona stated), each with the same example settings; left out of the task's hash, so adding
    # one keeps every stored evaluation (a run made with a variant names it in its own identity).
    instructions: list[str] = Field(default_factory=list)
    input_field: str = "input"
    output_field: str = "output"
    output_format: Literal["text", "label", "json"] = "text"
    labels: list[str] | None = Field(None, validate_default=True)  # the answers a "label" task allows
    json_schema: Path | None = None  # a "json" task's schema file
    scorers: list[str] = Field(default_factory=lambda: ["exact_match"], min_length=1)
    primary_metric: str = Field("exact_match", min_length=1)  # the metric `target` is about
    target: float = 0.8  # the quality bar on primary_metric, 0..1
    # "as good as": a cheaper rung may be at most this much worse (a non-inferiority test's margin)
    margin: float = Field(0.05, gt=0.0, le=0.5)
    corpus: str | None = None  # a corpus name under the lab home's corpora/ (RAG tasks)
    train: Path | None = None
    eval: Path
    fewshot: Path | None = None
    few_shot_k: int = Field(8, ge=0)  # examples put in a few-shot prompt
    max_tokens: int = Field(64, ge=1)  # completion budget per answer
    # Constrained decoding for every arm alike: a label task's answers restricted to its labels,
    # a JSON task's to its schema (`lab eval --constrain/--no-constrain` overrides it per run).
    constrain: bool = False
    # What the task mostly teaches the model: "knowledge" (facts it lacks: retrieval's job) or
    # "behaviour" (format, style, judgement, a persona: tuning's job). `lab climb` follows it where the
    # ladder forks (after the prompt rung without a corpus, after RAG) and says when the failures it
    # sees look otherwise; None: the climb guesses from the failures. `lab task new` infers it.
    teaches: Literal["knowledge", "behaviour"] | None = None
    cost: Cost = Field(default_factory=Cost)
    probe: Probe | None = None
    # What a good answer is, in words a rater (you, or a local judge model) reads beside two answers:
    # tone, house style, persona. Left out of the task's hash, so editing it keeps every evaluation.
    rubric: str = ""
    # "pairwise": a text task is also judged by blind pairwise preference (`lab rate`, `lab judge`),
    # arm against arm on the same held-out input, beside its reference-based scorers.
    judge: Literal["pairwise"] | None = None
    # The win rate over `baseline_arm` an arm must reach, by your ratings or a certified judge's, to
    # meet the bar on preference (None: preference is reported, never a bar).
    win_rate_target: float | None = Field(None, gt=0.0, le=1.0)
    baseline_arm: Literal["zero-shot", "few-shot", "rag", "tune", "tune+rag"] = "zero-shot"

    _source: Path | None = PrivateAttr(None)  # the task.toml this came from, for hash()

    @field_validator("target")
    @classmethod
    def _in_unit_range(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"must be between 0 and 1 (got {v})")
        return v

    @field_validator("labels")
    @classmethod
    def _labels_for_label_tasks(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if info.data.get("output_format") == "label" and not v:
            raise ValueError("a 'label' task needs a non-empty list of labels")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("has duplicates")
        return v

    @field_validator("instructions")
    @classmethod
    def _distinct_instructions(cls, v: list[str], info: ValidationInfo) -> list[str]:
        v = [x.strip() for x in v]
        if any(not x for x in v):
            raise ValueError("an instruction to try is empty")
        if len(set(v)) != len(v):
            raise ValueError("has duplicates")
        if (info.data.get("instruction") or "").strip() in v:
            raise ValueError("repeats the task's own instruction")
        return v

    @field_validator("constrain")
    @classmethod
    def _something_to_constrain_to(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("output_format") == "text":
            raise ValueError("a 'text' task has no label set or schema to constrain its answers to")
        return v

    @field_validator("judge")
    @classmethod
    def _judge_for_text(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and info.data.get("output_format") != "text":
            raise ValueError("pairwise judging is for 'text' tasks (labels and JSON have exact scorers)")
        return v

    @field_validator("json_schema", "train", "eval", "fewshot")
    @classmethod
    def _resolve_file(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        # Paths in a task file are relative to the file's folder, wherever the lab runs from.
        if v is None:
            return None
        root = (info.context or {}).get("root")
        path = (Path(root) / v if root and not v.is_absolute() else v).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    # -- helpers -----------------------------------------------------------------------

    @property
    def source(self) -> Path | None:
        return self._source

    def schema(self) -> dict | None:
        """The JSON schema as a dict (checked to be a valid schema), or None without one."""
        if self.json_schema is None:
            return None
        try:
            schema = json.loads(self.json_schema.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TaskError(f"{_show(self.json_schema)}: invalid JSON ({e.msg} at line {e.lineno})") from e
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as e:
            raise TaskError(f"{_show(self.json_schema)}: not a valid JSON schema: {e.message}") from e
        return schema

    def instruction_variants(self) -> list[str]:
        """Every instruction the prompt sweep tries: the task's own first, then `instructions`."""
        return [self.instruction, *self.instructions]

    def examples(self, split: str) -> list[Example]:
        """The examples of one split ("train", "eval" or "fewshot"); [] when the task has none."""
        if split not in SPLITS:
            raise TaskError(f"unknown split '{split}': use one of {', '.join(SPLITS)}")
        path = getattr(self, split)
        if path is None:
            return []
        examples = read_examples(path, self.input_field, self.output_field)
        if split == "eval" and not examples:  # else an evaluation of nothing "finishes" and is logged
            raise DataError(f"{_show(path)}: no examples (the held-out set is empty or only blank lines)")
        return examples

    def hash(self) -> str:
        """sha256 over the task file and every data file: the eval log's proof of what was run."""
        h = hashlib.sha256()
        if self._source is not None and (self.instructions or self.rubric):
            # the file as it reads without its instructions to try and its rubric (tomlkit keeps
            # every other byte), so listing one more instruction or rewording the rubric leaves the
            # hash, and the stored evaluations, as they were
            import tomlkit

            raw = self._source.read_bytes()
            doc = tomlkit.parse(raw.decode("utf-8-sig"))
            for key in UNHASHED_KEYS:
                doc.pop(key, None)
            bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
            h.update(bom + tomlkit.dumps(doc).encode("utf-8"))
        elif self._source is not None:  # byte for byte, as every stored evaluation was hashed
            h.update(self._source.read_bytes())
        else:
            h.update(self.model_dump_json().encode())
        for path in (self.json_schema, self.train, self.eval, self.fewshot):
            h.update(b"\0")
            if path is not None:
                h.update(path.name.encode() + b"\0" + path.read_bytes())
        return h.hexdigest()


# ---- examples ------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    output: str
    extra: dict[str, Any] = field(default_factory=dict)  # other keys: aliases, gold_doc, ...


def read_examples(path: str | os.PathLike, input_field: str = "input", output_field: str = "output") -> list[Example]:
    """Read a JSONL file of {"id", input_field, output_field, ...} records, one per line.

    A JSON object or list as output is kept as compact JSON text, so a hand-written dataset
    may store a ticket as an object. Blank lines are skipped. Ids default to <file stem>-<line>.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    examples, seen = [], {}
    with path.open("rb") as f:  # decoded line by line, so a bad byte is reported with its line
        for lineno, raw in enumerate(f, 1):
            where = f"{_show(path)}:{lineno}"
            try:  # a BOM (Windows editors write one) is not line 1's text
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{where}: byte 0x{raw[e.start]:02x} at column {e.start + 1} is not UTF-8 text: "
                    "save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(record, dict):
                raise DataError(f"{where}: each line must be a JSON object, got {type(record).__name__}")
            for key in (input_field, output_field):
                if key not in record:
                    raise DataError(f"{where}: missing field '{key}'")
            text, output = record.pop(input_field), record.pop(output_field)
            if not isinstance(text, str):
                raise DataError(f"{where}: field '{input_field}' must be a string, got {type(text).__name__}")
            if isinstance(output, (dict, list)):
                output = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
            elif not isinstance(output, str):
                raise DataError(f"{where}: field '{output_field}' must be a string, got {type(output).__name__}")
            ex_id = str(record.pop("id", f"{path.stem}-{lineno}"))
            if ex_id in seen:
                raise DataError(f"{where}: duplicate id '{ex_id}' (first on line {seen[ex_id]})")
            seen[ex_id] = lineno
            examples.append(Example(ex_id, text, output, record))
    return examples


# ---- loading -------------------------------------------------------------------------


def builtin_tasks() -> list[str]:
    """Names of the scenarios shipped in lab/scenarios/."""
    if not SCENARIOS_DIR.is_dir():
        return []
    return sorted(p.parent.name for p in SCENARIOS_DIR.glob(f"*/{TASK_FILE}"))


def home_tasks_dir(home: str | os.PathLike | LabHome | None = None) -> Path:
    """<lab home>/tasks: where `lab task new` writes (home: a path, a LabHome, or None for
    LAB_HOME / the current directory, as the Lab resolves it)."""
    root = home.root if isinstance(home, LabHome) else LabHome.resolve(home).root
    return root / HOME_TASKS


def home_tasks(home: str | os.PathLike | LabHome | None = None) -> list[str]:
    """Names of the tasks in the lab home's tasks/ folder (each a folder holding a task.toml)."""
    folder = home_tasks_dir(home)
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob(f"*/{TASK_FILE}") if not p.parent.name.startswith("."))


def task_names(home: str | os.PathLike | LabHome | None = None) -> list[str]:
    """Every task a bare name can load: the built-in scenarios, then the lab home's own
    (a home task named like a built-in is shadowed by it, so it is not listed twice)."""
    builtins = builtin_tasks()
    return builtins + [n for n in home_tasks(home) if n not in builtins]


def find_task_file(name_or_path: str | os.PathLike, home: str | os.PathLike | LabHome | None = None) -> Path:
    """A built-in name, a task in the lab home's tasks/, a task.toml, or a folder holding one
    -> the task.toml's path."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    if (path / TASK_FILE).is_file():
        return (path / TASK_FILE).resolve()
    name = str(name_or_path)
    if name in builtin_tasks():
        return SCENARIOS_DIR / name / TASK_FILE
    own = home_tasks_dir(home) / name / TASK_FILE
    if own.is_file() and os.sep not in name:
        return own
    if path.exists() or os.sep in name or name.endswith(".toml"):
        raise TaskError(f"no {TASK_FILE} at {path}")
    mine = home_tasks(home)
    raise TaskError(
        f"unknown task '{name}': built-in scenarios are {', '.join(builtin_tasks()) or '(none)'}; "
        + (
            f"tasks in {home_tasks_dir(home)}: {', '.join(mine)}; "
            if mine
            else f"none in {home_tasks_dir(home)} (make one with `lab task new`); "
        )
        + f"or pass a path to a {TASK_FILE} or its folder"
    )


def load_task(name_or_path: str | os.PathLike | Task, home: str | os.PathLike | LabHome | None = None) -> Task:
    """A task by built-in name, by name in the lab home's tasks/, or by task.toml path
    (a Task is returned as it is)."""
    if isinstance(name_or_path, Task):
        return name_or_path
    path = find_task_file(name_or_path, home)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TaskError(
            f"{_show(path)}: line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 text: save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise TaskError(f"{_show(path)}: not valid TOML: {e}") from e
    try:
        task = Task.model_validate(data, context={"root": path.parent})
    except ValidationError as e:
        raise TaskError("\n".join(f"{_show(path)}: {_describe(err)}" for err in e.errors())) from e
    task._source = path
    return task


# ---- messages ------------------------------------------------------------------------


def _show(path: Path) -> str:
    """A short name for messages: tickets/task.toml for built-ins, else relative to cwd if possible."""
    path = Path(path)
    for base in (SCENARIOS_DIR, Path.cwd()):
        try:
            return str(path.resolve().relative_to(base))
        except ValueError:
            pass
    return str(path)


def _known_fields(loc: tuple) -> list[str]:
    model: Any = Task
    for part in loc[:-1]:
        annotation = model.model_fields.get(part).annotation if part in model.model_fields else None
        model = next(
            (
                a
                for a in (annotation, *getattr(annotation, "__args__", ()))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if model is None:
            return []
    return list(model.model_fields)


def _describe(err: dict) -> str:
    """One pydantic error -> "field 'cost.gpu_hour_price': must be greater than or equal to 0 (got -1)"."""
    loc = tuple(p for p in err["loc"] if isinstance(p, str))
    error_type, value = err["type"], err.get("input")
    if error_type == "missing":
        msg = "is required"
    elif error_type == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _known_fields(loc), n=1)
        msg = "unknown field" + (f" (did you mean '{close[0]}'?)" if close else "")
    elif error_type == "literal_error":
        msg = f"must be one of {err['ctx']['expected']} (got {value!r})"
    elif error_type == "value_error":
        msg = str(err["ctx"]["error"])
    else:
        msg = re.sub(r"^\w+ should ", "must ", err["msg"])  # "Input should be ..." -> "must be ..."
        if isinstance(value, (str, int, float, bool)):
            msg += f" (got {value!r})"
    where = f"field '{'.'.join(loc)}'" if loc else "task"
    return f"{where}: {msg}"
