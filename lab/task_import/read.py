"""Reading the file a task is made from: CSV, TSV, JSONL, JSON or Parquet -> a Table of rows.

Chat (`messages`) and Alpaca rows are flattened to input/output columns; every problem is a
TaskImportError naming the file and the line, record or row.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tasks import TaskError

FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
PAIRS = [("text", "label"), ("input", "output"), ("prompt", "completion"), ("question", "answer")]
# Columns beside the input and output that the lab reads, kept in the task's JSONL files (so each
# `Example.extra` has them): `gold_doc`, the corpus document that holds the answer (a path relative
# to the corpus; recall@k, citations and the RAG failure split read it), and `aliases`, other ways to
# state the answer that count as right (contains_fact, the answer-in-the-prompt check). The names are
# fixed (matched case-insensitively). Either may hold several values: a list in JSONL/JSON/Parquet,
# or in a text cell (CSV, TSV) the values separated by '|' ("87%|87 percent"). Empty cells are left out.
KEPT_COLUMNS = ("gold_doc", "aliases")
MANY = "|"  # between the values of one kept cell


class TaskImportError(TaskError):
    """The file cannot become a task. Its parts are kept apart, so each face words them its own
    way: `path` (the file, as it was given), `where` (its line, record or row) and `problem`
    (the face's fix left out: a subclass carries what a face needs to word one). str() is the
    command line's message (`command_line`); the app names the file by the name the user
    uploaded (`worded`), not by the server's temporary copy of it."""

    def __init__(self, problem: str, path: str | Path | None = None, where: str | None = None):
        self.problem, self.where = problem, where
        self.path = None if path is None else Path(path)
        self.given = None if path is None else str(path)
        super().__init__(self.command_line())

    def worded(self, file: str | None = None, sep: str = ", ") -> str:
        """`file<sep>where: problem`, the file called `file` (default: its name alone)."""
        if file is None and self.path is not None:
            file = self.path.name
        head = sep.join(p for p in (file, self.where) if p)
        return f"{head}: {self.problem}" if head else self.problem

    def command_line(self) -> str:
        """The message `lab task new` prints: the file as it was given, the fix in its flags."""
        return self.worded(self.given, sep=": ")


class ColumnError(TaskImportError):
    """Which columns are the input and the output is not known: none named and none obvious
    (`named` is None), or a column named for `role` (input or output) that the file lacks.
    `columns` are the file's. The command line's fix is --input/--output; the app's, its pickers."""

    def __init__(self, path: Path, columns: list[str], named: str | None = None, role: str | None = None):
        self.columns, self.named, self.role = columns, named, role
        super().__init__(
            "which columns are the input and the output?" if named is None else f"no column '{named}'", path
        )

    def command_line(self) -> str:
        fix = "Name them with --input COL --output COL" if self.named is None else f"(--{self.role})"
        return f"{self.given}: {self.problem} {fix}; its columns are: {', '.join(self.columns)}"


# ---- reading -------------------------------------------------------------------------


@dataclass
class Table:
    path: Path
    file_format: str  # csv, tsv, jsonl, json, parquet
    columns: list[str]
    rows: list[dict[str, Any]]
    places: list[int]  # where each row is: a line (text files), a record or row number
    unit: str = "line"
    shape: str = "records"  # records, chat, alpaca (flattened to input/output columns)
    instruction: str | None = None  # a system prompt or Alpaca instruction every row shares
    read_from: str = ""  # chat and Alpaca rows: where the input and output came from, in the file's words

    def where(self, i: int) -> str:
        return f"{self.path.name}: {self.at(i)}"

    def at(self, i: int) -> str:
        """Row i's place in the file: 'line 7', 'record 3', 'row 12'."""
        return f"{self.unit} {self.places[i]}"

    def error(self, i: int, problem: str) -> TaskImportError:
        """A problem with row i, naming the file and the row's place in it."""
        return TaskImportError(problem, self.path, self.at(i))


def read_table(path: str | Path) -> Table:
    """Every row of a CSV/TSV/JSONL/JSON/Parquet file as a dict; chat and Alpaca rows flattened."""
    path = Path(path)
    if not path.is_file():
        raise TaskImportError("no such file", path)
    file_format = FILE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise TaskImportError(f"unknown file type '{path.suffix}': use .csv, .tsv, .jsonl, .json or .parquet", path)
    if file_format == "parquet":
        table = _read_parquet(path)
    else:
        text = _decode(path)
        if not text.strip():
            raise TaskImportError("the file is empty", path)
        read = {"csv": _read_delimited, "tsv": _read_delimited, "jsonl": _read_jsonl, "json": _read_json}[file_format]
        table = read(path, text, file_format)
    if not table.rows:
        raise TaskImportError("the file has no rows" + (" (only a header)" if table.columns else ""), path)
    return _flatten(table)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TaskImportError("the file is UTF-16: save it as UTF-8", path)
    encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TaskImportError(
            f"byte 0x{data[e.start]:02x} is not UTF-8 text (tried UTF-8 and UTF-8 with a BOM): "
            "save the file as UTF-8 (a spreadsheet's 'CSV UTF-8')",
            path,
            f"line {line}",
        ) from None


def _read_delimited(path: Path, text: str, file_format: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if file_format == "tsv" else ",")
    header: list[str] | None = None
    rows, places, start = [], [], 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue  # a blank line
            if header is None:
                header = [h.strip() for h in record]
                _check_header(path, header)
                continue
            if len(record) != len(header):
                raise TaskImportError(
                    f"{len(record)} fields, but the header has {len(header)} ({', '.join(header)}); a value "
                    f'with a {"tab" if file_format == "tsv" else "comma"} in it needs "quotes"',
                    path,
                    f"line {line}",
                )
            rows.append(dict(zip(header, record)))
            places.append(line)
    except csv.Error as e:
        raise TaskImportError(str(e), path, f"line {reader.line_num}") from None
    return Table(path, file_format, header or [], rows, places)


def _check_header(path: Path, header: list[str]) -> None:
    for i, name in enumerate(header, 1):
        if not name:
            raise TaskImportError(f"column {i} of the header has no name", path, "line 1")
    dupes = [n for n, c in Counter(header).items() if c > 1]
    if dupes:
        raise TaskImportError(f"the header names {', '.join(dupes)} more than once", path, "line 1")


def _read_jsonl(path: Path, text: str, file_format: str) -> Table:
    rows, places = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        rows.append(_record(path, f"line {n}", line))
        places.append(n)
    return Table(path, file_format, _columns(rows), rows, places)


def _record(path: Path, where: str, text: str) -> dict:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskImportError(f"invalid JSON ({e.msg} at column {e.colno})", path, where) from None
    if not isinstance(obj, dict):
        raise TaskImportError(f"each row must be a JSON object, got {type(obj).__name__}", path, where)
    return obj


def _read_json(path: Path, text: str, file_format: str) -> Table:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskImportError(f"invalid JSON ({e.msg})", path, f"line {e.lineno}") from None
    if isinstance(data, dict):  # {"data": [...]}: the one list of records inside
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list):
        raise TaskImportError("expected a list of records (or JSONL: one object per line)", path)
    for i, obj in enumerate(data, 1):
        if not isinstance(obj, dict):
            raise TaskImportError(f"each record must be a JSON object, got {type(obj).__name__}", path, f"record {i}")
    return Table(path, file_format, _columns(data), data, list(range(1, len(data) + 1)), unit="record")


def _read_parquet(path: Path) -> Table:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as e:
        raise TaskImportError(f"reading Parquet needs pyarrow (pip install pyarrow): {e}", path) from None
    except Exception as e:  # pyarrow's ArrowInvalid and friends: not a Parquet file
        raise TaskImportError(f"not a readable Parquet file ({type(e).__name__}: {e})", path) from None
    if frame.empty and len(frame.columns):
        raise TaskImportError(f"the file has no rows (only columns: {', '.join(map(str, frame.columns))})", path)
    if frame.empty:
        raise TaskImportError("the file is empty", path)
    rows = [{str(k): _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
    return Table(path, "parquet", [str(c) for c in frame.columns], rows, list(range(1, len(rows) + 1)), unit="row")


def _plain(v: Any) -> Any:
    """numpy/pandas values -> plain Python (arrays to lists, NaN and NA to None)."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    try:
        return None if v != v else v  # NaN
    except (TypeError, ValueError):  # pandas.NA refuses comparison
        return None


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _flatten(t: Table) -> Table:
    """Chat rows -> input (the last user turn) / output (the final assistant turn); Alpaca rows ->
    input / output, their shared instruction kept as the task's instruction."""
    cols = set(t.columns)
    if "messages" in cols and all(isinstance(r.get("messages"), list) for r in t.rows):
        rows, systems = [], []
        for i, r in enumerate(t.rows):
            msgs = [m for m in r["messages"] if isinstance(m, dict)]
            if not msgs or msgs[-1].get("role") != "assistant":
                raise t.error(i, "'messages' must end with the assistant's answer")
            user = [m for m in msgs if m.get("role") == "user"]
            if not user:
                raise t.error(i, "'messages' has no user turn (the input)")
            systems.append(next((m.get("content") for m in msgs if m.get("role") in ("system", "developer")), None))
            rows.append({"input": user[-1].get("content"), "output": msgs[-1].get("content")})
        shared = systems[0] if len(set(systems)) == 1 else None
        read_from = "input: each row's last user turn, output: its final assistant turn" + (
            ", the system prompt every row shares as the instruction" if shared else ""
        )
        rows = [{**row, **_kept_of(r)} for row, r in zip(rows, t.rows)]
        return Table(
            t.path,
            t.file_format,
            ["input", "output", *_kept_names(t)],
            rows,
            t.places,
            t.unit,
            "chat",
            shared,
            read_from,
        )
    if {"instruction", "output"} <= cols:
        instructions = {str(r.get("instruction") or "").strip() for r in t.rows}
        shared = next(iter(instructions)) if len(instructions) == 1 and "input" in cols else None
        rows = [
            {
                "input": r.get("input") if shared else _join(r.get("instruction"), r.get("input")),
                "output": r.get("output"),
                **_kept_of(r),
            }
            for r in t.rows
        ]
        read_from = (
            "input 'input', output 'output', the 'instruction' every row shares as the instruction"
            if shared
            else "input 'instruction' (with 'input' after it where there is one), output 'output'"
        )
        return Table(
            t.path,
            t.file_format,
            ["input", "output", *_kept_names(t)],
            rows,
            t.places,
            t.unit,
            "alpaca",
            shared or None,
            read_from,
        )
    return t


def _kept_names(t: Table) -> list[str]:
    """The table's kept columns (KEPT_COLUMNS), as the file spells them."""
    return [c for c in t.columns if c.lower() in KEPT_COLUMNS]


def _kept_of(row: dict) -> dict:
    """A chat or Alpaca row's kept columns, carried into its flattened row."""
    return {c: v for c, v in row.items() if c.lower() in KEPT_COLUMNS}


def _join(*parts: Any) -> str:
    return "\n\n".join(str(p).strip() for p in parts if p is not None and str(p).strip())


# ---- columns -------------------------------------------------------------------------


def guess_columns(columns: list[str]) -> tuple[str | None, str | None]:
    """The (input, output) columns when they are obvious (text/label, input/output,
    prompt/completion, question/answer, case-insensitive), else (None, None)."""
    lower = {c.lower(): c for c in columns}
    for a, b in PAIRS:
        if a in lower and b in lower:
            return lower[a], lower[b]
    return None, None


def pick_columns(table: Table, input_column: str | None = None, output_column: str | None = None) -> tuple[str, str]:
    """The columns named (checked against the file's) or guessed; a wrong name lists the columns."""
    cols = table.columns
    lower = {c.lower(): c for c in cols}

    def named(name: str, role: str) -> str:
        found = name if name in cols else lower.get(name.lower())
        if found is None:
            raise ColumnError(table.path, cols, name, role)
        return found

    inp = named(input_column, "input") if input_column else None
    out = named(output_column, "output") if output_column else None
    guess_in, guess_out = guess_columns(cols)
    inp, out = inp or guess_in, out or guess_out
    rest = [c for c in cols if c not in (inp, out) and c.lower() != "id" and c.lower() not in KEPT_COLUMNS]
    if bool(inp) != bool(out) and len(rest) == 1:  # one named, one column left: that one
        inp, out = inp or rest[0], out or rest[0]
    if not inp or not out:
        raise ColumnError(table.path, cols)
    if inp == out:
        raise TaskImportError(f"the input and output columns are both '{inp}'", table.path)
    return inp, out


def kept_columns(table: Table, input_column: str, output_column: str) -> dict[str, str]:
    """KEPT_COLUMNS the file has (not used as its input or output): the lab's name -> the file's."""
    return {c.lower(): c for c in table.columns if c.lower() in KEPT_COLUMNS and c not in (input_column, output_column)}


def kept_value(table: Table, i: int, column: str, value: Any) -> str | list[str] | None:
    """Row i's value of a kept column as the task's JSONL holds it: one text, a list of texts when
    there are several (a list, or a text cell with '|' between them; `aliases` is always a list),
    None when empty. Numbers become text; anything else (an object) is an error naming the row."""
    if isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        items = str(value).split(MANY)
    elif value is None:
        items = []
    else:
        raise table.error(i, f"'{column}' must be text or a list of texts, got {type(value).__name__}")
    values = []
    for item in items:
        if isinstance(item, (dict, list)) or isinstance(item, bool):
            raise table.error(i, f"'{column}' must be text or a list of texts, got a {type(item).__name__} in it")
        text = "" if item is None else str(item).strip()
        if text and text not in values:
            values.append(text)
    if not values:
        return None
    if column.lower() == "aliases" or len(values) > 1:
        return values
    return values[0]


def preview(table: Table, n: int = 8, width: int = 80) -> tuple[list[str], list[list[str]]]:
    """(headers, the first n rows as short strings) to show a file before importing it."""

    def cell(v):
        s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        return s if len(s) <= width else s[: width - 1] + "…"

    return table.columns, [[cell(r.get(c, "")) for c in table.columns] for r in table.rows[:n]]
