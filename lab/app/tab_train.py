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

from ..task_import import TaskImportError
from ..tuning import jobs
from ..tuning import plan as training_plan
from ..tuning.config import TrainConfigError
from . import _ui, bridge, side_effects_block

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

UPLOAD = "(uploaded file)"


def setup(lab: Lab):
    datasets = bridge.train_datasets(lab)
    d = bridge.device_defaults()
    first = next((d for d in datasets if d[0].startswith(f"{bridge.DEMO_TASK}:")), datasets[0] if datasets else None)
    jobs.refresh_run_status(lab)  # a trainer killed from outside is not "running"
    job, run_id, active = following(lab, None)
    return (
        gr.update(choices=dataset_choices(datasets), value=first[1] if first else UPLOAD),
        gr.update(value=first[0].split(":")[0] if first else ""),
        gr.update(value=first[2] if first else ""),
        gr.update(choices=bridge.model_names(lab), value=lab.config.default_model),
        (
            f"Defaults for this machine: **{d['device']}** — {d['method']} on `{d['target_modules']}`, "
            f"rank {d['rank']}, batch {d['batch_size']}."
        ),
        gr.update(choices=run_choices(lab), value=run_id),
        gr.Timer(active=active),
        job,
    )


def following(lab: Lab, run_id) -> tuple[dict | None, int | None, bool]:
    """What a page (freshly loaded, or reopened) follows: a trainer working now, even one still
    loading its model (no run row yet), else a run marked running, else `run_id` or the newest
    run -> (the job or None, the run id to show, whether to poll)."""
    active = jobs.active_jobs(lab)
    if active:
        run = jobs.run_of(lab, active[0])
        return active[0], run["id"] if run else None, True
    runs = lab.store.training_runs(20)
    running = next((r for r in runs if r["status"] == "running"), None)
    if running:
        return None, running["id"], True
    return None, run_id if run_id else (runs[0]["id"] if runs else None), False


def dataset_choices(datasets: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(label, path) for label, path, _ in datasets] + [(UPLOAD, UPLOAD)]


def refresh(lab: Lab, run_id, job):
    """When the tab is opened again: new runs (one started from the terminal too); the form stays."""
    jobs.refresh_run_status(lab)
    if job is None or not jobs.job_running(job):
        job, run_id, active = following(lab, run_id)
    else:
        active = True  # the job the page started, still working: keep following it
    return (
        gr.update(choices=bridge.model_names(lab)),
        gr.update(choices=run_choices(lab), value=run_id),
        gr.Timer(active=active),
        job,
    )


def run_choices(lab: Lab) -> list[tuple[str, int]]:
    return [
        (f"#{r['id']} {r['adapter_name']} · {r['status']} · {r['steps']} steps", r["id"])
        for r in lab.store.training_runs(50)
    ]


def dataset_changed(lab: Lab, dataset: str):
    """A built-in task's training set: name the adapter after the task (Evaluate's tune arm
    looks for that name) and train with the task's instruction. The upload: a blank name and
    instruction, for the user to fill (never a built-in task's, whose adapter it would replace)."""
    for label, path, instruction in bridge.train_datasets(lab):
        if path == dataset:
            return gr.update(value=label.split(":")[0]), gr.update(value=instruction)
    if dataset == UPLOAD:
        return gr.update(value=""), gr.update(value="")
    return gr.update(), gr.update()


def upload_changed(upload):
    """A file was uploaded: train on it, under a name the user gives, replacing nothing unasked."""
    if not upload:
        return gr.update(), gr.update(), gr.update(), gr.update(), ""
    return (
        gr.update(value=UPLOAD),
        gr.update(value=""),
        gr.update(value=""),
        gr.update(value=False),
        "Uploaded: **Validate dataset** checks it; name the adapter before you start.",
    )


def _data_path(lab: Lab, dataset: str, upload) -> str:
    if dataset == UPLOAD or not dataset:
        if upload and not str(upload if isinstance(upload, str) else upload.name).endswith(".jsonl"):
            from ..task_import import training_file  # a CSV/TSV/JSON/Parquet table: input/output JSONL

            return str(
                training_file(
                    upload if isinstance(upload, str) else upload.name, lab.home.state / "training" / "uploads"
                )
            )
        if not upload:
            raise gr.Error(
                "Upload a file: JSONL (chat messages, prompt/completion, Alpaca, input/output), "
                "or a CSV/TSV/JSON/Parquet table with input and output columns."
            )
        return upload if isinstance(upload, str) else upload.name
    return dataset


def _config(
    lab: Lab,
    dataset,
    upload,
    name,
    base,
    instruction,
    method,
    rank,
    alpha,
    lr,
    epochs,
    max_steps,
    batch,
    accum,
    max_seq_len,
    targets,
    force,
) -> dict:
    return {
        "name": (name or "").strip(),
        "data": _data_path(lab, dataset, upload),
        "base_model": base,
        "system": instruction or None,
        "method": method,
        "rank": int(rank),
        "alpha": float(alpha),
        "learning_rate": float(lr),
        "epochs": float(epochs),
        "max_steps": int(max_steps or 0) or None,
        "batch_size": int(batch),
        "grad_accum": int(accum),
        "max_seq_len": int(max_seq_len),
        "target_modules": targets,
        "force": bool(force),
    }


def validate(lab: Lab, *values) -> str:
    """The dataset report with the base model's tokenizer: counts, duplicates, lengths, warnings,
    the number of steps and how long they take here. A bad file is shown here, named, not raised."""
    from ..tuning import validate as _validate
    from ..tuning.vram import plan_for_config

    try:
        config = _config(lab, *values)
        config["name"] = config["name"] or "check"
        cfg = bridge.train_config(config)
    except TrainConfigError as e:  # a setting of the form, named as the form names it
        return f"⚠️ {setting_error(e)}"
    except TaskImportError as e:  # an uploaded table that is not one: the user's file name, its line
        return f"⚠️ **The dataset cannot be trained on.** {_ui.html.escape(_data_error(e))}"
    try:
        report = _validate(lab, cfg)
    except (ValueError, FileNotFoundError) as e:  # the lab's data errors: name the file and line
        _ui.log_error(lab, "train", e)
        return f"⚠️ **The dataset cannot be trained on.** {_ui.html.escape(_data_error(e))}"
    info = lab.model_info(cfg.base_model)
    plan = plan_for_config(cfg, getattr(info, "hf_path", None) or info.path)
    ln = report.lengths or {}
    rows = [
        ["examples", report.count],
        ["format", report.format],
        ["duplicates dropped", report.duplicates],
        ["train / validation", f"{report.n_train} / {report.n_val}"],
        [
            "tokens per example",
            f"min {ln.get('min')}, median {ln.get('median')}, p95 {ln.get('p95')}, max {ln.get('max')}" if ln else "—",
        ],
        [f"longer than max_seq_len {report.max_seq_len}", report.truncated],
        ["sha256", report.sha256[:16]],
    ]
    warnings = "".join(f"\n- ⚠️ {_ui.html.escape(w)}" for w in report.warnings) or "\n- no warnings"
    return (
        f"**{_ui.html.escape(Path(report.path).name)}**\n\n"
        + _ui.md_table(["", ""], rows)
        + "\n"
        + warnings
        + "\n\n"
        + plan_line(lab, cfg)
        + (
            "\n\n**GPU memory plan** (from the model's config, no weights loaded)\n\n```\n"
            if plan.fits is not None
            else "\n\n**On a GPU** (none here): the memory this run would need, from the model's config\n\n```\n"
        )
        + plan.to_text()
        + "\n```"
    )


def _data_error(e: Exception) -> str:
    """A data error in the page's words: an uploaded table named by the user's file name (Gradio
    keeps it as the last part of its temporary copy's path), not by that copy."""
    return e.worded() if isinstance(e, TaskImportError) else _ui.error_text(e)


# The form's labels for TrainConfig's fields (an error names the control the user sees)
LABELS = {
    "name": "Adapter name",
    "data": "Dataset",
    "base_model": "Base model",
    "system": "Instruction",
    "method": "Method",
    "rank": "LoRA rank",
    "alpha": "alpha",
    "learning_rate": "learning rate",
    "epochs": "epochs",
    "max_steps": "max steps",
    "batch_size": "batch size",
    "grad_accum": "gradient accumulation",
    "max_seq_len": "max sequence length",
    "target_modules": "target modules",
}


def setting_error(e: TrainConfigError) -> str:
    """A bad setting as the page says it: the control's label and what is wrong with its value."""
    if e.field is None:
        return _ui.html.escape(str(e))
    label = LABELS.get(e.field, e.field.replace("_", " "))
    return f"**{label}**: {_ui.html.escape(e.problem or str(e))}" + (
        " (0 trains by epochs)" if e.field == "max_steps" else ""
    )


def plan_line(lab: Lab, cfg) -> str:
    """How many steps, about how long here (validation included), and a word when too few."""
    head, _, few = training_plan.describe(lab, training_plan.plan_of(lab, cfg)).partition("\n")
    return head + (f"\n\n⚠️ {few}" if few else "")


def start(lab: Lab, job, overwrite: bool, restart: bool, *values):
    """Start a run; the page follows it from this moment (its model still loading). A run the
    page cannot start as asked (an unfinished run's checkpoint, an adapter of that name) is
    said in place, with what to press: not an error."""
    try:
        config = _config(lab, *values)
    except TaskImportError as e:
        return _not_started(lab, job, "", f"**The dataset cannot be trained on.** {_ui.html.escape(_data_error(e))}")
    if not config["name"]:
        raise gr.Error("Name the adapter (it becomes adapters/<name>/).")
    try:
        started = bridge.start_training(lab, config, overwrite=bool(overwrite), restart=bool(restart))
    except bridge.AppError as e:
        return _not_started(lab, job, config["name"], str(e))
    except TrainConfigError as e:
        return _not_started(lab, job, config["name"], setting_error(e))
    return _following(lab, started, f"Started training `{started.name}`", plan_line(lab, bridge.train_config(config)))


def resume(lab: Lab, job, overwrite: bool, name: str, max_steps):
    """Continue the adapter's checkpoint as it was made (the Resume button, shown when one fits);
    max steps from the form, when set, makes the run longer or shorter."""
    try:
        started = bridge.resume_training(
            lab, (name or "").strip(), int(max_steps or 0) or None, overwrite=bool(overwrite)
        )
    except bridge.AppError as e:
        return _not_started(lab, job, name, str(e))
    return _following(lab, started, f"Resumed training `{started.name}` from its checkpoint")


def _not_started(lab: Lab, job, name: str, why: str):
    """The launch outputs when nothing started: why, in place; the page keeps following what it did."""
    return ("⚠️ " + why, gr.update(), gr.update(), job, gr.update(), *resume_offer(lab, name), gr.update())


def _following(lab: Lab, job, what: str, plan: str = ""):
    note = (
        f"{what} as process {job.pid} (log: `{job.log_path}`). {plan}\n\nThe page follows this run; "
        "the curve below updates every few seconds; you can close the page."
    )
    return (
        note,
        gr.update(choices=run_choices(lab), value=None),
        gr.Timer(active=True),
        job.to_dict(),
        f"Training `{job.name}`: loading the model…",
        gr.update(visible=False),
        "",
        "",  # the last validation's report is about the form before this run
    )


def stop(lab: Lab, job, run_id) -> str:
    """Stop the run the page follows (its model may still be loading), or the run picked."""
    if job and (not run_id or (jobs.run_of(lab, job) or {}).get("id") == run_id):
        return jobs.stop_job(lab, job)
    if not run_id:
        raise gr.Error("No training run to stop: start one, or pick a running one.")
    return jobs.stop(lab, int(run_id))


def pick_run(lab: Lab, run_id, job):
    """Picking a run in the list shows it; the page stops following its own job unless it is that run."""
    if job and (jobs.run_of(lab, job) or {}).get("id") != run_id:
        job = None
    return job


def resume_offer(lab: Lab, name: str):
    """The Resume button, shown when adapter `name` has a checkpoint that can be continued."""
    step, why = bridge.resume_offer(lab, name)
    if step is not None:
        return gr.update(value=f"Resume from step {step}", visible=True), ""
    return gr.update(visible=False), (f"Resume: {_ui.html.escape(why)}" if why else "")


def poll(lab: Lab, run_id, job, name: str, note: str = ""):
    """The followed run's curve, status and ETA from lab.db (the job the page started, from the
    moment it starts: while it loads its model there is no run row yet); the timer stops once
    the run has ended, and Resume is offered when a checkpoint can be continued. `note`: the
    line above the run list; a "Stopping…" there goes once the run has stopped."""
    out = _poll(lab, run_id, job, name)
    ended = not out[4].active
    return (*out, "" if ended and (note or "").startswith("Stopping") else gr.update())


def _poll(lab: Lab, run_id, job, name: str):
    jobs.reap()
    jobs.refresh_run_status(lab)  # a trainer killed from outside shows as died, with its last step
    hidden = (gr.update(visible=False), "")
    if job:
        run = jobs.run_of(lab, job)
        if run is None:
            tail = _tail(job.get("log"))
            if jobs.job_running(job):
                return (
                    gr.update(),
                    None,
                    f"Training `{job['name']}` (process {job['pid']}): loading the model…",
                    tail,
                    gr.Timer(active=True),
                    *hidden,
                )
            return (
                gr.update(),
                None,
                f"Training `{job['name']}` ended before its first step: the trainer's output below says why.",
                tail,
                gr.Timer(active=False),
                *resume_offer(lab, name),
            )
        run_id = run["id"]
    run = _run(lab, run_id)
    if run is None:
        return gr.update(), None, "", "", gr.Timer(active=False), *resume_offer(lab, name)
    steps = lab.store.training_steps(run["id"])
    # a stopped trainer writes its checkpoint and lets go of its lock a moment after its row
    # says so: poll on until it has, so Resume is offered once it can be
    running = run["status"] == "running" or any(j["name"] == run["adapter_name"] for j in jobs.active_jobs(lab))
    return (
        gr.update(choices=run_choices(lab), value=run["id"]),
        curve(run, steps),
        status(run, steps),
        _tail(job.get("log")) if job else "",
        gr.Timer(active=running),
        *(hidden if running else resume_offer(lab, name)),
    )


def _run(lab: Lab, run_id) -> dict | None:
    return next((r for r in lab.store.training_runs(50) if r["id"] == run_id), None) if run_id else None


def status(run: dict, steps: list[dict]) -> str:
    total = run.get("total_steps") or 0
    last = steps[-1] if steps else {}
    bits = [
        f"**#{run['id']} {run['adapter_name']}** · {run['status']} · {run.get('device') or '?'}"
        + (f" · {run.get('method')}" if run.get("method") else "")
    ]
    if steps:
        bits.append(f"step {last['step']}" + (f" of {total}" if total else ""))
        if last.get("loss") is not None:
            bits.append(f"loss {last['loss']:.3f}")
        if run["last_val_loss"] is not None:
            bits.append(f"val loss {run['last_val_loss']:.3f}")
        if last.get("tokens_per_s"):
            bits.append(f"{last['tokens_per_s']:.0f} tokens/s")
        if run["status"] == "running" and last.get("eta_s") is not None:
            bits.append(eta_text(last, total))
    if run.get("wall_s"):
        bits.append(f"wall {_ui.secs(run['wall_s'])}")
    if run.get("error"):
        bits.append(f"⚠️ {_ui.html.escape(run['error'])}")
    if run["status"] == "interrupted":
        bits.append("stopped: its checkpoint is kept, **Resume** continues it")
    done = run["status"] in ("done", "finished", "succeeded", "complete")
    if done:
        bits.append(f"adapter `{run['adapter_name']}` is ready in Compare and Evaluate")
    few = training_plan.few_steps_warning(total) if total and (done or run["status"] == "running") else None
    head = _ui.progress_bar(last.get("step", 0), total, "") if total else ""
    return head + "\n\n" + " · ".join(bits) + (f"\n\n⚠️ {few}" if few else "")


def eta_text(last: dict, total: int, now: float | None = None) -> str:
    """The time left, counted down from the last step's row; past it, what the trainer is doing."""
    import datetime
    import time

    try:
        since = (now or time.time()) - datetime.datetime.fromisoformat(last["ts"]).timestamp()
    except (KeyError, TypeError, ValueError):
        since = 0.0
    left = last["eta_s"] - max(0.0, since)
    if last["step"] >= total:
        return "**finishing**: the last validation pass, then writing the adapter"
    if left <= 0:
        return "ETA: any moment (a validation pass or the last step takes longer)"
    return f"ETA **{_ui.secs(left)}** (validation included)"


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
    gr.Markdown(
        "Tune for format and behaviour, not for facts. Rule of thumb: 200+ good examples; "
        "under 20 the lab refuses unless you force it (docs/guide.md in the lab's folder says why).",
        elem_classes="lab-lead",
    )
    with gr.Row():
        dataset = gr.Dropdown(allow_custom_value=True, label="Dataset", choices=[], scale=3, elem_id="train-dataset")
        upload = gr.File(
            label="…or upload a file (JSONL, CSV, TSV, JSON, Parquet)",
            file_types=[".jsonl", ".csv", ".tsv", ".json", ".parquet"],
            type="filepath",
            scale=2,
            height=110,
            elem_id="train-upload",
        )
    with gr.Row():
        name = gr.Textbox(label="Adapter name", placeholder="tickets", scale=1, elem_id="train-name")
        base = gr.Dropdown(allow_custom_value=True, label="Base model", choices=[], scale=2, min_width=280)
        method = gr.Radio(["auto", "lora", "qlora"], value="auto", label="Method", scale=1)
    instruction = gr.Textbox(
        label="Instruction (system prompt for examples without one)", lines=2, elem_id="train-instruction"
    )
    device_note = gr.Markdown()
    with gr.Accordion("Hyperparameters", open=False):
        with gr.Row():
            rank = gr.Number(d["rank"], precision=0, label="LoRA rank")
            alpha = gr.Number(d["alpha"], label="alpha")
            lr = gr.Number(d["learning_rate"], label="learning rate")
            targets = gr.Textbox(d["target_modules"], label="target modules (or all-linear)")
        with gr.Row():
            epochs = gr.Number(d["epochs"], label="epochs")
            max_steps = gr.Number(
                d["max_steps"], precision=0, label="max steps (0 = by epochs)", elem_id="train-max-steps"
            )
            batch = gr.Number(d["batch_size"], precision=0, label="batch size", elem_id="train-batch")
            accum = gr.Number(d["grad_accum"], precision=0, label="gradient accumulation")
            max_seq_len = gr.Number(
                d["max_seq_len"], precision=0, label="max sequence length", elem_id="train-max-seq-len"
            )
        with gr.Row():
            force = gr.Checkbox(False, label="force (train on fewer than 20 examples)")
            restart = gr.Checkbox(False, label="start over (delete an unfinished run's checkpoint)")
    overwrite = gr.Checkbox(False, label="replace an adapter of the same name", elem_id="train-overwrite")
    with gr.Row():
        check = gr.Button("Validate dataset", elem_id="train-validate")
        go = gr.Button("Start training", variant="primary", elem_id="train-start")
        again = gr.Button("Resume", variant="primary", visible=False, elem_id="train-resume")
        halt = gr.Button("Stop", variant="secondary", elem_id="train-stop")
    resume_note = gr.Markdown(elem_id="train-resume-note")
    report = gr.Markdown(elem_id="train-report")
    started = gr.Markdown(elem_id="train-started")
    run = gr.Dropdown(allow_custom_value=True, label="Training run", choices=[], elem_id="train-run")
    progress = gr.Markdown(elem_id="train-status")
    plot = gr.Plot(label="Loss")
    job = gr.State(None)  # the run this page started (or found training): the page follows it
    log = gr.Textbox(label="Trainer output (last lines)", lines=6, max_lines=12, interactive=False, elem_id="train-log")
    timer = gr.Timer(2.0, active=False)
    side_effects_block.build(lab, name)  # after a run: what the adapter costs elsewhere

    values = [
        dataset,
        upload,
        name,
        base,
        instruction,
        method,
        rank,
        alpha,
        lr,
        epochs,
        max_steps,
        batch,
        accum,
        max_seq_len,
        targets,
        force,
    ]
    offer = _ui.wire(lab, "train", resume_offer, lab)
    watch = _ui.wire(lab, "train", poll, lab)
    watched = [run, plot, progress, log, timer, again, resume_note, started]
    _ui.on_load(lab, "train", setup, [dataset, name, instruction, base, device_note, run, timer, job], lab)
    _ui.on_select(lab, "train", refresh, [base, run, timer, job], lab, inputs=[run, job])
    _ui.on_select(lab, "train", lambda: gr.update(choices=dataset_choices(bridge.train_datasets(lab))), [dataset])
    _ui.on_load(
        lab,
        "train",
        lambda: [gr.update(value=v) for v in _defaults_row()],
        [rank, alpha, lr, targets, epochs, max_steps, batch, accum, max_seq_len],
    )
    dataset.input(_ui.wire(lab, "train", dataset_changed, lab), dataset, [name, instruction])
    upload.upload(upload_changed, upload, [dataset, name, instruction, overwrite, report])
    name.change(offer, name, [again, resume_note], show_progress="hidden")
    check.click(_ui.wire(lab, "train", validate, lab), values, report)
    launched = [started, run, timer, job, progress, again, resume_note, report]
    go.click(_ui.wire(lab, "train", start, lab), [job, overwrite, restart, *values], launched)
    again.click(_ui.wire(lab, "train", resume, lab), [job, overwrite, name, max_steps], launched)
    followed = [run, job, name, started]
    halt.click(_ui.wire(lab, "train", stop, lab), [job, run], started).then(watch, followed, watched)
    timer.tick(watch, followed, watched, show_progress="hidden")
    run.input(_ui.wire(lab, "train", pick_run, lab), [run, job], job).then(watch, followed, watched)


def _defaults_row() -> list:
    d = bridge.device_defaults()
    return [
        d["rank"],
        d["alpha"],
        d["learning_rate"],
        d["target_modules"],
        d["epochs"],
        d["max_steps"],
        d["batch_size"],
        d["grad_accum"],
        d["max_seq_len"],
    ]
