"""lab distill: a teacher's answers into a cheap student, and the ledger that says if it pays."""

from __future__ import annotations

import json
import sys

import click

from .common import cli, lab_of

CONFIRM_ABOVE_S = 300  # ask before starting a distillation estimated to take longer than this


@cli.command("distill")
@click.argument("task")
@click.option(
    "--teacher",
    default="default:best-prompt",
    show_default=True,
    help="Who answers the inputs, and how: MODEL[:HOW]. MODEL: a model id (lab models), a path, 'default' "
    "(the lab's default model) or an OpenAI-compatible server, openai:http://HOST:PORT/v1#NAME. HOW: "
    "best-prompt (the best prompt configuration measured for that model on TASK, else its few-shot "
    "setting), best-rag, zero-shot, few-shot, few-shot@K (K fixed examples), similar@K (the K most "
    "similar), rag, rag@K (K passages). E.g. 'gemma3-270m:few-shot@8', "
    "'openai:http://gpu:8000/v1#llama-8b:rag'.",
)
@click.option("--student", help="The model to tune on the teacher's answers (default: the lab's default model).")
@click.option(
    "--inputs",
    type=click.Path(dir_okay=False),
    help="A file of inputs to label (CSV, TSV, JSONL, JSON or Parquet, as lab task new reads; the column "
    "named as the task's input, or 'input', or the only one), e.g. a log of real questions. Default: "
    "the task's training inputs, their gold answers set aside.",
)
@click.option("--name", help="The student's adapter (default TASK-distilled; with gold answers also NAME-gold).")
@click.option(
    "--margin",
    type=click.FloatRange(0, 0.5, min_open=True),
    help="'As good as' within this (default: the task's margin).",
)
@click.option("--limit", type=click.IntRange(min=1), help="A seeded, label-stratified sample of N held-out examples.")
@click.option("--max-inputs", type=click.IntRange(min=1), help="Label at most N inputs.")
@click.option("--no-gold", is_flag=True, help="Do not also train on the gold answers (saves one training).")
@click.option("--epochs", type=float, help="Training epochs (lab train's default for this machine).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Cap the training steps of each adapter.")
@click.option("--lr", "learning_rate", type=float, help="Peak learning rate.")
@click.option("--batch-size", type=int, help="Examples per micro-batch.")
@click.option("--max-seq-len", type=int, help="Tokens per training example.")
@click.option("--rank", type=int, help="LoRA rank r.")
@click.option("--threads", type=int, help="CPU threads for torch.")
@click.option("-y", "--yes", is_flag=True, help="Start without asking, however long the estimate.")
@click.option("--estimate-only", is_flag=True, help="Print the plan and the time estimate; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON.")
@click.pass_context
def distill_cmd(
    ctx,
    task,
    teacher,
    student,
    inputs,
    name,
    margin,
    limit,
    max_inputs,
    no_gold,
    epochs,
    max_steps,
    yes,
    estimate_only,
    as_json,
    **train,
):
    """Distil TASK: a teacher answers the inputs, the student is tuned on its answers, and the
    ledger compares them on the same held-out examples.

    \b
    The ledger: teacher, student zero-shot, student distilled and (with gold answers) student
    tuned on them; each one's quality with its interval, p50/p95 latency, tokens and cost per
    1,000 requests (the task's [cost]); the labelling and training costs; then one sentence: is
    the student as good as the teacher within the margin (a one-sided non-inferiority test on
    the paired difference), how many times cheaper, and after how many requests it pays back.
    Resumable: Ctrl-C, then the same command, continues; answers given and adapters trained are kept.
    """
    from ..distill import DistillInterrupted, estimate, ledger_lines, run_distill, settings_for
    from ..distill.run import plan_lines
    from ..tasks import load_task

    lab = lab_of(ctx)
    t = load_task(task, home=lab.home)
    train = {k: v for k, v in train.items() if v is not None}
    settings = settings_for(
        t,
        teacher,
        name,
        student=student,
        inputs=inputs,
        limit=limit,
        max_inputs=max_inputs,
        margin=margin,
        gold=not no_gold,
        epochs=epochs,
        max_steps=max_steps,
        train=train,
    )
    for line in plan_lines(lab, t, settings):
        click.echo(f"plan: {line}", err=True)
    secs, basis = estimate(lab, t, settings)
    click.echo(f"estimate: about {max(1, round(secs / 60))} min here ({basis})", err=True)
    if estimate_only:
        return
    if secs > CONFIRM_ABOVE_S and not yes and sys.stdin.isatty():
        click.confirm("start it?", default=True, abort=True, err=True)
    try:
        distill_id = run_distill(lab, t, settings, say=lambda m: click.echo(m, err=True))
    except DistillInterrupted as e:
        click.secho(f"\n{e}", fg="yellow", err=True)
        sys.exit(130)
    ledger = json.loads(lab.store.distill(distill_id)["ledger_json"])
    if as_json:
        click.echo(json.dumps(ledger, indent=2, default=str))
    else:
        click.echo("\n".join(ledger_lines(ledger)))
