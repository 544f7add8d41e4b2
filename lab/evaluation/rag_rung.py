"""The RAG rung at its best: passages per question (k), chunk size, and rag with worked examples,
measured on the same held-out examples, so "the RAG rung" means the best of those measured, as
"the prompt rung" does (`prompt_rung`).

    configs = measure_rag_rung(lab, "acme-facts", limit=40)   # runs or resumes each configuration
    best = best_rag_config(configs)                             # e.g. rag, 8 passages of 80 tokens
    print(best.label(), best.score)

- k: 2, 4 and 8 passages (and the rag arm's own 4), capped at what fits the context with the
  longest question (the prompt's passages are packed as the rag arm packs them).
- chunk size: `retrieval.sweep_chunk_sizes` (half, the corpus's own, double); each size is a
  version of the corpus's index kept beside it (`retrieval.index_root`), built once, incrementally.
- Before any answer, the retrieval check (`retrieval_check.score_results`: searches only) skips the
  configurations that cannot help: a k whose passages hold the answer for no more questions than
  a smaller k's, and a chunk size whose retrieval is clearly behind the best size's (its interval
  ends below). A skipped configuration is never answered, and so is not a candidate either.
- Racing, as the prompt sweep: every configuration answers a slice; those clearly behind the
  leader there stop (`dropped`, still candidates). Then rag with the best few-shot examples at the
  leader's k and chunk size joins (`shots`); the rest answer every example.
- The pick is judged as the best of every configuration answered (`verdict.meets(candidates=)`).

Each configuration is one run of `runner.run_eval` (its identity holds k, the chunk size and the
examples), resumable and logged like every evaluation; rag at 4 passages on the corpus's own
index is the run `lab eval TASK` makes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import ladder
from ..tasks import load_task
from . import stats
from .prompt_rung import race_slice, racing_drops, run_scores, score_ci
from .runner import EvalError, config_label, run_eval
from .sample import held_out as sampled

DEFAULT_KS = (2, 4, 8)
RAG_K = 4  # the rag arm's own passages per question (`lab eval`, the climb's first rag run)
SWEEP_SIZES = 3  # chunk sizes `retrieval.sweep_chunk_sizes` gives (half, own, double)


@dataclass
class RagConfig:
    k: int  # passages per question
    chunk_tokens: int  # the chunk size searched
    own: bool  # the corpus's own index (else the version chunked at chunk_tokens)
    shots: dict | None  # rag with worked examples: {"mode", "k"} as the few-shot arm's; None: without
    constrain: bool
    eval_run_id: int | None = None
    score: float | None = None
    n: int = 0
    per_example: dict[str, float] = field(default_factory=dict, repr=False)
    dropped: bool = False  # the race left it behind: not a pick, still a candidate
    skipped: str = ""  # why the retrieval check left it out: never answered, not a candidate
    arm = "rag"

    def label(self) -> str:
        """ "rag, 8 passages of 80 tokens, 4 fixed examples"."""
        variant = {"rag_k": self.k, "chunk_tokens": self.chunk_tokens, "rag_shots": self.shots}
        return config_label("rag", constrain=self.constrain, variant=variant)

    @property
    def key(self) -> tuple:
        return (self.k, self.chunk_tokens, tuple(sorted((self.shots or {}).items())))

    def as_dict(self) -> dict:
        keep = ("k", "chunk_tokens", "own", "shots", "constrain", "eval_run_id", "score", "n", "dropped", "skipped")
        return {**{k: getattr(self, k) for k in keep}, "label": self.label()}


# ---- what to try --------------------------------------------------------------------------------


def rag_plan(
    lab,
    task,
    held_out: Sequence,
    model: str | None = None,
    ks: Sequence[int] | None = None,
    chunk_sizes: Sequence[int] | None = None,
    constrain: bool = False,
) -> tuple[list[RagConfig], list[str]]:
    """Every (k, chunk size) to try, the ones the retrieval check rules out marked `skipped`, and
    the notes on capped k and on what was skipped."""
    from ..retrieval import chunk_size_of, sweep_chunk_sizes

    corpus = ladder.task_corpus(lab, task)
    own = chunk_size_of(lab, corpus)
    sizes = sorted({int(s) for s in (chunk_sizes or sweep_chunk_sizes(lab, corpus))})
    wanted = sorted({int(k) for k in (ks or DEFAULT_KS) if int(k) > 0} | {RAG_K})
    plan, notes = [], []
    for size in sizes:
        fits = _k_that_fits(lab, task, corpus, size, held_out, model, wanted[-1])
        if wanted[-1] > fits:
            notes.append(
                f"chunks of {size} tokens: k capped at {fits}, what fits the context with the longest question"
            )
        plan += [RagConfig(k, size, size == own, None, constrain) for k in sorted({min(k, fits) for k in wanted})]
    notes += _skip_by_retrieval(lab, task, corpus, plan, held_out, own)
    return plan, notes


def _k_that_fits(lab, task, corpus, size: int, held_out: Sequence, model: str | None, most: int) -> int:
    """How many of the longest question's top `most` passages, chunked at `size`, the rag arm's
    prompt holds with the answer budget (at least 1)."""
    from ..retrieval import search
    from ..retrieval.packing import pack_passages

    longest = max((e.input for e in held_out), key=len, default="")
    passages = search(lab, corpus, longest, k=most, chunk_tokens=size)
    backend = lab.backend(model)
    budget = ladder.answer_budget(lab, task, model)
    _, kept = pack_passages(backend, longest, passages, instruction=task.instruction or None, max_tokens=budget)
    return max(1, len(kept))


def _skip_by_retrieval(lab, task, corpus, plan: list[RagConfig], held_out: Sequence, own: int) -> list[str]:
    """The retrieval check at every chunk size of `plan` (`retrieval_check.check_chunk_sizes`:
    searches only, the task's held-out questions), then `skip_by_retrieval`. The rag arm's own
    configuration (4 passages, the corpus's own chunks) is always answered."""
    from .retrieval_check import check_chunk_sizes

    sizes = sorted({c.chunk_tokens for c in plan})
    sweep = check_chunk_sizes(lab, task, ks=sorted({c.k for c in plan}), corpus=corpus, chunk_sizes=sizes)
    per_size = {
        size: {r.k: _found(r) for r in check.rows if _found(r) is not None} for size, check in zip(sizes, sweep.checks)
    }
    return skip_by_retrieval(plan, per_size, own)


def skip_by_retrieval(plan: list[RagConfig], per_size: dict[int, dict[int, tuple[float, int]]], own: int) -> list[str]:
    """Mark `plan`'s configurations that cannot help, from the retrieval check's figures
    ({chunk size: {k: (share found, n)}}); returns a note on each one skipped (see the module's doc)."""
    if not any(per_size.values()):
        return ["the retrieval check cannot tell which configurations help (the answers are not short facts "
                "and the examples name no gold_doc): every configuration is answered"]  # fmt: skip
    for c in plan:
        found = per_size.get(c.chunk_tokens, {})
        smaller = [k for k in found if k < c.k]
        if smaller and c.k in found and found[c.k][0] <= found[max(smaller)][0]:
            c.skipped = f"its passages hold the answer no more often than {max(smaller)}'s ({found[c.k][0]:.0%})"
    best_size = max(per_size, key=lambda size: max((v[0] for v in per_size[size].values()), default=-1))
    share, n = max(per_size[best_size].values())
    floor = stats.proportion_interval(share, n)[0]
    for size, found in per_size.items():
        top = max(found.values(), default=None)
        if size != best_size and top is not None and stats.proportion_interval(*top)[1] < floor:
            for c in plan:
                if c.chunk_tokens == size and not c.skipped:
                    c.skipped = (
                        f"chunks of {size} tokens retrieve clearly less than chunks of {best_size} "
                        f"({top[0]:.0%} vs {share:.0%})"
                    )
    notes = []
    for c in plan:
        if c.k == RAG_K and c.chunk_tokens == own:
            c.skipped = ""  # the baseline every other configuration is read against
        if c.skipped:
            notes.append(f"skipped {c.label()}: {c.skipped}")
    return notes


def _found(row) -> tuple[float, int] | None:
    """(share, n) of the retrieval check's row: the answer in the passages, else the gold document."""
    if row.hit_rate is not None:
        return row.hit_rate, row.hit_n
    if row.recall is not None:
        return row.recall, row.recall_n
    return None


# ---- measuring ----------------------------------------------------------------------------------


def measure_rag_rung(
    lab,
    task,
    *,
    limit: int | None = None,
    ks: Sequence[int] | None = None,
    chunk_sizes: Sequence[int] | None = None,
    shots: dict | None = None,
    constrain: bool | None = None,
    progress: bool = False,
    cancel: threading.Event | None = None,
    model: str | None = None,
    on_note: Callable[[str], None] | None = None,
    race: bool = True,
) -> list[RagConfig]:
    """Run (or resume) the RAG rung's configurations on the same held-out examples (see the module's
    doc); returns all of them, skipped ones included. `shots` ({"mode", "k"}; default
    `best_measured_shots`: the prompt rung's best measured few-shot setting, else the task's own) is
    tried with the leader's k and chunk size."""
    task = load_task(task, home=lab.home)
    constrain = task.constrain if constrain is None else bool(constrain)
    note = on_note or (lambda s: None)
    held_out = sampled(task, limit)
    if not held_out:
        raise EvalError(f"task '{task.name}' has no held-out examples")
    plan, notes = rag_plan(lab, task, held_out, model, ks, chunk_sizes, constrain)
    for text in notes:
        note(text)
    active = [c for c in plan if not c.skipped]
    first = race_slice(len(held_out)) if race and len(active) > 2 else None
    run = dict(lab=lab, task=task, model=model, progress=progress, cancel=cancel)
    _measure(active, limit=first or limit, **run)
    if shots is None:
        shots = best_measured_shots(lab, task, limit, model)
    scored = [c for c in active if c.score is not None]
    if shots and scored and not _cancelled(cancel):
        lead = best_rag_config(scored)
        with_shots = RagConfig(lead.k, lead.chunk_tokens, lead.own, dict(shots), constrain)
        plan.append(with_shots)
        active.append(with_shots)
        _measure([with_shots], limit=first or limit, **run)
    if first is None:
        return plan
    for c, leader in racing_drops([c for c in active if c.score is not None], pick=best_rag_config):
        c.dropped = True
        note(
            f"dropped after {c.n} examples: {c.label()} ({score_ci(c)}) is clearly behind {leader.label()} ({score_ci(leader)})"
        )
    _measure([c for c in active if not c.dropped], limit=limit, **run)
    return plan


def best_measured_shots(lab, task, limit: int | None = None, model: str | None = None) -> dict | None:
    """The few-shot setting ({"mode", "k"}) rag with examples uses: the prompt rung's best measured
    few-shot configuration on the same examples (unconstrained, the task's own instruction), else
    the task's own (fixed, its few_shot_k); None when the task has no few-shot pool."""
    from .prompt_rung import best_prompt_config, measured_prompt_configs
    from .runner import matching_run
    from .summary import load_run

    if not ladder.few_shot_pool(task) or not task.few_shot_k:
        return None
    run = matching_run(lab, task, model)
    ids = [e.id for e in sampled(task, limit)]
    found = measured_prompt_configs(lab, load_run(lab, run["id"]), ids) if run else []
    found = [c for c in found if c.arm == "few-shot" and not c.constrain and c.instruction is None]
    if not [c for c in found if not c.dropped and c.score is not None]:
        return {"mode": "fixed", "k": task.few_shot_k}
    best = best_prompt_config(found)
    return {"mode": best.mode, "k": best.k}


def _measure(configs: Sequence[RagConfig], *, lab, task, limit, model, progress, cancel) -> None:
    """Each configuration through the runner on `limit` sampled examples; its score read back."""
    ids = [e.id for e in sampled(task, limit)]
    for c in configs:
        if _cancelled(cancel):
            return
        c.eval_run_id = run_eval(
            lab,
            task,
            ["rag"],
            limit=limit,
            model=model,
            rag_k=c.k,
            chunk_tokens=None if c.own else c.chunk_tokens,
            rag_shots=c.shots,
            constrain=c.constrain,
            progress=progress,
            cancel=cancel,
            sweep="rag",
        )
        c.per_example = run_scores(lab, c.eval_run_id, "rag", ids)
        c.score, c.n = stats.mean(list(c.per_example.values())), len(c.per_example)


def _cancelled(cancel) -> bool:
    return cancel is not None and cancel.is_set()


def best_rag_config(configs: Sequence[RagConfig]) -> RagConfig:
    """The highest-scoring configuration answered in full; on a tie the cheaper one (fewer passages,
    no worked examples, the corpus's own index)."""
    scored = [c for c in configs if c.score is not None and not c.dropped and not c.skipped]
    if not scored:
        raise EvalError("no RAG configuration has a score yet: measure them first")
    return max(scored, key=lambda c: (c.score, -c.k, not c.shots, c.own))


def candidates(configs: Sequence[RagConfig]) -> int:
    """How many configurations the pick was the best of: every one answered (dropped ones too)."""
    return sum(1 for c in configs if c.score is not None and not c.skipped)


# ---- the advisor's question: which RAG configuration is the rung? -------------------------------


@dataclass
class BestRag:
    """The best measured RAG configuration on a run's examples, and how many it was the best of."""

    config: RagConfig
    candidates: int
    arm: object | None = None  # its scoreboard row (summary.ArmSummary), set by the advisor
    shown: object | None = None  # that row named by its configuration, beside the scoreboard's arms


def measured_rag_configs(lab, run: dict, ids: Sequence[str]) -> list[RagConfig]:
    """Every RAG configuration already measured (nothing is run) that compares with eval run `run`
    (a `summary.load_run` dict): same task files, model, repeats and sample, untagged, scored on
    `ids` (on some of them only: `dropped`). One per configuration, the latest complete one."""
    import json

    from ..retrieval import chunk_size_of
    from .runner import IDENTITY_DEFAULTS

    config = run["config"]
    want = {k: config.get(k, IDENTITY_DEFAULTS.get(k)) for k in ("model_sha", "repeats", "tag", "sample")}
    try:
        own = chunk_size_of(lab, ladder.task_corpus(lab, load_task(run["task"], home=lab.home)))
    except Exception:  # the task or its corpus is gone: nothing to compare with
        return []
    found: dict[tuple, RagConfig] = {}
    for other in lab.store.eval_runs_matching(run["task"], run["task_hash"], run["model_id"], newest_first=False):
        oc = json.loads(other["config_json"] or "{}")
        if {k: oc.get(k, IDENTITY_DEFAULTS.get(k)) for k in want} != want or oc.get("instruction"):
            continue
        per_example = run_scores(lab, other["id"], "rag", ids)
        if not ids or not per_example:
            continue
        size = oc.get("chunk_tokens") or own
        c = RagConfig(
            int(oc.get("rag_k") or RAG_K),
            size,
            oc.get("chunk_tokens") is None,
            oc.get("rag_shots"),
            bool(oc.get("constrain", False)),
            other["id"],
            stats.mean(list(per_example.values())),
            len(per_example),
            per_example,
            dropped=len(per_example) < len(set(ids)),
        )
        key = (c.key, c.constrain)
        if key not in found or not c.dropped or found[key].dropped:
            found[key] = c
    return list(found.values())


def best_rag_for_run(lab, run: dict) -> BestRag | None:
    """The best RAG configuration measured on the examples eval run `run`'s rag arm scored; None
    when the run has no rag answers or no sweep measured another configuration there."""
    ids = sorted(run_scores(lab, run["id"], "rag"))
    if not ids:
        return None
    configs = measured_rag_configs(lab, run, ids)
    if len(configs) < 2 or all(c.dropped for c in configs):
        return None
    return BestRag(best_rag_config(configs), candidates(configs))
