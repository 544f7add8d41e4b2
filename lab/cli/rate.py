"""lab rate / lab judge: blind pairwise preference in the terminal, and a local judge certified against it."""

from __future__ import annotations

import json
import threading
import time

import click

from .common import cli, lab_of

KEYS = {"a": "A", "b": "B", "t": "tie", "x": "both bad"}


def _pairs(lab, task_ref: str, arms: str, run_id: int | None):
    from ..evaluation.pairwise import pairs_for
    from ..tasks import load_task

    task = load_task(task_ref, lab.home)
    return task, pairs_for(lab, task, arms, run_id)


@cli.command("rate")
@click.argument("task")
@click.option("--arms", required=True, help="The two arms to compare, e.g. few-shot,tune.")
@click.option(
    "--run", "run_id", type=int, help="The eval run whose answers to rate (default: the newest with both arms)."
)
@click.option("--verdict-only", is_flag=True, help="Rate nothing: print the verdict on the pairs rated so far.")
@click.pass_context
def rate_cmd(ctx, task, arms, run_id, verdict_only):
    """Rate TASK's answers blind, two arms side by side, one held-out input at a time.

    \b
    The answers are shown as A and B in an order drawn at random for every pair; press
      a  A is better     b  B is better     t  tie     x  both bad     s  skip     q  stop
    Every rating is saved at once: stop any time, the same command continues with the pairs
    not yet rated. The verdict is the sign test on your preferences, ties stated.
    \b
    Example:
      lab rate support-tone --arms few-shot,tune
    """
    from ..evaluation import pairwise

    lab = lab_of(ctx)
    task_obj, pairs = _pairs(lab, task, arms, run_id)
    if not verdict_only:
        if task_obj.rubric:
            click.secho("Rubric:", bold=True)
            click.echo(task_obj.rubric.strip() + "\n")
        _rate_loop(lab, pairs)
    click.echo(pairwise.preference(lab, pairs).sentence)


def _rate_loop(lab, pairs) -> None:
    from ..evaluation import pairwise

    skipped: set[str] = set()
    while (shown := pairwise.next_pair(lab, pairs, skip=skipped)) is not None:
        done = len(pairwise.ratings(lab, pairs))
        click.secho(f"\n── pair {done + 1} of {len(pairs)} ──", bold=True)
        click.echo(f"Input:\n{shown.pair.question.strip()}\n")
        click.secho("Answer A:", fg="cyan")
        click.echo(shown.text("A").strip() + "\n")
        click.secho("Answer B:", fg="magenta")
        click.echo(shown.text("B").strip() + "\n")
        t0 = time.monotonic()
        try:
            key = click.prompt("a / b / t tie / x both bad / s skip / q stop", type=click.Choice([*KEYS, "s", "q"]))
        except (click.Abort, EOFError):
            key = "q"
        if key == "q":
            click.echo("\nstopped: the same command continues with the pairs not yet rated.")
            return
        if key == "s":
            skipped.add(shown.pair.example_id)
            continue
        pairwise.rate(lab, shown, KEYS[key], seconds=time.monotonic() - t0)
    click.echo("\nevery pair is rated." if not skipped else f"\n{len(skipped)} pair(s) skipped; the rest are rated.")


@cli.command("judge")
@click.argument("task")
@click.option("--arms", required=True, help="The two arms whose answers the judge compares, e.g. few-shot,tune.")
@click.option(
    "--model",
    help="The judge: a model id, a path, or a server openai:http://HOST:PORT/v1#NAME (default: the lab's default model).",
)
@click.option(
    "--run", "run_id", type=int, help="The eval run whose answers to judge (default: the newest with both arms)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Judge only the first N pairs.")
@click.option("--json", "as_json", is_flag=True, help="Print the certificate and the verdict as JSON.")
@click.pass_context
def judge_cmd(ctx, task, arms, model, run_id, limit, as_json):
    """Ask a judge model which answer is better, in both orders, and certify it against your ratings.

    \b
    Each pair is asked twice, each answer once as A and once as B, the verdict held to A, B or
    tie; a pair whose two orders disagree counts as a tie (a flip). The certificate compares the
    judge with your blind ratings (`lab rate`): agreement and Cohen's kappa with 95% intervals,
    the flip rate, unreadable verdicts. Its verdicts are used only when it clears the README's
    bar (kappa's lower bound >= 0.4 on >= 20 pairs you rated, flips <= 25%, nothing unreadable);
    otherwise your ratings are. Resumable: run it again after a stop.
    \b
    Examples:
      lab judge support-tone --arms few-shot,tune
      lab judge support-tone --arms few-shot,tune --model openai:http://gpu:8000/v1#qwen-32b
    """
    from tqdm import tqdm

    from ..evaluation import certificate, judge

    lab = lab_of(ctx)
    task_obj, pairs = _pairs(lab, task, arms, run_id)
    stop = threading.Event()
    n = min(limit or len(pairs), len(pairs))
    with tqdm(total=2 * n, unit="verdict", disable=as_json) as bar:
        try:
            run = judge.judge_pairs(
                lab, task_obj, pairs, model, limit, stop, on_step=lambda d, t: bar.update(d - bar.n)
            )
        except KeyboardInterrupt:
            stop.set()
            click.echo("\nstopped: the same command continues where it stopped.", err=True)
            raise SystemExit(130) from None
    ev = certificate.preference_evidence(lab, pairs, run.judge)
    cert = certificate.certificate(lab, pairs, run.judge)
    if as_json:
        click.echo(json.dumps({"judge": run.judge, "certificate": cert.as_dict(), "evidence": ev.as_dict()}, indent=2))
        return
    click.secho(cert.text(), fg="green" if cert.trusted else "yellow")
    for line in judge.own_verdict_lines(lab, pairs, run.judge):
        click.echo(line)
    used = (
        ev.preference.sentence if ev.preference else f"none yet: rate pairs blind with `lab rate {task} --arms {arms}`."
    )
    click.secho(f"Verdict used ({'the judge' if ev.source == 'judge' else 'your ratings'}): {used}", bold=True)
