"""lab index, search: the RAG rung's corpora."""

from __future__ import annotations

import json

import click

from .common import cli, lab_of

# ---- retrieval (lab.retrieval) ------------------------------------------------------------------


@cli.command("index")
@click.argument("corpus")
@click.option("--M", "hnsw_m", type=int, help="HNSW links per node (default 32; changing it rebuilds).")
@click.option("--ef-construction", type=int, help="HNSW build-time beam (default 200; changing it rebuilds).")
@click.option(
    "--ef",
    type=int,
    help="HNSW query-time beam (default: the smallest that reaches --recall, "
    "measured at each build; a given ef is kept until --ef 0; no rebuild).",
)
@click.option(
    "--recall",
    "recall_target",
    type=click.FloatRange(0, 1, min_open=True),
    help="recall@10 the calibrated beam must reach on sampled chunks (default 0.98).",
)
@click.option("--chunk-tokens", type=int, help="Most embedder tokens per chunk (default 160; changing it rebuilds).")
@click.option("--overlap", type=int, help="Tokens of a chunk's tail repeated in the next one (default 32).")
@click.option(
    "--check",
    "check_task",
    metavar="TASK",
    help="Then search TASK's held-out questions (no generation) and print hit rate, recall@k and MRR per k.",
)
@click.option(
    "--k",
    "check_ks",
    default="1,2,4,8",
    show_default=True,
    callback=lambda ctx, param, value: _ks(value),
    help="The k values --check reports, comma-separated.",
)
@click.pass_context
def index_cmd(ctx, corpus, hnsw_m, ef_construction, ef, recall_target, chunk_tokens, overlap, check_task, check_ks):
    """Index CORPUS (a folder, or a name under corpora/) for retrieval; re-runs embed only what changed.
    With --check TASK: how well retrieval alone finds the answers to TASK's held-out questions."""
    import warnings

    from ..retrieval import index_corpus

    lab = lab_of(ctx)
    if check_task:
        from ..tasks import load_task

        check_task = load_task(check_task, home=lab.home)  # an unknown task fails before any indexing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists skipped files; print them once, below
        report = index_corpus(
            lab,
            corpus,
            progress=True,
            M=hnsw_m,
            ef_construction=ef_construction,
            ef=ef,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            recall_target=recall_target,
        )
    for message in report.skipped:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    click.echo(report.summary())
    click.secho(f"[index {report.index_hash} in {report.path}]", fg="bright_black", err=True)
    if check_task:
        from ..evaluation import check_retrieval

        click.echo()
        click.echo(check_retrieval(lab, check_task, ks=check_ks, corpus=corpus).to_text())


def _ks(value: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(k) for k in str(value).split(",") if k.strip()}))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give whole numbers, e.g. 1,2,4,8") from None
    if not ks or ks[0] < 1:
        raise click.BadParameter(f"{value!r}: each k must be 1 or more")
    return ks


@cli.command("search")
@click.argument("corpus")
@click.argument("query")
@click.option("-k", "top_k", type=int, default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the passages as JSON.")
@click.pass_context
def search_cmd(ctx, corpus, query, top_k, as_json):
    """Show the passages of CORPUS closest to QUERY (indexes the corpus first if needed)."""
    from ..retrieval import search

    passages = search(lab_of(ctx), corpus, query, k=top_k, progress=not as_json)
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in passages], indent=2, ensure_ascii=False))
        return
    for i, p in enumerate(passages, 1):
        click.secho(
            f"[{i}] {p.score:.3f}  {p.source}  chars {p.span[0]}-{p.span[1]}  ({p.heading or p.title})", bold=True
        )
        text = " ".join(p.text.split())
        click.echo(f"    {text[:300]}{'...' if len(text) > 300 else ''}\n")
