"""lab export: the recommended rung as a folder to run elsewhere, verified round trip."""

from __future__ import annotations

import json
import sys

import click

from .common import cli, lab_of


@cli.command("export")
@click.argument("task")
@click.option(
    "--rung",
    # export.RUNGS, written out: importing lab.export here would load it for every command (a test keeps them equal)
    type=click.Choice(["auto", "zero-shot", "few-shot", "rag", "tune", "tune+rag", "distilled"]),
    default="auto",
    show_default=True,
    help="What to ship: auto is what `lab advise TASK` recommends; a named rung is its best measured "
    "configuration; distilled is the student of TASK's latest `lab distill`.",
)
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False),
    help="The folder to write (default: exports/TASK-RUNG in the lab home). Written all at once; a rerun replaces it.",
)
@click.option("--copy-models", is_flag=True, help="Copy the GGUFs into the folder (default: named by path and sha256).")
@click.option(
    "--verify",
    is_flag=True,
    help="Then serve the folder with llama-cpp-python on 127.0.0.1 and check it answers N evaluated "
    "questions exactly as evaluated (exit 1 when it does not).",
)
@click.option(
    "--verify-only",
    is_flag=True,
    help="Verify the folder already written (--to, or the default), as it is now, without writing it again.",
)
@click.option("-n", "n", type=click.IntRange(min=1), default=20, show_default=True, help="Questions --verify asks.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written (and the verification) as JSON.")
@click.pass_context
def export_cmd(ctx, task, rung, to, copy_models, verify, verify_only, n, as_json):
    """Write TASK's rung as a folder Ollama, llama-server, vLLM or llama-cpp-python run as evaluated.

    \b
    The folder holds:
      Modelfile              ollama create NAME -f Modelfile (base, adapter, system, examples, options)
      SERVE.md               llama-server and vLLM command lines and one request as evaluated
      llama-cpp-server.json  llama-cpp-python's server config (what --verify starts)
      prompt.json            instruction, examples, decoding options, constraint
      rag.json               rag rungs: corpus, index version and hash, passages, packing
      grammar.gbnf, schema.json   constrained rungs
      EVIDENCE.md            the advice, the scoreboard, the adapter's side effects, sha256s, commands
    \b
    Examples:
      lab export tickets --to ship/tickets --verify
      lab export specialty --rung tune -n 40 --verify
    """
    from ..export import default_folder, export_rung, verify_export

    lab = lab_of(ctx)
    out: dict = {}
    if verify_only:
        folder = default_folder(lab, task, rung, to)
    else:
        done = export_rung(lab, task, rung, to, copy_models=copy_models)
        folder = done.folder
        out = {"folder": str(folder), "rung": done.pick.rung, "name": done.pick.name, "files": done.files}
        out.update({"notes": done.notes, "commands": done.commands})
        if not as_json:
            click.echo(f"exported {done.pick.name} (eval run {done.pick.eval_run_id}) to {folder}")
            for note in done.notes:
                click.secho(f"  note: {note}", fg="yellow")
            for name in done.files:
                click.echo(f"  {name}")
            click.echo(f"\n  {done.commands['ollama']}\n  {done.commands['llama-server']}")
    ok = True
    if verify or verify_only:
        if not as_json:
            click.echo(f"\nverifying: serving {folder} on 127.0.0.1 and asking {n} evaluated questions…")
        result = verify_export(lab, folder, n)
        out["verify"] = result.as_dict()
        ok = result.ok
        if not as_json:
            for line in result.lines():
                click.secho(line, fg="green" if result.ok else "red")
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
    if not ok:
        sys.exit(1)
