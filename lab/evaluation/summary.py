"""The scoreboard of one evaluation run: per arm quality with its interval, format validity,
latency, tokens and cost; arm against arm (`stats.compare_all`: exact McNemar or a sign-flip
permutation test, Holm-corrected); why each wrong answer was wrong; and the examples where the
arms disagree."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import ladder
from ..prompts import ARMS
from ..tasks import load_task
from . import costs, stats, verdict
from .attribution import NOT_RETRIEVED, NOT_USED, NOTES, rag_failure, split_note
from .scorers import CONTINUOUS, CORPUS_LEVEL, canonical, extract_label, is_wrong, macro_f1, primary_name

FAILURES = ["request failed", "truncated", "output invalid", NOT_RETRIEVED, NOT_USED, "answer wrong"]
# What each failure means, for people who did not write the scorers (tooltips, report, text).
FAILURE_NOTES = {
    "request failed": "the model gave no answer: the request itself failed (prompt too long, adapter would not load)",
    "truncated": "the answer ran into the token budget (max_tokens) before it finished: raise max_tokens",
    "output invalid": "the answer is not in the required format (not valid JSON, not one of the labels, a schema "
    "field missing), so it could not be scored as right",
    **NOTES,  # RAG arms: not retrieved / retrieved but not used (evaluation/attribution.py)
    "answer wrong": "a well-formed answer with the wrong content",
}
# What a cost's basis means (the scoreboard shows "(time basis)" beside every cost).
COST_BASIS_NOTES = {
    "time": "time basis: the measured seconds per request × what an hour of this machine costs "
    "(the task's cpu_hour_price / gpu_hour_price), so latency differences are cost differences",
    "tokens": "tokens basis: the mean prompt and completion tokens per request × the task's API prices per "
    "1,000 tokens",
}


@dataclass
class ArmSummary:
    arm: str
    n: int  # examples scored (repeats averaged per example)
    quality: stats.Estimate
    meets_target: bool
    format_valid: float | None
    metrics: dict[str, float | None]  # mean of every score (field:*, recall_at_k, context_hit, citation...)
    latency_p50: float | None
    latency_p95: float | None
    prompt_tokens: float | None  # mean per request
    completion_tokens: float | None
    cost: costs.RequestCost | None  # per 1,000 requests
    failures: dict[str, int]
    errors: int
    stability: float | None = None  # repeats > 1: share of examples whose repeats all agree
    training_cost: float | None = None
    training_wall_s: float | None = None
    training_device: str | None = None
    break_even: costs.BreakEven | None = None
    adapter: str | None = None
    constrained: bool | None = None  # constrained decoding enforced on every answer (None: not asked)
    verdict: verdict.Meets | None = None  # does it meet the target (`verdict.meets`); meets_target is its .ok
    beyond: int = 0  # examples this arm scored that not every arm did: left out of n, quality and verdict
    side_effects: list[str] = field(default_factory=list)  # the first tuned arm: its adapter's costs elsewhere

    def as_dict(self) -> dict:
        d = asdict(self)
        d["quality"] = self.quality.as_dict()
        return d

    def meets_cell(self) -> str:
        """yes / maybe / no, as every face shows it."""
        return self.verdict.cell() if self.verdict else ("yes" if self.meets_target else "no")


@dataclass
class Scoreboard:
    run: dict
    task: str
    primary_metric: str
    target: float
    arms: list[ArmSummary]
    comparisons: list[stats.Comparison]  # Holm-corrected across this list
    examples: list[dict]  # id, input, expected, outputs {arm: {output, primary, failure}}, disagree
    n_examples: int  # held-out examples in the task
    complete: bool
    cost_assumptions: dict = field(default_factory=dict)
    score_type: str = "binary"  # stats.score_type_of the per-example primary scores: which tests apply
    margin: float = verdict.MARGIN  # the task's non-inferiority margin ("as good as")
    # rows measured in other runs of the same prompt sweep, shown beside the arms (the prompt rung's
    # best configuration, named by it: `advisor.recommend_for_run` adds it); never compared here
    others: list[ArmSummary] = field(default_factory=list)
    # blind pairwise preference on this run's pairs (yours, or a certified judge's: the gate's words)
    preference: list[str] = field(default_factory=list)

    def arm(self, name: str) -> ArmSummary | None:
        return next((a for a in self.arms if a.arm == name), None)

    def comparison(self, a: str, b: str) -> stats.Comparison | None:
        return next((c for c in self.comparisons if c.a == a and c.b == b), None)

    def as_dict(self) -> dict:
        return {
            "run": self.run,
            "task": self.task,
            "primary_metric": self.primary_metric,
            "target": self.target,
            "arms": [a.as_dict() for a in self.arms],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "examples": self.examples,
            "n_examples": self.n_examples,
            "complete": self.complete,
            "cost_assumptions": self.cost_assumptions,
            "score_type": self.score_type,
            "margin": self.margin,
            "preference": self.preference,
        }

    def sentence(self, c: stats.Comparison) -> str:
        """The comparison in one plain sentence (`plain_sentence`), with this board's arms."""
        return plain_sentence(c, self.arm(c.a), self.arm(c.b))

    def to_text(self) -> str:
        r = self.run
        lines = [
            f"Eval run {r['id']} · task {self.task} · model {r['model_id']} · {coverage(self)}",
            f"Primary metric: {self.primary_metric}, target {self.target:.2f}",
            "",
        ]
        head = [
            "arm",
            "n",
            f"{self.primary_metric} [95% CI]",
            "meets",
            "format",
            "p50 s",
            "p95 s",
            "prompt tok",
            "compl tok",
            "cost/1k req",
        ]
        rows = []
        for a in self.arms + self.others:
            rows.append(
                [
                    a.arm,
                    str(a.n),
                    str(a.quality),
                    a.meets_cell(),
                    _pct(a.format_valid),
                    _num(a.latency_p50, 2),
                    _num(a.latency_p95, 2),
                    _num(a.prompt_tokens, 0),
                    _num(a.completion_tokens, 0),
                    cost_cell(a.cost),
                ]
            )
        lines += text_table(head, rows)
        if note := beyond_note(self):
            lines.append(note)
        lines += [
            f"Cost, {COST_BASIS_NOTES[b]}."
            for b in sorted({a.cost.basis for a in self.arms if a.cost})
            if b in COST_BASIS_NOTES
        ]
        for a in self.arms:
            if a.training_cost is not None or a.adapter:
                lines.append(
                    f"\n{a.arm}: adapter {a.adapter}; training {_num(a.training_wall_s, 0)} s on "
                    f"{a.training_device or '?'} = {money(a.training_cost)}; break-even: "
                    f"{a.break_even if a.break_even else 'n/a'}"
                )
            lines += [f"{a.arm}: {line}" if i == 0 else f"  {line}" for i, line in enumerate(a.side_effects)]
            if a.stability is not None:
                lines.append(f"{a.arm}: repeats agree on {a.stability:.0%} of examples")
        if note := constrained_note(self):
            lines += ["", note]
        if self.comparisons:
            lines += ["", f"Arm against arm ({method_note(self)}):"]
            lines += [f"  {c}\n    {self.sentence(c)}" for c in self.comparisons]
        if self.preference:
            lines += ["", "Blind preference (the sign test on pairs rated side by side):"]
            lines += [f"  {line}" for line in self.preference]
        lines += ["", "Why answers were wrong (per arm):"]
        lines += text_table(
            ["arm", *FAILURES], [[a.arm, *(str(a.failures.get(f, 0)) for f in FAILURES)] for a in self.arms]
        )
        lines += [
            f"  {failure}: {FAILURE_NOTES[failure]}"
            for failure in FAILURES
            if any(a.failures.get(failure) for a in self.arms)
        ] + ([note] if (note := split_note(self)) else [])
        disagree = [e for e in self.examples if e["disagree"]]
        lines += [
            "",
            f"Arms disagree on {len(disagree)} of {len(self.examples)} examples"
            + (" (first 10):" if disagree else "."),
        ]
        for e in disagree[:10]:
            marks = "  ".join(f"{arm}={_num(o['primary'], 2)}" for arm, o in e["outputs"].items())
            lines.append(f"  {e['id']}: {marks}")
        return "\n".join(lines)


def plain_sentence(c: stats.Comparison, a: ArmSummary | None = None, b: ArmSummary | None = None) -> str:
    """One sentence a non-statistician understands, for every face (app, text, report): the
    comparison's own reading (wins and losses, chance or not, or how many examples it would
    take), except where both arms scored the same on every example: then whether they both
    failed or both succeeded, which "the arms agree" would hide."""
    if c.diff is not None and c.n and c.ties == c.n and a is not None and b is not None:
        both = {a.quality.mean, b.quality.mean}
        if both == {0.0}:
            return (
                f"Both {c.b} and {c.a} failed on every one of the {c.n} example{'s' if c.n != 1 else ''} "
                "(score 0): nothing to choose between them yet; read their outputs to see why."
            )
        if both == {1.0}:
            return f"Both {c.b} and {c.a} got every one of the {c.n} examples right: they cannot be told apart here."
    return c.reading()


def beyond_note(board: Scoreboard) -> str | None:
    """Which arms scored examples the others did not (left out so every arm is judged on the same ones)."""
    extra = [f"{a.arm} {a.beyond}" for a in board.arms if a.beyond]
    if not extra:
        return None
    n = min((a.n for a in board.arms), default=0)
    return (
        f"Every arm is judged on the {n} examples all of them scored; left out, scored by some arms only: "
        + ", ".join(extra)
        + " (evaluate the other arms on them to use them)."
    )


# An evaluation run's status as every face words it ("partial" is a run that did every example
# it was asked for, a --limit or a sample: complete as asked, not a failure)
STATUS_WORDS = {"finished": "complete", "partial": "complete as asked"}


def status_words(status: str | None) -> str:
    return STATUS_WORDS.get(status or "", status or "")


def coverage(board: Scoreboard) -> str:
    """How much of the task the run covers, in words: "5 of 84 examples, complete as asked",
    "all 84 examples", "3 of 84 examples so far (cancelled: Run resumes)"."""
    done = max((a.n + a.beyond for a in board.arms), default=0)
    status = board.run.get("status")
    of = f"{done} of {board.n_examples} examples"
    if board.complete:
        return f"all {board.n_examples} examples, complete"
    if status == "partial":  # the runner finished every example it was asked for (a --limit)
        return f"{of}, {status_words(status)}"
    if status == "running":
        return f"{of} so far (running)"
    if status in ("cancelled", "interrupted", "failed"):
        why = {"cancelled": "cancelled", "interrupted": "interrupted", "failed": "stopped by an error"}[status]
        return f"{of} so far ({why}: Run again resumes)"
    return f"{of} ({status})"


def results_note(board: Scoreboard) -> str:
    """ "10 results: 5 examples × 2 arms" (a result is one example through one arm)."""
    n = sum(len(e["outputs"]) for e in board.examples)
    per = max((a.n + a.beyond for a in board.arms), default=0)
    return f"{n} result{'s' if n != 1 else ''}: {per} example{'s' if per != 1 else ''} × {len(board.arms)} arm" + (
        "s" if len(board.arms) != 1 else ""
    )


def method_note(board: Scoreboard) -> str:
    """Which tests the comparisons used, in one line (the text, the app and the report say it)."""
    test = (
        "exact McNemar test on the discordant pairs, Newcombe interval"
        if board.score_type == "binary"
        else "paired sign-flip permutation test, BCa bootstrap interval"
    )
    test += "; each arm's interval Clopper-Pearson; meets = its lower end at or above the target"
    m = len([c for c in board.comparisons if c.p_value is not None])
    holm = f"; p Holm-corrected across {m} comparisons" if m > 1 else ""
    return f"b - a in {board.primary_metric}, 95% CI; {test}{holm}; never significant below {stats.MIN_PAIRS} examples"


def constrained_note(board: Scoreboard) -> str | None:
    """Which arms' answers were held to the label set / JSON schema, when the run asked for it."""
    if not board.run.get("config", {}).get("constrain"):
        return None
    marks = [f"{a.arm} {'yes' if a.constrained else 'NO'}" for a in board.arms]
    line = "Constrained decoding (answers held to the task's labels or schema): " + ", ".join(marks)
    if any(a.constrained is False for a in board.arms):
        line += (
            "\n  NO: the backend did not enforce it (e.g. transformers has no JSON-schema constraint "
            "in this environment): those answers are unconstrained"
        )
    return line


def money(v: float | None) -> str:
    """A price with its currency (the task's [cost] prices are in dollars)."""
    if v is None:
        return "n/a"
    if 0 < v < 0.0001:
        return "<$0.0001"
    return f"${v:,.2f}" if v >= 1 else f"${v:.4g}"


def cost_cell(cost: costs.RequestCost | None) -> str:
    """Cost of 1,000 requests with its unit and basis: "$0.0029 (time basis)"."""
    return "n/a" if cost is None else f"{money(cost.per_1k)} ({cost.basis} basis)"


def _num(v, digits: int) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def text_table(head: list[str], rows: list[list]) -> list[str]:
    """A plain left-aligned table as lines (the CLI prints its lists with it too)."""
    rows = [[str(x) for x in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]


# ---- building the scoreboard ------------------------------------------------------------------


def load_run(lab, eval_run_id: int) -> dict:
    run = lab.store.eval_run_row(eval_run_id)
    if run is None:
        raise ladder.ArmError(f"no eval run {eval_run_id} in {lab.store.path}")
    run["config"] = json.loads(run.get("config_json") or "{}")
    run["arms"] = json.loads(run.get("arms_json") or "[]")
    return run


def task_of_run(run: dict):
    src = run["config"].get("task_source")
    return load_task(src if src and Path(src).exists() else run["task"])


def result_rows(lab, eval_run_id: int) -> list[dict]:
    rows = lab.store.eval_result_rows(eval_run_id)
    for r in rows:
        r["scores"] = json.loads(r.get("scores_json") or "{}")
        r["extra"] = json.loads(r.get("extra_json") or "{}")
    return rows


def failure_of(row: dict, metric: str, labels: list[str] | None = None) -> str | None:
    """Why a wrong answer was wrong: the request failed, the answer was cut off by the token
    budget, the output was not in the required format, (RAG) no passage held the answer or one did
    and the answer missed it (`attribution.rag_failure`), or the answer itself was wrong. `labels`:
    a label task's, whose budget fits its longest label (`ladder.answer_budget`): there a cut answer
    is the budget's fault only when what was written is the start of a label; an answer that
    rambled past it is the model's (output invalid)."""
    s = row["scores"]
    if not is_wrong(s.get("primary"), metric):
        return None
    if row.get("error"):
        return "request failed"
    if row.get("finish_reason") == "length" and _cut_short(row.get("output") or "", labels):
        return "truncated"
    if s.get("format_valid") == 0:
        return "output invalid"
    return rag_failure(s) or "answer wrong"


def _cut_short(output: str, labels: list[str] | None) -> bool:
    if not labels:
        return True  # free text or JSON: the budget may well be at fault
    written = output.strip()
    return bool(written) and any(label != written and label.startswith(written) for label in labels)


def summarize(lab, eval_run_id: int, task=None, device: str = "cpu") -> Scoreboard:
    run = load_run(lab, eval_run_id)
    task = task or task_of_run(run)
    metric = primary_name(task)
    labels = list(task.labels or []) if task.output_format == "label" else None
    rows = result_rows(lab, eval_run_id)
    held_out = task.examples("eval")
    by_id = {e.id: e for e in held_out}
    present = [a for a in ARMS if any(r["arm"] == a for r in rows)] or run["arms"]

    # per arm, per example: the primary scores of the repeats, and their mean (the unit of every test)
    repeats: dict[str, dict[str, list]] = {arm: {} for arm in present}
    for r in rows:
        if r["arm"] in repeats:
            repeats[r["arm"]].setdefault(r["example_id"], []).append(r["scores"].get("primary"))
    per_example = {arm: {ex: stats.mean(v) for ex, v in repeats[arm].items()} for arm in present}
    # every arm is judged on the same examples: those all of them scored (a run that an earlier, larger
    # `lab eval` filled for some arms would otherwise put n = 44 beside n = 30); the rest are counted
    common = set.intersection(*(set(v) for v in per_example.values())) if per_example else set()
    judged_on = {arm: {ex: s for ex, s in v.items() if ex in common} for arm, v in per_example.items()}
    # binary tests (McNemar, Wilson) when every per-example score is 0 or 1; graded ones otherwise
    score_type = stats.score_type_of(
        *(list(v.values()) for v in per_example.values()), graded_metric=metric in CONTINUOUS
    )
    # every arm is a chance to meet the target by luck: they share the 5% (`verdict.family`)
    share = verdict.family(verdict.RUNG_OF.get(a, a) for a in present)
    summaries = []
    for arm in present:
        arm_rows = [r for r in rows if r["arm"] == arm]
        scores_by_ex = repeats[arm]
        keys = sorted({k for r in arm_rows for k in r["scores"] if k != "primary"})
        metrics = {k: stats.mean([r["scores"].get(k) for r in arm_rows]) for k in keys}
        if "macro_f1" in {canonical(x) for x in (task.scorers or [])} & CORPUS_LEVEL:
            labels = list(task.labels or [])
            golds = [by_id[r["example_id"]].output for r in arm_rows if r["example_id"] in by_id]
            preds = [
                extract_label(r.get("output") or "", labels) if labels else (r.get("output") or "")
                for r in arm_rows
                if r["example_id"] in by_id
            ]
            metrics["macro_f1"] = macro_f1(golds, preds, labels or None)
        fails = {f: 0 for f in FAILURES}
        for r in arm_rows:
            f = failure_of(r, metric, labels)
            if f:
                fails[f] += 1
        ok = [r for r in arm_rows if not r.get("error")]
        pt = stats.mean([r["prompt_tokens"] for r in ok])
        ct = stats.mean([r["completion_tokens"] for r in ok])
        secs = stats.mean([r["total_s"] for r in ok])
        stability = None
        if any(len(v) > 1 for v in scores_by_ex.values()):
            stability = stats.mean([float(len(set(v)) == 1) for v in scores_by_ex.values() if len(v) > 1])
        quality = stats.mean_ci(list(judged_on[arm].values()), score_type)
        judged = verdict.meets_arm(quality, task.target, share[verdict.RUNG_OF.get(arm, arm)])
        summaries.append(
            ArmSummary(
                arm=arm,
                n=len(judged_on[arm]),
                quality=quality,
                verdict=judged,
                meets_target=judged.ok,
                beyond=len(scores_by_ex) - len(judged_on[arm]),
                format_valid=metrics.get("format_valid"),
                metrics=metrics,
                latency_p50=stats.percentile([r["total_s"] for r in ok], 50),
                latency_p95=stats.percentile([r["total_s"] for r in ok], 95),
                prompt_tokens=pt,
                completion_tokens=ct,
                cost=costs.per_1k_requests(task.cost, pt, ct, secs, device),
                failures=fails,
                errors=sum(1 for r in arm_rows if r.get("error")),
                stability=stability,
                constrained=_constrained(run, ok),
            )
        )

    _add_training_costs(lab, run, task, summaries)
    _add_side_effects(lab, run, summaries)
    comparisons = stats.compare_all({arm: per_example[arm] for arm in present}, score_type)

    examples = []
    ids = list(dict.fromkeys(r["example_id"] for r in rows))
    first = {(r["example_id"], r["arm"]): r for r in rows if r["repeat"] == 0}
    for ex_id in ids:
        ex = by_id.get(ex_id)
        outputs = {}
        for arm in present:
            r = first.get((ex_id, arm))
            if r is not None:
                outputs[arm] = {
                    "output": r.get("output") or "",
                    "primary": per_example[arm].get(ex_id),
                    "failure": failure_of(r, metric, labels),
                    "error": r.get("error"),
                    "passages": [p.get("source") for p in r["extra"].get("passages", [])] or None,
                }
        values = {o["primary"] for o in outputs.values()}
        examples.append(
            {
                "id": ex_id,
                "input": ex.input if ex else "",
                "expected": ex.output if ex else "",
                "outputs": outputs,
                "disagree": len(values) > 1,
            }
        )

    total = len(held_out) * len(run["arms"]) * int(run["config"].get("repeats", 1))
    cost_table = task.cost.model_dump() if hasattr(task.cost, "model_dump") else dict(task.cost or {})
    return Scoreboard(
        run={k: v for k, v in run.items() if not k.endswith("_json")},
        task=task.name,
        primary_metric=metric,
        target=task.target,
        arms=summaries,
        comparisons=comparisons,
        examples=examples,
        n_examples=len(held_out),
        complete=len(rows) >= total,
        cost_assumptions=cost_table,
        score_type=score_type,
        margin=task.margin,
        preference=_preference_lines(lab, task, run["id"]),
    )


def _preference_lines(lab, task, run_id: int) -> list[str]:
    """What blind preference says of this run's arm pairs, through the judge's certificate gate."""
    from .certificate import evidence_for_run

    return [line for ev in evidence_for_run(lab, task, run_id) for line in ev.lines()]


def _constrained(run: dict, ok_rows: list[dict]) -> bool | None:
    """True when the run asked for constrained decoding and the backend enforced it on every answer."""
    if not run["config"].get("constrain"):
        return None
    return bool(ok_rows) and all(r["extra"].get("constrained") for r in ok_rows)


def _add_training_costs(lab, run: dict, task, summaries: list[ArmSummary]) -> None:
    """For the tune arms: what training cost, and after how many requests it has paid off
    against the arm it replaces (few-shot for tune, rag for tune+rag)."""
    rec = run["config"].get("adapter")
    if not rec:
        return
    try:
        adapter = ladder.resolve_adapter(lab, rec["name"], run["model_id"])
    except Exception:  # adapter deleted since: report without the training cost
        adapter = None
    if adapter is not None and rec.get("sha") and adapter.sha != rec["sha"]:
        adapter = None  # retrained since: its training run is not the one evaluated
    by_arm = {s.arm: s for s in summaries}
    for s in summaries:
        if s.arm not in ladder.TUNE_ARMS:
            continue
        s.adapter = rec["name"]
        if adapter is None:
            continue
        s.training_wall_s, s.training_device = _training_wall_and_device(lab, adapter)
        s.training_cost = costs.training_cost(task.cost, s.training_wall_s, s.training_device)
        base_name = "rag" if s.arm == "tune+rag" else ("few-shot" if "few-shot" in by_arm else "zero-shot")
        base = by_arm.get(base_name)
        if base and base.cost and s.cost:
            s.break_even = costs.break_even(task.cost, s.training_cost, base.cost.per_1k, s.cost.per_1k, base_name)


def _add_side_effects(lab, run: dict, summaries: list[ArmSummary]) -> None:
    """Under the first tuned arm: what its adapter costs elsewhere, measured (`side_effects`), or how
    to measure it."""
    rec = run["config"].get("adapter")
    tuned = next((s for s in summaries if s.arm in ladder.TUNE_ARMS), None)
    if rec and tuned is not None:
        from .side_effects import scoreboard_lines

        tuned.side_effects = scoreboard_lines(lab, rec["name"], rec.get("sha"))


def _training_wall_and_device(lab, adapter) -> tuple[float | None, str | None]:
    """What training the adapter took and where; older manifests lack them, their run row has them."""
    wall, device = adapter.wall_s, adapter.device
    if adapter.run_id and (wall is None or device is None):
        run = lab.store.training_run(adapter.run_id)
        if run:
            wall, device = wall if wall is not None else run["wall_s"], device or run["device"]
    return wall, device
