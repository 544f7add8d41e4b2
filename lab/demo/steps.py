"""The demo's plan: every step an offline demo needs (the sample index, the stored evaluations, the
demo adapters), in the order `build.prepare` does them, each with this machine's estimate and
whether the lab home already holds it (see the package's doc)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .. import ladder
from ..evaluation.runner import done_keys, matching_run
from ..evaluation.sample import held_out as sampled
from ..evaluation.speed import AnswerSpeed
from ..tasks import Task, builtin_tasks, load_task
from ..tuning import plan as training_plan
from ..tuning.checkpoint import checkpoint_step
from ..tuning.config import TrainConfig, training_device
from ..tuning.plan import TrainPlan

# Held-out examples per scenario: enough for a scoreboard to show the ladder's shape, few enough
# that all three scenarios' evaluations take minutes on a 2-core CPU (`--limit` changes it; a
# later `lab eval NAME` without a limit completes the same stored run).
DEFAULT_LIMIT = 12
# The README's adapters: 60 LoRA steps at the CPU defaults (lr 1e-3), ~15 min each for SmolLM2-135M
# on 2 cores. On a CUDA GPU the device defaults train by epochs.
CPU_STEPS = 60
BASE_ARMS, TUNE_ARMS = ("zero-shot", "few-shot", "rag"), ("tune", "tune+rag")
# The scenarios the demo prepares by default: one per rung the guide predicts. Named here rather
# than every built-in because the demo's time estimate (the app's "about N min"), the README's
# figures and its tests are sized for these three; a new built-in (support-tone: long replies,
# judged by preference) would silently add an evaluation and a training run. `only` can still
# name any built-in.
DEMO_SCENARIOS = ("acme-facts", "specialty", "tickets")


@dataclass
class DemoStep:
    action: str  # "index", "eval" or "train"
    name: str  # the corpus, scenario or adapter
    what: str
    why: str
    seconds: float  # estimated time left on this machine (0 once done)
    done: bool
    basis: str = ""  # where the estimate comes from
    state: str = ""  # what is there already ("3 of 12 answered", "checkpoint at step 20")
    task: str | None = None
    arms: list[str] = field(default_factory=list)
    adapter: str | None = None
    todo: int = 0  # answers (eval) or training steps (train) left
    limit: int | None = None  # eval: held-out examples
    corpus: str | None = None  # index: what `ladder.task_corpus` names
    config: TrainConfig | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["config"] = self.config.to_json() if self.config else None
        return d


# ---- the plan -----------------------------------------------------------------------------------


def scenarios(names: list[str] | None = None) -> list[Task]:
    """The demo's scenarios (DEMO_SCENARIOS), or those of `names`, which must be built-in ones."""
    from ..tasks import TaskError

    unknown = sorted(set(names or []) - set(builtin_tasks()))
    if unknown:
        raise TaskError(f"not a built-in scenario: {', '.join(unknown)} (choose from {', '.join(builtin_tasks())})")
    return [load_task(name) for name in builtin_tasks() if name in (names or DEMO_SCENARIOS)]


def arms_for(task: Task, tuned: bool) -> list[str]:
    arms = TUNE_ARMS if tuned else BASE_ARMS
    return [a for a in arms if task.corpus or a not in ladder.RAG_ARMS]


def plan(
    lab,
    *,
    limit: int = DEFAULT_LIMIT,
    train_overrides: dict | None = None,
    probe: bool = True,
    only: list[str] | None = None,
) -> list[DemoStep]:
    """What the demo needs, in the order `prepare` does it, each step with its estimate and
    whether it is done. `probe`: with no answer speed in the run log yet, time one short answer
    (loads the model); without it a rough figure stands in. `train_overrides`: TrainConfig
    fields over the demo adapters' (tests train a step or two); `only`: some of the built-in scenarios."""
    tasks = scenarios(only)
    model = _model_info(lab)
    speed = AnswerSpeed(lab, model.id, probe)
    steps = _index_steps(lab, tasks)
    adapters = {t.name: _adapter_step(lab, t, model, train_overrides) for t in tasks if t.train is not None}
    steps += [_eval_step(lab, t, arms_for(t, False), None, limit, speed) for t in tasks]
    steps += list(adapters.values())
    steps += [
        _eval_step(lab, t, arms_for(t, True), adapters[t.name], limit, speed) for t in tasks if t.name in adapters
    ]
    return steps


def total_seconds(steps: list[DemoStep]) -> float:
    return sum(s.seconds for s in steps if not s.done)


def has_parts(lab) -> tuple[bool, bool]:
    """(an adapter, a stored evaluation): what the home has of the whole ladder. Cheap (no
    model, no hashing)."""
    from ..tuning.adapters import list_adapters

    found, _problems = list_adapters(lab.home.adapters)
    return bool(found), lab.store.has_eval_runs()


def needed(lab) -> bool:
    """A home with no adapter or no stored evaluation, where the app offers to prepare the demo."""
    return not all(has_parts(lab))


def describe(steps: list[DemoStep]) -> str:
    """The plan as text: one line per step with its estimate, then the total."""
    lines = []
    for i, s in enumerate(steps, 1):
        when = "done" if s.done else f"~{_minutes(s.seconds)}"
        lines.append(f"{i:2}. [{when:>8}] {s.what}" + (f" ({s.state})" if s.state else ""))
        lines.append(f"      why: {s.why}")
        if not s.done and s.basis:
            lines.append(f"      estimate: {s.basis}")
    left = [s for s in steps if not s.done]
    lines.append(
        f"{len(steps) - len(left)} of {len(steps)} steps done; "
        + (
            f"the rest takes about {_minutes(total_seconds(steps))} on this machine"
            if left
            else "the demo is ready: `lab serve`"
        )
    )
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _model_info(lab):
    from ..models import ModelNotFound

    try:
        return lab.model_info()
    except ModelNotFound:  # a backend registered by hand (a test's fake)
        return lab.backend().info


def _index_steps(lab, tasks: list[Task]) -> list[DemoStep]:
    from ..retrieval import index_state

    steps, seen = [], set()
    for t in tasks:
        if not t.corpus or t.corpus in seen:
            continue
        seen.add(t.corpus)
        ref = ladder.task_corpus(lab, t)
        state = index_state(lab, ref)
        done = state["indexed"] and state["stale"] == 0
        folder = Path(state["folder"] or ref)
        chars = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if not done else 0
        # ~4 characters a token, 128 new tokens a chunk; ~20 chunks/s for all-MiniLM-L6-v2 on 2
        # cores, plus loading it
        seconds = 0.0 if done else 15 + chars / 4 / 128 / 20
        left = "" if done else (f"{state['stale']} files new or changed" if state["indexed"] else "no index yet")
        steps.append(
            DemoStep(
                "index",
                state["corpus"],
                f"index the sample corpus '{state['corpus']}' ({state['files']} files)",
                f"the RAG arms of {t.name} retrieve from it",
                seconds,
                done,
                "a rough figure for the embedder on 2 cores (the embeddings are cached)",
                left,
                task=t.name,
                corpus=ref,
            )
        )
    return steps


# ---- adapters -----------------------------------------------------------------------------------


def adapter_plan(lab, task: Task, overrides: dict | None = None, name: str | None = None) -> TrainPlan:
    """The demo adapter of `task`: its training set and instruction at this machine's training
    defaults (the Train tab's and `lab train --task`'s), CPU_STEPS steps on a CPU."""
    device = training_device("auto")
    sized = {"max_steps": CPU_STEPS} if device == "cpu" else {}  # a CPU demo is sized in minutes, not epochs
    return training_plan.for_task(lab, task, "the demo", name=name, device=device, **{**sized, **(overrides or {})})


def _adapter_step(lab, task: Task, model, overrides: dict | None) -> DemoStep:
    sha = lab.model_sha(model)
    why = f"the tune arms of {task.name} answer with it"
    names = (task.name, f"{task.name}-demo")
    planned = adapter_plan(lab, task, overrides)  # the same plan under either name: the data is read once

    def named(name: str) -> TrainPlan:
        return replace(planned, config=planned.config.model_copy(update={"name": name}))

    for name in names:  # one trained earlier with the very same data and settings: reuse it
        if training_plan.trained_adapter(lab, named(name).config) is not None:
            return DemoStep(
                "train",
                name,
                f"train the demo adapter '{name}'",
                why,
                0.0,
                True,
                state="trained",
                task=task.name,
                adapter=name,
            )
    for name in names:  # the scenario's own name when free; never overwrite someone's adapter
        plan = named(name)
        ckpt_step, why_not = checkpoint_step(lab, plan.config, sha)
        if not (lab.home.adapters / name).exists() and not why_not:
            break
    else:
        ckpt_step = None  # <scenario>-demo is the demo's own: it is retrained in place
    total = plan.steps
    left = total - (ckpt_step or 0)
    seconds, basis = training_plan.estimate(lab, plan, left)
    state = f"checkpoint at step {ckpt_step} of {total}" if ckpt_step else ""
    if name != task.name:
        state = ", ".join(x for x in (state, f"'{task.name}' holds another adapter or checkpoint: kept") if x)
    return DemoStep(
        "train",
        name,
        f"train the demo adapter '{name}' ({total} {plan.config.method} steps on "
        f"{task.name}'s {len(task.examples('train'))} training examples)",
        why,
        seconds,
        False,
        basis,
        state,
        task=task.name,
        adapter=name,
        todo=left,
        config=plan.config,
    )


# ---- evaluations --------------------------------------------------------------------------------


def _eval_step(lab, task: Task, arms: list[str], adapter_step: DemoStep | None, limit: int, speed) -> DemoStep:
    """Evaluating `arms` of `task` on `limit` held-out examples (`sampled`) into the run `run_eval`
    resumes. The tune arms join the run that holds the prompt arms' rows, unless that run was
    made with another adapter (or another training of it): then run_eval starts a new run, and
    every arm is evaluated again in it, so the scoreboard compares rows of one run."""
    held_out = sampled(task, limit)
    run = matching_run(lab, task)
    adapter = adapter_step.adapter if adapter_step else None
    run_arms, counted = arms, arms  # what run_eval is asked for; what this step must answer
    if adapter:
        run_arms = arms_for(task, False) + arms
        ours = _adapter_record(lab, adapter) if adapter_step.done else None
        if run and (json.loads(run["config_json"] or "{}").get("adapter") or ours) != ours:
            run, counted = None, run_arms  # a new run: the prompt arms are answered again in it
    wanted = {(ex.id, arm, 0) for ex in held_out for arm in counted}
    have = done_keys(lab, run["id"]) & wanted if run else set()
    missing = wanted - have
    seconds, bases = 0.0, set()
    for arm in counted:
        per_answer, basis = speed.seconds(task, arm) if missing else (0.0, "")
        seconds += per_answer * sum(1 for key in missing if key[1] == arm)
        bases.add(basis)
    if missing:
        seconds += 5  # loading the model (and the adapter)
    tuned = f" with '{adapter}'" if adapter else ""
    why = (
        f"the Evaluate and Advisor tabs show {task.name}'s scoreboard"
        if not adapter
        else f"{task.name}'s scoreboard gets its tune column (the same stored run)"
    )
    return DemoStep(
        "eval",
        task.name,
        f"evaluate {task.name} on {', '.join(arms)}{tuned}: {len(held_out)} held-out examples",
        why,
        seconds,
        not missing,
        "; ".join(sorted(b for b in bases if b)),
        f"{len(wanted) - len(missing)} of {len(wanted)} answered" if have else "",
        task=task.name,
        arms=run_arms,
        adapter=adapter,
        todo=len(missing),
        limit=limit,
    )


def _adapter_record(lab, name: str) -> dict:
    """How an evaluation run records the adapter its tune rows came from (as run_eval does)."""
    from ..tuning.adapters import read_adapter

    return {"name": name, "sha": read_adapter(lab.home.adapters / name).sha256}
