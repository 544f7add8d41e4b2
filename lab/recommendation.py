"""The advice without an evaluation, and what every advice is: the flowchart's questions
(docs/guide.md, "The decision flowchart") as a `Questionnaire`, answered into a `Recommendation`.

  1. Can few-shot prompting solve the task adequately? (the practical test: 20 good examples
     as few-shot against 50 held out; 90%+ of the quality target)  yes -> prompt, stop.
  2. Is the main problem a lack of knowledge?                        yes -> RAG, stop.
  3. Is it behaviour, style, format or reasoning?                    no  -> revisit the problem.
  4. 200+ high-quality examples?                     yes -> fine-tune; no -> collect data, prompt meanwhile.
Plus the "signs you should not fine-tune": requirements that change often, no clear evaluation
criteria; and the one sign for it beyond quality: per-request cost/latency at volume.
The advisor (`lab.advisor`) answers the same questions from an evaluation's evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .prompts import ARMS

LADDER = ARMS  # the arms, cheapest first
PROMPT_RUNGS = {"zero-shot", "few-shot"}
TUNE_RUNGS = {"tune", "tune+rag"}
MIN_EXAMPLES = 200  # seeds: "typically 200+ examples minimum"
OVERFIT_BELOW = 100  # seeds: "fewer than 100 high-quality examples ... likely to overfit"
THIN_EVIDENCE = 20  # fewer examples per arm behind an evaluation: the advice says the evidence is too thin
# An expensive prompt at volume, where the advice suggests `lab distill` (a student tuned on the
# prompt's answers, asked with the short prompt): the pick is a few-shot configuration whose prompts
# average at least EXPENSIVE_PROMPT_RATIO x zero-shot's and EXPENSIVE_PROMPT_EXTRA more tokens, it
# costs more per request than zero-shot, and the task's [cost] requests_per_day is DISTILL_VOLUME+.
EXPENSIVE_PROMPT_RATIO = 3.0
EXPENSIVE_PROMPT_EXTRA = 300
DISTILL_VOLUME = 1000


@dataclass
class Questionnaire:
    """The flowchart's questions (docs/guide.md). None means "don't know yet"."""

    few_shot_reaches_90pct: bool | None = None  # does few-shot reach 90% of your quality target?
    lacks_knowledge: bool = False  # is the main problem missing facts (your docs, recent data)?
    behaviour_problem: bool = False  # ... or style, tone, output format, reasoning pattern?
    good_examples: int = 0  # high-quality examples of the desired behaviour you have
    requirements_change_often: bool = False  # does the wanted behaviour change every few weeks?
    cost_or_latency_pressure: bool = False  # thousands of requests a day, long prompts, tight latency?
    clear_success_metric: bool = True  # can you say what a good output is (and score it)?


# (field, question) in the order the CLI asks them
QUESTIONS = [
    ("clear_success_metric", "Can you define what a good output is, so it can be scored?"),
    (
        "few_shot_reaches_90pct",
        "With ~20 good examples in the prompt, does the model reach 90% of your quality target? (unknown if not tried)",
    ),
    ("lacks_knowledge", "Is the main problem that the model lacks knowledge (your documents, facts that change)?"),
    ("behaviour_problem", "Is the main problem behaviour: style, tone, a strict output format, a reasoning pattern?"),
    ("good_examples", "How many high-quality examples of the desired behaviour do you have?"),
    ("requirements_change_often", "Do the requirements change often (every few weeks)?"),
    (
        "cost_or_latency_pressure",
        "Is per-request cost or latency a pressure (thousands of requests a day, long prompts)?",
    ),
]


@dataclass
class Recommendation:
    rung: str  # a LADDER rung, or "revisit" (the problem is neither knowledge nor behaviour)
    reasons: list[str]
    evidence: dict = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)
    would_change_if: list[str] = field(default_factory=list)
    source: str = "questionnaire"  # or "evaluation"
    provisional: bool = False  # no measurement backs it yet
    meets_target: bool | None = None  # evaluation: does the named rung reach the target? (None: not measured)
    thin_evidence: str | None = None  # evaluation on too few examples: why this is only a first look
    verdict: str | None = None  # evaluation: the pick's `rung_choice.choose` state (meets, maybe, misses, as-good)
    name: str | None = None  # the pick as measured: "few-shot, 8 similar examples, constrained"

    def as_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> str:
        title = {
            "zero-shot": "prompt (zero-shot)",
            "few-shot": "prompt (few-shot)",
            "rag": "RAG",
            "tune": "fine-tune (LoRA)",
            "tune+rag": "fine-tune + RAG",
            "revisit": "revisit the problem definition",
        }.get(self.rung, self.rung)
        thin = " (evidence too thin: a first look, not a recommendation)" if self.thin_evidence else ""
        if self.name and self.name not in (self.rung, title):
            title = f"{title}: {self.name}"
        if self.verdict == "maybe":
            return f"Recommendation: {title} may meet the target; more held-out examples would tell{thin}"
        if self.verdict == "as-good":
            return f"Recommendation: {title}, as good as a rung that meets the target, and cheaper{thin}"
        if self.meets_target is False:
            return f"Recommendation: no measured rung meets the target yet; the best so far is {title}{thin}"
        return f"Recommendation: {title}{thin}" + (" (provisional: nothing measured yet)" if self.provisional else "")

    def to_text(self) -> str:
        lines = [self.headline(), f"  based on: {self.source}", "", "Why:"]
        lines += [f"  - {r}" for r in self.reasons]
        if self.next_steps:
            lines += ["", "Next:"] + [f"  - {s}" for s in self.next_steps]
        if self.would_change_if:
            lines += ["", "The answer would change if:"] + [f"  - {w}" for w in self.would_change_if]
        return "\n".join(lines + ["", "Why these rules: docs/guide.md in the Ladder Lab's folder."])


# ---- without evaluation: the questionnaire ----------------------------------------------------


def advise_from_answers(q: Questionnaire, task: str = "TASK") -> Recommendation:
    reasons, steps, change = [], [], []
    experiment = (
        f"run the few-shot test: your best ~20 examples as few-shot against ~50 held out: "
        f"`lab eval {task} --arms zero-shot,few-shot --limit 50`"
    )

    if not q.clear_success_metric:
        return Recommendation(
            "few-shot",
            [
                "No clear evaluation criteria: without them you cannot build a dataset or tell whether "
                "fine-tuning helped (docs/guide.md: when not to fine-tune). Prompt engineering meanwhile."
            ],
            next_steps=["define the metric first: a task.toml with a scorer and a held-out set"],
            would_change_if=["you can score outputs: then answer the questionnaire again"],
            provisional=True,
        )

    # 1. Can few-shot prompting solve it?
    if q.few_shot_reaches_90pct:
        reasons.append(
            "Few-shot prompting reaches 90%+ of the quality target: prompt engineering is "
            "sufficient (flowchart step 1: stop here)."
        )
        change.append("few-shot falls below 90% of the target on a larger held-out set")
        if q.cost_or_latency_pressure and q.good_examples >= MIN_EXAMPLES and not q.requirements_change_often:
            steps.append(
                f"with {q.good_examples} examples and cost pressure, measure tuning's break-even: "
                f"`lab train --task {task}` then `lab eval {task} --arms few-shot,tune`"
            )
            change.append(
                "a tuned model matches few-shot quality and its shorter prompts pay back the training "
                "within your planning horizon (the break-even in `lab eval`)"
            )
        return Recommendation("few-shot", reasons, next_steps=steps, would_change_if=change)
    provisional = q.few_shot_reaches_90pct is None
    if provisional:
        steps.append(experiment)
        reasons.append(
            "Not known yet whether few-shot prompting is enough: that experiment comes first "
            "(flowchart step 1); the rest of this answer assumes it falls short."
        )
    else:
        reasons.append("Few-shot prompting falls short of 90% of the target (flowchart step 1: no).")

    return _knowledge_behaviour_examples(q, task, reasons, steps, change, provisional)


def _knowledge_behaviour_examples(
    q: Questionnaire, task: str, reasons: list, steps: list, change: list, provisional: bool
) -> Recommendation:
    """Flowchart steps 2-4, once few-shot prompting falls short (or is not measured yet)."""
    # 2. Lack of knowledge?
    if q.lacks_knowledge:
        reasons.append(
            "The main problem is missing knowledge: retrieval puts your documents in the prompt; "
            "fine-tuning changes behaviour, not knowledge, and updating a fact would mean retraining "
            "(flowchart step 2)."
        )
        steps.append(f"index the documents and compare: `lab eval {task} --arms few-shot,rag`")
        if q.behaviour_problem and q.good_examples >= MIN_EXAMPLES and not q.requirements_change_often:
            change.append(
                "RAG finds the right facts but the output format/style still fails: with "
                f"{q.good_examples} examples, tune for format and keep RAG for facts (tune+rag)"
            )
        else:
            change.append(
                "the answers are right in substance but wrong in format/style, and you have "
                f"{MIN_EXAMPLES}+ examples: then tune+rag"
            )
        return Recommendation("rag", reasons, next_steps=steps, would_change_if=change, provisional=provisional)

    # 3. Behaviour, style, format, reasoning?
    if not q.behaviour_problem:
        reasons.append(
            "The problem is neither missing knowledge nor behaviour/format: revisit the problem "
            "definition (flowchart step 3)."
        )
        steps.append("look at the failing outputs (`lab log`) and say what exactly is wrong with them")
        return Recommendation(
            "revisit",
            reasons,
            next_steps=steps,
            would_change_if=[
                "the failures turn out to be missing facts (-> RAG) or format/behaviour (-> tune with 200+ examples)"
            ],
            provisional=provisional,
        )
    reasons.append("The problem is behaviour/format/style (flowchart step 3): the kind of thing tuning fixes.")

    if q.requirements_change_often:
        reasons.append(
            "But the requirements change often: retraining on every change is impractical, so stay "
            "with prompts (and RAG for facts) (docs/guide.md: when not to fine-tune)."
        )
        change.append("the requirements settle down: then, with 200+ examples, fine-tune")
        steps.append("keep the few-shot examples in a file you can edit as the requirements move")
        return Recommendation("few-shot", reasons, next_steps=steps, would_change_if=change, provisional=provisional)

    # 4. 200+ examples?
    if q.good_examples >= MIN_EXAMPLES:
        reasons.append(
            f"{q.good_examples} good examples is enough to fine-tune (the rule of thumb is "
            f"{MIN_EXAMPLES}+) (flowchart step 4: yes)."
        )
        if q.cost_or_latency_pressure:
            reasons.append(
                "Cost/latency pressure favours tuning too: the instructions move into the weights, "
                "so every request is shorter; the break-even point says when training has paid off."
            )
        steps.append(
            f"train an adapter and measure it against few-shot: `lab train --task {task}`, then "
            f"`lab eval {task} --arms few-shot,tune`"
        )
        change.append(
            "the tuned arm's gain over few-shot is not significant on held-out data (then few-shot "
            "is the cheaper equal)"
        )
        change.append("the requirements start changing often (retraining each time)")
        return Recommendation("tune", reasons, next_steps=steps, would_change_if=change, provisional=provisional)

    short = MIN_EXAMPLES - q.good_examples
    reasons.append(
        f"Only {q.good_examples} good examples: collect about {short} more before tuning; "
        "prompt engineering in the meantime (flowchart step 4: no)."
    )
    if q.good_examples < OVERFIT_BELOW:
        reasons.append(f"Under {OVERFIT_BELOW} examples a fine-tune is likely to overfit or change nothing.")
    steps.append(f"collect examples toward {MIN_EXAMPLES}; every one is also a few-shot candidate and a test case")
    change.append(f"you reach {MIN_EXAMPLES}+ good examples: then fine-tune and measure against few-shot")
    return Recommendation("few-shot", reasons, next_steps=steps, would_change_if=change, provisional=provisional)


def questionnaire_fields() -> list[str]:
    return [f.name for f in fields(Questionnaire)]
