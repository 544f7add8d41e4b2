"""What other measurements add to an evaluation's advice (`advisor.recommend_for_run` calls each):
the task's learning curve (`lab curve`), the tuned adapter's side effects elsewhere (`lab adapters
check --side-effects`), and blind pairwise preference (`lab rate`, `lab judge`, through the judge's
certificate). Each adds reasons, next steps and an `evidence` entry to the `Recommendation`."""

from __future__ import annotations

from .recommendation import TUNE_RUNGS, Recommendation

# ---- blind pairwise preference (`lab rate`, `lab judge`) ----------------------------------------


def add_preference_evidence(lab, rec: Recommendation, task, run_id: int) -> None:
    """What blind preference says about the run's arms: a judge's verdict only through the
    certificate's gate (`certificate.preference_evidence`), else your ratings, with the judge's
    certificate said when it was passed over; a win-rate target judged by `verdict.win_rate_meets`."""
    from .evaluation import verdict
    from .evaluation.certificate import evidence_for_run

    found = []
    for ev in evidence_for_run(lab, task, run_id):
        arm_a, arm_b = ev.pairs.arm_a, ev.pairs.arm_b
        rec.reasons += ev.lines()
        entry = ev.as_dict()
        base = task.baseline_arm
        if ev.preference is not None and task.win_rate_target and base in (arm_a, arm_b):
            other = arm_b if base == arm_a else arm_a
            m = verdict.win_rate_meets(ev.preference, task.win_rate_target, other)
            by = "by your ratings" if ev.source == "you" else "by the judge"
            rec.reasons.append(m.text(f"{other}'s win rate over {base} ({by})"))
            entry["win_rate"] = {"arm": other, "over": base, **m.as_dict()}
        found.append(entry)
    if found:
        rec.evidence["preference"] = found
    elif task.judge == "pairwise" and rec.rung not in (task.baseline_arm, "revisit"):
        rec.next_steps.append(
            f"rate {task.baseline_arm} and {rec.rung} blind, side by side (tone and style are what the scores miss): "
            f"`lab rate {task.name} --arms {task.baseline_arm},{rec.rung}`, or the Evaluate tab's Rate answers blind"
        )


# ---- what the tuned arm's adapter costs elsewhere (`lab adapters check NAME --side-effects`) -----


def add_side_effect_evidence(lab, rec: Recommendation, board) -> None:
    """The tuned arms' adapter's measured side effects: a significant loss elsewhere is a cost said
    beside the gain (a reason), whether or not a tuned arm is the pick; unmeasured, when the pick is
    tuned, how to measure it."""
    from .evaluation.side_effects import check_command, losses, stored_side_effects

    tuned = next((a for a in board.arms if a.arm in TUNE_RUNGS and a.adapter), None)
    if tuned is None:
        return
    sha = ((board.run.get("config") or {}).get("adapter") or {}).get("sha")
    result = stored_side_effects(lab, tuned.adapter, sha)
    costs = losses(result) if result else []
    rec.evidence["side_effects"] = {"adapter": tuned.adapter, "measured": result is not None, "losses": costs}
    picked = rec.rung in TUNE_RUNGS
    if costs:
        which = "the pick's" if picked else f"{tuned.arm}'s"
        rec.reasons.append(
            f"A cost to weigh beside what tuning gains here: {which} adapter {tuned.adapter} does significantly "
            "worse elsewhere: " + "; ".join(costs) + "."
        )
    elif result is None and picked:
        rec.next_steps.append(f"measure what adapter {tuned.adapter} costs elsewhere: `{check_command(tuned.adapter)}`")


# ---- with a learning curve (`lab curve`) -------------------------------------------------------


def add_curve_evidence(lab, rec: Recommendation, task: str, have: int) -> None:
    """Add what the task's latest learning curve says, when it has one."""
    from .evaluation.curve import curve_advice
    from .evaluation.curve_run import latest_curve

    curve = latest_curve(lab, task)
    if curve is None:
        return
    reasons, steps = curve_advice(curve, have)  # the curve's own words (evaluation/curve.py)
    rec.reasons += reasons
    rec.next_steps += steps
    rec.evidence["curve"] = {
        "curve_id": curve.curve_id,
        "crossover_n": curve.crossover.at_n,
        "best_k": curve.crossover.best_k,
        "still_rising": bool(curve.slope and curve.slope.rising),
    }
