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
    {"lab", "home", "config", "gguf_meta", "migrations", "prompts"},  # foundations
    {"store", "model_pairs"},  # the run log; HF folder + GGUF pair checks
    {"models"},  # which models there are (no generation)
    {"backends"},  # one interface per engine: llama.cpp, transformers, OpenAI-compatible
    {"tasks", "retrieval", "tuning"},  # the rungs' own machinery, handed a Lab
    {"task_import"},  # a file you have -> a task in the lab home (reads task files through tasks)
    {"ladder"},  # one question through one arm
    {"engine"},  # Lab: home, log, loaded models, `answer`
    {"evaluation"},  # runs, scores, statistics, the probe
    {"advisor", "demo"},  # the cheapest rung; the offline demo prepared in one go
    {"climb"},  # `lab climb`: the ladder climbed step by step (runner + trainer + advisor)
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
    wrong = sorted(f"{a} imports {b}" for a, targets in edges.items() for b, _ in targets
                   if _unit(a) != _unit(b) and LEVEL[_unit(b)] >= LEVEL[_unit(a)]
                   and (_unit(a), _unit(b)) not in FACE_TO_FACE)
    assert wrong == []


def test_no_module_but_the_entry_point_imports_the_cli():
    _, edges = _graph()
    assert sorted(a for a, targets in edges.items() for b, _ in targets
                  if (b == "lab.cli" or b.startswith("lab.cli.")) and not a.startswith("lab.cli")) == ["lab.__main__"]


def test_no_import_loops_between_modules():
    _, edges = _graph()
    top_level = {a: {b for b, at_top in targets if at_top} for a, targets in edges.items()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in top_level.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import loop: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in list(top_level):
        if module not in state:
            visit(module, [module])


def test_the_faces_hold_no_sql():
    app = [p for p in (LAB / "app").rglob("*.py")]
    hits = [f"{p.name}: {line.strip()}" for p in app for line in p.read_text().splitlines()
            if any(k in line.lower() for k in ("select ", "insert into", ".execute(", "store.query("))]
    assert hits == []


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
    hits = [f"{p.relative_to(ROOT)}:{line}: {m.group(0)!r} in {text.strip()[:80]!r}"
            for p in sorted(LAB.rglob("*.py")) for line, text in _string_constants(p)
            for m in [INTERNAL_SOURCE.search(text)] if m]
    docs = [*LAB.rglob("*.md"), ROOT / "README.md", ROOT / "Makefile", ROOT / "docs" / "guide.md"]
    hits += [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:80]!r}" for p in sorted(docs)
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if INTERNAL_SOURCE.search(line)]
    assert hits == [], "cite docs/guide.md or state the rule:\n" + "\n".join(hits)


def test_the_guide_is_there_and_linked():
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    for topic in ("prompt", "RAG", "fine-tune", "200+", "break-even", "meets", "helped", "as good as"):
        assert topic in guide, topic
    assert "README.md#how-the-lab-judges-one-verdict-honest-at-small-n" in guide
    assert "### How the lab judges: one verdict, honest at small n" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/guide.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/guide.md" in (LAB / "app" / "tab_advisor.py").read_text(encoding="utf-8")
