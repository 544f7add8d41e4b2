"""The distillation's ledger: teacher, student zero-shot, student distilled (and tuned on the gold
answers, where there are some) on the same held-out examples; per request their quality with its
interval, latency, tokens and cost; the one-off costs (the teacher's labelling, the training); and
the verdict, worded by `verdict.distill_sentence` from the lab's one non-inferiority test.

Costs: a local model's request costs its measured seconds at this machine's hour price; a served
teacher's costs its tokens at the task's `[cost]` token prices (an hour of a GPU when none are set).
The ledger is stored as a dict (`as_dict`) in the `distills` row; `ledger_lines` words it for the
terminal, and the report and the app read the same dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..evaluation import costs, stats, verdict
from ..evaluation.prompt_rung import run_scores
from ..evaluation.sample import held_out
from ..evaluation.scorers import CONTINUOUS, primary_name

ROLES = {
    "teacher": "teacher",
    "zero-shot": "student, zero-shot",
    "distilled": "student, distilled",
    "gold": "student, tuned on gold answers",
}


@dataclass
class LedgerRow:
    role: str  # teacher, zero-shot, distilled, gold
    model: str
    how: str  # the configuration, in words
    n: int
    quality: dict  # stats.Estimate.as_dict()
    latency_p50: float | None
    latency_p95: float | None
    prompt_tokens: float | None
    completion_tokens: float | None
    per_1k: float | None  # cost of 1,000 requests
    basis: str | None  # "time" or "tokens"
    eval_run_id: int


def _cost_model(task_cost, served: bool):
    """Local models cost their time (token prices are an API's); a served teacher its tokens."""
    if served:
        return task_cost
    return task_cost.model_copy(update={"price_per_1k_prompt_tokens": 0.0, "price_per_1k_completion_tokens": 0.0})


def _row(lab, task, role, model_id, how, run_id, arm, scores: dict, served, score_type) -> LedgerRow:
    """One arm's row: `scores` ({example id: primary score} on the ledger's examples) and its timings."""
    rows = [
        r
        for r in lab.store.eval_result_rows(run_id)
        if r["arm"] == arm and r["repeat"] == 0 and r["example_id"] in scores and not r.get("error")
    ]
    pt = stats.mean([r["prompt_tokens"] for r in rows])
    ct = stats.mean([r["completion_tokens"] for r in rows])
    secs = [r["total_s"] for r in rows]
    device = "cuda" if served else "cpu"
    cost = costs.per_1k_requests(_cost_model(task.cost, served), pt, ct, stats.mean(secs), device)
    quality = stats.mean_ci(list(scores.values()), score_type)
    return LedgerRow(
        role,
        model_id,
        how,
        len(scores),
        quality.as_dict(),
        stats.percentile(secs, 50),
        stats.percentile(secs, 95),
        pt,
        ct,
        cost.per_1k if cost else None,
        cost.basis if cost else None,
        run_id,
    )


def build_ledger(lab, task, settings, *, teacher, student_id, runs, label_run, labels, adapters) -> dict:
    """The ledger as a dict (see the module's doc); `teacher` is (spec, id, ArmConfig)."""
    _, teacher_id, how = teacher
    ids = [e.id for e in held_out(task, settings.limit)]
    served = teacher_id.startswith("openai:")
    metric = primary_name(task)
    scores = {k: run_scores(lab, run_id, _arm(k, how), ids) for k, run_id in runs.items()}
    score_type = stats.score_type_of(*(list(s.values()) for s in scores.values()), graded_metric=metric in CONTINUOUS)
    rows = {}
    for key, run_id in runs.items():
        model = teacher_id if key == "teacher" else student_id
        what = how.label if key == "teacher" else ("zero-shot" if key == "zero-shot" else f"adapter {adapters[key]}")
        if key != "teacher" and (task.constrain if how.constrain is None else how.constrain):
            what += ", constrained"
        rows[key] = _row(
            lab, task, key, model, what, run_id, _arm(key, how), scores[key], served and key == "teacher", score_type
        )
    margin = settings.margin or task.margin
    ni = verdict.as_good_as(
        scores["distilled"],
        scores["teacher"],
        margin,
        score_type,
        name_cheap="the distilled student",
        name_costly="the teacher",
    )
    one_off = _one_off(lab, task, label_run, rows["teacher"], served, adapters)
    teacher_cost, student_cost = rows["teacher"].per_1k, rows["distilled"].per_1k
    ratio = teacher_cost / student_cost if teacher_cost and student_cost else None
    even = costs.break_even(task.cost, one_off["total"], teacher_cost, student_cost, baseline="the teacher")
    helped = _paired(scores, "zero-shot", score_type)
    gold = None
    if "gold" in scores:
        c = _paired(scores, "gold", score_type)
        gold = {"text": verdict.interval_text(c), "diff": c.diff, "significant": c.significant}
    return {
        "task": task.name,
        "name": settings.name,
        "metric": metric,
        "target": task.target,
        "margin": margin,
        "teacher_spec": settings.teacher,
        "teacher_note": how.note,
        "rows": [asdict(rows[k]) for k in ("teacher", "zero-shot", "distilled", "gold") if k in rows],
        "labels": labels,
        "one_off": one_off,
        "noninferior": ni.as_dict(),
        "ratio": ratio,
        "break_even": even.as_dict() if even else None,
        "break_even_text": str(even) if even else None,
        "helped": verdict.helped_text(helped, "distillation", "distilled - zero-shot", against="the student zero-shot"),
        "gold": gold,
        "sentence": verdict.distill_sentence(ni, ratio, str(even) if even else None),
        "as_good_text": verdict.as_good_text(ni),
        "requests_per_day": task.cost.requests_per_day,
    }


def _arm(key: str, how) -> str:
    return {"teacher": how.arm, "zero-shot": "zero-shot"}.get(key, "tune")


def _paired(scores: dict, against: str, score_type) -> stats.Comparison:
    """distilled - `against` on the examples both scored (the paired test's unit)."""
    a, b = scores[against], scores["distilled"]
    common = sorted(set(a) & set(b))
    return stats.compare([a[i] for i in common], [b[i] for i in common], score_type, name_a=against, name_b="distilled")


def _one_off(lab, task, label_run: int, teacher_row: LedgerRow, served: bool, adapters: dict) -> dict:
    """What labelling and training cost once: the teacher's answers to the inputs (seconds and
    tokens as logged, priced as its requests are) and the training runs' wall time."""
    from ..evaluation.summary import _training_wall_and_device
    from ..tuning.adapters import find_adapter

    rows = [r for r in lab.store.eval_result_rows(label_run) if r["repeat"] == 0]
    secs = sum(r["total_s"] or 0.0 for r in rows)
    pt = sum(r["prompt_tokens"] or 0 for r in rows)
    ct = sum(r["completion_tokens"] or 0 for r in rows)
    n = max(1, len(rows))
    label_cost = costs.per_1k_requests(
        _cost_model(task.cost, served), pt / n, ct / n, secs / n, "cuda" if served else "cpu"
    )
    labelling = label_cost.per_1k * len(rows) / 1000 if label_cost else 0.0
    training = {}
    for key, name in adapters.items():
        wall, device = _training_wall_and_device(lab, find_adapter(lab.home.adapters, name))
        training[key] = {"wall_s": wall, "device": device, "cost": costs.training_cost(task.cost, wall, device)}
    train_cost = (training.get("distilled") or {}).get("cost") or 0.0
    return {
        "labelling_s": secs,
        "labelling_prompt_tokens": pt,
        "labelling_completion_tokens": ct,
        "labelling_cost": labelling,
        "training": training,
        "total": labelling + train_cost,
    }


# ---- in words -------------------------------------------------------------------------------------


def _num(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def ledger_lines(ledger: dict) -> list[str]:
    """The ledger for a terminal: the sentence first, then the table and the one-off costs."""
    from ..evaluation.summary import money, text_table

    lines = [ledger["sentence"], ""]
    head = ["", "model", "how", f"{ledger['metric']} [95% CI]", "n", "p50 s", "p95 s", "tokens in/out", "per 1k req"]
    table = []
    for r in ledger["rows"]:
        q = r["quality"]
        ci = f"{_num(q['mean'], '.3f')} [{_num(q['lo'], '.2f')}, {_num(q['hi'], '.2f')}]"
        tokens = f"{_num(r['prompt_tokens'], '.0f')}/{_num(r['completion_tokens'], '.0f')}"
        cost = "n/a" if r["per_1k"] is None else f"{money(r['per_1k'])} ({r['basis']})"
        table.append(
            [
                ROLES[r["role"]],
                r["model"],
                r["how"],
                ci,
                r["n"],
                _num(r["latency_p50"], ".2f"),
                _num(r["latency_p95"], ".2f"),
                tokens,
                cost,
            ]
        )
    lines += text_table(head, table)
    lab_ = ledger["labels"]
    o = ledger["one_off"]
    lines += [
        "",
        f"Inputs: {lab_['inputs']} labelled by the teacher ({ledger['teacher_spec']}"
        + (f"; {ledger['teacher_note']}" if ledger.get("teacher_note") else "")
        + f"); {lab_['dropped']} answers broke the task's format and were dropped, {lab_['kept']} kept"
        + (f"; {lab_['held_out']} inputs left out as held-out questions" if lab_.get("held_out") else "")
        + (f", {lab_['repeated']} repeats" if lab_.get("repeated") else "")
        + ".",
        f"One-off: labelling {o['labelling_s']:.0f} s, {o['labelling_prompt_tokens']:,} prompt + "
        f"{o['labelling_completion_tokens']:,} completion tokens ({money(o['labelling_cost'])})"
        + "".join(
            f"; training {k} {_num(t['wall_s'], '.0f')} s on {t['device'] or '?'} ({money(t['cost'])})"
            for k, t in o["training"].items()
        )
        + ".",
        ledger["as_good_text"],
        ledger["helped"],
    ]
    if ledger.get("gold"):
        lines.append(f"Against the gold answers: distilled - gold-tuned = {ledger['gold']['text']}.")
    return lines
