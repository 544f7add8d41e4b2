"""lab models, ask, log, serve: the models, one question through one arm, the run log, the app."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..units import size
from .common import cli, lab_of, table


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models(ctx, as_json):
    """List every model the lab can run (embedded defaults and models/: GGUF files, HF folders,
    or both for one model), where it runs, and what each rung can do with it."""
    from ..backends.llamacpp import planned_placement
    from ..models import capabilities

    lab = lab_of(ctx)
    found, problems = lab.list_models()
    where = planned_placement(lab.config.n_gpu_layers)
    if as_json:
        click.echo(json.dumps([dict(m.as_row(), capabilities=capabilities(m)) for m in found], indent=2))
        return
    rows = [
        (
            m.id,
            capabilities(m)["parts"],
            size(m.size_bytes),
            m.architecture or "?",
            m.context_length or "?",
            "yes" if m.chat_template else "no",
            m.source + ("" if m.ready else " (assembled on first use)"),
        )
        for m in found
    ]
    table(["id", "parts", "size", "arch", "context", "chat template", "source"], rows)
    click.echo("\nwhat each rung can do:")
    for m in found:
        caps = capabilities(m)
        on = f", {where}" if caps["serve"] and caps["serve"].startswith("llama.cpp") else ""
        click.echo(f"  {m.id}\n    prompt, rag: {caps['serve']}{on}\n    tune: {caps['train'] or caps['train_note']}")
    click.echo(
        f"\ndefault: {lab.config.default_model}   (add your own: a .gguf file, an HF folder, or both in "
        f"one folder, in {lab.home.models})"
    )
    for p in problems:
        click.secho(f"warning: {p}", fg="yellow", err=True)


@cli.command()
@click.argument("question")
@click.option("-m", "--model", help="Model id or path (default: the embedded SmolLM2-135M-Instruct).")
@click.option("-s", "--system", help="System prompt.")
@click.option(
    "--backend",
    "engine",
    type=click.Choice(["llamacpp", "hf"]),
    help="Run on llama.cpp (GGUF) or transformers (default: llama.cpp for GGUF).",
)
@click.option(
    "--json-schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Constrain the answer to this JSON schema (llama.cpp grammar).",
)
@click.option("--max-tokens", type=int, help="Most tokens to generate (default 256).")
@click.option("--temperature", type=float, help="0 = deterministic (default).")
@click.option("--seed", type=int)
@click.option("--rag", "corpus", help="Answer with passages retrieved from this corpus (see `lab index`).")
@click.option("-k", "top_k", type=int, default=4, show_default=True, help="Passages to retrieve with --rag.")
@click.option("--adapter", help="Answer with this LoRA adapter on (the tune arm; with --rag: tune+rag).")
@click.pass_context
def ask(ctx, question, model, system, engine, schema_file, max_tokens, temperature, seed, corpus, top_k, adapter):
    """Ask a model QUESTION; the answer streams out and is logged to lab.db.

    The arm follows from the flags: zero-shot by default, rag with --rag, tune with --adapter,
    tune+rag with both (the same arms `lab eval` scores)."""
    lab = lab_of(ctx)
    schema = json.loads(Path(schema_file).read_text()) if schema_file else None
    options = lab.options(max_tokens=max_tokens, temperature=temperature, seed=seed, json_schema=schema)
    arm = {(False, False): "zero-shot", (True, False): "rag", (False, True): "tune", (True, True): "tune+rag"}[
        (bool(corpus), bool(adapter))
    ]
    ans = lab.answer(
        arm,
        question,
        corpus=corpus,
        adapter=adapter,
        model=model,
        engine=engine,
        system=system,
        options=options,
        rag_k=top_k,
        on_text=lambda piece: click.echo(piece, nl=False),
    )
    if ans.passages is not None:
        click.echo("\n\nSources:")
        for i, p in enumerate(ans.passages, 1):
            click.echo(f"  [{i}] {p.source}  (score {p.score:.3f})")
    click.echo("")
    gen = ans.generation
    click.secho(
        f"[{ans.arm} · {gen.model_id}"
        + (f" + {ans.adapter.name}" if ans.adapter else "")
        + f" · {gen.prompt_tokens} prompt + {gen.completion_tokens} completion tokens · "
        f"{gen.total_s:.2f}s · logged as generation {ans.row_id}]",
        fg="bright_black",
        err=True,
    )


@cli.group(invoke_without_command=True)
@click.option("-n", "count", default=20, show_default=True, help="How many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
@click.option("--arm", help="Only this arm.")
@click.option("-q", "--search", help="Only rows whose question or answer contains this.")
@click.pass_context
def log(ctx, count, as_json, arm, search):
    """Show the latest generations from the run log (newest first)."""
    if ctx.invoked_subcommand:
        return
    lab = lab_of(ctx)
    rows = list(reversed(lab.store.recent_generations(count, arm=arm, search=search)))
    if as_json:
        for r in rows:
            for k in ("messages_json", "options_json", "retrieved_json"):
                if r.get(k):
                    r[k[:-5]] = json.loads(r.pop(k))
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        question = ""
        if r.get("messages_json"):
            msgs = json.loads(r["messages_json"])
            question = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        click.secho(
            f"# {r['id']}  {r['ts']}  {r['arm']}  {r['model_id']}"
            + (f"  adapter={r['adapter_id']}" if r.get("adapter_id") else ""),
            bold=True,
        )
        click.echo(f"Q: {question}")
        if r.get("error"):
            click.secho(f"error: {r['error']}", fg="red")
        else:
            click.echo(f"A: {r['output']}")
            click.secho(
                f"   {r['prompt_tokens']}+{r['completion_tokens']} tokens, {r['total_s']:.2f}s", fg="bright_black"
            )
        click.echo("")


@log.command("path")
@click.pass_context
def log_path(ctx):
    """Print the path of the SQLite log (open it with sqlite-utils or datasette)."""
    from ..home import LabHome

    click.echo(LabHome.resolve(ctx.find_root().obj.get("home")).db_path)


# ---- the app (lab.app) --------------------------------------------------------------------------


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; anything but loopback needs --auth or --auth-file.",
)
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--auth", help="Require this login: user:password.")
@click.option(
    "--auth-file", type=click.Path(dir_okay=False), help="Require a login from this file: one user:password per line."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--home", type=click.Path(file_okay=False), help="Lab home (same as `lab --home DIR serve`).")
@click.pass_context
def serve(ctx, host, port, auth, auth_file, open_browser, home):
    """Open the lab in a browser: Compare, Evaluate, Train, Knowledge, Advisor, History (offline)."""
    from ..app.access import check_host, read_auth

    if home:
        ctx.find_root().obj["home"] = home
    logins = read_auth(auth, auth_file)
    check_host(host, logins)  # before loading anything
    lab = lab_of(ctx)
    # Gradio's file cache in the lab home, named before gradio is imported (some of its folders
    # are read at import); `serve_app` empties it and names it again
    os.environ["GRADIO_TEMP_DIR"] = str(lab.home.gradio_cache)
    from ..app import serve as serve_app

    click.secho(f"Ladder Lab on http://{host}:{port}  (lab home {lab.home.root}; Ctrl-C stops)", fg="green", err=True)
    serve_app(lab, host=host, port=port, auth=logins, open_browser=open_browser)
