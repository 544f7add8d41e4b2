"""lab curve: how many examples does tuning need to beat few-shot prompting on this task?"""

from __future__ import annotations

import json
import sys

import click

from ..evaluation.curve import DEFAULT_EPOCHS, DEFAULT_KS, DEFAULT_SIZES
from .common import cli, lab_of

CONFIRM_ABOVE_S = 300  # ask before starting a curve estimated to take longer than this


@cli.command("curve")
@click.argument("task")
@click.option(
    "--sizes",
    default=DEFAULT_SIZES,
    show_default=True,
    help="Training-set sizes (nested subsets, stratified for label tasks; 'all' = the whole set).",
)
@click.option(
    "--k",
    "ks",
    default=DEFAULT_KS,
    show_default=True,
    help="Few-shot examples for the prompt arm (capped by the pool and by what fits the context).",
)
@click.option(
    "--seeds",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Train each size N times, each seed with its own subsets and initialisation.",
)
@click.option("--limit", type=click.IntRange(min=1), help="A seeded, label-stratified sample of N held-out examples.")
@click.option(
    "--epochs",
    type=float,
    default=DEFAULT_EPOCHS,
    show_default=True,
    help="Training budget in epochs, the same for every size (each example seen as often).",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Cap the steps of any one adapter (said when it bites).")
@click.option("--lr", "learning_rate", type=float, help="Peak learning rate (lab train's default for this machine).")
@click.option("--batch-size", type=int, help="Examples per micro-batch.")
@click.option("--max-seq-len", type=int, help="Tokens per training example.")
@click.option("--rank", type=int, help="LoRA rank r.")
@click.option("--threads", type=int, help="CPU threads for torch.")
@click.option("--chart", type=click.Path(dir_okay=False), help="Chart file (.svg or .png; default TASK-curve.svg).")
@click.option(
    "--constrain/--no-constrain",
    default=None,
    help="Hold every point's answers (few-shot and tuned alike) to the task's labels or JSON schema; "
    "default: the task's `constrain`.",
)
@click.option("-y", "--yes", is_flag=True, help="Start without asking, however long the estimate.")
@click.option("--estimate-only", is_flag=True, help="Print the plan and the time estimate; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the curve as JSON.")
@click.pass_context
def curve_cmd(
    ctx, task, sizes, ks, seeds, limit, epochs, max_steps, chart, constrain, yes, estimate_only, as_json, **train
):
    """The learning curve of TASK: few-shot at each k against an adapter per training-set size.

    \b
    Finds the crossover (the smallest size whose tuned arm beats the best few-shot point
    significantly, by the scoreboard's paired test) and whether the tuned curve is still
    rising at the largest size. Resumable: Ctrl-C, then the same command, continues; finished
    adapters (TASK-n100s0) and scored examples are kept.
    """
    from ..evaluation.curve_run import (
        CurveInterrupted,
        estimate,
        load_curve,
        plan_settings,
        points,
        run_curve,
        step_counts,
    )
    from ..evaluation.sample import held_out
    from ..tasks import load_task

    lab = lab_of(ctx)
    t = load_task(task, home=lab.home)
    settings, notes = plan_settings(t, sizes, ks, seeds, limit, epochs, max_steps, constrain, **train)
    for n in notes:
        click.secho(f"note: {n}", fg="yellow", err=True)
    secs, basis = estimate(lab, t, settings)
    click.echo(
        f"plan: few-shot k = {', '.join(map(str, settings.ks))}; tune n = "
        f"{', '.join(map(str, settings.sizes))} x {settings.seeds} seed(s), {settings.epochs:g} epochs"
        + (f" (at most {settings.max_steps} steps each)" if settings.max_steps else "")
        + f"; {len(held_out(t, limit))} held-out examples; {len(points(settings))} points"
        + ("; answers constrained to the task's labels/schema" if settings.constrain else ""),
        err=True,
    )
    counts = step_counts(lab, t, settings)
    click.echo(
        "steps per adapter: "
        + ", ".join(
            f"n={n}: {s}" + (" (capped by --max-steps)" if capped else "") for n, (s, capped) in counts.items()
        ),
        err=True,
    )
    click.echo(f"estimate: about {max(1, round(secs / 60))} min here ({basis})", err=True)
    if estimate_only:
        return
    if secs > CONFIRM_ABOVE_S and not yes and sys.stdin.isatty():
        click.confirm("start it?", default=True, abort=True, err=True)
    try:
        curve_id = run_curve(lab, t, settings, estimate_s=secs, say=lambda m: click.echo(m, err=True))
    except CurveInterrupted as e:
        click.secho(f"\n{e}", fg="yellow", err=True)
        sys.exit(130)
    curve = load_curve(lab, curve_id)
    if as_json:
        click.echo(json.dumps(curve.as_dict(), indent=2, default=str))
    else:
        click.echo(curve.to_text())
    from ..evaluation.curve_chart import write_chart

    path = write_chart(curve, chart or f"{t.name}-curve.svg")
    click.echo(f"chart: {path}", err=True)
