"""The offline HTML report of one evaluation: one self-contained file (inline CSS, an inline SVG
chart, no scripts, no external URLs) that opens anywhere, e-mail attachment included."""

from __future__ import annotations

import datetime
import html
from pathlib import Path

from .advisor import LADDER, Recommendation
from .evaluation.cost_chart import Point, cost_quality_svg, html_table
from .evaluation.stats import format_p
from .evaluation.summary import FAILURES, beyond_note, method_note, money

COLORS = {"zero-shot": "#6b7280", "few-shot": "#2563eb", "rag": "#059669", "tune": "#d97706", "tune+rag": "#7c3aed"}

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#111;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555}table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:14px}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:left;vertical-align:top}th{background:#f4f4f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}.rec{background:#f0f9ff;border:1px solid #bae6fd;border-radius:8px;padding:.8rem 1rem}
.rec h2{border:none;margin-top:0}.ok{background:#ecfdf5}.bad{background:#fef2f2}.tag{font-size:12px;color:#991b1b}
pre{white-space:pre-wrap;margin:0;font:13px/1.35 ui-monospace,Menlo,Consolas,monospace}.small{font-size:13px;color:#555}
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v))


def _p(p) -> str:
    return format_p(p).removeprefix("p=")


def _n(v, digits=3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _money(v) -> str:
    return money(v)


def chart_svg(board, width: int = 640, height: int = 360) -> str:
    """Quality (with its 95% interval) against cost per 1,000 requests, the target as a line."""
    arms = [a for a in board.arms + board.others if a.quality.mean is not None]
    points = [
        Point(
            a.arm,
            a.cost.per_1k if a.cost else 0.0,
            a.quality.mean,
            a.quality.lo,
            a.quality.hi,
            COLORS.get(a.arm, "#111"),
        )
        for a in arms
    ]
    basis = next((a.cost.basis for a in arms if a.cost), "time")
    return cost_quality_svg(points, board.target, basis, board.primary_metric, "quality versus cost", width, height)


def render_html(
    board,
    rec: Recommendation | None = None,
    max_examples: int = 300,
    prediction: str | None = None,
    climb: dict | None = None,
    curve=None,
    retrieval=None,
    distill: dict | None = None,
    side_effects: dict | None = None,
) -> str:
    r = board.run
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Ladder Lab · {_e(board.task)} · "
        f"eval run {r['id']}</title><style>{CSS}</style></head><body>",
        f"<h1>Ladder Lab report: {_e(board.task)}</h1>",
        f"<p class=meta>eval run {r['id']} · model {_e(r['model_id'])} · {_e(r['status'])}, "
        f"{max((a.n + a.beyond for a in board.arms), default=0)} of {board.n_examples} held-out examples scored · "
        f"primary metric <b>{_e(board.primary_metric)}</b>, target <b>{board.target:.2f}</b> · "
        f"written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
    ]
    if prediction:
        parts.append(
            f"<p class=meta>The scenario's README predicts, from the rules in docs/guide.md: "
            f"<b>{_e(prediction)}</b>. "
            "The recommendation below follows the measurements, whether or not they agree.</p>"
        )
    if rec is not None:
        parts.append(
            f"<div class=rec><h2>{_e(rec.headline())}</h2><ul>"
            + "".join(f"<li>{_e(x)}</li>" for x in rec.reasons)
            + "</ul>"
            + (
                "<p><b>Next</b></p><ul>" + "".join(f"<li>{_e(x)}</li>" for x in rec.next_steps) + "</ul>"
                if rec.next_steps
                else ""
            )
            + (
                "<p><b>The answer would change if</b></p><ul>"
                + "".join(f"<li>{_e(x)}</li>" for x in rec.would_change_if)
                + "</ul>"
                if rec.would_change_if
                else ""
            )
            + "</div>"
        )

    if climb:
        parts.append(climb_html(climb))
    parts.append("<h2>Scoreboard</h2>")
    rows = []
    for a in board.arms + board.others:
        rows.append(
            [
                f'<b style="color:{COLORS.get(a.arm, "#111")}">{_e(a.arm)}</b>',
                str(a.n),
                f"{_n(a.quality.mean)} <span class=small>[{_n(a.quality.lo)}, {_n(a.quality.hi)}]</span>",
                a.meets_cell(),
                "n/a" if a.format_valid is None else f"{a.format_valid:.0%}",
                _n(a.latency_p50, 2),
                _n(a.latency_p95, 2),
                _n(a.prompt_tokens, 0),
                _n(a.completion_tokens, 0),
                f"{_money(a.cost.per_1k)} <span class=small>({a.cost.basis} basis)</span>" if a.cost else "n/a",
                str(a.errors),
            ]
        )
    parts.append(
        html_table(
            [
                "arm",
                "n",
                f"{board.primary_metric} [95% CI]",
                "meets target",
                "format valid",
                "latency p50 s",
                "p95 s",
                "prompt tokens",
                "completion tokens",
                "cost / 1k requests",
                "errors",
            ],
            rows,
            {1, 5, 6, 7, 8, 10},
        )
    )
    if note := beyond_note(board):
        parts.append(f"<p class=small>{_e(note)}</p>")
    parts.append(f"<h2>Quality versus cost</h2>{chart_svg(board)}")
    if curve is not None:
        parts.append(curve_section(curve))
    if retrieval is not None:
        parts.append(retrieval_section(retrieval))
    if distill is not None:  # the task's finished distillation (`lab distill`): its ledger and chart
        from .distill.chart import ledger_html

        parts.append(ledger_html(distill))

    tuned = [a for a in board.arms if a.adapter]
    if tuned:
        parts.append(
            "<h2>Training cost and break-even</h2>"
            + html_table(
                ["arm", "adapter", "training wall time s", "device", "training cost", "break-even"],
                [
                    [
                        _e(a.arm),
                        _e(a.adapter),
                        _n(a.training_wall_s, 0),
                        _e(a.training_device or "?"),
                        _money(a.training_cost),
                        _e(a.break_even or "n/a"),
                    ]
                    for a in tuned
                ],
            )
        )

    if side_effects is not None:  # the tuned arm's adapter, measured (`lab adapters check NAME --side-effects`)
        parts.append(side_effects_section(side_effects))
    if rec is not None and rec.evidence.get("preference"):  # blind pairwise ratings, a judge through its gate
        parts.append(preference_section(rec.evidence["preference"]))

    if board.comparisons:
        parts.append(
            "<h2>Arm against arm</h2>"
            f"<p class=small>{_e(method_note(board))}.</p>"
            + html_table(
                ["comparison", "difference", "95% CI", "p", "Holm p", "verdict", "n", "in plain words"],
                [
                    [
                        f"{_e(c.b)} vs {_e(c.a)}",
                        _n(c.diff),
                        f"[{_n(c.lo)}, {_n(c.hi)}]",
                        _e(_p(c.p_value)),
                        _e(_p(c.p_adjusted)),
                        f"<b>{_e(c.verdict)}</b>" if c.significant else _e(c.verdict),
                        str(c.n),
                        _e(board.sentence(c)),
                    ]
                    for c in board.comparisons
                ],
                {1, 3, 4, 6},
            )
        )

    parts.append(
        "<h2>Why answers were wrong</h2>"
        + html_table(
            ["arm", *FAILURES],
            [[_e(a.arm), *(str(a.failures.get(f, 0)) for f in FAILURES)] for a in board.arms],
            set(range(1, len(FAILURES) + 1)),
        )
    )
    keys = sorted({k for a in board.arms for k in a.metrics})
    if keys:
        parts.append(
            "<h2>All metrics (mean per arm)</h2>"
            + html_table(
                ["metric", *[a.arm for a in board.arms]],
                [[_e(k), *(_n(a.metrics.get(k)) for a in board.arms)] for k in keys],
                set(range(1, len(board.arms) + 1)),
            )
        )

    arms = [a.arm for a in sorted(board.arms, key=lambda a: LADDER.index(a.arm) if a.arm in LADDER else 99)]
    disagree = [e for e in board.examples if e["disagree"]]
    parts.append(f"<h2>Where the arms disagree ({len(disagree)} of {len(board.examples)} examples)</h2>")
    parts.append(_examples_table(disagree[:max_examples], arms))
    if len(disagree) > max_examples:
        parts.append(f"<p class=small>{len(disagree) - max_examples} more not shown.</p>")
    agree = [e for e in board.examples if not e["disagree"]]
    if agree:
        parts.append(
            f"<details><summary>Examples where every arm scored the same ({len(agree)})</summary>"
            + _examples_table(agree[:max_examples], arms)
            + "</details>"
        )
    parts.append(
        "<h2>Cost assumptions</h2>"
        + html_table(["setting", "value"], [[_e(k), _e(v)] for k, v in board.cost_assumptions.items()])
    )
    parts.append(
        "<p class=small>Quality intervals: Clopper-Pearson over examples, for 0/1 and graded scores "
        "alike (repeats averaged per example); an arm meets the target when the interval's lower end "
        "is at or above it, 'maybe' when only its mean is. Differences: exact McNemar (sign) test on the examples where "
        "the arms disagree for 0/1 scores, a paired sign-flip permutation test for graded ones; "
        "significant when the Holm-corrected p is below 0.05 on at least 6 examples. Latency is the "
        "model's time per request (retrieval not included); time-basis costs are that latency x the "
        "hour price.</p></body></html>"
    )
    return "".join(parts)


def climb_html(climb: dict) -> str:
    """`lab climb`'s path: one row per rung climbed (why, result, time), then where it stopped;
    above it, the climbs whose work this one reused (a rerun that reused everything takes seconds)."""
    from .climb.decide import RULE

    past = climb.get("history") or [climb]
    total = sum(c.get("wall_s") or 0 for c in past)
    over = f"; {total:.0f} s of work over {len(past)} climbs" if len(past) > 1 else ""
    end = climb.get("decision") or {}
    skipped = "".join(f"<li>{_e(x)}</li>" for x in end.get("skipped") or [])
    return (
        f"<h2>The climb (#{climb['id']}, {_e(climb.get('status'))}, {climb.get('wall_s') or 0:.0f} s{over})</h2>"
        + (climb_history_html(past) if len(past) > 1 else "")
        + f"<p class=small>Rule: {_e(RULE)}.</p>"
        + html_table(["#", "rung", "why", "result", "verdict", "wall time", "then"], _climb_rows(climb), {0})
        + (f"<p><b>Stopped:</b> {_e(end.get('outcome'))}. {_e(end.get('reason'))}</p>" if end else "")
        + (f"<p><b>Skipped</b></p><ul>{skipped}</ul>" if skipped else "")
    )


def _climb_rows(climb: dict) -> list[list[str]]:
    from .climb.record import step_work

    rows = []
    for i, st in enumerate(climb.get("steps") or [], 1):
        results = "<br>".join(
            f"{'<b>' + _e(arm) + '</b>' if arm == st.get('best') else _e(arm)} {_n(r['mean'])} <span class=small>[{_n(r['lo'])}, {_n(r['hi'])}] n={r['n']}</span>"
            for arm, r in (st.get("results") or {}).items()
        ) or _e(st.get("status"))
        decision = st.get("decision") or {}
        took = (
            "reused: nothing left to do" if step_work(st) == "reused" else f"expected {st.get('estimate_s', 0):.0f} s"
        )
        rows.append(
            [
                str(i),
                f"<b>{_e(st['step'])}</b>",
                _e(st.get("why")),
                results,
                _e(st.get("verdict") or ""),
                f"{st.get('wall_s', 0):.0f} s <span class=small>({took})</span>",
                f"<b>{_e(decision.get('outcome', ''))}</b> {_e(decision.get('reason', ''))}",
            ]
        )
    return rows


def climb_history_html(past: list[dict]) -> str:
    """The climbs behind the latest one (`climb.record.history`, oldest first): what each did, and
    whose work the latest reused."""
    from .climb.record import did_work, step_work

    latest, earlier = past[-1], past[:-1]
    workers = [c for c in earlier if did_work(c)] or earlier
    reused = [st["step"] for st in latest.get("steps") or [] if step_work(st) == "reused"]
    said = ""
    if reused:
        worked = sum(c.get("wall_s") or 0 for c in workers)
        names = ", ".join(f"#{c['id']}" for c in workers)
        partly = "" if len(reused) == len(latest.get("steps") or []) else f" (for {', '.join(reused)})"
        said = f"Climb #{latest['id']} reused the work of climb{'s' if len(workers) > 1 else ''} {names}: "
        said += f"{worked:.0f} s{partly}. "
    said += "The climbs of this task on the same model and options, or on the same eval run, oldest first:"
    rows = [
        [
            f"#{c['id']}",
            _e(c.get("status")),
            _e((c.get("ts") or "")[:19].replace("T", " ")),
            f"{c.get('wall_s') or 0:.0f} s",
            _e(c.get("eval_run_id") or "none"),
            _e("; ".join(f"{st['step']} {step_work(st)}" for st in c.get("steps") or []) or "no rung climbed"),
        ]
        for c in past
    ]
    return f"<p>{_e(said)}</p>" + html_table(
        ["climb", "status", "started (UTC)", "wall time", "eval run", "what it did"], rows, {3}
    )


def _examples_table(examples: list[dict], arms: list[str]) -> str:
    rows = []
    for e in examples:
        cells = [_e(e["id"]), f"<pre>{_e(_short(e['input'], 400))}</pre>", f"<pre>{_e(e['expected'])}</pre>"]
        for arm in arms:
            o = e["outputs"].get(arm)
            if o is None:
                cells.append("")
                continue
            cls = "ok" if o["failure"] is None else "bad"
            tag = (
                f"<div class=tag>{_e(o['failure'])} · {_n(o['primary'], 2)}</div>"
                if o["failure"]
                else f"<div class=small>{_n(o['primary'], 2)}</div>"
            )
            cells.append(
                f"<div class={cls}><pre>{_e(_short(o['output'] or o.get('error') or '', 500))}</pre>{tag}</div>"
            )
        rows.append(cells)
    return html_table(["id", "input", "expected", *arms], rows)


def _short(text: str, n: int) -> str:
    text = text or ""
    return text if len(text) <= n else text[:n] + " …"


def write_report(lab, eval_run_id: int, path: str | Path, answers=None) -> Path:
    """Summarise the run, ask the advisor, and write the HTML report to `path`."""
    from .advisor import recommend_for_run
    from .evaluation.summary import summarize

    board = summarize(lab, eval_run_id)
    rec = recommend_for_run(lab, board, answers)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .climb.record import climb_of_run
    from .distill import latest_ledger
    from .evaluation.curve_run import latest_curve
    from .evaluation.retrieval_chart import check_for_run

    path.write_text(
        render_html(
            board,
            rec,
            prediction=seeds_prediction(lab, eval_run_id),
            climb=climb_of_run(lab, eval_run_id),
            curve=latest_curve(lab, board.task),
            retrieval=check_for_run(lab, eval_run_id),
            distill=latest_ledger(lab, board.task),
            side_effects=tuned_side_effects(lab, board),
        ),
        encoding="utf-8",
    )
    return path


def tuned_side_effects(lab, board) -> dict | None:
    """The measured side effects of the adapter the board's tuned arms served (None: no tuned arm,
    or not measured: the scoreboard's line says how)."""
    from .evaluation.side_effects import stored_side_effects

    rec = (board.run.get("config") or {}).get("adapter")
    if not rec or not any(a.adapter for a in board.arms):
        return None
    return stored_side_effects(lab, rec["name"], rec.get("sha"))


def side_effects_section(result: dict) -> str:
    """What the tuned arm's adapter costs elsewhere, paired with its base model, in the lab's words."""
    from .evaluation.side_effects import side_effect_lines

    *figures, method = side_effect_lines(result)
    return (
        f"<h2>Side effects of the adapter {_e(result['adapter'])}</h2>"
        "<p class=small>Tuning on a narrow task may cost general ability: the perplexity on general text "
        "and the other tasks' held-out scores, each with and without the adapter.</p><ul>"
        + "".join(f"<li>{_e(line)}</li>" for line in figures)
        + f"</ul><p class=small>{_e(method)}</p>"
    )


def preference_section(found: list[dict]) -> str:
    """Blind pairwise preference: the verdict used (yours, or a judge's that passed its certificate)
    and each judge's certificate, as the advisor's evidence holds them."""
    rows, certs = [], []
    for ev in found:
        p, c = ev["preference"], ev["certificate"]
        if p is not None:
            cmp = p["comparison"]
            won = f"{p['arm_b']} {p['wins_b']} · {p['arm_a']} {p['wins_a']} · none {p['ties'] + p['both_bad']}"
            rate = f"{p['arm_b']} {p['win_rate_b']:.2f}" if p["win_rate_b"] is not None else "n/a"
            who = "you" if ev["source"] == "you" else f"judge {p['who']}"
            rows.append([f"{p['arm_b']} vs {p['arm_a']}", who, won, rate, _p(cmp["p_value"]), _e(p["sentence"])])
        if c is not None and c["judged"]:
            certs.append(f"<li>{'trusted' if c['trusted'] else '<b>not trusted</b>'}: {_e(ev['note'])}</li>")
    return (
        "<h2>Blind pairwise preference</h2><p class=small>Two arms' answers to the same held-out input, shown "
        "side by side in random order without their names. The test is the exact sign test on the pairs with a "
        "preference; a judge model's verdicts are used only when its certificate against your ratings clears "
        "the bar (README: Judging tone and style).</p>"
        + (html_table(["pair", "rated by", "preferred", "win rate", "p", "verdict"], rows) if rows else "")
        + (f"<ul>{''.join(certs)}</ul>" if certs else "")
    )


def curve_section(curve) -> str:
    """The task's learning curve (`lab curve`): the chart, the table, the crossover and the slope."""
    from .evaluation.curve_chart import render_svg

    rows = [
        [
            f'<b style="color:{COLORS["few-shot"]}">few-shot</b>',
            f"k = {p.k}" + (f" ({p.k_used} fitted)" if p.capped else ""),
            str(p.quality.n),
            _e(p.quality),
            "",
        ]
        for p in curve.few_shot
    ]
    rows += [
        [
            f'<b style="color:{COLORS["tune"]}">tune</b>',
            f"n = {p.n}",
            str(p.quality.n),
            _e(p.quality),
            f"{p.spread[0]:.3f} .. {p.spread[1]:.3f}" if p.spread else "",
        ]
        for p in curve.tuned
    ]
    return (
        f"<h2>How many examples? (learning curve {curve.curve_id}{'' if curve.complete else ', partial'})</h2>"
        + render_svg(curve, inline=True)
        + html_table(["arm", "examples", "n", f"{_e(curve.metric)} [95% CI]", "spread across seeds"], rows, {2})
        + f"<p>{_e(curve.crossover_text())}<br>{_e(curve.slope_text())}</p>"
    )


def retrieval_section(sweep) -> str:
    """Hit rate (or recall@k) against k, one line per chunk size, with its caption."""
    from .evaluation.retrieval_chart import caption, render_svg

    head = "<h2>Retrieval alone: does search find the answers?</h2>"
    if isinstance(sweep, str):
        return f"{head}<p class=small>{_e(sweep)}</p>"
    if not any(points for _, points in sweep.series()):
        return f"{head}<p class=small>No figure: the examples name no gold document and have no short answers.</p>"
    return f"{head}{render_svg(sweep)}<p class=small>{_e(caption(sweep))}</p>"


def seeds_prediction(lab, eval_run_id: int) -> str | None:
    """'## What the guide predicts: X' from the task folder's README.md, if it has one."""
    import re

    from .evaluation.summary import load_run, task_of_run

    try:
        task = task_of_run(load_run(lab, eval_run_id))
        readme = Path(task.source).parent / "README.md"
        m = re.search(r"^#+\s*What the guide predicts:\s*(.+)$", readme.read_text(encoding="utf-8"), re.M)
    except Exception:  # a task without a README (or source) simply has no prediction
        return None
    return m.group(1).strip() if m else None
