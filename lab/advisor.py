"""The advisor: the decision procedure of docs/guide.md as code, backed by evaluation evidence when any.

The flowchart (docs/guide.md, "The decision flowchart"):
  1. Can few-shot prompting solve the task adequately? (the practical test: 20 good examples
     as few-shot against 50 held out; 90%+ of the quality target)  yes -> prompt, stop.
  2. Is the main problem a lack of knowledge?                        yes -> RAG, stop.
  3. Is it behaviour, style, format or reasoning?                    no  -> revisit the problem.
  4. 200+ high-quality examples?                     yes -> fine-tune; no -> collect data, prompt meanwhile.
Plus the "signs you should not fine-tune": requirements that change often, no clear evaluation
criteria; and the one sign for it beyond quality: per-request cost/latency at volume.

With a scoreboard the advisor names the cheapest rung (zero-shot < few-shot < rag < tune <
tune+rag) that meets the target, with its numbers, and says "fine-tuning helped" only when
`lab.evaluation.stats.compare` calls the gain significant: Holm-corrected across the scoreboard's
comparisons, and never on fewer than 6 examples (then it says "too few examples to tell").
The questions alone (no evaluation yet) and the Recommendation every advice is: lab/recommendation.py.
"""

from __future__ import annotations

from .advice_evidence import add_curve_evidence, add_preference_evidence, add_side_effect_evidence
from .diagnosis import diagnose
from .recommendation import (  # noqa: F401 (the advice's words, importable from here as before)
    DISTILL_VOLUME,
    EXPENSIVE_PROMPT_EXTRA,
    EXPENSIVE_PROMPT_RATIO,
    LADDER,
    MIN_EXAMPLES,
    OVERFIT_BELOW,
    PROMPT_RUNGS,
    QUESTIONS,
    THIN_EVIDENCE,
    TUNE_RUNGS,
    Questionnaire,
    Recommendation,
    advise_from_answers,
    questionnaire_fields,
)

# ---- with evaluation evidence ------------------------------------------------------------------


def _interval(c) -> str:
    from .evaluation.verdict import interval_text

    return interval_text(c)


def _fmt(a) -> str:
    from .evaluation.summary import money

    cost = f", {money(a.cost.per_1k)} per 1,000 requests ({a.cost.basis} basis)" if a.cost else ""
    return f"{a.arm} {a.quality}{cost}"


def advise_from_scoreboard(
    board,
    answers: Questionnaire | None = None,
    train_examples: int | None = None,
    has_corpus: bool = False,
    best_prompt=None,
    best_rag=None,
    distilled: dict | None = None,
) -> Recommendation:
    """The cheapest measured rung that meets the target, with the numbers and the tests behind it.
    `best_prompt` (a `prompt_rung.BestPrompt`): the tuned arm against the best measured prompt
    configuration; "fine-tuning helped" is then judged against that one. `best_rag` (a
    `rag_rung.BestRag`): the RAG rung is its best measured configuration, judged as the best of N.
    `distilled` (`stored_distillation`): the task's finished distillation, whose ledger sentence is
    said instead of the suggestion to distil an expensive prompt (`distill_advice`)."""
    task, target = board.task, board.target
    measured = [a for a in sorted(board.arms, key=lambda a: LADDER.index(a.arm)) if a.quality.mean is not None]
    if not measured:
        rec = advise_from_answers(answers or Questionnaire(), task)
        rec.reasons.insert(0, f"Eval run {board.run['id']} has no scored results yet.")
        return rec
    reasons, steps, change = [], [], []
    evidence = {
        "eval_run_id": board.run["id"],
        "task": task,
        "metric": board.primary_metric,
        "target": target,
        "arms": {},
        "comparisons": [c.as_dict() for c in board.comparisons],
    }
    for a in measured:
        evidence["arms"][a.arm] = {
            "quality": a.quality.mean,
            "ci": [a.quality.lo, a.quality.hi],
            "n": a.n,
            "meets_target": a.meets_target,
            "format_valid": a.format_valid,
            "cost_per_1k": a.cost.per_1k if a.cost else None,
            "break_even_requests": a.break_even.requests if a.break_even else None,
            "failures": a.failures,
        }

    def cmp(a: str, b: str):
        return board.comparison(a, b)

    # Tuning is off the table when requirements change often (seeds), whatever it scores.
    allowed = measured
    if answers and answers.requirements_change_often:
        allowed = [a for a in measured if a.arm not in TUNE_RUNGS] or measured
        if len(allowed) < len(measured):
            reasons.append("Requirements change often: tuned arms are left out (each change means retraining).")

    choice = _choose(board, allowed, best_prompt, best_rag)
    reasons += choice.reasons
    steps += choice.steps
    change += choice.change
    chosen = choice.rung.row
    from_prompt_config = best_prompt is not None and chosen is best_prompt.arm
    evidence["choice"] = {
        "arm": choice.rung.arm,
        "name": choice.rung.name,
        "verdict": choice.state,
        "candidates": choice.rung.candidates,
        "margin": _margin(board),
        "as_good": choice.as_good.as_dict() if choice.as_good is not None else None,
        "eval_run_id": choice.rung.eval_run_id or board.run["id"],  # where the pick's answers are (`lab export`)
    }
    _what_each_step_bought(board, reasons, skip_tune_vs_prompt=best_prompt is not None)
    if best_prompt is not None and best_prompt.comparison is not None:
        _tuning_against_best_prompt(best_prompt, reasons, evidence)

    diagnose(
        board,
        measured,
        chosen,
        answers,
        train_examples,
        has_corpus,
        reasons,
        steps,
        change,
        met=choice.state in ("meets", "as-good"),
        name=choice.rung.name,
    )

    # Cost: when tuning pays for itself.
    for a in measured:
        if a.arm in TUNE_RUNGS and a.break_even is not None:
            be = a.break_even
            if be.requests is None:
                change.append(
                    f"{a.arm} is not cheaper per request than {be.baseline} here, so its training never pays back"
                )
            else:
                change.append(
                    f"{a.arm}'s training ({a.training_cost:.4g}) pays for itself after {be}: "
                    "with more requests per day, tuning gets cheaper relative to prompting"
                )
    # an expensive prompt at volume: distil it (not when requirements change often: a student is retrained too)
    rung = None if answers and answers.requirements_change_often else choice.rung.arm
    label = best_prompt.config.label() if from_prompt_config else chosen.arm
    distill_advice(board, rung, chosen, label, reasons, steps, evidence, distilled)
    higher = [
        a
        for a in measured
        if not from_prompt_config
        and LADDER.index(a.arm) > LADDER.index(chosen.arm)
        and (c := cmp(chosen.arm, a.arm)) is not None
        and c.significant
        and c.diff > 0
    ]
    if higher:
        change.append(f"the target rose above {chosen.quality.mean:.2f}: {_fmt(higher[0])} is significantly better")
    if answers and answers.requirements_change_often and chosen.arm not in TUNE_RUNGS:
        change.append("the requirements stopped changing: tuned arms would be back in the running")
    return flag_thin_evidence(
        board,
        Recommendation(
            chosen.arm,
            reasons,
            evidence,
            steps,
            change,
            source=f"eval run {board.run['id']}",
            meets_target=choice.state in ("meets", "as-good"),
            verdict=choice.state,
            name=choice.rung.name,
        ),
    )


# ---- an expensive prompt at volume: `lab distill` -----------------------------------------------


def expensive_prompt(board, rung: str | None, row) -> dict | None:
    """The pick as an expensive prompt at volume, by the rule in recommendation.py: a few-shot
    configuration whose prompts average EXPENSIVE_PROMPT_RATIO x zero-shot's tokens or more and
    EXPENSIVE_PROMPT_EXTRA more, dearer per request than zero-shot, at DISTILL_VOLUME+ requests a day
    (the task's [cost] requests_per_day); None when it is not one. `saving_per_day` is an upper bound:
    the day's requests at the pick's cost per 1,000 (`ArmSummary.cost`) less at zero-shot's."""
    zero = board.arm("zero-shot")
    per_day = (board.cost_assumptions or {}).get("requests_per_day")
    if rung != "few-shot" or row is None or zero is None or not per_day or per_day < DISTILL_VOLUME:
        return None
    pt, zt = row.prompt_tokens, zero.prompt_tokens
    if pt is None or zt is None or pt < EXPENSIVE_PROMPT_RATIO * zt or pt - zt < EXPENSIVE_PROMPT_EXTRA:
        return None
    if row.cost is None or zero.cost is None or row.cost.per_1k <= zero.cost.per_1k:
        return None
    return {
        "prompt_tokens": pt,
        "zero_shot_prompt_tokens": zt,
        "ratio": pt / zt if zt else None,
        "requests_per_day": per_day,
        "per_1k": row.cost.per_1k,
        "zero_shot_per_1k": zero.cost.per_1k,
        "basis": row.cost.basis,
        "saving_per_day": (row.cost.per_1k - zero.cost.per_1k) * per_day / 1000,
    }


def distill_advice(board, rung, row, label: str, reasons: list, steps: list, evidence: dict, distilled=None) -> None:
    """Suggest `lab distill` when the pick is an expensive prompt at volume (`expensive_prompt`), with
    what it could save a day as an estimate; when the task has a finished distillation, its ledger's
    own sentence (worded by `evaluation.verdict`) instead."""
    from .evaluation.summary import money

    found = expensive_prompt(board, rung, row)
    if distilled:
        name = f", {distilled['name']}" if distilled.get("name") else ""
        reasons.append(f"The task's latest distillation (#{distilled['distill_id']}{name}): {distilled['sentence']}")
    elif found:
        ratio = f"{found['ratio']:.1f}x" if found["ratio"] else "more than"
        steps.append(
            f"distil the prompt: {label} sends {found['prompt_tokens']:,.0f} prompt tokens a request, {ratio} "
            f"zero-shot's {found['zero_shot_prompt_tokens']:,.0f}, at {found['requests_per_day']:,.0f} requests a "
            "day; a small student tuned on its answers is asked with the short prompt: "
            f"`lab distill {board.task} --teacher {board.run['model_id']}:best-prompt`. An estimate: up to "
            f"{money(found['saving_per_day'])} a day ({money(found['per_1k'])} against zero-shot's "
            f"{money(found['zero_shot_per_1k'])} per 1,000 requests, {found['basis']} basis) if a distilled "
            "student matched it; the distillation's ledger says whether one does"
        )
    if found or distilled:
        evidence["distill"] = {
            "suggested": bool(found and not distilled),
            "expensive_prompt": found,
            "distillation": distilled,
        }


def stored_distillation(lab, task: str) -> dict | None:
    """The task's newest finished distillation as the advice says it: its id, name and ledger sentence.
    Read from the store's row (`lab.distill` sits above the advisor); None when there is none."""
    import json

    row = lab.store.latest_distill(task)
    try:
        ledger = json.loads(row["ledger_json"]) if row else None
    except (TypeError, ValueError):  # a ledger that cannot be read is no distillation to quote
        return None
    if not isinstance(ledger, dict) or not ledger.get("sentence"):
        return None
    return {"distill_id": row["id"], "name": row.get("name") or ledger.get("name"), "sentence": ledger["sentence"]}


def examples_to_run(board) -> int:
    """How many examples to evaluate next: enough to see the differences observed (the power
    estimate), at least THIN_EVIDENCE, at most what the task holds out."""
    needed = max([THIN_EVIDENCE] + [c.needed for c in board.comparisons if c.needed])
    return min(needed, board.n_examples) if board.n_examples else needed


def thin_evidence(board) -> str | None:
    """Why a scoreboard is too small to recommend from (fewer than THIN_EVIDENCE examples per
    arm); None when it is not."""
    n = max((a.n for a in board.arms), default=0)
    if n >= THIN_EVIDENCE:
        return None
    more = (
        f"evaluate about {examples_to_run(board)} examples"
        if n < board.n_examples
        else f"add held-out examples (the task has only {board.n_examples})"
    )
    return (
        f"The evidence is too thin: only {n} example{'s' if n != 1 else ''} per arm were scored, so the "
        f"ranking below could be chance. Treat this as a first look, not a recommendation, and {more}."
    )


def flag_thin_evidence(board, rec: Recommendation) -> Recommendation:
    """Put the thin-evidence warning first in the reasons and the next steps (and in the headline)."""
    warning = thin_evidence(board)
    if warning:
        rec.thin_evidence = warning
        rec.reasons.insert(0, warning)
        if max((a.n for a in board.arms), default=0) < board.n_examples:
            rec.next_steps.insert(
                0,
                f"evaluate more examples before acting on this: "
                f"`lab eval {board.task} --limit {examples_to_run(board)}`",
            )
    return rec


def _margin(board) -> float:
    from .evaluation.verdict import MARGIN

    return float(getattr(board, "margin", None) or MARGIN)


def board_scores(board, arm: str) -> dict:
    """{example id: primary score} of one scoreboard arm (repeats averaged)."""
    return {
        e["id"]: e["outputs"][arm]["primary"]
        for e in board.examples
        if arm in e["outputs"] and e["outputs"][arm]["primary"] is not None
    }


def _choose(board, allowed: list, best_prompt=None, best_rag=None):
    """`rung_choice.choose` over the allowed arms; the prompt rung is its best measured configuration
    (judged as the best of N) when the sweep measured several, else this run's prompt arms; the RAG
    rung likewise (`rag_rung`: passages, chunk size, with examples) when rag is allowed. The
    scoreboard's rows are judged again with the same shares of the 5%, so its 'meets' column and
    the advice never disagree."""
    from .evaluation.rung_choice import Rung, choose, shared
    from .evaluation.verdict import RUNG_OF, meets_arm

    rungs = [Rung(a.arm, a.arm, a.quality.mean, a.n, board_scores(board, a.arm), row=a) for a in allowed]
    if best_prompt is not None and best_prompt.arm is not None and best_prompt.arm.quality.mean is not None:
        rungs = [r for r in rungs if r.arm not in PROMPT_RUNGS]
        rungs.append(_sweep_rung(board, best_prompt, best_prompt.config.arm, "prompt rung"))
    if best_rag is not None and best_rag.arm is not None and any(r.arm == "rag" for r in rungs):
        rungs = [r for r in rungs if r.arm != "rag"]
        rungs.append(_sweep_rung(board, best_rag, "rag", "RAG rung"))
    share = {RUNG_OF[r.arm]: r.candidates for r in shared(rungs)}
    for a in board.arms + board.others:  # others: the prompt and RAG sweeps' best configurations
        rung = "rag" if best_rag is not None and a is best_rag.shown else RUNG_OF.get(a.arm, "prompt")
        a.verdict = meets_arm(a.quality, board.target, share.get(rung, 1))
        a.meets_target = a.verdict.ok
    return choose(rungs, board.target, _margin(board), board.score_type)


def _sweep_rung(board, best, arm: str, rung: str):
    """A sweep's best configuration (`BestPrompt`, `BestRag`) as the rung `choose` weighs, named by
    it and judged as the best of its candidates."""
    from .evaluation.rung_choice import Rung

    cfg = best.config
    where = "" if cfg.eval_run_id == board.run["id"] else f", eval run {cfg.eval_run_id}"
    name = f"{cfg.label()} (the {rung}'s best of {best.candidates} configurations{where})"
    return Rung(
        arm,
        name,
        cfg.score,
        cfg.n,
        dict(cfg.per_example),
        candidates=best.candidates,
        row=best.arm,
        eval_run_id=cfg.eval_run_id,
    )


def _what_each_step_bought(board, reasons: list, skip_tune_vs_prompt: bool = False) -> None:
    """Say what each step up the ladder bought, significant or not (tune against the prompt arms
    of this run is skipped when it is measured against the best prompt configuration instead)."""
    for lower, upper, what in [
        ("zero-shot", "few-shot", "few-shot examples"),
        ("few-shot", "rag", "retrieval"),
        ("zero-shot", "rag", "retrieval"),
        ("few-shot", "tune", "fine-tuning"),
        ("zero-shot", "tune", "fine-tuning"),
        ("rag", "tune+rag", "fine-tuning on top of RAG"),
    ]:
        c = board.comparison(lower, upper)
        if c is None or c.diff is None or (skip_tune_vs_prompt and upper == "tune" and lower in PROMPT_RUNGS):
            continue
        reasons.append(_verdict(c, what, f"{upper} vs {lower}"))


def _verdict(c, what: str, pair: str, against: str = "") -> str:
    from .evaluation.verdict import helped_text

    return helped_text(c, what, pair, against)


def _tuning_against_best_prompt(best, reasons: list, evidence: dict) -> None:
    """Did fine-tuning help, against the best prompt configuration measured (not merely this run's
    few-shot)? Names the configuration; one test, not Holm-corrected with the scoreboard's."""
    c, cfg = best.comparison, best.config
    name = (
        f"the best measured prompt configuration ({cfg.label()}, {cfg.score:.3f}, eval run "
        f"{cfg.eval_run_id}; best of {best.candidates})"
    )
    evidence["best_prompt"] = {**cfg.as_dict(), "candidates": best.candidates, "comparison": c.as_dict()}
    if c.diff is None:
        return
    reasons.append(_verdict(c, "fine-tuning", f"{c.b} vs it", against=name))


def advise(
    board=None,
    answers: Questionnaire | None = None,
    task: str = "TASK",
    train_examples: int | None = None,
    has_corpus: bool = False,
) -> Recommendation:
    """With a scoreboard: evidence first. Without: the questionnaire."""
    if board is not None:
        return advise_from_scoreboard(board, answers, train_examples, has_corpus)
    return advise_from_answers(answers or Questionnaire(), task)


def recommend_for_run(lab, board, answers: Questionnaire | None = None) -> Recommendation:
    """The advice for a summarised eval run, with the task's training-set size and corpus."""
    from .evaluation.prompt_rung import best_prompt_for_run
    from .evaluation.rag_rung import best_rag_for_run
    from .evaluation.summary import load_run, summarize, task_of_run

    run = load_run(lab, board.run["id"])
    task = task_of_run(run)
    best = best_prompt_for_run(lab, run, "tune", board.score_type)
    if best is not None:  # its row, scored against this board's target
        judged = task.model_copy(update={"target": board.target})
        best.arm = (
            board.arm(best.config.arm)
            if best.config.eval_run_id == board.run["id"]
            else summarize(lab, best.config.eval_run_id, task=judged).arm(best.config.arm)
        )
    if best is not None and best.arm is not None and best.config.eval_run_id != board.run["id"]:
        from dataclasses import replace  # a row and a point like any arm, named by its configuration

        board.others = [
            replace(best.arm, arm=f"{best.config.label()} (best of {best.candidates}, run {best.config.eval_run_id})")
        ]
    best_rag = best_rag_for_run(lab, run) if task.corpus else None
    if best_rag is not None:  # its row, scored against this board's target, shown beside the arms
        judged = task.model_copy(update={"target": board.target})
        cfg = best_rag.config
        row = (
            board.arm("rag")
            if cfg.eval_run_id == board.run["id"]
            else summarize(lab, cfg.eval_run_id, task=judged).arm("rag")
        )
        if row is not None and cfg.eval_run_id != board.run["id"]:
            from dataclasses import replace  # shown beside the arms, named by its configuration

            best_rag.shown = replace(row, arm=f"{cfg.label()} (best of {best_rag.candidates}, run {cfg.eval_run_id})")
            board.others = [*board.others, best_rag.shown]
        best_rag.arm = row
    rec = advise_from_scoreboard(
        board,
        answers,
        train_examples=len(task.examples("train")),
        has_corpus=bool(task.corpus),
        best_prompt=best,
        best_rag=best_rag,
        distilled=stored_distillation(lab, task.name),
    )
    add_curve_evidence(lab, rec, task.name, len(task.examples("train")))
    add_side_effect_evidence(lab, rec, board)
    add_preference_evidence(lab, rec, task, board.run["id"])
    return rec
