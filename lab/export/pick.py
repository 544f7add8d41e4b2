"""Which rung to export, and exactly how it answered when it was evaluated.

A rung is exported as it was measured: one arm of one eval run. The run's identity (`runner._identity`)
holds everything that decided its answers (the few-shot examples and how they were chosen, the
instruction, passages per question and the index's chunk size, the constraint, the answer budget,
the adapter and the model's sha256), so the export reads it from there and never re-derives it.

`--rung auto` is what `lab advise` recommends (its pick's run: `evidence["choice"]["eval_run_id"]`);
a named rung is that arm of the task's report run (`lab report`'s), or of the run that measured the
prompt or RAG rung's best configuration when the sweep found one; `distilled` is the student of the
task's newest finished distillation (`lab distill`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ladder import ArmError

RUNGS = ("auto", "zero-shot", "few-shot", "rag", "tune", "tune+rag", "distilled")


class ExportError(ArmError):
    """The export cannot be made or verified as asked; says why and what to run."""


@dataclass
class Pick:
    task: object  # tasks.Task
    rung: str  # what the user asked for, resolved: zero-shot ... tune+rag, or distilled
    arm: str  # the ladder arm that answered
    eval_run_id: int
    config: dict  # the eval run's config (its identity, the adapter, the model)
    name: str  # how the advice or the scoreboard names it
    advice: object = None  # the Recommendation (auto) or None
    notes: list[str] = field(default_factory=list)

    @property
    def adapter(self) -> str | None:
        rec = self.config.get("adapter") if self.arm in ("tune", "tune+rag") else None
        return rec["name"] if rec else None


def pick_rung(lab, task, rung: str = "auto") -> Pick:
    """The rung to export, from what this lab measured for `task` (an ExportError when nothing was)."""
    from ..climb.record import report_run
    from ..evaluation.summary import load_run

    if rung not in RUNGS:
        raise ExportError(f"unknown rung '{rung}': choose from {', '.join(RUNGS)}")
    if rung == "distilled":
        return _distilled(lab, task)
    run_id = report_run(lab, task.name)
    if run_id is None:
        raise ExportError(
            f"task '{task.name}' has no evaluation to export from: run `lab eval {task.name}` (or `lab climb`) first"
        )
    if rung == "auto":
        return _advised(lab, task, run_id)
    run = load_run(lab, run_id)
    run_id, name = _best_measured(lab, run, rung)
    run = load_run(lab, run_id)
    if rung not in run["arms"] or not lab.store.eval_scores(run_id, rung):
        raise ExportError(
            f"eval run {run_id} of '{task.name}' has no {rung} answers: "
            f"run `lab eval {task.name} --arms {rung}` first (or choose --rung auto)"
        )
    return Pick(task, rung, rung, run_id, run["config"], name)


def _advised(lab, task, run_id: int) -> Pick:
    from ..advisor import recommend_for_run
    from ..evaluation.summary import load_run, summarize

    rec = recommend_for_run(lab, summarize(lab, run_id))
    choice = rec.evidence.get("choice")
    if not choice:
        raise ExportError(f"eval run {run_id} of '{task.name}' has no scored answers to recommend a rung from")
    run = load_run(lab, choice["eval_run_id"])
    pick = Pick(task, choice["arm"], choice["arm"], run["id"], run["config"], choice["name"], advice=rec)
    if not rec.meets_target:
        pick.notes.append(
            f"the advice's pick, {choice['name']}, does not meet the target ({choice['verdict']}): "
            "it is exported as the best measured, not as good enough"
        )
    return pick


def _best_measured(lab, run: dict, rung: str) -> tuple[int, str]:
    """The run holding `rung`'s answers to export: a sweep's best configuration of the prompt or
    RAG rung when one was measured (what the advisor weighs), else the report run itself."""
    from ..evaluation.prompt_rung import best_prompt_for_run
    from ..evaluation.rag_rung import best_rag_for_run
    from ..evaluation.runner import config_label

    if rung in ("zero-shot", "few-shot"):
        best = best_prompt_for_run(lab, run, "tune", None)
        if best is not None and best.config.arm == rung:
            return best.config.eval_run_id, f"{best.config.label()} (the best of {best.candidates} measured)"
    if rung == "rag":
        best = best_rag_for_run(lab, run)
        if best is not None and best.config.eval_run_id is not None:
            return best.config.eval_run_id, f"{best.config.label()} (the best of {best.candidates} measured)"
    c = run["config"]
    return run["id"], config_label(rung, c.get("few_shot_mode", "fixed"), c.get("few_shot_k"), c.get("constrain"))


def _distilled(lab, task) -> Pick:
    from ..distill import latest_ledger
    from ..evaluation.summary import load_run

    ledger = latest_ledger(lab, task.name)
    row = next((r for r in (ledger or {}).get("rows", []) if r["role"] == "distilled"), None)
    if row is None:
        raise ExportError(
            f"task '{task.name}' has no finished distillation: run `lab distill {task.name} --teacher MODEL` first"
        )
    run = load_run(lab, row["eval_run_id"])
    pick = Pick(task, "distilled", "tune", run["id"], run["config"], f"the distilled student ({row['how']})")
    pick.notes.append(ledger["sentence"])
    return pick
