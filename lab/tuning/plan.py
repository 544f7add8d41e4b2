"""One training plan: what `lab train`, the Train tab, `lab climb`, `lab curve` and `lab demo` train,
and how long it takes here.

    plan = for_task(lab, task, "lab climb", name="acme-climb")   # or make_plan(lab, "the Train tab", **form)
    plan.steps, plan.epochs, plan.capped                           # what the run will do
    trained_adapter(lab, plan)                                     # reuse it: same base, data, settings
    checkpoint.checkpoint_step(lab, plan.config)                   # continue it, or why not
    estimate(lab, plan)                                            # seconds here, and on what basis

Everything that decides "this adapter is what these settings would train" or "this checkpoint
can be continued" reads `learned()`: the settings that change what an adapter learns. The time
comes from this lab's own training steps on the same device (the same base model first), so a
GPU plan never reads CPU speeds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..models import sha256_of
from .config import TrainConfig, TrainConfigError, make_config, training_device

# Settings that do not change what an adapter learns: where it lives (the data counts by its
# sha256), how it is watched, how many threads computed it.
NOT_LEARNED = {"name", "data", "force", "threads", "eval_every", "save_every"}
# How long a run is: a checkpoint may continue under another length.
LENGTH = {"max_steps", "epochs"}
FEW_STEPS = 30  # below this a LoRA run rarely changes what the model does


def steps_for(n: int, epochs: float, batch_size: int, grad_accum: int = 1) -> int:
    """Optimizer steps for `epochs` passes over n training examples, as the trainer counts them:
    whole batches, then whole accumulations, at least one."""
    per_epoch = math.ceil(math.ceil(n / batch_size) / grad_accum)
    return max(1, math.ceil(per_epoch * epochs))


def learned(config: dict) -> dict:
    """The settings of a config (as JSON) that change what the adapter learns."""
    return {k: v for k, v in config.items() if k not in NOT_LEARNED}


def resumable_settings(config: dict) -> dict:
    """What a checkpoint and the run continuing it must share (the length may change)."""
    return {k: v for k, v in config.items() if k not in NOT_LEARNED | LENGTH}


@dataclass
class TrainPlan:
    config: TrainConfig
    device: str  # "cpu" or "cuda": the device it trains on (and whose measured speeds count)
    n_train: int  # examples trained on, after the validation split
    full_steps: int  # the steps config.epochs take
    tokens: int  # rough tokens per example (no tokenizer: a plan must be instant)

    @property
    def steps(self) -> int:
        """The optimizer steps the run makes: max_steps when set (it overrides epochs)."""
        return self.config.max_steps or self.full_steps

    @property
    def capped(self) -> bool:
        """Whether max_steps stops the run before its epochs are done."""
        return self.steps < self.full_steps

    @property
    def epochs(self) -> float:
        return self.config.epochs * self.steps / self.full_steps

    @property
    def examples_per_step(self) -> int:
        return self.config.batch_size * self.config.grad_accum

    def few_steps_warning(self) -> str | None:
        return few_steps_warning(self.steps)


def make_plan(lab, source: str, *, device: str = "auto", **values) -> TrainPlan:
    """A plan from TrainConfig values (None ones ignored), over `device`'s defaults. `source`
    names where the values came from in an error ("the Train tab", a file)."""
    device = training_device(device)
    return plan_of(lab, make_config(source, device=device, **values), device)


def with_max_steps(plan: TrainPlan, max_steps: int | None) -> TrainPlan:
    """The same data and epochs, stopped at `max_steps` when that comes first (`lab curve`, `lab distill`)."""
    if max_steps and plan.full_steps > max_steps:
        return replace(plan, config=plan.config.model_copy(update={"max_steps": max_steps}))
    return plan


def prepared(config: TrainConfig, tokenizer=None, force: bool | None = None):
    """The config's data read, split and (with a tokenizer) encoded as the trainer sees it; without
    a tokenizer instant (what a plan counts). `force`: read even too few examples (default: the config's)."""
    from .datasets import prepare

    return prepare(
        config.data,
        tokenizer,
        max_seq_len=config.max_seq_len,
        val_fraction=config.val_fraction,
        seed=config.seed,
        instruction=config.instruction,
        force=config.force if force is None else force,
    )


def plan_of(lab, config: TrainConfig, device: str | None = None) -> TrainPlan:
    """The plan of a config made elsewhere (a checkpoint's, a TOML file's)."""
    report = prepared(config, force=True).report
    full = steps_for(report.n_train, config.epochs, config.batch_size, config.grad_accum)
    return TrainPlan(
        config,
        training_device(device or "auto").split(":")[0],
        report.n_train,
        full,
        tokens_per_example(config.data, config.instruction, config.max_seq_len),
    )


def for_task(lab, task, source: str, *, name: str | None = None, device: str = "auto", **values) -> TrainPlan:
    """A plan that trains on `task`'s training set with its instruction, on the lab's default
    model unless `base_model` is given."""
    if task.train is None:
        raise TrainConfigError(f"task '{task.name}' has no training set (train = \"...\" in its task.toml)")
    values = {
        "base_model": lab.config.default_model,
        "instruction": task.instruction or None,
        "data": str(Path(task.train).resolve()),
        **{k: v for k, v in values.items() if v is not None},
    }
    return make_plan(lab, source, device=device, name=name or task.name, **values)


def few_steps_warning(steps: int) -> str | None:
    """What to say before and after a run too short to teach the model anything."""
    if steps >= FEW_STEPS:
        return None
    return (
        f"{steps} steps is very few: a run this short rarely changes what the model does (the adapter "
        f"may only echo its input). The demo trains 60 steps; {FEW_STEPS}+ is the least worth evaluating."
    )


# ---- what is there already ----------------------------------------------------------------------


def trained_adapter(lab, config: TrainConfig, name: str | None = None):
    """The adapter `name` (default: the config's) when it is what `config` would train: the same
    base weights, the same data (sha256), the same learned settings; else None."""
    from .adapters import AdapterError, find_adapter

    try:
        adapter = find_adapter(lab.home.adapters, name or config.name)
    except (AdapterError, OSError, KeyError):
        return None
    m = adapter.manifest
    same = (
        learned(m.get("config") or {}) == learned(config.to_json())
        and (m.get("dataset") or {}).get("sha256") == sha256_of(Path(config.data))
        and adapter.base_sha == base_sha(lab, config.base_model)
    )
    return adapter if same else None


def base_sha(lab, base_model: str) -> str:
    """The sha256 an adapter records for its base weights (a model registered by hand, such as a
    test's fake, by the lab's record of it)."""
    from ..models import ModelNotFound

    try:
        info = lab.model_info(base_model)
    except ModelNotFound:
        info = lab.backend(base_model).info
    return lab.model_sha(info)


# ---- how long it takes here ---------------------------------------------------------------------


def tokens_per_example(path: str | Path, instruction: str | None, max_seq_len: int) -> int:
    """A rough token count of one training example (about 4 characters a token), without
    loading a tokenizer: the estimate must be instant."""
    path = Path(path)
    lines = sum(1 for line in path.open(encoding="utf-8") if line.strip()) or 1
    return min(max_seq_len, int((path.stat().st_size / lines + len(instruction or "")) / 4))


# Before any run here: SmolLM2-135M on 2 cores, 4 examples of ~100 tokens a step, about 6 s
# with the validation passes spread over the steps (the README's 60 steps in ~15 min).
PRIOR_S_PER_TOKEN_2_CORES = 6 / 400
# A CUDA GPU before any run there: a guess (a small model trains ~50x a 2-core CPU's speed),
# replaced by this GPU's own steps after its first run.
PRIOR_GPU_SPEEDUP = 50
LOAD_S = 60  # loading (the first time: converting) the base model


def measured_seconds_per_token(
    lab, device: str = "cpu", base_model: str | None = None, n_runs: int = 10
) -> tuple[float, int] | None:
    """Wall seconds per training token of this lab's recent runs on `device` (of `base_model`
    when given), step to step, so the validation passes between steps are counted;
    (seconds, steps measured) or None."""
    total_s, total_tokens, measured = 0.0, 0.0, 0
    runs = [
        r
        for r in lab.store.training_runs(50)
        if (r.get("device") or "").split(":")[0] == device
        and r["steps"] >= 3
        and (base_model is None or r.get("base_model") == base_model)
    ]
    for run in runs[:n_runs]:
        try:
            cfg = json.loads(run["config_json"] or "{}")
            tokens = tokens_per_example(run["dataset_path"], cfg.get("instruction"), int(cfg["max_seq_len"]))
        except (OSError, KeyError, TypeError, ValueError):  # its data is gone: its steps cannot be sized
            continue
        stamps = [_seconds(s["ts"]) for s in lab.store.training_steps(run["id"]) if s.get("ts")]
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
        if not gaps:
            continue
        median = gaps[len(gaps) // 2]
        gaps = [g for g in gaps if g <= 20 * median]  # a stop and a resume hours later is no step
        total_s += sum(gaps)
        total_tokens += len(gaps) * int(cfg.get("batch_size", 4)) * int(cfg.get("grad_accum", 1)) * tokens
        measured += len(gaps)
    return (total_s / total_tokens, measured) if total_tokens else None


def _seconds(ts: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(ts).timestamp()


def seconds_per_token(lab, device: str, base_model: str | None = None) -> tuple[float, str]:
    """This device's training speed (seconds per token), and on what basis: this base model's
    runs here, else any model's runs on this device, else a first guess."""
    from ..config import default_threads

    where = "this GPU" if device == "cuda" else "this machine"
    tries = ([(base_model, "")] if base_model else []) + [(None, " with other models" if base_model else "")]
    for model, whose in tries:
        measured = measured_seconds_per_token(lab, device, model)
        if measured:
            return measured[0], f"from {measured[1]} steps measured on {where}{whose}, validation included"
    per_token = PRIOR_S_PER_TOKEN_2_CORES * 2 / min(default_threads(), 16)
    if device == "cuda":
        return per_token / PRIOR_GPU_SPEEDUP, "a first guess for a GPU; measured once a run has trained on it"
    return per_token, "a first guess from the CPU figure for this model; measured once a run has trained here"


def estimate(lab, plan: TrainPlan, steps: int | None = None) -> tuple[float, str]:
    """Seconds `steps` (default: the plan's) of the plan take here, validation and loading the
    model included, and on what basis."""
    from ..models import ModelNotFound

    steps = plan.steps if steps is None else steps
    try:
        model_id = lab.model_info(plan.config.base_model).id  # as training_runs records it
    except ModelNotFound:
        model_id = None
    per_token, basis = seconds_per_token(lab, plan.device, model_id)
    return steps * plan.examples_per_step * plan.tokens * per_token + LOAD_S, basis


def describe(lab, plan: TrainPlan) -> str:
    """The plan in a sentence, as `lab train` and the Train tab say it: steps, epochs, the time
    here and its basis, and a word when the run is too short to teach anything."""
    secs, basis = estimate(lab, plan)
    where = "this GPU" if plan.device == "cuda" else "this machine"
    minutes = f"{secs / 60:.0f} min" if secs >= 90 else f"{secs:.0f} s"
    epochs = f"{plan.epochs:.2g} epoch{'s' if plan.epochs != 1 else ''} over {plan.n_train} examples"
    few = plan.few_steps_warning()
    return f"{plan.steps} steps ({epochs}), about {minutes} on {where} ({basis})." + (f"\n{few}" if few else "")
