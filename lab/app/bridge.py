"""What several tabs compose from engine calls: the choices of their dropdowns (models, corpora,
adapters, datasets), this machine's training defaults and the demo adapter. Tabs call the
engine directly for one-call jobs (`lab.answer`, `run_eval`, `tuning.jobs`); no SQL, model,
retrieval or training code lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import demo, ladder, tasks
from ..tasks import load_task
from ..tuning import jobs
from ..tuning import plan as training_plan
from ..tuning.checkpoint import checkpoint_config, checkpoint_step, find_checkpoint
from ..tuning.config import make_config

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab


class AppError(ValueError):
    """Something the user can fix from the page; the message says what."""


# ---- tasks, models, corpora ------------------------------------------------------------------


def task_names(lab: Lab) -> list[str]:
    """Every task a picker offers: the built-in scenarios, then the lab home's own (tasks/,
    made in the New task tab or by `lab task new`), read afresh so a new one shows at once."""
    return tasks.task_names(lab.home)


def task(lab: Lab, name: str) -> tasks.Task:
    """A task by the name a picker gave (a built-in or one of the lab home's), or by path."""
    return load_task(name, home=lab.home)


def model_names(lab: Lab) -> list[str]:
    found, _problems = lab.list_models()
    names = [m.id for m in found]
    return names if lab.config.default_model in names else [lab.config.default_model, *names]


def model_id(lab: Lab, name: str | None = None) -> str:
    """The canonical id of a model name or alias (a name no file backs, e.g. a test's fake, as is)."""
    from ..models import ModelNotFound

    try:
        return lab.model_info(name).id
    except ModelNotFound:
        return name or lab.config.default_model


def corpus_names(lab: Lab) -> list[str]:
    """Folders under <home>/corpora/ (each one a corpus)."""
    root = lab.home.corpora
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def corpora(lab: Lab) -> dict[str, str]:
    """name -> what to hand the retrieval API: the home's corpora/<name>, plus the corpus each
    built-in task names (the checkout's sample `acme` when the home has none)."""
    refs = {name: name for name in corpus_names(lab)}
    for name in task_names(lab):
        try:
            t = task(lab, name)
            if t.corpus and t.corpus not in refs:
                refs[t.corpus] = ladder.task_corpus(lab, t)
        except Exception:  # a broken task or a missing corpus shows up where it is used
            continue
    return refs


def corpus_folder(lab: Lab, ref: str) -> Path:
    from ..retrieval.corpus import resolve_corpus

    name, folder = resolve_corpus(lab.home, ref, lab.home.indexes)
    if folder is None:
        raise AppError(f"corpus '{name}' has an index but its folder is gone")
    return folder


# ---- adapters and training --------------------------------------------------------------------


def adapter_names(lab: Lab, base_model: str | None = None) -> list[str]:
    """Finished adapters in <home>/adapters/ trained for `base_model` (default: the lab's model)."""
    try:
        from ..tuning.adapters import list_adapters
    except ImportError:
        return []
    base = model_id(lab, base_model)
    found, _problems = list_adapters(lab.home.adapters)
    return [a.name for a in found if a.base_model == base]


def device_defaults(device: str | None = None) -> dict:
    """This machine's training defaults (lab.tuning's: the CLI uses the same) as the Train tab's
    form shows them: targets as text, max_steps 0 (= train by epochs), and which device."""
    from ..tuning.config import device_defaults as for_device
    from ..tuning.config import training_device

    if device is None:
        device = training_device("auto")  # the tuning layer asks torch; a face never imports it
    d = for_device(device)
    targets = d["target_modules"]
    return {
        **d,
        "device": device,
        "max_steps": 0,
        "target_modules": targets if isinstance(targets, str) else ",".join(targets),
    }


def train_datasets(lab=None) -> list[tuple[str, str, str]]:
    """(label, path, instruction) for the training split of every task (the lab home's too, with a lab)."""
    out = []
    for name in task_names(lab) if lab is not None else tasks.builtin_tasks():
        try:
            t = task(lab, name) if lab is not None else load_task(name)
        except Exception:
            continue
        if t.train is not None:
            n = len(t.examples("train"))
            out.append((f"{name}: {t.train.name} ({n} examples)", str(t.train), t.instruction or ""))
    return out


DEMO_TASK = "tickets"  # format and behaviour: where tuning is expected to win (docs/guide.md)
METHOD = {"lora": "LoRA", "qlora": "QLoRA", "auto": "LoRA"}


def demo_config(lab: Lab) -> dict:
    """The built-in demo adapter (the demo's own plan: the `tickets` scenario's training set,
    CPU-sized) as the Train tab's form values."""
    return demo.adapter_plan(lab, load_task(DEMO_TASK)).config.to_json()


def demo_training_offer(lab: Lab) -> str:
    plan = demo.adapter_plan(lab, load_task(DEMO_TASK))
    secs, basis = training_plan.estimate(lab, plan)
    return (
        f"Train the built-in demo adapter **{plan.config.name}** ({plan.steps} {METHOD[plan.config.method]} steps "
        f"on the `{DEMO_TASK}` scenario): about **{max(1, round(secs / 60))} min** on this machine ({basis}). "
        "It runs in the background: you can close the page."
    )


# ---- training jobs ---------------------------------------------------------------------------


def train_config(config: dict):
    """The form's values as a TrainConfig (a bad one fails here, named); what the form lacks:
    this machine's defaults."""
    values = {k: v for k, v in config.items() if v not in (None, "") and not (k == "max_steps" and not v)}
    return make_config("the Train tab", device="auto", **values)


def start_training(
    lab: Lab, config: dict, overwrite: bool = False, resume: bool = False, restart: bool = False
) -> jobs.Job:
    """Validate the form's values (a bad one fails here, named, before any process starts) and
    start the run in the background. A checkpoint of this name is never dropped unasked, and a
    second trainer for an adapter being trained is refused, naming the first."""
    config = train_config(config)
    jobs.refresh_run_status(lab)
    jobs.check_not_training(lab, config.name)
    ckpt = find_checkpoint(lab, config.name)
    if ckpt is not None and not (resume or restart):
        step, why = resume_offer(lab, config.name)
        how = (
            f"press **Resume from step {step}** to continue it, " if step is not None else (f"({why}) " if why else "")
        )
        raise AppError(
            f"'{config.name}' has a checkpoint of an unfinished run ({ckpt}): {how}tick **start over** "
            "(under Hyperparameters) to delete it, or choose another adapter name"
        )
    if (lab.home.adapters / config.name).exists() and not overwrite:
        raise AppError(
            f"an adapter '{config.name}' already exists: choose another name, or tick **replace an "
            "adapter of the same name**"
        )
    return jobs.start(lab, config, overwrite=overwrite, resume=resume, restart=restart)


def resume_offer(lab: Lab, name: str | None) -> tuple[int | None, str]:
    """(the step adapter `name`'s checkpoint can be resumed from, with the settings it was made
    with, or None; a line saying why not). None while the adapter is being trained."""
    name = (name or "").strip()
    saved = checkpoint_config(lab, name) if name else None
    if saved is None or any(j["name"] == name for j in jobs.active_jobs(lab)):
        return None, ""
    try:
        return checkpoint_step(lab, make_config("the checkpoint", **saved))
    except Exception as e:  # a checkpoint from an older lab, its data gone...
        return None, f"the checkpoint of '{name}' cannot be resumed: {e}"


def resume_training(lab: Lab, name: str, max_steps: int | None = None, overwrite: bool = False) -> jobs.Job:
    """Continue adapter `name`'s checkpoint with the settings it was made with (a longer or
    shorter run: `max_steps`); the Resume button."""
    step, why = resume_offer(lab, name)
    if step is None:
        raise AppError(f"'{name}': nothing to resume: {why or 'no checkpoint, or it is training now'}")
    saved = checkpoint_config(lab, name) | ({"max_steps": int(max_steps)} if max_steps else {})
    config = make_config("the checkpoint", **saved)
    jobs.check_not_training(lab, name)
    return jobs.start(lab, config, overwrite=overwrite, resume=True)


def start_demo_training(lab: Lab) -> str:
    jobs.refresh_run_status(lab)  # a demo run killed from outside is not "already training"
    running = [r for r in lab.store.training_runs(5, adapter=DEMO_TASK) if r["status"] == "running"]
    if running:
        return f"The demo adapter is already training (run #{running[0]['id']}): see the Train tab."
    config = demo_config(lab)  # a demo stopped halfway continues where it stopped
    job = start_training(lab, config, overwrite=True, resume=find_checkpoint(lab, config["name"]) is not None)
    return (
        f"Training the demo adapter in the background (process {job.pid}). Watch the loss curve in the "
        f"**Train** tab; it appears here when done. Log: `{job.log_path}`"
    )
