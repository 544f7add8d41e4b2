"""lab demo prepare: everything an offline demo needs, in one resumable go."""

from __future__ import annotations

import signal
import sys

import click

from .common import cli, lab_of


@cli.group("demo")
def demo_group():
    """The offline demo: build what the Compare, Evaluate and Advisor tabs need to show the whole ladder."""


@demo_group.command("prepare")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Held-out examples evaluated per scenario (default 12; `lab eval NAME` later completes the same stored run).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan with its time estimate; do nothing.")
@click.option(
    "--scenario",
    "only",
    multiple=True,
    help="Only this built-in scenario (repeatable; default: acme-facts, specialty and tickets, the three the demo is sized for).",
)
@click.option("--max-steps", type=click.IntRange(min=1), hidden=True, help="Training steps per adapter (tests).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (with --dry-run) or the result as JSON.")
@click.pass_context
def prepare_cmd(ctx, limit, dry_run, only, max_steps, as_json):
    """Index the sample corpus, train the demo adapters, and store an evaluation of every built-in
    scenario over all its arms, with an estimate measured on this machine. Resumable: stop it
    (Ctrl-C) and run it again; nothing is done twice."""
    import json

    from .. import demo

    lab = lab_of(ctx)
    limit = limit or demo.DEFAULT_LIMIT
    overrides = {"max_steps": max_steps} if max_steps else None
    steps = demo.plan(lab, limit=limit, train_overrides=overrides, only=list(only) or None)
    if as_json and dry_run:
        click.echo(json.dumps([s.as_dict() for s in steps], indent=2, default=str))
        return
    click.echo(demo.describe(steps))
    if dry_run or all(s.done for s in steps):
        return
    click.echo("")

    def on_progress(event: dict) -> None:
        if event["fraction"] in (0.0, 1.0):
            click.secho(
                f"[{event['step']}/{event['steps']}] {event['message']} (~{event['remaining_s'] / 60:.0f} min left)",
                bold=event["fraction"] == 0.0,
                err=True,
            )

    # SIGTERM (the app's Cancel) stops like Ctrl-C: at the next answer or training step, work kept.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    result = demo.prepare(
        lab, limit=limit, train_overrides=overrides, on_progress=on_progress, progress=True, only=list(only) or None
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "status": result.status,
                    "wall_s": result.wall_s,
                    "run_id": result.run_id,
                    "steps": [s.as_dict() for s in result.steps],
                },
                indent=2,
                default=str,
            )
        )
    if result.status != "done":
        click.secho(
            f"\nstopped after {result.wall_s / 60:.1f} min: what is done is kept; run "
            "`lab demo prepare` again to continue",
            fg="yellow",
            err=True,
        )
        sys.exit(130)
    click.echo(f"\nthe demo is ready ({result.wall_s / 60:.1f} min): `lab serve`, then Compare, Evaluate, Advisor")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
