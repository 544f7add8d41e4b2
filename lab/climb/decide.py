"""The climb's decisions, as one pure function: given what has been measured so far, the next
step up the ladder or where to stop, and why. No model, no store: the runner (`run.py`) feeds
it the scoreboard and its time estimates, and the tests feed it synthetic ones.

The guide's order (docs/guide.md: prompt -> RAG -> fine-tune, stop at the first that works) and its rules:
- "Can few-shot prompting solve the task adequately? yes -> stop."
- "Is the main problem a lack of knowledge? yes -> RAG, stop." Fine-tuning "changes behaviour,
  not knowledge": a knowledge gap RAG does not close is not handed to tuning. Which it is comes
  from the task.toml's `teaches` ("knowledge" | "behaviour") when it declares one; the failures
  are read too (`failures_look`), and when they look otherwise the reason says so and follows the
  declaration. Without one the climb guesses from the failures, and says it guessed.
- "Do you have 200+ high-quality examples? yes -> fine-tune; no -> collect more data" (and the
  trainer refuses under 20).

"Meets the target" is `lab.evaluation.verdict.meets`, the one verdict every face uses: the lower
end of the rung's 95% interval at or above the target, on at least 6 examples; every configuration
measured so far shares the 5% (`verdict.family`), so picking the best of the prompt sweep, or
climbing on to another rung, does not inflate it. A mean above the target whose bound is below it is "maybe": with
held-out examples left unused (--limit) the climb evaluates more of them itself (the limit
doubles; the sample is nested, so finished examples are reused) and decides again; with none
left, it climbs on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..evaluation import verdict

STEPS = ["prompt", "rag", "tune"]
STEP_ARMS = {step: tuple(a for a, r in verdict.RUNG_OF.items() if r == step) for step in STEPS}
MIN_TRAIN = 200  # seeds: "typically 200+ examples minimum"
TRAINER_MINIMUM = 20  # lab.tuning.datasets.MIN_EXAMPLES: the trainer refuses fewer
FORMAT_SHARE = 0.5  # failures that are mostly "output invalid" are a format (behaviour) problem
RULE = verdict.RULE


@dataclass
class ArmResult:
    """One measured arm, as the scoreboard has it."""

    arm: str
    mean: float | None
    lo: float | None
    hi: float | None
    n: int
    failures: dict[str, int] = field(default_factory=dict)
    candidates: int = 1  # the best of this many configurations (its verdict's bound is adjusted)
    dropped: bool = False  # a prompt configuration the race left behind: a candidate, never the pick
    ladder_arm: str = ""  # the ladder arm a prompt configuration uses ("few-shot"); "": `arm` is one

    def text(self) -> str:
        if self.mean is None:
            return f"{self.arm}: nothing scored"
        ci = "" if self.lo is None else f" [{self.lo:.3f}, {self.hi:.3f}]"
        best = f", the best of {self.candidates}" if self.candidates > 1 else ""
        return f"{self.arm} {self.mean:.3f}{ci} (n={self.n}{best})"


@dataclass
class Situation:
    """Everything a decision reads."""

    task: str
    target: float
    output_format: str  # label, json or text
    has_corpus: bool
    train_examples: int
    eval_examples: int  # held-out examples the task has
    limit: int | None = None  # the climb evaluates only `limit` of them (`sample.held_out`)
    up_to: str = "tune"  # the highest step the climb may take
    teaches: str | None = None  # the task.toml's `teaches`: "knowledge" | "behaviour"; None: guessed from the failures
    min_train: int = MIN_TRAIN
    budget_left_s: float | None = None  # None: no budget
    done: list[str] = field(default_factory=list)  # steps finished, in order
    results: dict[str, ArmResult] = field(default_factory=dict)  # by arm
    estimates: dict[str, float] = field(default_factory=dict)  # step -> expected seconds


@dataclass
class Decision:
    action: str  # "run", "more" (the last step again on more held-out examples) or "stop"
    step: str | None  # the step to run next (action "run" or "more")
    outcome: str  # why: see OUTCOMES
    reason: str
    skipped: list[str] = field(default_factory=list)  # steps passed over, each with its reason
    limit: int | None = None  # action "more": the held-out examples to evaluate now

    def as_dict(self) -> dict:
        return asdict(self)


OUTCOMES = {
    "start": "the ladder starts at its cheapest rung",
    "climb": "the rung below misses the target",
    "meets": "a rung meets the target significantly",
    "maybe": "a rung's mean meets the target but its interval does not",
    "knowledge": "the task teaches knowledge (declared, or guessed from the failures), which tuning does not fix",
    "no-corpus": "the task teaches knowledge (declared, or guessed from the failures) and has no corpus",
    "too-few": "too few training examples to tune",
    "up-to": "--up-to stops the climb here",
    "budget": "the next step would not fit the time budget",
    "top": "the top of the ladder is reached",
}


def judge(arm: ArmResult, target: float) -> str:
    """'meets', 'maybe' or 'misses' (`verdict.meets`, adjusted for the best of arm.candidates)."""
    return verdict.meets(arm.mean, arm.n, target, arm.candidates).state


def more_limit(s: Situation) -> int | None:
    """The held-out examples to evaluate when a verdict is 'maybe': double the limit, at most all
    of them; None when the climb already evaluates every one."""
    if s.limit is None or s.limit >= s.eval_examples:
        return None
    return min(s.eval_examples, 2 * s.limit)


def step_of(result: ArmResult) -> str:
    """The step a result belongs to: its ladder arm's (a prompt configuration's is recorded with it)."""
    arm = result.ladder_arm or result.arm
    return next(step for step, arms in STEP_ARMS.items() if arm in arms)


def best_of(s: Situation, step: str) -> ArmResult | None:
    """The step's best measured arm; on a tie the cheaper one (the step's own arms in ladder
    order first, then its other configurations in the order they were measured)."""
    own = [s.results[a] for a in STEP_ARMS[step] if a in s.results]
    others = [r for a, r in s.results.items() if a not in STEP_ARMS[step] and step_of(r) == step]
    arms = [r for r in own + others if r.mean is not None]
    if not [a for a in arms if not a.dropped]:
        return None
    best = max((a for a in arms if not a.dropped), key=lambda a: a.mean)  # max keeps the first of equals
    # every configuration measured so far, on every rung, is a chance to meet by luck: they share the 5%
    share = verdict.family(step_of(r) for r in s.results.values() if r.mean is not None)
    return replace(best, candidates=share[step])


def failure_text(arm: ArmResult) -> str:
    fails = {k: v for k, v in arm.failures.items() if v}
    return ", ".join(f"{k} {v}" for k, v in fails.items()) or "none"


def knowledge_shaped(arm: ArmResult, output_format: str) -> bool:
    """Failures that look like missing facts: a free-text task whose wrong answers are mostly
    well-formed but wrong (retrieved or not), not format failures. Label and JSON tasks fail
    on behaviour (the shape and the judgement), which is what tuning shapes."""
    if output_format != "text":
        return False
    total = sum(arm.failures.values())
    return total == 0 or arm.failures.get("output invalid", 0) / total < FORMAT_SHARE


def failures_look(arm: ArmResult, output_format: str) -> tuple[str, str]:
    """("knowledge" | "behaviour", why): what the failures look like, by `knowledge_shaped`."""
    total = sum(arm.failures.values())
    invalid = arm.failures.get("output invalid", 0)
    if output_format != "text":
        return "behaviour", f"a {output_format} task's failures are its shape and judgement, which looks like behaviour"
    if not knowledge_shaped(arm, output_format):
        return (
            "behaviour",
            f"{invalid} of {total} wrong answers are format failures (output invalid), which looks like behaviour",
        )
    if total == 0:
        return "knowledge", "its misses are not format failures, which looks like missing knowledge"
    formed = sum(arm.failures.get(f, 0) for f in ("answer wrong", "not retrieved", "retrieved but not used"))
    which = (
        "are well-formed and wrong"
        if formed == total - invalid
        else f"are not format failures ({formed} well-formed and wrong)"
    )
    return "knowledge", f"{total - invalid} of {total} wrong answers {which}, which looks like missing knowledge"


_CHANGE = {
    "behaviour": 'change `teaches` to "knowledge" in task.toml if the task is about facts the model lacks',
    "knowledge": 'change `teaches` to "behaviour" in task.toml if the task is about the answers\' format, '
    "style or persona",
}


def teaches_for(s: Situation, arm: ArmResult) -> tuple[str, str]:
    """("knowledge" | "behaviour", a sentence for the reason): the task.toml's `teaches` when it
    declares one (saying so when the failures look otherwise), else the failures' guess, said to be one."""
    seen, why = failures_look(arm, s.output_format)
    if s.teaches is None:
        return seen, (
            f"task.toml does not declare `teaches`, so the climb guesses from the failures: {why} "
            '(declare teaches = "knowledge" or "behaviour" in task.toml to decide it).'
        )
    if s.teaches == seen:
        return s.teaches, f"task.toml declares {s.teaches}, and the failures agree: {why}."
    return s.teaches, f"task.toml declares {s.teaches}, but {why}: following the declaration; {_CHANGE[s.teaches]}."


def teaches_text(teaches: str | None, output_format: str) -> str:
    """The plan's line: what the climb's knowledge/behaviour fork follows, before anything is measured."""
    if teaches is not None:
        return f"teaches: {teaches} (declared in task.toml; the knowledge/behaviour fork follows it)"
    declare = '`teaches = "knowledge"` or `"behaviour"` in task.toml declares it'
    if output_format != "text":
        return f"teaches: behaviour (guessed: a {output_format} task's failures are its shape and judgement; {declare})"
    return (
        "teaches: knowledge or behaviour (guessed from the failures at the fork: well-formed but wrong answers "
        f"-> knowledge, format failures -> behaviour; {declare})"
    )


def next_step(s: Situation) -> Decision:
    """The next step of the climb, or where it stops and why."""
    if not s.done:
        return _go(
            s,
            "prompt",
            "start",
            "The ladder starts at its cheapest rung: zero-shot and few-shot prompting on the held-out examples.",
        )
    last = s.done[-1]
    best = best_of(s, last)
    if best is None:
        return Decision("stop", None, "top", f"The {last} step scored nothing: nothing to climb from.")
    judged = verdict.meets(best.mean, best.n, s.target, best.candidates)
    measured = f"{best.text()} against the target {s.target:.2f}"
    if judged.state == "meets":
        return Decision(
            "stop",
            None,
            "meets",
            f"{judged.text(best.arm)} So the {last} rung meets it; stop at the cheapest rung that works.",
        )
    if judged.state == "maybe":
        more = more_limit(s)
        need = s.estimates.get("more")
        if more is not None and (s.budget_left_s is None or need is None or need <= s.budget_left_s):
            return Decision(
                "more",
                last,
                "maybe",
                f"{judged.text(best.arm)} {s.eval_examples - s.limit} held-out "
                f"examples are unused: evaluating {more} of them before deciding.",
                limit=more,
            )
        if more is not None:
            return Decision(
                "stop",
                None,
                "maybe",
                f"{judged.text(best.arm)} Evaluating {more} held-out examples "
                f"would take about {_mins(need)} and {_mins(s.budget_left_s)} of the budget is left: "
                "rerun with a larger budget or --limit (finished examples are reused).",
            )
        note = (
            " Its mean meets the target but its interval reaches below it, on every held-out example "
            "the task has, so the next rung is worth measuring."
        )
    else:
        note = f" It misses (failures: {failure_text(best)})."
    evidence = f"The best {last} configuration is {measured}.{note}"
    if last == "prompt":
        return _after_prompt(s, best, evidence)
    if last == "rag":
        teaches, why = teaches_for(s, best)
        if teaches == "knowledge":
            return Decision(
                "stop",
                None,
                "knowledge",
                f"{evidence} {why} So the task teaches knowledge: fine-tuning changes behaviour, not knowledge "
                f"(docs/guide.md: facts belong in retrieval), so the climb stops at RAG. {rag_levers(best)}",
            )
        return _tune(s, f"{evidence} {why} So the task teaches behaviour: tuning is next.", [])
    return Decision("stop", None, "top", f"{evidence} The tune rung is the top of the ladder.")


def rag_levers(arm: ArmResult) -> str:
    """Which levers a RAG arm's wrong answers point to: where the knowledge got lost."""
    missed, unused = arm.failures.get("not retrieved", 0), arm.failures.get("retrieved but not used", 0)
    retrieval = "better retrieval (more passages, other chunking), more documents or a better embedder"
    reading = "a larger model, a prompt that asks it to read the passages, or tune+rag (using context is behaviour)"
    if not missed and not unused:
        return f"The levers: {retrieval}, or {reading}."
    where = f"{unused} of {missed + unused} split wrong answers had the answer in their passages"
    if missed > unused:
        return f"{where}: mostly not retrieved, so {retrieval} are the levers."
    if unused > missed:
        return f"{where}: mostly retrieved but not used, so {reading} are the levers."
    return f"{where}: as often missed as unused, so both {retrieval}, and {reading}."


def _after_prompt(s: Situation, best: ArmResult, evidence: str) -> Decision:
    if s.has_corpus:
        return _go(
            s,
            "rag",
            "climb",
            f"{evidence} The task has a corpus: retrieval is the next rung (knowledge belongs in retrieval).",
        )
    teaches, why = teaches_for(s, best)
    if teaches == "knowledge":
        return Decision(
            "stop",
            None,
            "no-corpus",
            f"{evidence} {why} So the task teaches knowledge, and it has no corpus to retrieve from. "
            'Give it one (corpus = "NAME" in task.toml) to try RAG; fine-tuning does not add facts.',
        )
    how = "declared" if s.teaches else "guessed"
    skipped = [f"rag: the task has no corpus, and it teaches behaviour ({how}), not missing knowledge"]
    return _tune(s, f"{evidence} {why} So the task teaches behaviour, and it has no corpus: RAG is skipped.", skipped)


def _tune(s: Situation, evidence: str, skipped: list[str]) -> Decision:
    if s.train_examples < TRAINER_MINIMUM:
        return Decision(
            "stop",
            None,
            "too-few",
            f"{evidence} Only {s.train_examples} training examples: "
            f"the trainer refuses fewer than {TRAINER_MINIMUM} (a fine-tune would overfit or change "
            f"nothing). Collect toward {MIN_TRAIN}.",
            skipped + ["tune: too few training examples"],
        )
    if s.train_examples < s.min_train:
        return Decision(
            "stop",
            None,
            "too-few",
            f"{evidence} {s.train_examples} training examples is below "
            f"the {s.min_train} the climb asks for before tuning (rule of thumb: 200+): collect about "
            f"{s.min_train - s.train_examples} more, prompt meanwhile (--min-train lowers the bar, "
            f"not below {TRAINER_MINIMUM}).",
            skipped + ["tune: too few training examples"],
        )
    return _go(
        s,
        "tune",
        "climb",
        f"{evidence} With {s.train_examples} training examples (rule of thumb: 200+), "
        "train an adapter and measure tune" + (" and tune+rag." if s.has_corpus else "."),
        skipped,
    )


def _go(s: Situation, step: str, outcome: str, reason: str, skipped: list[str] | None = None) -> Decision:
    """Run `step`, unless --up-to or the budget stops the climb before it."""
    skipped = list(skipped or [])
    if STEPS.index(step) > STEPS.index(s.up_to):
        return Decision(
            "stop",
            None,
            "up-to",
            f"{reason} But --up-to {s.up_to} stops the climb before {step}.",
            skipped + [f"{step}: beyond --up-to {s.up_to}"],
        )
    need = s.estimates.get(step)
    if s.budget_left_s is not None and need is not None and need > s.budget_left_s:
        return Decision(
            "stop",
            None,
            "budget",
            f"{reason} But it would take about {_mins(need)} and "
            f"{_mins(s.budget_left_s)} of the budget is left: skipped.",
            skipped + [f"{step}: needs ~{_mins(need)}, {_mins(s.budget_left_s)} left"],
        )
    return Decision("run", step, outcome, reason, skipped)


def _mins(seconds: float) -> str:
    seconds = max(0.0, seconds)  # a budget overrun by a moment is none left, not "-0 s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
