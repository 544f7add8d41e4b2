"""The shape of `lab/` (ARCHITECTURE.md): layers, each importing only from layers below it (lazy
imports inside functions count too), no import loops, and the faces on top."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

LAB = Path(__file__).resolve().parents[1] / "lab"

# The layers, bottom first; a unit is lab.<first name> (a module or a package).
LAYERS = [
    {"lab", "home", "config", "gguf_meta", "migrations", "prompts", "threads", "units"},  # foundations
    {"store", "model_pairs"},  # the run log; HF folder + GGUF pair checks
    {"models"},  # which models there are (no generation)
    {"backends"},  # one interface per engine: llama.cpp, transformers, OpenAI-compatible
    {"tasks", "retrieval", "tuning"},  # the rungs' own machinery, handed a Lab
    {"task_import"},  # a file you have -> a task in the lab home (reads task files through tasks)
    {"ladder"},  # one question through one arm
    {"engine"},  # Lab: home, log, loaded models, `answer`
    {"evaluation"},  # runs, scores, statistics, the probe
    {"recommendation"},  # the flowchart's questions and what every advice is
    {"diagnosis"},  # why the answers were wrong, which rung or lever next
    {"advice_evidence"},  # what a curve, side effects and blind preference add to the advice
    {"advisor", "demo"},  # the cheapest rung; the offline demo prepared in one go
    {"climb", "distill"},  # `lab climb`: the ladder climbed step by step; `lab distill`: teacher -> student
    {"export"},  # `lab export`: the advised (or a climbed, or a distilled) rung as a folder to ship, verified
    {"report"},
    {"cli", "app", "__main__", "tuning.__main__"},  # the faces (entry points)
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
# Faces never import each other, except the two entry points: `python -m lab` is the CLI, and
# `lab serve` launches the app.
FACE_TO_FACE = {("__main__", "cli"), ("cli", "app")}


def _module(path: Path) -> str:
    parts = list(path.relative_to(LAB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> list[tuple[str, bool]]:
    """(imported lab module, at module level?) for every import in the file; `from pkg import
    sub` counts as importing the submodule, not the package."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names]
            names = [n for n in subs if n in modules] or [target]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [(n, id(node) in top) for n in names if n == "lab" or n.startswith("lab.")]
    return found


def _unit(module: str) -> str:
    if module.startswith("lab.tuning.__main__"):
        return "tuning.__main__"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lab"


def _graph():
    modules = {_module(p): p for p in LAB.rglob("*.py")}
    edges = defaultdict(set)
    for name, path in modules.items():
        for target, at_top in _imports(path, set(modules)):
            if target in modules and target != name:
                edges[name].add((target, at_top))
    return modules, edges


def test_every_unit_has_a_layer():
    modules, _ = _graph()
    assert {_unit(m) for m in modules} <= set(LEVEL), {_unit(m) for m in modules} - set(LEVEL)


def test_each_unit_imports_only_from_layers_below_it():
    _, edges = _graph()
    wrong = sorted(
        f"{a} imports {b}"
        for a, targets in edges.items()
        for b, _ in targets
        if _unit(a) != _unit(b) and LEVEL[_unit(b)] >= LEVEL[_unit(a)] and (_unit(a), _unit(b)) not in FACE_TO_FACE
    )
    assert wrong == []


def test_no_module_but_the_entry_point_imports_the_cli():
    _, edges = _graph()
    assert sorted(
        a
        for a, targets in edges.items()
        for b, _ in targets
        if (b == "lab.cli" or b.startswith("lab.cli.")) and not a.startswith("lab.cli")
    ) == ["lab.__main__"]


def _import_loop(edges) -> list[str] | None:
    """One import loop (a -> b -> ... -> a), or None. Every import counts, the lazy ones inside
    functions too: a lazy import only hides a loop until the function runs."""
    graph = {a: {b for b, _ in targets} for a, targets in edges.items()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                loop = visit(nxt, path + [nxt])
                if loop:
                    return loop
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            loop = visit(module, [module])
            if loop:
                return loop
    return None


def test_no_import_loops_between_modules():
    _, edges = _graph()
    loop = _import_loop(edges)
    assert loop is None, "import loop (lazy imports count): " + " -> ".join(loop or [])


def test_the_loop_check_sees_a_loop_closed_by_a_lazy_import(tmp_path, monkeypatch):
    """As lab.tuning.loading and lab.tuning.qlora once were: one imports the other at the top, the
    other imports it back inside a function."""
    tuning = tmp_path / "lab" / "tuning"
    tuning.mkdir(parents=True)
    for init in (tmp_path / "lab" / "__init__.py", tuning / "__init__.py"):
        init.write_text("")
    (tuning / "loading.py").write_text("from .qlora import load_qlora\n")
    (tuning / "qlora.py").write_text("def load_qlora():\n    from .loading import lora_config\n")
    monkeypatch.setitem(globals(), "LAB", tmp_path / "lab")
    _, edges = _graph()
    assert _import_loop(edges) == ["lab.tuning.loading", "lab.tuning.qlora", "lab.tuning.loading"]


def test_the_faces_hold_no_sql():
    app = [p for p in (LAB / "app").rglob("*.py")]
    hits = [
        f"{p.name}: {line.strip()}"
        for p in app
        for line in p.read_text().splitlines()
        if any(k in line.lower() for k in ("select ", "insert into", ".execute(", "store.query("))
    ]
    assert hits == []


# ---- SQL lives in the store ----------------------------------------------------------------------
# Only lab/store.py (the `Store` methods) and lab/migrations.py hold SQL or touch tables; everyone
# else calls a Store method whose name says what it reads or writes.
SQL_HOMES = {"lab.store", "lab.migrations"}
SQL_TEXT = re.compile(
    r"\bselect\s+(?:\*|distinct\b|count\s*\(|[\w.]+\s*\(|[\w.*]+\s*(?:,|\bas\b|\bfrom\b))"
    r"|\binsert\s+(?:or\s+\w+\s+)?into\b|\bupdate\s+\w+\s+set\b|\bdelete\s+from\b"
    r"|\b(?:create|alter|drop)\s+(?:table|index|view)\b|\bjson_extract\s*\(|\bpragma\s+\w+",
    re.I,
)
STORE_INSIDES = {"db", "conn", "lock"}  # the Store's connection and lock: only its methods use them
STORE_BY_TABLE = {"query", "insert", "upsert", "update"}  # its generic methods: SQL or a table by name
RAW_CALLS = {"execute", "executemany", "executescript", "rows_where", "insert_all", "table_names"}
# Functions another change was rewriting when their SQL moved to the Store (issue 22). Their Store
# methods exist (`answer_seconds`, `answer_speeds`, `eval_result_count`): call them, drop the entry.
NOT_YET_MOVED: set[tuple[str, str]] = set()


def sql_outside_the_store(source: str) -> list[tuple[str, int, str]]:
    """(top-level function or class, line, what) for every piece of SQL or direct table access in
    `source`: SQL in a string, `.execute(`, `db[...]`, sqlite3/sqlite_utils, a store's `.db`,
    `.conn` or `.lock`, or its generic `query`/`insert`/`upsert`/`update`."""
    tree = ast.parse(source)
    owner_of = {}
    for top in tree.body:
        for node in ast.walk(top):
            owner_of[id(node)] = getattr(top, "name", "")

    def is_store(node) -> bool:
        return ast.unparse(node).split(".")[-1] == "store"

    hits = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.search(node.value):
            what = f"SQL in a string: {node.value.strip()[:70]!r}"
        elif isinstance(node, ast.Attribute) and node.attr in STORE_INSIDES and is_store(node.value):
            what = f"the store's .{node.attr}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and (node.func.attr in RAW_CALLS or node.func.attr in STORE_BY_TABLE and is_store(node.func.value))
        ):
            what = f"{ast.unparse(node.func)}(...)"
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).split(".")[-1] == "db":
            what = f"{ast.unparse(node)}"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            what = next((f"import {n}" for n in names if n.split(".")[0] in ("sqlite3", "sqlite_utils")), None)
        if what:
            hits.append((owner_of.get(id(node), ""), getattr(node, "lineno", 0), what))
    return hits


def test_the_sql_detector_sees_each_kind():
    found = sql_outside_the_store(
        "import sqlite3\n"
        'def a(lab):\n    return lab.store.query("select id from curves where task = ?", ["x"])\n'
        'def b(store):\n    store.db.execute("delete from training_steps where step > 1")\n'
        'def c(self):\n    self.store.db["embeddings"].insert_all([])\n'
        'def d(run):\n    run.lab.store.update("training_runs", 1, {"status": "done"})\n'
        "def e(lab):\n    return lab.store.db.table_names()\n"
        'def f(sql):\n    return f"select avg(total_s) as s from generations where {sql}"\n'
    )
    assert {owner for owner, _, _ in found} == {"", "a", "b", "c", "d", "e", "f"}
    # what is not SQL: prose, a vector index's query, a dict's update, a Store method by its name
    assert (
        sql_outside_the_store(
            '"""Select a model from the list; logged to lab.db. Update the table, then delete it."""\n'
            "def g(lab, idx, d):\n    idx.query([0.1], 4)\n    d.update(a=1)\n    lab.store.update_curve(1, {})\n"
            '    return lab.home.db_path, lab.store.latest_climb("t")\n'
        )
        == []
    )


def test_sql_lives_in_the_store():
    hits = []
    for path in sorted(LAB.rglob("*.py")):
        module = _module(path)
        if module in SQL_HOMES:
            continue
        hits += [
            f"{path.relative_to(ROOT)}:{line} ({owner}): {what}"
            for owner, line, what in sql_outside_the_store(path.read_text(encoding="utf-8"))
            if (module, owner) not in NOT_YET_MOVED
        ]
    assert hits == [], "move these into Store methods (lab/store.py):\n" + "\n".join(hits)


def test_the_faces_do_not_import_torch():
    """A face asks the layer that trains (e.g. `tuning.config.training_device`), never torch."""
    heavy = ("torch", "transformers", "peft")
    faces = [p for p in LAB.rglob("*.py") if _unit(_module(p)) in LAYERS[-1]]
    hits = [
        f"{p.relative_to(ROOT)}:{node.lineno}"
        for p in faces
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any(
            n.split(".")[0] in heavy
            for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
        )
    ]
    assert faces and hits == []


# The lab's rules come from internal notes ("the seeds") that no user has seen: what a user reads
# cites the lab's own guide (docs/guide.md) or states the rule. Random seeds (`--seeds N`, "spread
# across seeds") are another word and stay.
INTERNAL_SOURCE = re.compile(r"\bseeds'|\bthe seeds\b|\(seeds\)|\bseeds:", re.I)
ROOT = LAB.parent


def _string_constants(path: Path):
    """(line, text) of every string literal in the file: docstrings, help texts, the literal
    parts of f-strings. Comments are not strings and may cite the notes."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_user_facing_text_cites_the_internal_notes():
    hits = [
        f"{p.relative_to(ROOT)}:{line}: {m.group(0)!r} in {text.strip()[:80]!r}"
        for p in sorted(LAB.rglob("*.py"))
        for line, text in _string_constants(p)
        for m in [INTERNAL_SOURCE.search(text)]
        if m
    ]
    docs = [*LAB.rglob("*.md"), ROOT / "README.md", ROOT / "Makefile", ROOT / "docs" / "guide.md"]
    hits += [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()[:80]!r}"
        for p in sorted(docs)
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL_SOURCE.search(line)
    ]
    assert hits == [], "cite docs/guide.md or state the rule:\n" + "\n".join(hits)


def test_the_guide_is_there_and_linked():
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    for topic in ("prompt", "RAG", "fine-tune", "200+", "break-even", "meets", "helped", "as good as"):
        assert topic in guide, topic
    assert "README.md#how-the-lab-judges-one-verdict-honest-at-small-n" in guide
    assert "### How the lab judges: one verdict, honest at small n" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/guide.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/guide.md" in (LAB / "app" / "tab_advisor.py").read_text(encoding="utf-8")
