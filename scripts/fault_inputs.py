"""The fault drill's malformed inputs: each a `BadCase` (the files to write, the `lab` command a
user would type, the exit codes and the names its message must carry). Breakage is drawn with
Hypothesis strategies where there is a space of it (JSONL lines, task-file values, ragged rows);
`bad_cases(gguf, seed)` builds the whole corpus (scripts/fault_drill.py runs it,
tests/test_faults.py samples it and drives the strategies with @given).
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning

ROOT = Path(__file__).resolve().parents[1]
PADDING = 24  # valid lines around a broken one: a dataset needs 20 to train


@dataclass
class BadCase:
    name: str
    files: dict[str, bytes]
    args: list[str]  # the lab command after `lab --home HOME`; "{dir}" is the case's folder
    names: list[tuple[str, ...]] = field(default_factory=list)  # each: one of these must be in stderr
    codes: tuple[int, ...] = (2,)

    def write(self, folder: Path) -> None:
        for rel, data in self.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)

    def argv(self, folder: Path) -> list[str]:
        return [a.replace("{dir}", str(folder)) for a in self.args]


def draw(strategy, rng: random.Random):
    """One value of a Hypothesis strategy, reproducibly from `rng` (outside a @given test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        random_state = random.getstate()
        random.seed(rng.random())  # .example() draws from the global random
        try:
            return strategy.example()
        finally:
            random.setstate(random_state)


# ---- JSONL lines ---------------------------------------------------------------------------------


def valid_records(n: int = PADDING) -> list[dict]:
    src = ROOT / "lab" / "scenarios" / "acme-facts" / "train.jsonl"
    return [
        {"id": f"ok-{i}", "input": r["input"], "output": r["output"]}
        for i, r in enumerate(map(json.loads, src.read_text().splitlines()[:n]))
    ]


NOT_A_STRING = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
NOT_AN_OBJECT = st.one_of(
    st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=20), st.none(), st.booleans()
)
RECORD = st.fixed_dictionaries({"input": st.text(min_size=1, max_size=40), "output": st.text(min_size=1, max_size=20)})


@st.composite
def broken_line(draw_, breakage: str, strict_types: bool = True) -> str:
    """One JSONL line broken in the way `breakage` names. `strict_types`: readers that take only a
    string (a task's eval file); training data also takes numbers and JSON, so only null is wrong."""
    record = draw_(RECORD)
    if breakage == "truncated":
        text = json.dumps(record)
        return text[: draw_(st.integers(1, len(text) - 1))]
    if breakage == "wrong type":
        key = draw_(st.sampled_from(["input", "output"]))
        bad = draw_(
            NOT_A_STRING.filter(lambda v: not isinstance(v, (dict, list)) or key == "input")
            if strict_types
            else st.none()
        )
        return json.dumps({**record, key: bad})
    if breakage == "missing field":
        del record[draw_(st.sampled_from(["input", "output"]))]
        return json.dumps(record)
    if breakage == "not an object":
        return json.dumps(draw_(NOT_AN_OBJECT))
    raise ValueError(breakage)


LINE_BREAKAGES = ("truncated", "wrong type", "missing field", "not an object")


def jsonl_with(line: str | bytes, at: int, n: int = PADDING) -> bytes:
    """`n` valid lines with `line` put in as line `at` (1-based)."""
    lines = [json.dumps(r).encode() for r in valid_records(n)]
    lines.insert(at - 1, line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass"))
    return b"\n".join(lines) + b"\n"


TASK_TOML = b'name = "drill"\ninstruction = "Answer briefly."\ntrain = "train.jsonl"\neval = "eval.jsonl"\n'


def jsonl_cases(rng: random.Random) -> list[BadCase]:
    """Each breakage in a task's eval file, a training file and a file for `lab task new`."""
    eval_cmd = ["eval", "{dir}/task.toml", "--limit", "1", "--arms", "zero-shot"]
    train_cmd = ["train", "--data", "{dir}/train.jsonl", "--name", "drill-bad", "--max-steps", "1"]
    new_cmd = ["task", "new", "drill-new", "--from", "{dir}/data.jsonl"]
    good = jsonl_with(b"", 1)
    cases = []
    for breakage in LINE_BREAKAGES:
        at = rng.randint(2, PADDING)
        line = lambda strict, breakage=breakage: draw(broken_line(breakage, strict), rng)  # noqa: E731
        where = (f":{at}:", f"line {at}")
        cases += [
            BadCase(
                f"eval.jsonl: {breakage} at line {at}",
                {"task.toml": TASK_TOML, "train.jsonl": good, "eval.jsonl": jsonl_with(line(True), at)},
                eval_cmd,
                [("eval.jsonl",), where],
            ),
            BadCase(
                f"training data: {breakage} at line {at}",
                {"train.jsonl": jsonl_with(line(False), at)},
                train_cmd,
                [("train.jsonl",), where],
            ),
        ]
        if breakage != "wrong type":  # the importer takes any JSON value as a cell
            cases.append(
                BadCase(
                    f"task new JSONL: {breakage} at line {at}",
                    {"data.jsonl": jsonl_with(line(True), at)},
                    new_cmd,
                    [("data.jsonl",), where],
                )
            )
    bad_utf8 = jsonl_with(b'{"input": "caf\xe9", "output": "x"}', 5)
    huge = b'{"input": "' + b"x" * 20_000_000  # 20 MB and never closed
    empty = b"\n\n   \n\t\n"
    for what, data, where in (
        ("invalid UTF-8", bad_utf8, ("5", "UTF-8")),
        ("a 20 MB truncated line", jsonl_with(huge, 3), (":3:", "line 3")),
        ("only empty lines", empty, ("empty", "no examples", "no rows")),
    ):
        cases += [
            BadCase(
                f"eval.jsonl: {what}",
                {"task.toml": TASK_TOML, "train.jsonl": good, "eval.jsonl": data},
                eval_cmd,
                [("eval.jsonl",), where],
            ),
            BadCase(f"training data: {what}", {"train.jsonl": data}, train_cmd, [("train.jsonl",), where]),
            BadCase(f"task new JSONL: {what}", {"data.jsonl": data}, new_cmd, [("data.jsonl",), where]),
        ]
    bom = b"\xef\xbb\xbf" + jsonl_with(b"", 1).lstrip(b"\n")
    cases += [
        BadCase(
            "eval.jsonl: a UTF-8 BOM (taken: `lab tasks` reads it)",
            {"task.toml": TASK_TOML, "train.jsonl": good, "eval.jsonl": bom},
            ["tasks", "{dir}/task.toml"],
            [],
            codes=(0,),
        ),
        BadCase(
            "training data: a UTF-8 BOM plus a truncated line 7",
            {"train.jsonl": b"\xef\xbb\xbf" + jsonl_with(b'{"inp', 7)},
            train_cmd,
            [("train.jsonl",), (":7:", "line 7")],
        ),
        BadCase(
            "eval.jsonl: a duplicate id",
            {"task.toml": TASK_TOML, "train.jsonl": good, "eval.jsonl": jsonl_with(json.dumps(valid_records(1)[0]), 9)},
            eval_cmd,
            [("eval.jsonl",), (":9:", "line 9")],
        ),
    ]
    return cases


# ---- task files ----------------------------------------------------------------------------------

# Values each Task field cannot take (sure to be refused, not coerced).
WRONG = {
    "name": st.one_of(st.just(""), st.integers(), st.lists(st.text(max_size=3), max_size=2)),
    "instruction": st.one_of(st.integers(), st.booleans()),
    "output_format": st.text(min_size=1, max_size=8).filter(lambda s: s not in ("text", "label", "json")),
    "labels": st.one_of(st.integers(), st.just("yes,no")),
    "scorers": st.one_of(st.integers(), st.just([])),
    "target": st.one_of(st.floats(1.01, 1e6), st.floats(-1e6, -0.01), st.just("high")),
    "few_shot_k": st.one_of(st.integers(max_value=-1), st.just("many"), st.just(1.5)),
    "max_tokens": st.one_of(st.integers(max_value=0), st.just("lots")),
    "eval": st.one_of(st.integers(), st.just("no-such-file.jsonl")),
    "train": st.one_of(st.booleans(), st.just("missing/train.jsonl")),
    "cost": st.one_of(st.just("cheap"), st.just({"requests_per_day": -5}), st.just({"gpu_hour_price": "1 dollar"})),
}
IDENT = st.from_regex(r"\A[a-z][a-z_]{2,12}\Z")


def toml_value(v) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)  # TOML's strings, ints and floats read like JSON's


@st.composite
def broken_task(draw_) -> tuple[str, str, str]:
    """(breakage, task.toml text, the field its message must name)."""
    base = {"name": "drill", "instruction": "Answer briefly.", "train": "train.jsonl", "eval": "eval.jsonl"}
    breakage = draw_(st.sampled_from(["wrong type", "unknown key", "unknown [cost] key", "missing field"]))
    if breakage == "wrong type":
        key = draw_(st.sampled_from(sorted(WRONG)))
        base[key], named = draw_(WRONG[key]), key
    elif breakage == "unknown key":
        named = draw_(IDENT.filter(lambda s: s not in TASK_FIELDS))
        base[named] = draw_(st.one_of(st.integers(), st.text(max_size=5)))
    elif breakage == "unknown [cost] key":
        key = draw_(IDENT.filter(lambda s: s not in COST_FIELDS))
        base["cost"], named = {key: 1}, f"cost.{key}"
    else:
        named = draw_(st.sampled_from(["name", "eval"]))
        del base[named]
    return breakage, "".join(f"{k} = {toml_value(v)}\n" for k, v in base.items()), named


def _fields():
    from lab.tasks import Cost, Task

    return set(Task.model_fields), set(Cost.model_fields)


TASK_FIELDS, COST_FIELDS = _fields()


def task_cases(rng: random.Random, n: int = 10) -> list[BadCase]:
    files = {"train.jsonl": jsonl_with(b"", 1), "eval.jsonl": jsonl_with(b"", 1)}
    cmd = ["eval", "{dir}/task.toml", "--limit", "1", "--arms", "zero-shot"]
    cases = []
    for _ in range(n):
        breakage, text, named = draw(broken_task(), rng)
        cases.append(
            BadCase(
                f"task.toml: {breakage} '{named}'",
                {**files, "task.toml": text.encode()},
                cmd,
                [("task.toml",), (named,)],
            )
        )
    full = TASK_TOML.decode()
    cut = rng.randint(5, len(full) - 2)
    cases += [
        BadCase(
            "task.toml: invalid TOML (cut short)",
            {**files, "task.toml": (full[:cut] + "\n[[[\n").encode()},
            cmd,
            [("task.toml",), ("line",)],
        ),
        BadCase(
            "task.json: a JSON task file",
            {**files, "task.json": json.dumps({"name": "drill", "eval": "eval.jsonl"}).encode()},
            ["eval", "{dir}/task.json", "--limit", "1"],
            [("task.json",)],
        ),
        BadCase(
            "task.toml: not UTF-8",
            {**files, "task.toml": b'name = "caf\xe9"\neval = "eval.jsonl"\n'},
            cmd,
            [("task.toml",)],
        ),
        BadCase(
            "task.toml: a label task without labels",
            {**files, "task.toml": TASK_TOML + b'output_format = "label"\n'},
            cmd,
            [("task.toml",), ("labels",)],
        ),
    ]
    return cases


# ---- GGUF, corpora, CSV/TSV ------------------------------------------------------------------------


def gguf_cases(gguf: Path, rng: random.Random) -> list[BadCase]:
    head = gguf.open("rb").read(2_000_000)
    size = gguf.stat().st_size
    cmd = lambda f: ["ask", "-m", "{dir}/" + f, "--max-tokens", "4", "hello"]  # noqa: E731

    def patched(offset: int, data: bytes) -> bytes:
        return head[:offset] + data + head[offset + len(data) :]

    variants = {
        "empty.gguf": b"",
        "magic.gguf": patched(0, b"GGUX"),
        "version.gguf": patched(4, (99).to_bytes(4, "little")),
        "tensors.gguf": patched(8, (2**62).to_bytes(8, "little")),
        "kvcount.gguf": patched(16, (2**40).to_bytes(8, "little")),
        "keylen.gguf": patched(24, (2**50).to_bytes(8, "little")),
        "cut-64.gguf": head[:64],
        f"cut-{len(head) // 2}.gguf": head[: len(head) // 2],
        "cut-2mb.gguf": head,  # the header whole, the tensor data missing
        "random.gguf": rng.randbytes(4096),
        "text.gguf": b"this is not a model\n" * 10,
    }
    cases = [
        BadCase(f"GGUF: {name} ({len(data)} of {size} bytes)", {name: data}, cmd(name), [(name,)])
        for name, data in variants.items()
    ]
    cases.append(
        BadCase("GGUF: a folder named like a model", {"dir.gguf/x.txt": b"x"}, cmd("dir.gguf"), [("dir.gguf",)])
    )
    return cases


def corpus_cases(rng: random.Random) -> list[BadCase]:
    binary = bytes(rng.randrange(256) for _ in range(3000)) + b"\0\0\0"
    latin1 = "Garantie: deux ans, réparée à Besançon.\n".encode("latin-1")
    good = b"# FL-200\n\nThe FL-200 comes with a two-year warranty.\n"
    broken_jsonl = b'{"text": "ok line"}\n{"text": "cut\n[1, 2]\n'
    return [
        BadCase("corpus: only a binary file", {"c1/data.md": binary}, ["index", "{dir}/c1"], [("data.md",)], (0, 2)),
        BadCase(
            "corpus: only non-UTF-8 text", {"c2/notes.txt": latin1}, ["index", "{dir}/c2"], [("notes.txt",)], (0, 2)
        ),
        BadCase(
            "corpus: good, binary and latin-1 files (good one indexed)",
            {"c3/good.md": good, "c3/bin.md": binary, "c3/latin.txt": latin1},
            ["index", "{dir}/c3"],
            [("bin.md",), ("latin.txt",)],
            (0,),
        ),
        BadCase(
            "corpus: a JSONL file with broken lines",
            {"c4/good.md": good, "c4/docs.jsonl": broken_jsonl},
            ["index", "{dir}/c4"],
            [("docs.jsonl",)],
            (0,),
        ),
        BadCase(
            "corpus: a 60 KB single line",
            {"c5/long.md": b"# Long\n\n" + b"orbit tracker " * 4300 + b"\n"},
            ["index", "{dir}/c5"],
            [],
            (0,),
        ),
        BadCase("corpus: an empty folder", {"c6/.keep": b""}, ["index", "{dir}/c6"], [("c6",)], (0, 2)),
        BadCase("corpus: a file, not a folder", {"c7.md": good}, ["index", "{dir}/c7.md"], [("c7.md",)]),
    ]


@st.composite
def ragged_rows(draw_, sep: str = ",") -> tuple[str, int]:
    """A header of 2 columns and rows, one of which (returned: its line) has another count."""
    n = draw_(st.integers(3, 12))
    bad = draw_(st.integers(2, n + 1))  # 1-based line, after the header
    cell = st.from_regex(r"\A[a-z]{1,8}\Z")
    lines = ["text" + sep + "label"]
    for line in range(2, n + 2):
        width = draw_(st.sampled_from([1, 3, 4])) if line == bad else 2
        lines.append(sep.join(draw_(cell) for _ in range(width)))
    return "\n".join(lines) + "\n", bad


def table_cases(rng: random.Random) -> list[BadCase]:
    new = lambda f: ["task", "new", "drill-csv", "--from", "{dir}/" + f]  # noqa: E731
    cases = []
    for sep, ext in ((",", "csv"), ("\t", "tsv")):
        for _ in range(2):
            text, line = draw(ragged_rows(sep), rng)
            cases.append(
                BadCase(
                    f"{ext.upper()}: ragged row at line {line}",
                    {f"data.{ext}": text.encode()},
                    new(f"data.{ext}"),
                    [(f"data.{ext}",), (f"line {line}",)],
                )
            )
    rows = "".join(f"question {i},answer {i % 3}\n" for i in range(30))
    cases += [
        BadCase(
            "CSV: an unterminated quote",
            {"q.csv": ("text,label\n" + rows + '"never closed,x\n').encode()},
            new("q.csv"),
            [("q.csv",)],
        ),
        BadCase("CSV: only a header", {"h.csv": b"text,label\n"}, new("h.csv"), [("h.csv",)]),
        BadCase("CSV: empty", {"e.csv": b""}, new("e.csv"), [("e.csv",)]),
        BadCase(
            "CSV: a header naming a column twice",
            {"d.csv": ("text,text\n" + rows).encode()},
            new("d.csv"),
            [("d.csv",), ("line 1",)],
        ),
        BadCase(
            "CSV: non-UTF-8",
            {"l.csv": ("text,label\n" + rows).encode() + "café,x\n".encode("latin-1")},
            new("l.csv"),
            [("l.csv",), ("line 32",)],
        ),
        BadCase("CSV: UTF-16", {"u.csv": ("text,label\n" + rows).encode("utf-16")}, new("u.csv"), [("u.csv",)]),
        BadCase(
            "CSV: a 300 KB cell",
            {"big.csv": ("text,label\n" + rows + "x" * 300_000 + ",y\n").encode()},
            new("big.csv"),
            [("big.csv",), ("line 32",)],
        ),
        BadCase(
            "CSV: a row without its output",
            {"o.csv": ("text,label\n" + rows + "lonely question,\n").encode()},
            new("o.csv"),
            [("o.csv",), ("32",)],
        ),
        BadCase(
            "JSON: a truncated array",
            {"t.json": json.dumps(valid_records(30))[:-40].encode()},
            new("t.json"),
            [("t.json",), ("line",)],
        ),
        BadCase("Parquet: not Parquet", {"p.parquet": b"PAR1 but not really"}, new("p.parquet"), [("p.parquet",)]),
    ]
    return cases


def bad_cases(gguf: Path, seed: int = 0) -> list[BadCase]:
    rng = random.Random(seed)
    return jsonl_cases(rng) + task_cases(rng) + gguf_cases(gguf, rng) + corpus_cases(rng) + table_cases(rng)
