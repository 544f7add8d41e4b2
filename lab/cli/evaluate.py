"""lab eval, advise, report, probe: evaluation and the advice (`lab tasks`, `lab task new`: tasks.py)."""

from __future__ import annotations

import json
import sys

import click

from ..ladder import ArmError
from .common import cli, lab_of, table

# ---- evaluation, advice, report, probe (lab.evaluation, lab.advisor, lab.report) ----------------


@cli.command("eval")
@click.argument("task")
@click.option(
    "--arms",
    help="Comma-separated, from zero-shot,few-shot,rag,tune,tune+rag "
    "(default: zero-shot,few-shot, plus rag when the task has a corpus).",
)
@click.option(
    "--limit",
    type=int,
    help="A seeded, label-stratified sample of N held-out examples, the same every run "
    "(a larger N extends it; run again without it to finish).",
)
@click.option(
    "--repeats",
    type=int,
    default=1,
    show_default=True,
    help="R > 1 samples each example R times (temperature 0.7, one seed per repeat).",
)
@click.option("-m", "--model", help="Model id or path (default: the lab's default model).")
@click.option("--adapter", help="Adapter for the tune arms (default: the one named after the task).")
@click.option("--k", "k", type=int, help="Few-shot examples (default: the task's few_shot_k).")
@click.option("--rag-k", type=int, default=4, show_default=True, help="Passages per question for the rag arms.")
@click.option(
    "--similar",
    is_flag=True,
    help="Few-shot examples most similar to each question (by embedding) "
    "instead of a fixed set (no shared-prefix cache then).",
)
@click.option("--fresh", is_flag=True, help="Start a new run instead of resuming the matching one.")
@click.option(
    "--constrain/--no-constrain",
    default=None,
    help="Hold every arm's answers to the task's labels or JSON schema (constrained decoding); "
    "default: the task's `constrain`.",
)
@click.option(
    "--best-prompt",
    is_flag=True,
    help="Compare the prompt rung's configurations instead (zero-shot; "
    "few-shot fixed vs similar at several k; each with every instruction the task lists) and name the best.",
)
@click.option(
    "--best-rag",
    is_flag=True,
    help="Compare the RAG rung's configurations instead (passages per question, chunk size, and rag "
    "with the best few-shot examples; the retrieval check skips those that cannot help) and name the best.",
)
@click.option(
    "--ks",
    help="With --best-prompt: comma-separated few-shot k values (default: 2,4,8 and the task's); "
    "with --best-rag: passages per question (default: 2,4,8).",
)
@click.option(
    "--chunk-sizes",
    help="With --best-rag: comma-separated chunk sizes in tokens (default: half, the corpus's own, double).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help="Requests at once to a model server (openai:...) (default: lab.toml's concurrency, 8); "
    "local models answer one at a time.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scoreboard as JSON.")
@click.pass_context
def eval_cmd(
    ctx,
    task,
    arms,
    limit,
    repeats,
    model,
    adapter,
    k,
    rag_k,
    similar,
    fresh,
    constrain,
    best_prompt,
    best_rag,
    ks,
    chunk_sizes,
    concurrency,
    as_json,
):
    """Run TASK's held-out examples through each arm; resumable (run it again to continue)."""
    from ..evaluation import run_eval, summarize
    from ..task_import import leakage
    from ..tasks import load_task

    lab = lab_of(ctx)
    t = load_task(task, home=lab.home)
    if leaked := leakage(t):
        click.secho(
            f"warning: {leaked} held-out example(s) of '{t.name}' share their (normalised) input with a "
            "train or few-shot example: the few-shot and tuned scores are inflated",
            fg="yellow",
            err=True,
        )
    if best_prompt:
        return _best_prompt(lab, t, limit=limit, model=model, constrain=constrain, ks=ks, as_json=as_json)
    if best_rag:
        return _best_rag(
            lab, t, limit=limit, model=model, constrain=constrain, ks=ks, sizes=chunk_sizes, as_json=as_json
        )
    chosen = arms.split(",") if arms else ["zero-shot", "few-shot"] + (["rag"] if t.corpus else [])
    try:
        run_id = run_eval(
            lab,
            t,
            chosen,
            limit=limit,
            repeats=repeats,
            model=model,
            adapter=adapter,
            k=k,
            rag_k=rag_k,
            few_shot_mode="similar" if similar else "fixed",
            fresh=fresh,
            constrain=constrain,
            concurrency=concurrency,
        )
    except KeyboardInterrupt:
        click.secho(
            f"\ninterrupted: every finished example is saved; run `lab eval {task}` with the same "
            "options again to resume",
            fg="yellow",
            err=True,
        )
        sys.exit(130)
    board = summarize(lab, run_id, task=t)
    if as_json:
        click.echo(json.dumps(board.as_dict(), indent=2, default=str))
        return
    click.echo(board.to_text())
    click.secho(
        f"\nnext: `lab advise {task}` for the recommendation, `lab report {task}` for the HTML report",
        fg="bright_black",
        err=True,
    )


def _numbers(text: str | None, flag: str) -> list[int] | None:
    try:
        return [int(x) for x in text.split(",") if x.strip()] if text else None
    except ValueError:
        raise click.BadParameter(f"{flag} takes comma-separated whole numbers (got {text!r})") from None


def _sweep(measure, lab, task, **options) -> list:
    """A rung's sweep (`measure_prompt_rung`, `measure_rag_rung`), its notes in yellow; Ctrl-C keeps
    what finished and says how to resume."""
    try:
        return measure(lab, task, on_note=lambda n: click.secho(n, fg="yellow", err=True), **options)
    except KeyboardInterrupt:
        click.secho(
            "\ninterrupted: finished examples are saved; run the same command again to resume", fg="yellow", err=True
        )
        sys.exit(130)


def _best_rag(lab, task, *, limit, model, constrain, ks, sizes, as_json) -> None:
    """`lab eval TASK --best-rag`: the RAG rung's configurations on the same examples, and the best."""
    from ..evaluation.rag_rung import best_rag_config, candidates, measure_rag_rung
    from ..evaluation.verdict import meets

    if not task.corpus:
        raise click.UsageError(f"task '{task.name}' names no corpus: --best-rag needs one (corpus = \"NAME\")")
    configs = _sweep(
        measure_rag_rung,
        lab,
        task,
        limit=limit,
        ks=_numbers(ks, "--ks"),
        chunk_sizes=_numbers(sizes, "--chunk-sizes"),
        constrain=constrain,
        model=model,
        progress=not as_json,
    )
    best, n_cand = best_rag_config(configs), candidates(configs)
    if as_json:
        out = {"configs": [c.as_dict() for c in configs], "best": best.as_dict(), "candidates": n_cand}
        click.echo(json.dumps(out, indent=2))
        return

    def state(c) -> str:
        if c is best:
            return "<- best"
        return f"skipped: {c.skipped}" if c.skipped else f"dropped after {c.n}" if c.dropped else ""

    table(
        ["configuration", "score", "n", "eval run", ""],
        [
            (c.label(), "—" if c.score is None else f"{c.score:.3f}", c.n or "—", c.eval_run_id or "—", state(c))
            for c in configs
        ],
    )
    judged = meets(best.score, best.n, task.target, candidates=n_cand)
    click.echo(
        f"\nbest RAG configuration: {best.label()} ({best.score:.3f} on {best.n} examples, the best of "
        f"{n_cand} answered). {judged.text(best.label())}"
    )


def _best_prompt(lab, task, *, limit, model, constrain, ks, as_json) -> None:
    """`lab eval TASK --best-prompt`: every prompt configuration on the same examples, and the best."""
    from ..evaluation.prompt_rung import best_prompt_config, measure_prompt_rung

    configs = _sweep(
        measure_prompt_rung,
        lab,
        task,
        limit=limit,
        ks=_numbers(ks, "--ks"),
        constrain=constrain,
        model=model,
        progress=not as_json,
    )
    best = best_prompt_config(configs)
    if as_json:
        click.echo(json.dumps({"configs": [c.as_dict() for c in configs], "best": best.as_dict()}, indent=2))
        return
    from ..evaluation.verdict import meets
    from ..tasks import load_task

    table(
        ["configuration", "score", "n", "eval run"],
        [
            (
                c.label() + ("  <- best" if c is best else "  (dropped by the race)" if c.dropped else ""),
                "n/a" if c.score is None else f"{c.score:.3f}",
                c.n,
                c.eval_run_id,
            )
            for c in configs
        ],
    )
    target = load_task(task, home=lab.home).target
    judged = meets(best.score, best.n, target, candidates=len(configs))
    click.echo(
        f"\nbest prompt configuration: {best.label()} ({best.score:.3f} on {best.n} examples, the best of "
        f"{len(configs)}). {judged.text(best.label())}\n`lab advise {getattr(task, 'name', task)}` measures "
        "the tuned arm against it"
    )


def _questionnaire(lab, task, flags: dict, interactive: bool):
    """Answers from flags; the ones not given are asked when interactive (defaults from the task)."""
    from ..advisor import QUESTIONS, Questionnaire

    defaults: dict = {}
    if task is not None:
        defaults = {
            "good_examples": len(task.examples("train")),
            "lacks_knowledge": bool(task.corpus),
            "behaviour_problem": task.output_format in ("json", "label"),
        }
    answers = {**defaults, **{k: v for k, v in flags.items() if v is not None}}
    if interactive:
        for name, question in QUESTIONS:
            if flags.get(name) is not None:
                continue
            if name == "good_examples":
                answers[name] = click.prompt(question, type=int, default=answers.get(name, 0))
            elif name == "few_shot_reaches_90pct":
                v = click.prompt(question, type=click.Choice(["yes", "no", "unknown"]), default="unknown")
                answers[name] = {"yes": True, "no": False}.get(v)
            else:
                answers[name] = click.confirm(question, default=bool(answers.get(name, name == "clear_success_metric")))
    return Questionnaire(**answers)


@cli.command()
@click.argument("task", required=False)
@click.option("--run", "run_id", type=int, help="Advise from this eval run (default: TASK's latest).")
@click.option(
    "--few-shot-ok/--few-shot-short",
    "few_shot_reaches_90pct",
    default=None,
    help="Few-shot reaches (or falls short of) 90%% of the target.",
)
@click.option("--knowledge/--no-knowledge", "lacks_knowledge", default=None, help="The model lacks knowledge.")
@click.option(
    "--behaviour/--no-behaviour", "behaviour_problem", default=None, help="The problem is behaviour/format/style."
)
@click.option("--examples", "good_examples", type=int, help="How many good examples you have.")
@click.option(
    "--changing/--stable", "requirements_change_often", default=None, help="Requirements change often (or not)."
)
@click.option(
    "--cost-pressure/--no-cost-pressure",
    "cost_or_latency_pressure",
    default=None,
    help="Per-request cost or latency is a pressure.",
)
@click.option("--no-metric", "no_metric", is_flag=True, help="You cannot yet say what a good output is.")
@click.option(
    "-i/-I",
    "--interactive/--no-interactive",
    default=None,
    help="Ask the questions not given as flags (default: when nothing is measured and stdin is a terminal).",
)
@click.option(
    "--margin",
    type=click.FloatRange(0, 0.5, min_open=True),
    help="How much worse (0-0.5) a cheaper "
    "rung may be and still count as good as a costlier one: a non-inferiority test (default: the "
    "task's margin, 0.05 unless task.toml says otherwise).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def advise(ctx, task, run_id, no_metric, interactive, as_json, margin, **flags):
    """Which rung to use: from TASK's latest evaluation when there is one, else from a questionnaire."""
    from ..advisor import advise_from_answers, recommend_for_run
    from ..climb.record import report_run
    from ..evaluation import summarize
    from ..tasks import load_task

    lab = lab_of(ctx)
    t = load_task(task, home=lab.home) if task else None
    if no_metric:
        flags["clear_success_metric"] = False
    run_id = run_id or (report_run(lab, t.name) if t else None)
    if run_id is not None:
        board = summarize(lab, run_id)
        board.margin = board.margin if margin is None else margin
        answers = (
            _questionnaire(lab, t, flags, bool(interactive))
            if any(v is not None for v in flags.values()) or interactive
            else None
        )
        rec = recommend_for_run(lab, board, answers)
    else:
        ask = (
            interactive if interactive is not None else (sys.stdin.isatty() and all(v is None for v in flags.values()))
        )
        if not ask and all(v is None for v in flags.values()):
            click.secho(
                "no evaluation yet and no answers given: answering with defaults "
                "(give answers as flags, see `lab advise -h`, or use -i)",
                fg="yellow",
                err=True,
            )
        rec = advise_from_answers(_questionnaire(lab, t, flags, ask), t.name if t else "TASK")
    click.echo(json.dumps(rec.as_dict(), indent=2, default=str) if as_json else rec.to_text())


@cli.command()
@click.argument("task")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML file (default: TASK-report.html).")
@click.option(
    "--run",
    "run_id",
    type=int,
    help="Report this eval run (default: TASK's latest, or the latest climb's own run when the climb made it).",
)
@click.pass_context
def report(ctx, task, output, run_id):
    """Write TASK's latest evaluation (a climb's own run when the climb made it) as one
    self-contained HTML file (opens offline)."""
    from ..climb.record import report_run
    from ..report import write_report
    from ..tasks import load_task

    lab = lab_of(ctx)
    t = load_task(task, home=lab.home)
    run_id = run_id or report_run(lab, t.name)
    if run_id is None:
        raise ArmError(f"no evaluation of '{t.name}' in {lab.store.path} yet: run `lab eval {task}` first")
    path = write_report(lab, run_id, output or f"{t.name}-report.html")
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("task", default="acme-facts")
@click.option("--adapter", help="Also ask this adapter (trained on the old documents).")
@click.option("-m", "--model", help="Model id or path.")
@click.option("-k", "top_k", type=int, default=4, show_default=True, help="Passages to retrieve.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def probe(ctx, task, adapter, model, top_k, as_json):
    """The staleness probe: change a fact in a scratch copy of the corpus, re-index, ask again."""
    from ..evaluation.probe import run_probe

    result = run_probe(lab_of(ctx), task, adapter=adapter, model=model, k=top_k)
    click.echo(json.dumps(result.as_dict(), indent=2, default=str) if as_json else result.to_text())
