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
@click.option(
    "--chunk-sizes",
    "check_sizes",
    metavar="SIZES",
    callback=lambda ctx, param, value: _sizes(value),
    help="With --check: compare chunkings, one table with a chunk-size column. Comma-separated tokens "
    "(e.g. 80,160,256), or 'sweep' for half, own and double the index's chunk size (what the RAG sweep "
    "tries). A size other than the index's own is searched in a version of the corpus built beside it "
    "(embedded once, reused after; the index itself is left as it is).",
)
@click.pass_context
def index_cmd(
    ctx, corpus, hnsw_m, ef_construction, ef, recall_target, chunk_tokens, overlap, check_task, check_ks, check_sizes
):
    """Index CORPUS (a folder, or a name under corpora/) for retrieval; re-runs embed only what changed.
    With --check TASK: how well retrieval alone finds the answers to TASK's held-out questions
    (--chunk-sizes: at several chunk sizes)."""
    import warnings

    from ..retrieval import index_corpus

    lab = lab_of(ctx)
    if check_sizes and not check_task:
        raise click.UsageError("--chunk-sizes compares chunkings for --check TASK: add --check TASK")
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
        click.echo()
        click.echo(_check(lab, check_task, check_ks, corpus, check_sizes))


def _check(lab, task, ks, corpus, sizes) -> str:
    """The retrieval check's text: on the index as built, or at each chunk size (`sizes`)."""
    from ..evaluation.retrieval_check import check_chunk_sizes, check_retrieval
    from ..retrieval import sweep_chunk_sizes

    if sizes:
        sizes = None if sizes == "sweep" else sizes
        return check_chunk_sizes(lab, task, ks=ks, corpus=corpus, chunk_sizes=sizes, progress=True).to_text()
    sweep = ",".join(map(str, sweep_chunk_sizes(lab, corpus)))
    text = check_retrieval(lab, task, ks=ks, corpus=corpus).to_text()
    return (
        f"{text}\ncompare chunkings: --chunk-sizes sweep ({sweep}: half, own and double this index's), or e.g. 120,200"
    )


def _sizes(value: str | None):
    """--chunk-sizes: None, 'sweep', or the sizes in tokens."""
    if not value:
        return None
    if value.strip().lower() == "sweep":
        return "sweep"
    try:
        sizes = tuple(sorted({int(n) for n in value.split(",") if n.strip()}))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give whole numbers of tokens, e.g. 80,160,256, or 'sweep'") from None
    if not sizes or sizes[0] < 1:
        raise click.BadParameter(f"{value!r}: each chunk size must be 1 token or more")
    return sizes


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
