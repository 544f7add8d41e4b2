"""lab train, adapters: the tune rung."""

from __future__ import annotations

import json
import sys

import click

from ..evaluation.side_effects import AFTER_TRAINING, DEFAULT_LIMIT, DEFAULT_PASSAGES
from ..tasks import TaskError
from ..tuning.adapters import AdapterError
from ..units import size
from .common import cli, lab_of, table

# ---- tuning (lab.tuning) ------------------------------------------------------------------------

TRAIN_EPILOG = """\b
Exit codes (for scripts):
  0    the adapter is in adapters/NAME/ (or, with --validate-only, the data is fine)
  2    bad input: data file, config, model or name (nothing was trained)
  130  interrupted (Ctrl-C / SIGTERM): the last checkpoint is kept, run again with --resume
  1    anything else (a bug: please report it)
\b
Examples:
  lab train --task tickets --name tickets-demo --max-steps 60
  lab train --data mail.jsonl --base smollm2 --name mail --system "Reply in JSON."
  lab train --config run.toml --resume
"""


@cli.command("train", epilog=TRAIN_EPILOG)
@click.option(
    "--data",
    type=click.Path(dir_okay=False),
    help="JSONL: chat {messages}, {prompt, completion}, Alpaca, or {input, output}.",
)
@click.option("--task", help="Train on a task's training set with its instruction (e.g. tickets).")
@click.option("--base", "base_model", help="Base model id or path (default: the lab's default model).")
@click.option("--name", help="Adapter name: it goes to adapters/NAME/ (default with --task: the task's name).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A TOML file of these settings (top level or [train]); flags override it.",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "lora", "qlora"]),
    help="auto (default): qlora on a CUDA GPU, lora on the CPU. qlora runs on the CPU too (bitsandbytes 4-bit, slower).",
)
@click.option(
    "--qlora-engine",
    type=click.Choice(["auto", "unsloth", "bitsandbytes"]),
    help="qlora with Unsloth (default when installed) or PEFT + bitsandbytes.",
)
@click.option("--rank", type=int, help="LoRA rank r (CPU default 8, CUDA 16).")
@click.option("--alpha", type=float, help="LoRA alpha (CPU 16, CUDA 32).")
@click.option("--dropout", type=float, help="LoRA dropout (CPU 0.05; CUDA 0, which Unsloth's fast kernels need).")
@click.option(
    "--target-modules",
    help="Comma-separated module names or all-linear: every linear layer, named per architecture (CPU default q_proj,v_proj; CUDA all-linear).",
)
@click.option("--lr", "learning_rate", type=float, help="Peak learning rate (CPU 1e-3, CUDA 2e-4).")
@click.option("--epochs", type=float, help="Passes over the training set (CPU 1, CUDA 2).")
@click.option("--max-steps", type=int, help="Optimizer steps; overrides --epochs.")
@click.option("--batch-size", type=int, help="Examples per micro-batch (CPU 4, CUDA 8).")
@click.option("--grad-accum", type=int, help="Micro-batches per optimizer step (CPU 1, CUDA 2).")
@click.option("--max-seq-len", type=int, help="Tokens per example; longer ones are cut (CPU 512, CUDA 1024).")
@click.option("--seed", type=int, help="Seed for the split, the order and the LoRA init (default 0).")
@click.option("--val-fraction", type=float, help="Held out for validation loss (default 0.1).")
@click.option("--eval-every", type=int, help="Validation loss every N steps (default 10).")
@click.option("--save-every", type=int, help="Checkpoint every N steps (default 10).")
@click.option("--packing/--no-packing", default=None, help="Pack short examples into max-seq-len blocks.")
@click.option("-s", "--system", "instruction", help="System prompt for examples without one (served with it too).")
@click.option(
    "--threads",
    type=int,
    help="CPU threads for torch (default: lab.toml n_threads, else the cores no other process keeps busy).",
)
@click.option("--resume", is_flag=True, help="Continue from this name's last checkpoint.")
@click.option(
    "--restart",
    is_flag=True,
    help="Delete this name's checkpoint and start from the beginning "
    "(without --resume or --restart, a checkpoint is an error).",
)
@click.option("--force", is_flag=True, default=None, help="Train even on fewer than 20 examples.")
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter of this name.")
@click.option("--validate-only", is_flag=True, help="Check the data and print its report; train nothing.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the GPU memory plan for these settings (from the model's "
    "config alone, no weights loaded) and whether it fits; train nothing.",
)
@click.option("--vram", "vram_gb", type=float, help="Plan for a GPU with this many GB (default: the GPU visible here).")
@click.option("--json", "as_json", is_flag=True, help="Print the report / manifest as JSON.")
@click.option(
    "--side-effects/--no-side-effects",
    default=True,
    show_default=True,
    help="After training, measure what the adapter costs elsewhere (perplexity on general text, the other "
    f"tasks' scores) on small sizes: {AFTER_TRAINING['passages']} passages, {AFTER_TRAINING['limit']} "
    "examples per task (about a minute on 2 CPU cores).",
)
@click.pass_context
def train_cmd(
    ctx, config_file, task, resume, restart, overwrite, validate_only, dry_run, vram_gb, as_json, side_effects, **flags
):
    """Train a LoRA adapter on your examples for a base model (CPU: lora; CUDA: qlora)."""
    from ..tuning import TrainingInterrupted, load_train_config, make_config, train, validate

    lab = lab_of(ctx)
    if task:
        from ..tasks import load_task

        t = load_task(task, home=lab.home)
        if t.train is None:
            raise TaskError(f"task '{t.name}' has no training set (train = \"...\" in its task.toml)")
        flags["data"] = flags["data"] or str(t.train)
        flags["instruction"] = flags["instruction"] or t.instruction or None
        flags["name"] = flags["name"] or t.name
    # Settings not given come from this machine's defaults (lab.tuning.config.device_defaults, as
    # in the app); planning with --vram means planning for a GPU.
    device = "cuda" if vram_gb is not None else "auto"
    cfg = (
        load_train_config(config_file, device=device, **flags)
        if config_file
        else make_config("lab train", device=device, **flags)
    )
    if "base_model" not in cfg.model_fields_set:
        cfg = cfg.model_copy(update={"base_model": lab.config.default_model})
    if dry_run:
        from ..tuning.vram import plan_for_config

        info = lab.model_info(cfg.base_model)
        plan = plan_for_config(cfg, getattr(info, "hf_path", None) or info.path, vram_gb=vram_gb)
        click.echo(f"{cfg.name} on {info.id}\n{plan.to_text()}")
        if plan.fits is None:
            click.echo("(--vram GB plans for a GPU of that size)")
        return
    if validate_only:
        report = validate(lab, cfg)
        click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.summary())
        return
    from ..tuning.plan import describe, plan_of

    click.echo(f"{cfg.name}: {describe(lab, plan_of(lab, cfg, device))}", err=True)
    try:
        adapter = train(
            cfg,
            lab,
            resume=resume,
            restart=restart,
            overwrite=overwrite,
            progress=True,
            log=lambda msg: click.echo(msg, err=True),
        )
    except TrainingInterrupted as e:
        click.secho(f"{e}: run it again with --resume", fg="yellow", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.secho("interrupted before training started: nothing saved", fg="yellow", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(adapter.manifest, indent=2, ensure_ascii=False))
    else:
        _trained(adapter)
    if side_effects:
        _side_effects_after_training(lab, adapter.name, as_json)


def _trained(adapter) -> None:
    m = adapter.metrics
    val = f", val loss {m['val_loss']:.3f}" if m.get("val_loss") is not None else ""
    click.echo(
        f"adapter '{adapter.name}' -> {adapter.path}\n"
        f"  {m['steps']} steps, loss {m['first_loss']:.3f} -> {m['train_loss']:.3f}{val}; "
        f"{adapter.wall_s:.0f} s on {adapter.device}, peak memory {size(adapter.manifest['peak_mem_bytes'])}"
    )
    click.echo(f'try it: lab ask --adapter {adapter.name} "..."')


def _side_effects_after_training(lab, name: str, as_json: bool) -> None:
    """The trained adapter's side effects on the automatic run's small sizes (its sentences on
    stderr after --json). The adapter is saved whatever happens here: a failure is a warning, Ctrl-C
    exits 130 saying how to measure them later."""
    from ..backends import BackendError
    from ..ladder import ArmError

    check = f"`lab adapters check {name} --side-effects`"
    sizes = f" (small sizes after training: {check} measures {DEFAULT_PASSAGES} passages and {DEFAULT_LIMIT} examples)"
    try:
        _side_effects(lab, name, AFTER_TRAINING["passages"], AFTER_TRAINING["limit"], note=sizes, err=as_json)
    except KeyboardInterrupt:
        click.secho(
            f"\nside effects not measured (interrupted); the adapter is saved: {check} measures them "
            "(the answers given are kept)",
            fg="yellow",
            err=True,
        )
        sys.exit(130)
    except (ArmError, AdapterError, BackendError, TaskError) as e:
        click.secho(f"side effects not measured: {e}; the adapter is saved", fg="yellow", err=True)


@cli.group("adapters", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows (with the full manifests).")
@click.pass_context
def adapters_cmd(ctx, as_json):
    """List trained adapters: base model, data, size, losses."""
    if ctx.invoked_subcommand:
        return
    from ..tuning import list_adapters

    lab = lab_of(ctx)
    found, problems = list_adapters(lab.home.adapters)
    if as_json:
        click.echo(json.dumps([dict(a.as_row(), manifest=a.manifest) for a in found], indent=2, ensure_ascii=False))
    else:
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        rows = [
            (
                a.name,
                a.base_model,
                a.as_row()["data"],
                a.as_row()["examples"],
                a.metrics.get("steps"),
                fmt(a.metrics.get("train_loss")),
                fmt(a.metrics.get("val_loss")),
                size(a.size_bytes),
                "yes" if a.gguf_path else "no",
            )
            for a in found
        ]
        table(["name", "base model", "data", "examples", "steps", "train loss", "val loss", "size", "gguf"], rows)
        if not found:
            click.echo(f"\nno adapters in {lab.home.adapters} yet: see `lab train --help`")
    for p in problems:
        click.secho(f"warning: {p}", fg="yellow", err=True)


@adapters_cmd.command("check")
@click.argument("name")
@click.option("-n", "count", default=3, show_default=True, help="Prompts from the adapter's own training file.")
@click.option("--max-tokens", default=24, show_default=True, help="Tokens per answer compared.")
@click.option(
    "--side-effects",
    is_flag=True,
    help="Measure what the adapter costs elsewhere instead (paired with its base model): perplexity on Python "
    "standard-library docstrings and the held-out score of every other task; stored, and the answers resume.",
)
@click.option(
    "--passages",
    type=click.IntRange(min=1),
    default=DEFAULT_PASSAGES,
    show_default=True,
    help="--side-effects: docstring passages (~128 tokens each) scored with and without the adapter.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="--side-effects: held-out examples per other task.",
)
@click.pass_context
def adapters_check(ctx, name, count, max_tokens, side_effects, passages, limit):
    """Compare llama.cpp + adapter.gguf with transformers + PEFT on the same prompts (temperature 0);
    with --side-effects, measure what the adapter costs on general text and the other tasks."""
    from ..tuning import read_examples, resolve_adapter
    from ..tuning.parity import compare

    lab = lab_of(ctx)
    if side_effects:
        return _side_effects(lab, name, passages, limit)
    adapter = resolve_adapter(lab, name)
    data = adapter.manifest.get("dataset", {}).get("path")
    _, examples = read_examples(data, adapter.instruction)
    r = compare(lab, adapter, [e.messages[:-1] for e in examples[:count]], max_tokens=max_tokens)
    click.echo(
        f"{r['prompts']} prompts from {data}; HF = transformers (GGUF dequantised to float32), "
        f"llama = llama.cpp on the GGUF itself"
    )
    click.echo(
        f"  top-1 agreement HF vs llama: base {r['top1_agree_base']:.3f}, with the adapter {r['top1_agree_tuned']:.3f}"
    )
    click.echo(f"  KL(HF || llama):             base {r['kl_base']:.4f}, with the adapter {r['kl_tuned']:.4f}")
    click.echo(
        f"  the adapter's effect on the logits differs between the engines by "
        f"{100 * r['adapter_effect_rel_err']:.1f}% (a wrong export is ~35%+)"
    )
    click.echo(f"  the adapter changes the top-1 token at {100 * (1 - r['top1_same_as_base_hf']):.0f}% of positions")
    click.echo(f"  identical greedy answers: {r['same_text']} of {r['prompts']}")
    for a in r["answers"]:
        if not a["same_text"]:
            click.echo(f"    HF:    {a['hf_tuned'][:100]!r}\n    llama: {a['llama_tuned'][:100]!r}")


def _side_effects(lab, name: str, passages: int, limit: int, note: str = "", err: bool = False) -> None:
    """Measure adapter `name`'s side effects, saying each step on stderr, and print its sentences
    (on stderr too with `err`: after JSON on stdout)."""
    import time

    from ..evaluation.side_effects import SOURCE, measure_side_effects, side_effect_lines, stdlib_passages
    from ..tuning import resolve_adapter

    stdlib_passages(passages)  # a wrong count or name says so before anything is announced
    resolve_adapter(lab, name)
    click.echo(
        f"side effects of '{name}': perplexity on {SOURCE} ({passages} passages) and {limit} held-out examples "
        f"of every other task, each with and without the adapter{note}",
        err=True,
    )
    t0 = time.perf_counter()
    result = measure_side_effects(lab, name, passages=passages, limit=limit, progress=_progress_line)
    click.echo("\n".join(side_effect_lines(result)), err=err)
    click.secho(
        f"measured in {time.perf_counter() - t0:.0f} s; stored in {lab.store.path}", fg="bright_black", err=True
    )


def _progress_line(line: str) -> None:
    click.secho(f"  {line}", fg="bright_black", err=True)


@adapters_cmd.command("export")
@click.argument("name")
@click.pass_context
def adapters_export(ctx, name):
    """(Re)write adapters/NAME/adapter.gguf from its PEFT files, for llama.cpp."""
    from ..tuning.adapters import find_adapter
    from ..tuning.export_gguf import export_gguf

    lab = lab_of(ctx)
    adapter = find_adapter(lab.home.adapters, name)
    info = lab.model_info(adapter.base_model)
    if info.format != "gguf":
        raise AdapterError(
            f"adapter '{name}' is for {info.id}, an HF model: it is served by transformers, no GGUF needed"
        )
    click.echo(export_gguf(adapter.path, info.path))


@adapters_cmd.command("serve")
@click.option(
    "--engine",
    type=click.Choice(["vllm", "llama-server", "llama-cpp-python"]),
    required=True,
    help="The server engine the command line is for.",
)
@click.option("-m", "--base", help="The base model the adapters were trained on (default: the lab's default model).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the server listens on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--n-ctx", type=int, help="Context per request (default: lab.toml's n_ctx).")
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False),
    help="llama-cpp-python: write its config file here (and name it in the command).",
)
@click.pass_context
def adapters_serve(ctx, engine, base, host, port, n_ctx, write_config):
    """Print the command line that serves BASE and the lab's adapters trained on it, each under its
    lab name, and the model spec that evaluates against it (`lab eval --model openai:...`)."""
    from ..tuning.serve_commands import serve_plan

    lab = lab_of(ctx)
    plan = serve_plan(
        lab, engine, base, host=host, port=port, n_ctx=n_ctx, config_path=write_config or "llama-cpp-server.json"
    )
    if write_config and plan.config is not None:
        from pathlib import Path

        Path(write_config).write_text(json.dumps(plan.config, indent=2))
    click.echo(plan.text())
