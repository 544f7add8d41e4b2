"""Train: choose or upload a dataset, read its validation report, set hyperparameters (with
defaults for this machine), start and stop a LoRA run, and watch its loss curve and ETA.

Training runs as its own process (`lab.tuning.jobs`), writing every step to lab.db;
the page only polls that table, so closing the page does not stop it, and a run started
from the terminal shows up here too. A finished adapter appears in Compare and Evaluate.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ..tuning import jobs
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

UPLOAD = "(uploaded file)"


def setup(lab: Lab):
    datasets = bridge.train_datasets(lab)
    d = bridge.device_defaults()
    first = next((d for d in datasets if d[0].startswith(f"{bridge.DEMO_TASK}:")), datasets[0] if datasets else None)
    jobs.refresh_run_status(lab)  # a trainer killed from outside is not "running"
    runs = run_choices(lab)
    running = next((r for r in lab.store.training_runs(20) if r["status"] == "running"), None)
    return (gr.update(choices=dataset_choices(datasets), value=first[1] if first else UPLOAD),
            gr.update(value=first[0].split(":")[0] if first else ""),
            gr.update(value=first[2] if first else ""),
            gr.update(choices=bridge.model_names(lab), value=lab.config.default_model),
            (f"Defaults for this machine: **{d['device']}** — {d['method']} on `{d['target_modules']}`, "
             f"rank {d['rank']}, batch {d['batch_size']}."),
            gr.update(choices=runs, value=running["id"] if running else (runs[0][1] if runs else None)),
            gr.Timer(active=running is not None))


def dataset_choices(datasets: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(label, path) for label, path, _ in datasets] + [(UPLOAD, UPLOAD)]


def refresh(lab: Lab, run_id):
    """When the tab is opened again: new runs (one started from the terminal too); the form stays."""
    jobs.refresh_run_status(lab)
    running = next((r for r in lab.store.training_runs(20) if r["status"] == "running"), None)
    runs = run_choices(lab)
    return (gr.update(choices=bridge.model_names(lab)),
            gr.update(choices=runs, value=running["id"] if running else run_id),
            gr.Timer(active=running is not None))


def run_choices(lab: Lab) -> list[tuple[str, int]]:
    return [(f"#{r['id']} {r['adapter_name']} · {r['status']} · {r['steps']} steps", r["id"])
            for r in lab.store.training_runs(50)]


def dataset_changed(lab: Lab, dataset: str):
    """A built-in task's training set: name the adapter after the task (Evaluate's tune arm
    looks for that name) and train with the task's instruction."""
    for label, path, instruction in bridge.train_datasets(lab):
        if path == dataset:
            return gr.update(value=label.split(":")[0]), gr.update(value=instruction)
    return gr.update(), gr.update()


def _data_path(lab: Lab, dataset: str, upload) -> str:
    if dataset == UPLOAD or not dataset:
        if upload and not str(upload if isinstance(upload, str) else upload.name).endswith(".jsonl"):
            from ..task_import import training_file  # a CSV/TSV/JSON/Parquet table: input/output JSONL

            return str(training_file(upload if isinstance(upload, str) else upload.name,
                                     lab.home.state / "training" / "uploads"))
        if not upload:
            raise gr.Error("Upload a file: JSONL (chat messages, prompt/completion, Alpaca, input/output), "
                           "or a CSV/TSV/JSON/Parquet table with input and output columns.")
        return upload if isinstance(upload, str) else upload.name
    return dataset


def _config(lab: Lab, dataset, upload, name, base, instruction, method, rank, alpha, lr, epochs, max_steps, batch,
            accum, max_seq_len, targets, force) -> dict:
    return {"name": (name or "").strip(), "data": _data_path(lab, dataset, upload), "base_model": base,
            "system": instruction or None, "method": method, "rank": int(rank), "alpha": float(alpha),
            "learning_rate": float(lr), "epochs": float(epochs), "max_steps": int(max_steps or 0) or None,
            "batch_size": int(batch), "grad_accum": int(accum), "max_seq_len": int(max_seq_len),
            "target_modules": targets, "force": bool(force)}


def validate(lab: Lab, *values) -> str:
    """The dataset report with the base model's tokenizer: counts, duplicates, lengths, warnings."""
    from ..tuning import make_config
    from ..tuning import validate as _validate

    from ..tuning.vram import plan_for_config

    config = _config(lab, *values)
    config["name"] = config["name"] or "check"
    cfg = make_config("the Train tab", **config)
    report = _validate(lab, cfg)
    info = lab.model_info(cfg.base_model)
    plan = plan_for_config(cfg, getattr(info, "hf_path", None) or info.path)
    ln = report.lengths or {}
    rows = [["examples", report.count], ["format", report.format], ["duplicates dropped", report.duplicates],
            ["train / validation", f"{report.n_train} / {report.n_val}"],
            ["tokens per example", f"min {ln.get('min')}, median {ln.get('median')}, p95 {ln.get('p95')}, "
                                   f"max {ln.get('max')}" if ln else "—"],
            [f"longer than max_seq_len {report.max_seq_len}", report.truncated],
            ["sha256", report.sha256[:16]]]
    warnings = "".join(f"\n- ⚠️ {_ui.html.escape(w)}" for w in report.warnings) or "\n- no warnings"
    return (f"**{_ui.html.escape(Path(report.path).name)}**\n\n" + _ui.md_table(["", ""], rows) + "\n" + warnings
            + "\n\n**GPU memory plan** (from the model's config, no weights loaded)\n\n```\n" + plan.to_text() + "\n```")


def start(lab: Lab, overwrite: bool, resume: bool, *values):
    config = _config(lab, *values)
    if not config["name"]:
        raise gr.Error("Name the adapter (it becomes adapters/<name>/).")
    job = bridge.start_training(lab, config, overwrite=bool(overwrite), resume=bool(resume))
    note = (f"Started training `{job.name}` as process {job.pid} (log: `{job.log_path}`). The curve below "
            "updates every few seconds; you can close the page.")
    return note, gr.update(choices=run_choices(lab), value=None), gr.Timer(active=True), str(job.log_path)


def stop(lab: Lab, run_id) -> str:
    if not run_id:
        raise gr.Error("Pick the run to stop.")
    return jobs.stop(lab, int(run_id))


def poll(lab: Lab, run_id, log_path: str | None):
    """The run's curve, status and ETA from lab.db; the timer stops once the run has ended."""
    jobs.reap()
    jobs.refresh_run_status(lab)  # a trainer killed from outside shows as died, with its last step
    runs = lab.store.training_runs(50)
    if not run_id and runs and log_path:  # just started: the newest run is ours once it exists
        run_id = runs[0]["id"]
    run = next((r for r in runs if r["id"] == run_id), None) if run_id else None
    tail = _tail(log_path)
    if run is None:
        return (gr.update(), None, "Waiting for the training process to load the model…" if log_path else "",
                tail, gr.Timer(active=bool(log_path)))
    steps = lab.store.training_steps(run["id"])
    return (gr.update(choices=run_choices(lab), value=run["id"]), curve(run, steps), status(run, steps), tail,
            gr.Timer(active=run["status"] == "running"))


def status(run: dict, steps: list[dict]) -> str:
    total = run.get("total_steps") or 0
    last = steps[-1] if steps else {}
    bits = [f"**#{run['id']} {run['adapter_name']}** · {run['status']} · {run.get('device') or '?'}"
            + (f" · {run.get('method')}" if run.get("method") else "")]
    if steps:
        bits.append(f"step {last['step']}" + (f" of {total}" if total else ""))
        if last.get("loss") is not None:
            bits.append(f"loss {last['loss']:.3f}")
        if run["last_val_loss"] is not None:
            bits.append(f"val loss {run['last_val_loss']:.3f}")
        if last.get("tokens_per_s"):
            bits.append(f"{last['tokens_per_s']:.0f} tokens/s")
        if run["status"] == "running" and last.get("eta_s") is not None:
            bits.append(f"ETA **{_ui.secs(last['eta_s'])}**")
    if run.get("wall_s"):
        bits.append(f"wall {_ui.secs(run['wall_s'])}")
    if run.get("error"):
        bits.append(f"⚠️ {_ui.html.escape(run['error'])}")
    if run["status"] in ("done", "finished", "succeeded", "complete"):
        bits.append(f"adapter `{run['adapter_name']}` is ready in Compare and Evaluate")
    head = _ui.progress_bar(last.get("step", 0), total, "") if total else ""
    return head + "\n\n" + " · ".join(bits)


def curve(run: dict, steps: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    xs = [s["step"] for s in steps if s.get("loss") is not None]
    ax.plot(xs, [s["loss"] for s in steps if s.get("loss") is not None], label="train loss")
    val = [(s["step"], s["val_loss"]) for s in steps if s.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss")
    if run.get("total_steps"):
        ax.set_xlim(0, run["total_steps"])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{run['adapter_name']} (run #{run['id']})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _tail(path: str | None, n: int = 12) -> str:
    if not path or not Path(path).exists():
        return ""
    text = Path(path).read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
    return "\n".join([line for line in text.splitlines() if line.strip()][-n:])


def build(lab: Lab) -> None:
    d = bridge.device_defaults("cpu")  # placeholders; setup() puts this machine's defaults in
    gr.Markdown("Tune for format and behaviour, not for facts. The seeds' rule of thumb: 200+ good examples; "
                "under 20 the lab refuses unless you force it.", elem_classes="lab-lead")
    with gr.Row():
        dataset = gr.Dropdown(allow_custom_value=True, label="Dataset", choices=[], scale=3, elem_id="train-dataset")
        upload = gr.File(label="…or upload a file (JSONL, CSV, TSV, JSON, Parquet)",
                             file_types=[".jsonl", ".csv", ".tsv", ".json", ".parquet"], type="filepath", scale=2,
                         height=110)
    with gr.Row():
        name = gr.Textbox(label="Adapter name", placeholder="tickets", scale=1, elem_id="train-name")
        base = gr.Dropdown(allow_custom_value=True, label="Base model", choices=[], scale=1)
        method = gr.Radio(["auto", "lora", "qlora"], value="auto", label="Method", scale=1)
    instruction = gr.Textbox(label="Instruction (system prompt for examples without one)", lines=2)
    device_note = gr.Markdown()
    with gr.Accordion("Hyperparameters", open=False):
        with gr.Row():
            rank = gr.Number(d["rank"], precision=0, label="LoRA rank")
            alpha = gr.Number(d["alpha"], label="alpha")
            lr = gr.Number(d["learning_rate"], label="learning rate")
            targets = gr.Textbox(d["target_modules"], label="target modules (or all-linear)")
        with gr.Row():
            epochs = gr.Number(d["epochs"], label="epochs")
            max_steps = gr.Number(d["max_steps"], precision=0, label="max steps (0 = by epochs)")
            batch = gr.Number(d["batch_size"], precision=0, label="batch size")
            accum = gr.Number(d["grad_accum"], precision=0, label="gradient accumulation")
            max_seq_len = gr.Number(d["max_seq_len"], precision=0, label="max sequence length")
        with gr.Row():
            force = gr.Checkbox(False, label="force (train on fewer than 20 examples)")
            overwrite = gr.Checkbox(True, label="replace an adapter of the same name")
            resume = gr.Checkbox(False, label="resume from the last checkpoint")
    with gr.Row():
        check = gr.Button("Validate dataset", elem_id="train-validate")
        go = gr.Button("Start training", variant="primary", elem_id="train-start")
        halt = gr.Button("Stop", variant="stop", elem_id="train-stop")
    report = gr.Markdown(elem_id="train-report")
    started = gr.Markdown()
    run = gr.Dropdown(allow_custom_value=True, label="Training run", choices=[], elem_id="train-run")
    progress = gr.Markdown(elem_id="train-status")
    plot = gr.Plot(label="Loss")
    log_path = gr.State(None)
    log = gr.Textbox(label="Trainer output (last lines)", lines=6, max_lines=12, interactive=False)
    timer = gr.Timer(2.0, active=False)

    values = [dataset, upload, name, base, instruction, method, rank, alpha, lr, epochs, max_steps, batch,
              accum, max_seq_len, targets, force]
    _ui.on_load(lab, "train", setup, [dataset, name, instruction, base, device_note, run, timer], lab)
    _ui.on_select(lab, "train", refresh, [base, run, timer], lab, inputs=[run])
    _ui.on_select(lab, "train", lambda: gr.update(choices=dataset_choices(bridge.train_datasets(lab))), [dataset])
    _ui.on_load(lab, "train", lambda: [gr.update(value=v) for v in _defaults_row()],
                [rank, alpha, lr, targets, epochs, max_steps, batch, accum, max_seq_len])
    dataset.input(_ui.wire(lab, "train", dataset_changed, lab), dataset, [name, instruction])
    check.click(_ui.wire(lab, "train", validate, lab), values, report)
    go.click(_ui.wire(lab, "train", start, lab), [overwrite, resume, *values], [started, run, timer, log_path])
    halt.click(_ui.wire(lab, "train", stop, lab), run, started)
    watch = _ui.wire(lab, "train", poll, lab)
    timer.tick(watch, [run, log_path], [run, plot, progress, log, timer], show_progress="hidden")
    run.input(watch, [run, log_path], [run, plot, progress, log, timer])


def _defaults_row() -> list:
    d = bridge.device_defaults()
    return [d["rank"], d["alpha"], d["learning_rate"], d["target_modules"], d["epochs"], d["max_steps"],
            d["batch_size"], d["grad_accum"], d["max_seq_len"]]
