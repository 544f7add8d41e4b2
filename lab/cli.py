"""The `lab` command: a thin face over `lab.engine.Lab` (parse, call, print)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

# Only the error classes are imported here: the modules behind them load torch, gradio
# or sentence-transformers lazily, inside the commands, so `lab --help` stays fast.
from .app.access import ServeError
from .backends import BackendError
from .config import ConfigError
from .ladder import ArmError
from .evaluation.probe import ProbeError
from .evaluation.scorers import ScorerError
from .gguf_meta import GGUFError
from .models import ModelNotFound, ModelPairError
from .retrieval.corpus import RetrievalError
from .tasks import TaskError
from .tuning.adapters import AdapterError
from .tuning.config import TrainConfigError
from .tuning.datasets import DatasetError
from .tuning.train import TrainingError

# Errors a user can fix: print the message (it names the path, line or field), exit 2, no traceback.
USER_ERRORS = (ModelNotFound, ModelPairError, GGUFError, BackendError, ConfigError, FileNotFoundError, ArmError, ProbeError,
               ScorerError, TaskError, ServeError, RetrievalError, AdapterError, TrainConfigError, DatasetError,
               TrainingError)


def _lab(ctx: click.Context, **overrides):
    from .engine import Lab

    obj = ctx.find_root().obj
    if obj.get("lab") is None:
        obj["lab"] = Lab(obj.get("home"), **overrides)
    return obj["lab"]


class LabGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            click.secho(f"Error: {e}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=LabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), envvar="LAB_HOME",
              help="Lab home: models/, adapters/, corpora/ and lab.db live here (default: current dir).")
@click.version_option(package_name="ladder-lab")
@click.pass_context
def cli(ctx, home):
    """The Ladder Lab: prompt it, retrieve for it, or fine-tune it?

    Runs one task through the escalation ladder (prompt -> RAG -> LoRA) on a local model,
    offline, logs every generation to SQLite, and says which rung is the cheapest that works.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models(ctx, as_json):
    """List every model the lab can run (embedded defaults and models/: GGUF files, HF folders,
    or both for one model), where it runs, and what each rung can do with it."""
    from .backends.llamacpp import gpu_offload_supported, placement, resolve_gpu_layers
    from .models import capabilities

    lab = _lab(ctx)
    found, problems = lab.list_models()
    offload = gpu_offload_supported()
    where = placement(resolve_gpu_layers(lab.config.n_gpu_layers, offload), None, offload)
    if as_json:
        click.echo(json.dumps([dict(m.as_row(), capabilities=capabilities(m)) for m in found], indent=2))
        return
    rows = [(m.id, capabilities(m)["parts"], _size(m.size_bytes), m.architecture or "?", m.context_length or "?",
             "yes" if m.chat_template else "no", m.source + ("" if m.ready else " (assembled on first use)"))
            for m in found]
    _table(["id", "parts", "size", "arch", "context", "chat template", "source"], rows)
    click.echo("\nwhat each rung can do:")
    for m in found:
        caps = capabilities(m)
        on = f", {where}" if caps["serve"] and caps["serve"].startswith("llama.cpp") else ""
        click.echo(f"  {m.id}\n    prompt, rag: {caps['serve']}{on}\n    tune: {caps['train'] or caps['train_note']}")
    click.echo(f"\ndefault: {lab.config.default_model}   (add your own: a .gguf file, an HF folder, or both in "
               f"one folder, in {lab.home.models})")
    for p in problems:
        click.secho(f"warning: {p}", fg="yellow", err=True)


@cli.command()
@click.argument("question")
@click.option("-m", "--model", help="Model id or path (default: the embedded SmolLM2-135M-Instruct).")
@click.option("-s", "--system", help="System prompt.")
@click.option("--backend", "kind", type=click.Choice(["llamacpp", "hf"]),
              help="Run on llama.cpp (GGUF) or transformers (default: llama.cpp for GGUF).")
@click.option("--json-schema", "schema_file", type=click.Path(exists=True, dir_okay=False),
              help="Constrain the answer to this JSON schema (llama.cpp grammar).")
@click.option("--max-tokens", type=int, help="Most tokens to generate (default 256).")
@click.option("--temperature", type=float, help="0 = deterministic (default).")
@click.option("--seed", type=int)
@click.option("--rag", "corpus", help="Answer with passages retrieved from this corpus (see `lab index`).")
@click.option("-k", "top_k", type=int, default=4, show_default=True, help="Passages to retrieve with --rag.")
@click.option("--adapter", help="Answer with this LoRA adapter on (the tune arm; with --rag: tune+rag).")
@click.pass_context
def ask(ctx, question, model, system, kind, schema_file, max_tokens, temperature, seed, corpus, top_k, adapter):
    """Ask a model QUESTION; the answer streams out and is logged to lab.db.

    The arm follows from the flags: zero-shot by default, rag with --rag, tune with --adapter,
    tune+rag with both (the same arms `lab eval` scores)."""
    lab = _lab(ctx)
    schema = json.loads(Path(schema_file).read_text()) if schema_file else None
    options = lab.options(max_tokens=max_tokens, temperature=temperature, seed=seed, json_schema=schema)
    arm = {(False, False): "zero-shot", (True, False): "rag", (False, True): "tune",
           (True, True): "tune+rag"}[(bool(corpus), bool(adapter))]
    ans = lab.answer(arm, question, corpus=corpus, adapter=adapter, model=model, kind=kind, system=system,
                     options=options, rag_k=top_k, on_text=lambda piece: click.echo(piece, nl=False))
    if ans.passages is not None:
        click.echo("\n\nSources:")
        for i, p in enumerate(ans.passages, 1):
            click.echo(f"  [{i}] {p.source}  (score {p.score:.3f})")
    click.echo("")
    gen = ans.generation
    click.secho(f"[{ans.arm} · {gen.model_id}" + (f" + {ans.adapter.name}" if ans.adapter else "")
                + f" · {gen.prompt_tokens} prompt + {gen.completion_tokens} completion tokens · "
                f"{gen.total_s:.2f}s · logged as generation {ans.row_id}]", fg="bright_black", err=True)


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
    lab = _lab(ctx)
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
        click.secho(f"# {r['id']}  {r['ts']}  {r['arm']}  {r['model_id']}"
                    + (f"  adapter={r['adapter_id']}" if r.get("adapter_id") else ""), bold=True)
        click.echo(f"Q: {question}")
        if r.get("error"):
            click.secho(f"error: {r['error']}", fg="red")
        else:
            click.echo(f"A: {r['output']}")
            click.secho(f"   {r['prompt_tokens']}+{r['completion_tokens']} tokens, {r['total_s']:.2f}s", fg="bright_black")
        click.echo("")


@log.command("path")
@click.pass_context
def log_path(ctx):
    """Print the path of the SQLite log (open it with sqlite-utils or datasette)."""
    from .home import LabHome

    click.echo(LabHome.resolve(ctx.find_root().obj.get("home")).db_path)


# ---- evaluation, advice, report, probe (lab.evaluation, lab.advisor, lab.report) ----------------


@cli.command("tasks")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_context
def tasks_cmd(ctx, paths):
    """List the built-in scenarios, the lab home's own tasks (tasks/) and any task PATHS given."""
    from .home import LabHome
    from .tasks import builtin_tasks, home_tasks, home_tasks_dir, load_task

    home = LabHome.resolve(ctx.find_root().obj.get("home"))
    rows = []
    for where, refs in (("built-in", builtin_tasks()), ("home", home_tasks(home)), ("path", paths)):
        for ref in refs:
            t = load_task(home_tasks_dir(home) / ref if where == "home" else ref, home=home)
            rows.append((t.name, where, t.output_format, len(t.examples("train")), len(t.examples("eval")),
                         f"{t.primary_metric} >= {t.target:.2f}", t.corpus or "-", (t.description or "")[:60]))
    _table(["task", "where", "format", "train", "eval", "target", "corpus", "description"], rows)
    click.echo("\nyour own: `lab task new NAME --from data.csv` (into the lab home's tasks/), "
               "or a task.toml (see lab/tasks.py) -> `lab eval path/to/task.toml`")


@cli.group("task")
def task_group():
    """Make your own task from a file you have (see `lab task new -h`)."""


@task_group.command("new")
@click.argument("name")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False),
              help="CSV, TSV, JSONL/JSON (records, chat messages, prompt/completion, Alpaca) or Parquet.")
@click.option("--input", "input_column", help="The input column (guessed: text, input, prompt, question).")
@click.option("--output", "output_column", help="The output column (guessed: label, output, completion, answer).")
@click.option("--eval-size", help="Held-out examples: a count (50) or a fraction (0.2); default 20%, at most 500.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--format", "output_format", type=click.Choice(["label", "json", "text"]),
              help="Override the inferred output format.")
@click.option("--labels", help="Comma-separated labels (a label task's allowed answers, in this order).")
@click.option("--instruction", help="The system prompt (default: one written from the format).")
@click.option("--force", is_flag=True, help="Replace tasks/NAME if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.pass_context
def task_new(ctx, name, source, eval_size, labels, force, as_json, **options):
    """Make task NAME in the lab home (tasks/NAME/) from the examples in a file.

    \b
    The output format is inferred: label (a small repeating set), json (JSON objects: a schema
    is derived) or text; the split is seeded (stratified for labels) and training examples that
    share a held-out input are removed. Then: lab eval NAME
    """
    from .home import LabHome
    from .task_import import import_task, parse_eval_size

    home = LabHome.resolve(ctx.find_root().obj.get("home"))
    plan = import_task(source, name, home, force=force, eval_size=parse_eval_size(eval_size),
                       labels=[x.strip() for x in labels.split(",") if x.strip()] if labels else None, **options)
    if as_json:
        click.echo(json.dumps(plan.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"task '{plan.name}' -> {plan.path}\n{plan.summary()}")
    for w in plan.warnings:
        click.secho(f"warning: {w}", fg="yellow", err=True)
    click.echo(f"next: lab eval {plan.name} --limit 20   (edit {plan.path.name} to change the instruction or scorers)")


@cli.command("eval")
@click.argument("task")
@click.option("--arms", help="Comma-separated, from zero-shot,few-shot,rag,tune,tune+rag "
                             "(default: zero-shot,few-shot, plus rag when the task has a corpus).")
@click.option("--limit", type=int, help="Only the first N held-out examples (run again without it to finish).")
@click.option("--repeats", type=int, default=1, show_default=True,
              help="R > 1 samples each example R times (temperature 0.7, one seed per repeat).")
@click.option("-m", "--model", help="Model id or path (default: the lab's default model).")
@click.option("--adapter", help="Adapter for the tune arms (default: the one named after the task).")
@click.option("--k", "k", type=int, help="Few-shot examples (default: the task's few_shot_k).")
@click.option("--rag-k", type=int, default=4, show_default=True, help="Passages per question for the rag arms.")
@click.option("--similar", is_flag=True, help="Few-shot examples most similar to each question (by embedding) "
                                              "instead of a fixed set (no shared-prefix cache then).")
@click.option("--fresh", is_flag=True, help="Start a new run instead of resuming the matching one.")
@click.option("--json", "as_json", is_flag=True, help="Print the scoreboard as JSON.")
@click.pass_context
def eval_cmd(ctx, task, arms, limit, repeats, model, adapter, k, rag_k, similar, fresh, as_json):
    """Run TASK's held-out examples through each arm; resumable (run it again to continue)."""
    from .evaluation import run_eval, summarize
    from .task_import import leakage
    from .tasks import load_task

    lab = _lab(ctx)
    t = load_task(task, home=lab.home)
    if leaked := leakage(t):
        click.secho(f"warning: {leaked} held-out example(s) of '{t.name}' share their (normalised) input with a "
                    "train or few-shot example: the few-shot and tuned scores are inflated", fg="yellow", err=True)
    chosen = arms.split(",") if arms else ["zero-shot", "few-shot"] + (["rag"] if t.corpus else [])
    try:
        run_id = run_eval(lab, t, chosen, limit=limit, repeats=repeats, model=model, adapter=adapter, k=k,
                          rag_k=rag_k, few_shot_mode="similar" if similar else "fixed", fresh=fresh)
    except KeyboardInterrupt:
        click.secho(f"\ninterrupted: every finished example is saved; run `lab eval {task}` with the same "
                    "options again to resume", fg="yellow", err=True)
        sys.exit(130)
    board = summarize(lab, run_id, task=t)
    if as_json:
        click.echo(json.dumps(board.as_dict(), indent=2, default=str))
        return
    click.echo(board.to_text())
    click.secho(f"\nnext: `lab advise {task}` for the recommendation, `lab report {task}` for the HTML report",
                fg="bright_black", err=True)


def _questionnaire(lab, task, flags: dict, interactive: bool):
    """Answers from flags; the ones not given are asked when interactive (defaults from the task)."""
    from .advisor import QUESTIONS, Questionnaire

    defaults: dict = {}
    if task is not None:
        defaults = {"good_examples": len(task.examples("train")), "lacks_knowledge": bool(task.corpus),
                    "behaviour_problem": task.output_format in ("json", "label")}
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
@click.option("--few-shot-ok/--few-shot-short", "few_shot_reaches_90pct", default=None,
              help="Few-shot reaches (or falls short of) 90%% of the target.")
@click.option("--knowledge/--no-knowledge", "lacks_knowledge", default=None, help="The model lacks knowledge.")
@click.option("--behaviour/--no-behaviour", "behaviour_problem", default=None,
              help="The problem is behaviour/format/style.")
@click.option("--examples", "good_examples", type=int, help="How many good examples you have.")
@click.option("--changing/--stable", "requirements_change_often", default=None,
              help="Requirements change often (or not).")
@click.option("--cost-pressure/--no-cost-pressure", "cost_or_latency_pressure", default=None,
              help="Per-request cost or latency is a pressure.")
@click.option("--no-metric", "no_metric", is_flag=True, help="You cannot yet say what a good output is.")
@click.option("-i/-I", "--interactive/--no-interactive", default=None,
              help="Ask the questions not given as flags (default: when nothing is measured and stdin is a terminal).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def advise(ctx, task, run_id, no_metric, interactive, as_json, **flags):
    """Which rung to use: from TASK's latest evaluation when there is one, else from a questionnaire."""
    from .advisor import advise_from_answers, recommend_for_run
    from .evaluation import latest_run, summarize
    from .tasks import load_task

    lab = _lab(ctx)
    t = load_task(task, home=lab.home) if task else None
    if no_metric:
        flags["clear_success_metric"] = False
    run = {"id": run_id} if run_id else (latest_run(lab, t.name) if t else None)
    if run is not None:
        board = summarize(lab, run["id"])
        answers = _questionnaire(lab, t, flags, bool(interactive)) if any(
            v is not None for v in flags.values()) or interactive else None
        rec = recommend_for_run(lab, board, answers)
    else:
        ask = interactive if interactive is not None else (sys.stdin.isatty() and all(v is None for v in flags.values()))
        if not ask and all(v is None for v in flags.values()):
            click.secho("no evaluation yet and no answers given: answering with defaults "
                        "(give answers as flags, see `lab advise -h`, or use -i)", fg="yellow", err=True)
        rec = advise_from_answers(_questionnaire(lab, t, flags, ask), t.name if t else "TASK")
    click.echo(json.dumps(rec.as_dict(), indent=2, default=str) if as_json else rec.to_text())


@cli.command()
@click.argument("task")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML file (default: TASK-report.html).")
@click.option("--run", "run_id", type=int, help="Report this eval run (default: TASK's latest).")
@click.pass_context
def report(ctx, task, output, run_id):
    """Write TASK's latest evaluation as one self-contained HTML file (opens offline)."""
    from .evaluation import latest_run
    from .tasks import load_task
    from .report import write_report

    lab = _lab(ctx)
    t = load_task(task, home=lab.home)
    run = {"id": run_id} if run_id else latest_run(lab, t.name)
    if run is None:
        raise ArmError(f"no evaluation of '{t.name}' in {lab.store.path} yet: run `lab eval {task}` first")
    path = write_report(lab, run["id"], output or f"{t.name}-report.html")
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
    from .evaluation.probe import run_probe

    result = run_probe(_lab(ctx), task, adapter=adapter, model=model, k=top_k)
    click.echo(json.dumps(result.as_dict(), indent=2, default=str) if as_json else result.to_text())


# ---- the app (lab.app) --------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback needs --auth or --auth-file.")
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--auth", help="Require this login: user:password.")
@click.option("--auth-file", type=click.Path(dir_okay=False),
              help="Require a login from this file: one user:password per line.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--home", type=click.Path(file_okay=False), help="Lab home (same as `lab --home DIR serve`).")
@click.pass_context
def serve(ctx, host, port, auth, auth_file, open_browser, home):
    """Open the lab in a browser: Compare, Evaluate, Train, Knowledge, Advisor, History (offline)."""
    from .app.access import check_host, read_auth

    if home:
        ctx.find_root().obj["home"] = home
    logins = read_auth(auth, auth_file)
    check_host(host, logins)  # before loading anything
    from .app import serve as serve_app

    lab = _lab(ctx)
    click.secho(f"Ladder Lab on http://{host}:{port}  (lab home {lab.home.root}; Ctrl-C stops)", fg="green", err=True)
    serve_app(lab, host=host, port=port, auth=logins, open_browser=open_browser)


# ---- retrieval (lab.retrieval) ------------------------------------------------------------------


@cli.command("index")
@click.argument("corpus")
@click.option("--M", "hnsw_m", type=int, help="HNSW links per node (default 32; changing it rebuilds).")
@click.option("--ef-construction", type=int, help="HNSW build-time beam (default 200; changing it rebuilds).")
@click.option("--ef", type=int, help="HNSW query-time beam (default 96; no rebuild).")
@click.option("--chunk-tokens", type=int, help="Most embedder tokens per chunk (default 160; changing it rebuilds).")
@click.option("--overlap", type=int, help="Tokens of a chunk's tail repeated in the next one (default 32).")
@click.pass_context
def index_cmd(ctx, corpus, hnsw_m, ef_construction, ef, chunk_tokens, overlap):
    """Index CORPUS (a folder, or a name under corpora/) for retrieval; re-runs embed only what changed."""
    import warnings

    from .retrieval import index_corpus

    lab = _lab(ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists skipped files; print them once, below
        report = index_corpus(lab, corpus, progress=True, M=hnsw_m, ef_construction=ef_construction,
                              ef=ef, chunk_tokens=chunk_tokens, overlap=overlap)
    for message in report.skipped:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    click.echo(report.summary())
    click.secho(f"[index {report.index_hash} in {report.path}]", fg="bright_black", err=True)


@cli.command("search")
@click.argument("corpus")
@click.argument("query")
@click.option("-k", "top_k", type=int, default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the passages as JSON.")
@click.pass_context
def search_cmd(ctx, corpus, query, top_k, as_json):
    """Show the passages of CORPUS closest to QUERY (indexes the corpus first if needed)."""
    from .retrieval import search

    passages = search(_lab(ctx), corpus, query, k=top_k, progress=not as_json)
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in passages], indent=2, ensure_ascii=False))
        return
    for i, p in enumerate(passages, 1):
        click.secho(f"[{i}] {p.score:.3f}  {p.source}  chars {p.span[0]}-{p.span[1]}  ({p.heading or p.title})",
                    bold=True)
        text = " ".join(p.text.split())
        click.echo(f"    {text[:300]}{'...' if len(text) > 300 else ''}\n")


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
@click.option("--data", type=click.Path(dir_okay=False),
              help="JSONL: chat {messages}, {prompt, completion}, Alpaca, or {input, output}.")
@click.option("--task", help="Train on a task's training set with its instruction (e.g. tickets).")
@click.option("--base", "base_model", help="Base model id or path (default: the lab's default model).")
@click.option("--name", help="Adapter name: it goes to adapters/NAME/ (default with --task: the task's name).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="A TOML file of these settings (top level or [train]); flags override it.")
@click.option("--method", type=click.Choice(["auto", "lora", "qlora"]),
              help="auto (default): qlora on a CUDA GPU, lora on the CPU.")
@click.option("--qlora-engine", type=click.Choice(["auto", "unsloth", "bitsandbytes"]),
              help="qlora with Unsloth (default when installed) or PEFT + bitsandbytes.")
@click.option("--rank", type=int, help="LoRA rank r (default 8).")
@click.option("--alpha", type=float, help="LoRA alpha (default 16).")
@click.option("--dropout", type=float, help="LoRA dropout (default 0.05).")
@click.option("--target-modules", help="Comma-separated module names (default q_proj,v_proj) or all-linear.")
@click.option("--lr", "learning_rate", type=float, help="Peak learning rate (default 2e-4).")
@click.option("--epochs", type=float, help="Passes over the training set (default 3).")
@click.option("--max-steps", type=int, help="Optimizer steps; overrides --epochs.")
@click.option("--batch-size", type=int, help="Examples per micro-batch (default 4).")
@click.option("--grad-accum", type=int, help="Micro-batches per optimizer step (default 1).")
@click.option("--max-seq-len", type=int, help="Tokens per example; longer ones are cut (default 512).")
@click.option("--seed", type=int, help="Seed for the split, the order and the LoRA init (default 0).")
@click.option("--val-fraction", type=float, help="Held out for validation loss (default 0.1).")
@click.option("--eval-every", type=int, help="Validation loss every N steps (default 10).")
@click.option("--save-every", type=int, help="Checkpoint every N steps (default 10).")
@click.option("--packing/--no-packing", default=None, help="Pack short examples into max-seq-len blocks.")
@click.option("-s", "--system", "instruction", help="System prompt for examples without one (served with it too).")
@click.option("--threads", type=int, help="CPU threads for torch (default: lab.toml n_threads, else all cores).")
@click.option("--resume", is_flag=True, help="Continue from this name's last checkpoint.")
@click.option("--force", is_flag=True, default=None, help="Train even on fewer than 20 examples.")
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter of this name.")
@click.option("--validate-only", is_flag=True, help="Check the data and print its report; train nothing.")
@click.option("--dry-run", is_flag=True, help="Print the GPU memory plan for these settings (from the model's "
                                               "config alone, no weights loaded) and whether it fits; train nothing.")
@click.option("--vram", "vram_gb", type=float, help="Plan for a GPU with this many GB (default: the GPU visible here).")
@click.option("--json", "as_json", is_flag=True, help="Print the report / manifest as JSON.")
@click.pass_context
def train_cmd(ctx, config_file, task, resume, overwrite, validate_only, dry_run, vram_gb, as_json, **flags):
    """Train a LoRA adapter on your examples for a base model (CPU: lora; CUDA: qlora)."""
    from .tuning import TrainingInterrupted, load_train_config, make_config, train, validate

    lab = _lab(ctx)
    if task:
        from .tasks import load_task

        t = load_task(task, home=lab.home)
        if t.train is None:
            raise TaskError(f"task '{t.name}' has no training set (train = \"...\" in its task.toml)")
        flags["data"] = flags["data"] or str(t.train)
        flags["instruction"] = flags["instruction"] or t.instruction or None
        flags["name"] = flags["name"] or t.name
    cfg = load_train_config(config_file, **flags) if config_file else make_config("lab train", **flags)
    if "base_model" not in cfg.model_fields_set:
        cfg = cfg.model_copy(update={"base_model": lab.config.default_model})
    if dry_run:
        from .tuning.vram import plan_for_config

        info = lab.model_info(cfg.base_model)
        plan = plan_for_config(cfg, getattr(info, "hf_path", None) or info.path, vram_gb=vram_gb)
        click.echo(f"{cfg.name} on {info.id}\n{plan.to_text()}")
        return
    if validate_only:
        report = validate(lab, cfg)
        click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.summary())
        return
    try:
        adapter = train(cfg, lab, resume=resume, overwrite=overwrite, progress=True,
                        log=lambda msg: click.echo(msg, err=True))
    except TrainingInterrupted as e:
        click.secho(str(e), fg="yellow", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.secho("interrupted before training started: nothing saved", fg="yellow", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(adapter.manifest, indent=2, ensure_ascii=False))
        return
    m = adapter.metrics
    val = f", val loss {m['val_loss']:.3f}" if m.get("val_loss") is not None else ""
    click.echo(f"adapter '{adapter.name}' -> {adapter.path}\n"
               f"  {m['steps']} steps, loss {m['first_loss']:.3f} -> {m['train_loss']:.3f}{val}; "
               f"{adapter.wall_s:.0f} s on {adapter.device}, peak memory {_size(adapter.manifest['peak_mem_bytes'])}")
    click.echo(f"try it: lab ask --adapter {adapter.name} \"...\"")


@cli.group("adapters", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows (with the full manifests).")
@click.pass_context
def adapters_cmd(ctx, as_json):
    """List trained adapters: base model, data, size, losses."""
    if ctx.invoked_subcommand:
        return
    from .tuning import list_adapters

    lab = _lab(ctx)
    found, problems = list_adapters(lab.home.adapters)
    if as_json:
        click.echo(json.dumps([dict(a.as_row(), manifest=a.manifest) for a in found], indent=2, ensure_ascii=False))
    else:
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        rows = [(a.name, a.base_model, a.as_row()["data"], a.as_row()["examples"], a.metrics.get("steps"),
                 fmt(a.metrics.get("train_loss")), fmt(a.metrics.get("val_loss")), _size(a.size_bytes),
                 "yes" if a.gguf_path else "no") for a in found]
        _table(["name", "base model", "data", "examples", "steps", "train loss", "val loss", "size", "gguf"], rows)
        if not found:
            click.echo(f"\nno adapters in {lab.home.adapters} yet: see `lab train --help`")
    for p in problems:
        click.secho(f"warning: {p}", fg="yellow", err=True)


@adapters_cmd.command("check")
@click.argument("name")
@click.option("-n", "count", default=3, show_default=True, help="Prompts from the adapter's own training file.")
@click.option("--max-tokens", default=24, show_default=True, help="Tokens per answer compared.")
@click.pass_context
def adapters_check(ctx, name, count, max_tokens):
    """Compare llama.cpp + adapter.gguf with transformers + PEFT on the same prompts (temperature 0)."""
    from .tuning import read_examples, resolve_adapter
    from .tuning.parity import compare

    lab = _lab(ctx)
    adapter = resolve_adapter(lab, name)
    data = adapter.manifest.get("dataset", {}).get("path")
    _, examples = read_examples(data, adapter.instruction)
    r = compare(lab, adapter, [e.messages[:-1] for e in examples[:count]], max_tokens=max_tokens)
    click.echo(f"{r['prompts']} prompts from {data}; HF = transformers (GGUF dequantised to float32), "
               f"llama = llama.cpp on the GGUF itself")
    click.echo(f"  top-1 agreement HF vs llama: base {r['top1_agree_base']:.3f}, with the adapter "
               f"{r['top1_agree_tuned']:.3f}")
    click.echo(f"  KL(HF || llama):             base {r['kl_base']:.4f}, with the adapter {r['kl_tuned']:.4f}")
    click.echo(f"  the adapter's effect on the logits differs between the engines by "
               f"{100 * r['adapter_effect_rel_err']:.1f}% (a wrong export is ~35%+)")
    click.echo(f"  the adapter changes the top-1 token at {100 * (1 - r['top1_same_as_base_hf']):.0f}% of positions")
    click.echo(f"  identical greedy answers: {r['same_text']} of {r['prompts']}")
    for a in r["answers"]:
        if not a["same_text"]:
            click.echo(f"    HF:    {a['hf_tuned'][:100]!r}\n    llama: {a['llama_tuned'][:100]!r}")


@adapters_cmd.command("export")
@click.argument("name")
@click.pass_context
def adapters_export(ctx, name):
    """(Re)write adapters/NAME/adapter.gguf from its PEFT files, for llama.cpp."""
    from .tuning.adapters import find_adapter
    from .tuning.export_gguf import export_gguf

    lab = _lab(ctx)
    adapter = find_adapter(lab.home.adapters, name)
    info = lab.model_info(adapter.base_model)
    if info.kind != "gguf":
        raise AdapterError(f"adapter '{name}' is for {info.id}, an HF model: it is served by transformers, "
                           "no GGUF needed")
    click.echo(export_gguf(adapter.path, info.path))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _table(headers, rows):
    from .evaluation.summary import text_table

    click.echo("\n".join(text_table(headers, rows)))


def main():
    cli(obj={})


if __name__ == "__main__":
    main()
