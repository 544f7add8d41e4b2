"""lab tasks, task new: the tasks there are, and your own task from a file you have."""

from __future__ import annotations

import json

import click

from .common import cli, table

# ---- tasks (lab.tasks, lab.task_import) ---------------------------------------------------------


@cli.command("tasks")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_context
def tasks_cmd(ctx, paths):
    """List the built-in scenarios, the lab home's own tasks (tasks/) and any task PATHS given."""
    from ..home import LabHome
    from ..tasks import builtin_tasks, home_tasks, home_tasks_dir, load_task

    home = LabHome.resolve(ctx.find_root().obj.get("home"))
    rows = []
    for where, refs in (("built-in", builtin_tasks()), ("home", home_tasks(home)), ("path", paths)):
        for ref in refs:
            t = load_task(home_tasks_dir(home) / ref if where == "home" else ref, home=home)
            rows.append(
                (
                    t.name,
                    where,
                    t.output_format,
                    len(t.examples("train")),
                    len(t.examples("eval")),
                    f"{t.primary_metric} >= {t.target:.2f}",
                    t.corpus or "-",
                    (t.description or "")[:60],
                )
            )
    table(["task", "where", "format", "train", "eval", "target", "corpus", "description"], rows)
    click.echo(
        "\nyour own: `lab task new NAME --from data.csv` (into the lab home's tasks/), "
        "or a task.toml (see lab/tasks.py) -> `lab eval path/to/task.toml`"
    )


@cli.group("task")
def task_group():
    """Make your own task from a file you have (see `lab task new -h`), or show one (`lab task show`)."""


@task_group.command("show")
@click.argument("task_ref", metavar="TASK")
@click.pass_context
def task_show(ctx, task_ref):
    """Show TASK (a name, a task.toml or its folder): its file, format, scoring, instructions and rubric."""
    from ..home import LabHome
    from ..tasks import load_task

    t = load_task(task_ref, home=LabHome.resolve(ctx.find_root().obj.get("home")))
    lines = [
        f"task: {t.name}" + (f"  ({t.source})" if t.source else ""),
        *([f"description: {t.description}"] if t.description else []),
        f"format: {t.output_format}" + (f", labels: {', '.join(t.labels)}" if t.labels else ""),
        f"scorers: {', '.join(t.scorers)} (target: {t.primary_metric} >= {t.target:.2f})",
        *([f"teaches: {t.teaches}"] if t.teaches else []),
        *([f"corpus: {t.corpus}"] if t.corpus else []),
        *(
            [
                f"judge: {t.judge} (blind, two answers at a time"
                + (
                    f"; bar: a win rate of {t.win_rate_target:.0%} over {t.baseline_arm})"
                    if t.win_rate_target
                    else f"; baseline: {t.baseline_arm})"
                )
            ]
            if t.judge
            else []
        ),
        "instruction:",
        _indented(t.instruction or "(none)"),
    ]
    for n, other in enumerate(t.instructions, 1):
        lines += [f"instruction to try {n}:", _indented(other)]
    if t.rubric:
        lines += ["rubric:", _indented(t.rubric)]
    click.echo("\n".join(lines))


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines() or [""])


@task_group.command("new")
@click.argument("name")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False),
    help="CSV, TSV, JSONL/JSON (records, chat messages, prompt/completion, Alpaca) or Parquet.",
)
@click.option("--input", "input_column", help="The input column (guessed: text, input, prompt, question).")
@click.option("--output", "output_column", help="The output column (guessed: label, output, completion, answer).")
@click.option("--eval-size", help="Held-out examples: a count (50) or a fraction (0.2); default 20%, at most 500.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["label", "json", "text"]),
    help="Override the inferred output format.",
)
@click.option("--labels", help="Comma-separated labels (a label task's allowed answers, in this order).")
@click.option(
    "--teaches",
    type=click.Choice(["knowledge", "behaviour"]),
    help="What the task teaches, which `lab climb` follows: knowledge (facts: RAG) or behaviour (format, "
    "style, a persona: tuning). Default: inferred (labels and JSON: behaviour; short text answers: knowledge).",
)
@click.option(
    "--instruction",
    "instructions",
    multiple=True,
    help="The system prompt (default: one written from the format). Repeatable: the first is the task's "
    "instruction, each further one another to try (`instructions` in task.toml), which the prompt rung "
    "measures beside it.",
)
@click.option(
    "--corpus",
    metavar="NAME_OR_PATH",
    help="Attach a corpus for RAG (`corpus` in task.toml): the name of one in the lab home's corpora/ or a "
    "sample corpus (acme), or a folder of documents, copied into the home's corpora/.",
)
@click.option("--force", is_flag=True, help="Replace tasks/NAME if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.pass_context
def task_new(ctx, name, source, eval_size, labels, instructions, force, as_json, **options):
    """Make task NAME in the lab home (tasks/NAME/) from the examples in a file.

    \b
    The output format is inferred: label (a small repeating set), json (JSON objects: a schema
    is derived) or text; the split is seeded (stratified for labels) and training examples that
    share a held-out input are removed. The columns gold_doc and aliases, when the file has them,
    are kept (aliases: a list, or one text with '|' between them). Then: lab eval NAME
    """
    from ..home import LabHome
    from ..task_import import import_task, parse_eval_size

    home = LabHome.resolve(ctx.find_root().obj.get("home"))
    plan = import_task(
        source,
        name,
        home,
        force=force,
        eval_size=parse_eval_size(eval_size),
        labels=[x.strip() for x in labels.split(",") if x.strip()] if labels else None,
        instruction=instructions[0] if instructions else None,
        instructions=list(instructions[1:]),
        **options,
    )
    if as_json:
        click.echo(json.dumps(plan.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"task '{plan.name}' -> {plan.path}\n{plan.summary()}")
    for w in plan.warnings:
        click.secho(f"warning: {w}", fg="yellow", err=True)
    what = "the instruction, scorers or rubric" if plan.rubric else "the instruction or scorers"
    click.echo(f"next: lab eval {plan.name} --limit 20   (edit {plan.path.name} to change {what})")
