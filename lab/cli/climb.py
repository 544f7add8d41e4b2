"""lab climb: the ladder climbed in order (docs/guide.md) until a rung meets the target."""

from __future__ import annotations

import json
import sys

import click

from .common import cli, lab_of

CLIMB_HELP = """Climb TASK's ladder in order (prompt, RAG, tune) on its held-out set, and stop at the
first rung that meets the target. Why this order: docs/guide.md in the lab's folder.

\b
  1. prompt: zero-shot, and few-shot with fixed and with similar examples at k = 2, 4, 8
     and the task's own (capped by the pool and the context); the best of them once more
     with constrained output when the task has labels or a schema. The best one counts;
  2. rag, if the prompt rung misses and the task has a corpus (a free-text task that fails
     on facts and has no corpus stops here: give it one);
  3. tune, if it still misses, the task teaches behaviour/format rather than knowledge (its
     task.toml `teaches`; without it, guessed from the failures), and
     the task has 200+ training examples (--min-train; the trainer refuses under 20): train
     the adapter TASK-climb, then evaluate tune (and tune+rag with a corpus).

\b
Meets the target: the lower end of the rung's 95% interval (Clopper-Pearson) is at or above
the target, on at least 6 examples. Everything measured on the same examples shares the 5%
(each rung an equal part, split among its configurations: one of K chances is held to the
interval at 1 - 0.05/K), so picking the best of the prompt sweep, or the cheapest rung of
several, does not flatter it. A mean above the target whose
interval reaches below it is "maybe": with --limit leaving held-out examples unused, the climb
evaluates more of them (the limit doubles, finished examples are reused) and decides again.

\b
Before each step it prints what it will do, why, and the time it expects from this lab's
measured speeds; --budget stops before a step that would not fit. Ctrl-C is safe: run the
same command again and it continues (finished evaluations and a matching adapter are reused).
Then: lab report TASK draws the path.
"""


@cli.command("climb", help=CLIMB_HELP)
@click.argument("task")
@click.option(
    "--target",
    type=click.FloatRange(0, 1),
    help="The quality bar on the task's primary metric (default: the task's own target).",
)
@click.option(
    "--budget",
    "budget_min",
    type=click.FloatRange(min=0),
    help="Minutes: stop before a step that would not fit in what is left.",
)
@click.option(
    "--up-to",
    type=click.Choice(["prompt", "rag", "tune"]),
    default="tune",
    show_default=True,
    help="The highest rung to climb to.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Evaluate a seeded, label-stratified sample of N held-out examples (doubled while a verdict is 'maybe').",
)
@click.option(
    "--train-steps",
    type=click.IntRange(min=1),
    help="Optimizer steps for the adapter (default: one epoch, this machine's defaults).",
)
@click.option(
    "--min-train",
    type=click.IntRange(min=20),
    default=200,
    show_default=True,
    help="Training examples needed before tuning (rule of thumb: 200+).",
)
@click.option("-m", "--model", help="Model id or path (default: the lab's default model).")
@click.option("--json", "as_json", is_flag=True, help="Print the climb (path, decision, advice) as JSON.")
@click.option(
    "--margin",
    type=click.FloatRange(0, 0.5, min_open=True),
    help="How much worse (0-0.5) a cheaper "
    "rung may be and still count as good as a costlier one: a non-inferiority test (default: the "
    "task's margin, 0.05 unless task.toml says otherwise).",
)
@click.pass_context
def climb_cmd(ctx, task, target, budget_min, up_to, limit, train_steps, min_train, model, as_json, margin):
    from ..climb import climb, path_text

    lab = lab_of(ctx)
    say = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    try:
        result = climb(
            lab,
            task,
            target=target,
            up_to=up_to,
            budget_min=budget_min,
            limit=limit,
            train_steps=train_steps,
            min_train=min_train,
            model=model,
            say=say,
            margin=margin,
        )
    except KeyboardInterrupt:
        click.secho(
            f"\ninterrupted: finished work is kept; run the same `lab climb {task} ...` again to continue",
            fg="yellow",
            err=True,
        )
        sys.exit(130)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "climb_id": result.climb_id,
                    "status": result.status,
                    "path": result.path,
                    "decision": result.decision,
                    "wall_s": result.wall_s,
                    "recommendation": result.recommendation.as_dict() if result.recommendation else None,
                },
                indent=2,
                default=str,
            )
        )
        return
    click.echo(f"\nThe climb (#{result.climb_id}, {result.wall_s:.0f} s):\n{path_text(result)}")
    if result.recommendation is not None:
        click.echo("\n" + result.recommendation.to_text())
    click.secho(f"\nnext: `lab report {task}` draws the climb with the scoreboard", fg="bright_black", err=True)
