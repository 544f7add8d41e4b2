"""The prompt rung at its best: zero-shot and few-shot configurations (fixed vs similar-by-embedding
examples, several k; each with every instruction the task lists, `Task.instruction_variants`)
measured once on the same held-out examples, so "the prompt rung" in a
comparison with tuning means the best of those measured, not whichever few-shot setting ran first.

    configs = measure_prompt_rung(lab, "specialty", limit=40)     # runs or resumes each config
    best = best_prompt_config(configs)                              # e.g. few-shot, 8 similar examples
    print(best.label(), best.score)

Each configuration is one evaluation run through `runner.run_eval` (its identity holds the mode,
k and `constrain`), so a second call reuses the finished runs and `lab eval` with the same
settings shares them. The advisor's tune-vs-prompt comparison uses `best_prompt_for_run`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import ladder
from ..prompts import few_shot
from ..tasks import load_task
from . import stats
from .runner import IDENTITY_DEFAULTS, EvalError, config_label, run_eval
from .sample import held_out as sampled

MODES = ("fixed", "similar")
DEFAULT_KS = (2, 4, 8)  # besides the task's own few_shot_k


@dataclass
class PromptConfig:
    arm: str  # "zero-shot" | "few-shot"
    mode: str  # "fixed" | "similar" (zero-shot: "fixed", unused)
    k: int  # few-shot examples asked for (zero-shot: 0)
    constrain: bool
    eval_run_id: int
    score: float | None  # mean primary score over the held-out examples measured (None: none yet)
    n: int  # held-out examples scored
    per_example: dict[str, float] = field(default_factory=dict, repr=False)  # example id -> primary score
    dropped: bool = False  # the race left it behind after a slice (`racing_drops`): not a pick, still a candidate
    instruction: str | None = None  # None: the task's own instruction, else one of its `instructions`
    instruction_no: int = 1  # its number in the task's list (1: its own; 0: no longer listed)

    def label(self) -> str:
        """ "few-shot, 8 similar examples, constrained"; "zero-shot, instruction 2"."""
        no = self.instruction_no if self.instruction is not None else None
        return config_label(self.arm, self.mode, self.k, self.constrain, {"instruction_no": no})

    @property
    def key(self) -> tuple:
        """What the sweep measures it as: (arm, mode, k, instruction)."""
        return (self.arm, self.mode, self.k, self.instruction)

    def as_dict(self) -> dict:
        return {
            "arm": self.arm,
            "mode": self.mode,
            "k": self.k,
            "constrain": self.constrain,
            "eval_run_id": self.eval_run_id,
            "score": self.score,
            "n": self.n,
            "label": self.label(),
            "dropped": self.dropped,
            "instruction": self.instruction,
            "instruction_no": self.instruction_no,
        }


# ---- which k to try ---------------------------------------------------------------------------


def candidate_ks(
    lab, task, held_out: Sequence, model: str | None = None, ks: Sequence[int] | None = None
) -> tuple[list[int], list[str]]:
    """The few-shot k values to measure (default: 2, 4, 8 and the task's few_shot_k), each capped
    at the few-shot pool's size and at what fits the context with the longest held-out question
    (fixed examples; per question the ladder still trims to fit). Returns (ks, notes on capping)."""
    wanted = sorted({k for k in (ks if ks is not None else (*DEFAULT_KS, task.few_shot_k)) if k > 0})
    pool = ladder.few_shot_pool(task)
    if not pool:
        return [], [f"task '{task.name}' has no few-shot pool: zero-shot only"]
    fits = min(len(pool), _k_that_fits(lab, task, pool, held_out, model))
    notes = []
    if wanted and wanted[-1] > fits:
        over = [k for k in wanted if k > fits]
        why = (
            "the few-shot pool has only " + str(len(pool)) + " examples"
            if fits == len(pool)
            else f"only {fits} examples fit the context with the longest question"
        )
        notes.append(f"k capped at {fits}: {why} (asked for {', '.join(map(str, over))})")
    return sorted({min(k, fits) for k in wanted if min(k, fits) > 0}), notes


def _k_that_fits(lab, task, pool, held_out, model: str | None) -> int:
    """The largest k whose fixed few-shot prompt, with the longest question and the answer budget,
    fits the model's context."""
    backend = lab.backend(model)
    longest = max((e.input for e in held_out), key=len, default="")
    instruction = max(task.instruction_variants(), key=len) or None
    # what the ladder keeps free for the answer (unconstrained: per question the ladder still
    # trims to fit a constrained answer's larger budget)
    budget = ladder.answer_budget(lab, task, model)
    k = len(pool)
    while k > 0:
        prompt = backend.render(few_shot(longest, ladder.fixed_shots(pool, k), instruction))
        if backend.count_tokens(prompt) + budget <= backend.n_ctx - 8:
            break
        k -= 1
    return k


# ---- measuring --------------------------------------------------------------------------------


def measure_prompt_rung(
    lab,
    task,
    *,
    limit: int | None = None,
    ks: Sequence[int] | None = None,
    modes: Sequence[str] = MODES,
    constrain: bool | None = None,
    progress: bool = False,
    cancel: threading.Event | None = None,
    model: str | None = None,
    on_note: Callable[[str], None] | None = None,
    race: bool = True,
    instructions: Sequence[str | None] | None = None,
) -> list[PromptConfig]:
    """Run (or resume) zero-shot and every few-shot (mode, k) configuration on the same held-out
    examples (`sample.held_out`: a seeded, stratified `limit` of them); returns each one's score.
    `constrain` (default: the task's) applies to every configuration alike. `race`: every
    configuration first answers a slice (`race_slice`); those clearly behind the leader there are
    dropped (`racing_drops`, marked `dropped`, still counted as candidates) and the rest answer all.
    `on_note` hears which k were capped, and what was dropped and why. `instructions` (default:
    every one the task lists; None in it is the task's own) narrows which are tried. Stops early,
    with what it has, once `cancel` is set."""
    task = load_task(task, home=lab.home)
    constrain = task.constrain if constrain is None else bool(constrain)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise EvalError(f"few-shot mode(s) {', '.join(bad)}: choose from {', '.join(MODES)}")
    held_out = sampled(task, limit)
    plan, notes = prompt_plan(lab, task, held_out, model, ks, modes, instructions)
    note = on_note or (lambda s: None)
    for text in notes:
        note(text)
    first = race_slice(len(held_out)) if race and len(plan) > 2 else None
    configs = _measure(lab, task, plan, first or limit, constrain, model, progress, cancel)
    if first is None:
        return configs
    drops = racing_drops(configs)
    for c, leader in drops:
        note(
            f"dropped after {c.n} examples: {c.label()} ({score_ci(c)}) is clearly behind {leader.label()} "
            f"({score_ci(leader)}): its interval ends below the leader's"
        )
    behind = {id(c) for c, _ in drops}
    keep = [c.key for c in configs if id(c) not in behind]
    full = {c.key: c for c in _measure(lab, task, keep, limit, constrain, model, progress, cancel)}
    for c, _ in drops:
        c.dropped = True
    return [full.get(c.key, c) for c in configs]


def _measure(lab, task, plan, limit, constrain, model, progress, cancel) -> list[PromptConfig]:
    """Each (arm, mode, k, instruction) of `plan` through the runner on `limit` sampled examples."""
    ids = [e.id for e in sampled(task, limit)]
    configs = []
    for arm, mode, k, instruction in plan:
        if cancel is not None and cancel.is_set():
            break
        run_id = run_eval(
            lab,
            task,
            [arm],
            few_shot_mode=mode,
            k=k or task.few_shot_k,
            limit=limit,
            model=model,
            constrain=constrain,
            progress=progress,
            cancel=cancel,
            sweep="prompt",
            instruction=instruction,
        )
        configs.append(config_of_run(lab, run_id, arm, mode, k, constrain, ids, instruction, task))
    return configs


RACE_MIN = 12  # examples every configuration answers before any is dropped


def race_slice(n: int) -> int | None:
    """How many of n held-out examples every configuration answers before the race drops any:
    a quarter, at least RACE_MIN; None when n is too small to race (under 2 * RACE_MIN)."""
    return max(RACE_MIN, n // 4) if n >= 2 * RACE_MIN else None


def racing_drops(configs: Sequence, pick: Callable | None = None) -> list[tuple]:
    """(dropped, leader) pairs: configurations whose 95% interval's upper end lies below the
    leader's lower end on the slice (`pick`: how a sweep names its leader; default the prompt
    rung's). Dropping only changes what is measured further: the pick's verdict still counts
    every configuration tried (`BestPrompt.candidates`, `rag_rung.candidates`)."""
    scored = [c for c in configs if c.score is not None]
    if len(scored) < 2:
        return []
    leader = (pick or best_prompt_config)(scored)
    floor = stats.proportion_interval(leader.score, leader.n)[0]
    return [(c, leader) for c in scored if c is not leader and stats.proportion_interval(c.score, c.n)[1] < floor]


def score_ci(c) -> str:
    """A configuration's score with its 95% interval: "0.625 [0.431, 0.788]"."""
    lo, hi = stats.proportion_interval(c.score, c.n)
    return f"{c.score:.3f} [{lo:.3f}, {hi:.3f}]"


def prompt_plan(
    lab,
    task,
    held_out: Sequence,
    model: str | None = None,
    ks: Sequence[int] | None = None,
    modes: Sequence[str] = MODES,
    instructions: Sequence[str | None] | None = None,
) -> tuple[list[tuple[str, str, int, str | None]], list[str]]:
    """The (arm, mode, k, instruction) configurations `measure_prompt_rung` runs (instruction None:
    the task's own), and the notes on capped k and on the instructions. Zero-shot with the task's
    instruction comes first and joins the run `lab eval TASK` makes by default (fixed, the task's k).
    Every instruction the task lists is tried with every example setting."""
    ks, notes = candidate_ks(lab, task, held_out, model, ks)
    settings = [("zero-shot", "fixed", 0)] + [("few-shot", m, k) for m in modes for k in ks]
    if instructions is None:
        from ..task_import import instructions_note

        instructions = [None, *task.instructions]
        notes += [n for n in [instructions_note(task)] if n]
    return [(arm, m, k, i) for i in instructions for arm, m, k in settings], notes


def instruction_no(task, instruction: str | None) -> int:
    """An instruction's number in the task's list (1: its own), 0 when it is no longer listed."""
    variants = [v.strip() for v in task.instruction_variants()]
    text = (task.instruction if instruction is None else instruction).strip()
    return variants.index(text) + 1 if text in variants else 0


def config_of_run(
    lab,
    run_id: int,
    arm: str,
    mode: str,
    k: int,
    constrain: bool,
    ids: Sequence[str],
    instruction: str | None = None,
    task=None,
) -> PromptConfig:
    """One configuration's score on `ids`, from the rows eval run `run_id` holds for `arm`."""
    per_example = run_scores(lab, run_id, arm, ids)
    return PromptConfig(
        arm,
        mode,
        k,
        constrain,
        run_id,
        stats.mean(list(per_example.values())),
        len(per_example),
        per_example,
        instruction=instruction,
        instruction_no=instruction_no(task, instruction) if task is not None else 1,
    )


def run_scores(lab, run_id: int, arm: str, ids: Sequence[str] | None = None) -> dict[str, float]:
    """{example id: primary score} of one arm in one run (repeats averaged), on `ids` when given."""
    rows = lab.store.eval_scores(run_id, arm)
    keep = set(ids) if ids is not None else None
    scores: dict[str, list] = {}
    for r in rows:
        if keep is None or r["example_id"] in keep:
            scores.setdefault(r["example_id"], []).append(json.loads(r["scores_json"] or "{}").get("primary"))
    means = {ex: stats.mean(v) for ex, v in scores.items()}
    return {ex: v for ex, v in means.items() if v is not None}


def best_prompt_config(configs: Sequence[PromptConfig]) -> PromptConfig:
    """The highest-scoring configuration; on a tie the cheaper one (zero-shot, then fewer examples,
    then fixed examples, whose shared prefix stays in the KV cache), then the task's own instruction."""
    scored = [c for c in configs if c.score is not None and not c.dropped]
    if not scored:
        raise EvalError("no prompt configuration has a score yet: measure them first")
    return max(scored, key=lambda c: (c.score, c.arm == "zero-shot", -c.k, c.mode == "fixed", c.instruction is None))


# ---- the advisor's question: did tuning beat the best prompt? ----------------------------------


def measured_prompt_configs(lab, run: dict, ids: Sequence[str]) -> list[PromptConfig]:
    """Every prompt configuration already measured (nothing is run) that compares with eval run
    `run` (a `summary.load_run` dict): same task files, model, repeats and sample, untagged (a
    learning curve's points are not the sweep's), constrained or not and whatever their answer
    budget (both are part of a configuration: the climb measures the best one constrained). Scored on every one of `ids`: a candidate for the pick; on some of them only (a
    race dropped it): `dropped`, counted as a candidate but never picked."""
    config = run["config"]
    want = {k: config.get(k, IDENTITY_DEFAULTS.get(k)) for k in ("model_sha", "repeats", "tag", "sample")}
    try:
        task = load_task(run["task"], home=lab.home)
    except Exception:  # a task since removed: its instructions are numbered as unknown
        task = None
    found = []
    for other in lab.store.eval_runs_matching(run["task"], run["task_hash"], run["model_id"], newest_first=False):
        oc = json.loads(other["config_json"] or "{}")
        if {k: oc.get(k, IDENTITY_DEFAULTS.get(k)) for k in want} != want:
            continue
        for arm in ("zero-shot", "few-shot"):
            per_example = run_scores(lab, other["id"], arm, ids)
            if ids and per_example:
                k = int(oc.get("few_shot_k") or 0) if arm == "few-shot" else 0
                mode = (oc.get("few_shot_mode") or "fixed") if arm == "few-shot" else "fixed"
                found.append(
                    PromptConfig(
                        arm,
                        mode,
                        k,
                        bool(oc.get("constrain", False)),
                        other["id"],
                        stats.mean(list(per_example.values())),
                        len(per_example),
                        per_example,
                        dropped=len(per_example) < len(set(ids)),
                        instruction=oc.get("instruction"),
                        instruction_no=instruction_no(task, oc.get("instruction")) if task else 0,
                    )
                )
    return _distinct(found)


def _distinct(configs: list[PromptConfig]) -> list[PromptConfig]:
    """One entry per (arm, mode, k, constrain): zero-shot is in many runs; keep the latest run's
    complete one."""
    by_key: dict = {}
    for c in configs:
        key = (c.arm, c.mode if c.arm == "few-shot" else "", c.k, c.constrain, c.instruction)
        if key not in by_key or not c.dropped or by_key[key].dropped:
            by_key[key] = c
    return list(by_key.values())


@dataclass
class BestPrompt:
    """The best measured prompt configuration (and the tuned arm measured against it, if any)."""

    config: PromptConfig
    comparison: stats.Comparison | None  # b = the tuned arm, a = the best prompt configuration
    candidates: int  # prompt configurations it was the best of: its verdict pays for the pick
    arm: object | None = None  # its scoreboard arm (summary.ArmSummary) when it is another run's


def best_prompt_for_run(lab, run: dict, tune_arm: str = "tune", score_type: str | None = None) -> BestPrompt | None:
    """The best prompt configuration measured on the examples eval run `run` scored (those its tuned
    arm scored, when it has one), with the tuned arm against it. None when fewer than two few-shot
    configurations were measured there (no sweep to pick from)."""
    tuned = run_scores(lab, run["id"], tune_arm)
    ids = (
        sorted(tuned)
        if tuned
        else sorted(max((run_scores(lab, run["id"], a) for a in ("zero-shot", "few-shot")), key=len))
    )
    if not ids:
        return None
    configs = measured_prompt_configs(lab, run, ids)
    if sum(c.arm == "few-shot" for c in configs) < 2 or all(c.dropped for c in configs):
        return None
    best = best_prompt_config(configs)
    comparison = (
        stats.compare(
            [best.per_example[i] for i in ids],
            [tuned[i] for i in ids],
            score_type,
            name_a=best.label(),
            name_b=tune_arm,
        )
        if tuned
        else None
    )
    return BestPrompt(best, comparison, len(configs))
