"""What an adapter costs elsewhere: tuning on a narrow task may cost general ability, and the lab
says how much, with its interval. Each figure is a paired change from the adapter's own base model,
on the same loaded backend, the same passages and the same held-out examples:

- perplexity on general text that every machine has offline: the docstrings of Python's standard
  library (`stdlib_passages`: a fixed list of modules, their own and their public members'
  docstrings, cut into ~128-token passages, the same on every rerun of the same Python). Each
  passage's mean token negative log-likelihood with and without the adapter
  (`backends.base.text_nll`); the ratio tuned/base is exp of their mean paired difference
  (`stats.ratio_of`), its interval the BCa bootstrap's, its test the sign-flip permutation test
  (`stats.compare` on graded values);
- every other task of the lab home: the held-out score of the zero-shot arm and of the tune arm
  with the adapter, both asked with the task's own instruction, on the same examples
  (`runner.run_eval`, tagged `side-effects:NAME`, so the runs are kept apart and resume), compared
  by the lab's paired tests (`stats.compare`).

"Significant" is Holm-corrected across every test of one measurement (it is one question: does the
adapter cost anything anywhere), and every sentence is worded by `verdict`. The result is stored
(`Store.new_side_effects`) and read back by the scoreboard, the advisor, the report and the app.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import platform
import sys
import threading
import time
from collections.abc import Callable

from ..ladder import ArmError
from ..store import now
from ..tasks import TaskError, load_task, task_names
from . import stats, verdict
from .runner import EvalError, run_eval
from .sample import held_out
from .scorers import CONTINUOUS, ScorerError, primary_name

SOURCE = "Python standard-library docstrings"
# Fixed and sorted: the passages are these modules' docstrings, so a rerun reads the same text.
MODULES = (
    "argparse", "base64", "calendar", "collections", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "difflib", "enum", "fractions", "functools", "heapq", "itertools", "json",
    "pathlib", "pprint", "random", "shutil", "statistics", "string", "textwrap", "uuid",
)  # fmt: skip
PASSAGE_CHARS = 560  # ~128 tokens of SmolLM2's tokenizer on this prose
DEFAULT_PASSAGES = 24
DEFAULT_LIMIT = 20  # held-out examples per other task
# `lab train` measures the adapter it trained on these smaller sizes: the defaults took 100-230 s here
# (2 CPU cores, SmolLM2-135M: ~0.8 s a passage per model, 0.6-3 s an answer), these about a minute.
AFTER_TRAINING = {"passages": 12, "limit": 8}
RETRIEVAL_METRICS = {"recall_at_k", "citation", "context_hit"}  # scored on passages: no arm here retrieves
ARMS = ["zero-shot", "tune"]


class SideEffectsError(EvalError):
    """The side effects cannot be measured as asked (too many passages, no backend that scores text)."""


def tag_of(adapter_name: str) -> str:
    """The tag of the eval runs a measurement makes: only another measurement resumes them."""
    return f"side-effects:{adapter_name}"


# ---- the general text ---------------------------------------------------------------------------


def _module_text(name: str) -> str:
    """A module's docstring, then its public classes' and functions' (defined there or in its C
    accelerator, `_name`), by name."""
    module = importlib.import_module(name)
    docs = [inspect.getdoc(module) or ""]
    for attr in sorted(a for a in dir(module) if not a.startswith("_")):
        obj = getattr(module, attr)
        if (inspect.isclass(obj) or inspect.isroutine(obj)) and getattr(obj, "__module__", None) in (name, f"_{name}"):
            docs.append(inspect.getdoc(obj) or "")
    return " ".join(" ".join(dict.fromkeys(d for d in docs if d)).split())  # one space between words


def _pieces(text: str, size: int) -> list[str]:
    """Consecutive pieces of at most `size` characters, cut between words; a short tail is dropped."""
    out = []
    while len(text) >= size // 2:
        cut = text.rfind(" ", 0, size + 1) if len(text) > size else len(text)
        cut = cut if cut > 0 else size
        out.append(text[:cut].strip())
        text = text[cut:].strip()
    return out


def stdlib_passages(n: int = DEFAULT_PASSAGES) -> list[str]:
    """`n` passages of Python's own docstrings: each module's first passage, then each one's second,
    and so on (so a few passages still span many modules)."""
    pieces = [_pieces(_module_text(m), PASSAGE_CHARS) for m in MODULES]
    ordered = [p[i] for i in range(max(map(len, pieces))) for p in pieces if i < len(p)]
    if not 1 <= n <= len(ordered):
        raise SideEffectsError(
            f"passages must be between 1 and {len(ordered)}, the passages of {SOURCE} here (got {n})"
        )
    return ordered[:n]


def _source_words() -> str:
    return f"{SOURCE} (Python {platform.python_version()})"


# ---- measuring -----------------------------------------------------------------------------------


def _say(progress) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


def measure_side_effects(
    lab,
    adapter_name: str,
    passages: int = DEFAULT_PASSAGES,
    limit: int | None = DEFAULT_LIMIT,
    tasks: list[str] | None = None,
    progress: Callable[[str], None] | bool | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """Measure adapter `adapter_name`'s side effects (module doc), store them and return the result.
    `tasks`: the tasks to score (default: every task of the lab home but the adapter's own; [] none);
    `progress`: a callable given one line per step (True: print them to stderr). Once `cancel` is set
    it stops after the passage or answer in flight: the result says status "cancelled" and is not
    the adapter's stored measurement (the answers given are kept, a rerun resumes them)."""
    from ..tuning.adapters import resolve_adapter

    stdlib_passages(passages)  # a wrong count fails before anything loads
    adapter = resolve_adapter(lab, adapter_name)
    say = _say(progress)
    settings = {"passages": passages, "limit": limit, "tasks": sorted(tasks) if tasks is not None else None}
    row = lab.store.new_side_effects(
        adapter.name, adapter.sha, adapter.base_model, adapter.base_sha, json.dumps(settings, sort_keys=True)
    )
    t0 = time.perf_counter()
    try:
        perplexity = perplexity_change(lab, adapter, passages, say, cancel)
        changes, skipped, own = task_changes(lab, adapter, limit, tasks, say, cancel)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        lab.store.update_side_effects(row, {"status": status, "error": f"{type(e).__name__}: {e}"})
        raise
    result = {
        "adapter": adapter.name,
        "adapter_sha": adapter.sha,
        "base_model": adapter.base_model,
        "base_sha": adapter.base_sha,
        "settings": settings,
        "perplexity": perplexity,
        "tasks": changes,
        "skipped": skipped,
        "own_task": own,
        "status": "cancelled" if cancel is not None and cancel.is_set() else "finished",
        "wall_s": round(time.perf_counter() - t0, 1),
        "ts": now(),
    }
    _holm(result)
    lab.store.update_side_effects(
        row, {"result_json": json.dumps(result), "status": result["status"], "wall_s": result["wall_s"]}
    )
    return result


def _base_spec(lab, adapter) -> str:
    """The model the adapter was trained on, as this lab names it (by path when it was given so)."""
    from ..models import ModelNotFound

    try:
        lab.model_info(adapter.base_model)
        return adapter.base_model
    except ModelNotFound:
        return adapter.manifest.get("base_model", {}).get("path") or adapter.base_model


def perplexity_change(lab, adapter, n: int, say, cancel=None) -> dict:
    """Each passage's mean token NLL on the base model and with the adapter, on the one backend the
    arms share, and their paired comparison (a: base, b: tuned; not yet Holm-corrected)."""
    from ..backends import default_backend_for
    from ..backends.base import text_nll

    texts = stdlib_passages(n)
    backend = lab.backend(_base_spec(lab, adapter))
    path = adapter.serve_path(default_backend_for(backend.info))
    base, tuned, tokens = [], [], 0
    for i, text in enumerate(texts, 1):
        if cancel is not None and cancel.is_set():
            break
        b = text_nll(backend, text)
        t = text_nll(backend, text, adapter=path, adapter_sha=adapter.sha)
        base.append(sum(b) / max(1, len(b)))
        tuned.append(sum(t) / max(1, len(t)))
        tokens += len(b)
        say(f"perplexity: passage {i} of {n} ({base[-1]:.3f} -> {tuned[-1]:.3f} nats a token)")
    c = stats.compare(base, tuned, "graded", name_a="base", name_b="tuned")
    return {
        "source": _source_words(),
        "passages": len(base),
        "passages_sha": hashlib.sha256("\0".join(texts[: len(base)]).encode()).hexdigest(),
        "tokens": tokens,
        "base_nll": base,
        "tuned_nll": tuned,
        "comparison": c.as_dict(),
    }


def own_task(lab, adapter, names: list[str]) -> str | None:
    """The task the adapter was trained for: named after it, trained on its training file, or
    served with its instruction."""
    from ..models import sha256_of

    data_sha = (adapter.manifest.get("dataset") or {}).get("sha256")
    for name in names:
        try:
            task = load_task(name, home=lab.home)
        except TaskError:
            continue
        same_data = bool(data_sha and task.train and sha256_of(task.train) == data_sha)
        same_instruction = bool(adapter.instruction and adapter.instruction.strip() == task.instruction.strip())
        if name == adapter.name or same_data or same_instruction:
            return name
    return None


def task_changes(lab, adapter, limit, tasks, say, cancel=None) -> tuple[list[dict], list[dict], str | None]:
    """(each other task's paired change, the tasks skipped and why, the adapter's own task)."""
    names = task_names(lab.home) if tasks is None else list(tasks)
    own = own_task(lab, adapter, task_names(lab.home))
    changes, skipped = [], []
    for name in names:
        if cancel is not None and cancel.is_set():
            break
        if name == own:
            skipped.append({"task": name, "why": "the adapter's own task: its tune arm on the scoreboard"})
            continue
        try:
            changes.append(_task_change(lab, adapter, name, limit, say, cancel))
        except (TaskError, ScorerError, ArmError) as e:  # a task this base cannot run as asked: why
            skipped.append({"task": name, "why": str(e)})
    return changes, skipped, own


def _task_change(lab, adapter, name: str, limit, say, cancel) -> dict:
    task = load_task(name, home=lab.home)
    metric = primary_name(task)
    if metric in RETRIEVAL_METRICS:
        raise SideEffectsError(f"its primary metric, {metric}, scores retrieved passages: no arm here retrieves")
    ids = [e.id for e in held_out(task, limit)]
    say(f"{task.name}: {len(ids)} held-out examples, without and with the adapter")
    run_id = run_eval(
        lab,
        task,
        ARMS,
        limit=limit,
        model=_base_spec(lab, adapter),
        adapter=adapter.name,
        progress=False,
        cancel=cancel,
        tag=tag_of(adapter.name),
        tune_instruction="task",
    )
    base, tuned = (_primary_scores(lab, run_id, arm) for arm in ARMS)
    common = [i for i in ids if base.get(i) is not None and tuned.get(i) is not None]
    a, b = [base[i] for i in common], [tuned[i] for i in common]
    score_type = stats.score_type_of(a, b, graded_metric=metric in CONTINUOUS)
    c = stats.compare(a, b, score_type, name_a="base", name_b="tuned")
    return {
        "task": task.name,
        "metric": metric,
        "eval_run_id": run_id,
        "base": stats.mean(a),
        "tuned": stats.mean(b),
        "comparison": c.as_dict(),
    }


def _primary_scores(lab, run_id: int, arm: str) -> dict:
    rows = lab.store.eval_scores(run_id, arm, repeat=0)
    return {r["example_id"]: json.loads(r["scores_json"] or "{}").get("primary") for r in rows}


def _holm(result: dict) -> None:
    """Holm's correction across the measurement's tests, written into each comparison."""
    found = [result["perplexity"]["comparison"], *(t["comparison"] for t in result["tasks"])]
    for d, p in zip(found, stats.holm([d["p_value"] for d in found])):
        c = comparison(d)
        c.p_adjusted = p
        d.update(c.as_dict())
    result["tests"] = sum(d["p_value"] is not None for d in found)


def comparison(d: dict) -> stats.Comparison:
    """A stored comparison (`Comparison.as_dict`) as the object again."""
    return stats.Comparison(**{f.name: d[f.name] for f in dataclasses.fields(stats.Comparison) if f.name in d})


# ---- reading it back ---------------------------------------------------------------------------


def stored_side_effects(lab, adapter_name: str, sha: str | None = None) -> dict | None:
    """The newest finished measurement of adapter `adapter_name` as it is now (of content `sha`,
    when given: the adapter an evaluation served); None when it was never measured, or not since
    it was retrained."""
    from ..tuning.adapters import AdapterError, find_adapter

    if sha is None:
        try:
            sha = find_adapter(lab.home.adapters, adapter_name).sha
        except AdapterError:
            return None
    row = lab.store.latest_side_effects(adapter_name, sha)
    try:
        return json.loads(row["result_json"]) if row else None
    except (TypeError, ValueError):  # a result that cannot be read is no measurement to quote
        return None


def side_effect_lines(result: dict) -> list[str]:
    """The measurement as plain sentences, for every face (worded by `verdict`)."""
    ppl = result["perplexity"]
    lines = [verdict.perplexity_text(comparison(ppl["comparison"]), ppl["source"])]
    for t in result["tasks"]:
        lines.append(
            verdict.side_effect_text(comparison(t["comparison"]), t["task"], t["metric"], t["base"], t["tuned"])
        )
    lines += [f"{s['task']}: not measured ({s['why']})" for s in result["skipped"]]
    tests = result.get("tests", 0)
    holm = f"; significance Holm-corrected across its {tests} tests" if tests > 1 else ""
    cancelled = " (cancelled before the end: a partial measurement)" if result.get("status") == "cancelled" else ""
    lines.append(
        f"Each figure paired with the base model {result['base_model']} on the same text and examples{holm}{cancelled}."
    )
    return lines


def losses(result: dict) -> list[str]:
    """The sentences of what the adapter significantly costs elsewhere ([] when nothing)."""
    ppl = result["perplexity"]
    found = []
    if verdict.perplexity_rose(comparison(ppl["comparison"])):
        found.append(verdict.perplexity_text(comparison(ppl["comparison"]), ppl["source"]))
    for t in result["tasks"]:
        c = comparison(t["comparison"])
        if verdict.lost(c):
            found.append(verdict.side_effect_text(c, t["task"], t["metric"], t["base"], t["tuned"]))
    return found


def check_command(adapter_name: str) -> str:
    return f"lab adapters check {adapter_name} --side-effects"


def not_measured(adapter_name: str) -> str:
    return f"side effects: not measured yet ({check_command(adapter_name)})"


def scoreboard_lines(lab, adapter_name: str, sha: str | None = None) -> list[str]:
    """What the scoreboard says under the tuned arm: the measurement's lines, else how to measure."""
    result = stored_side_effects(lab, adapter_name, sha)
    if result is None:
        return [not_measured(adapter_name)]
    return [f"side effects, what adapter {adapter_name} costs elsewhere:", *side_effect_lines(result)]
