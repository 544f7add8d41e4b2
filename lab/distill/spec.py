"""Who teaches and how: `--teacher MODEL[:HOW]`, resolved to one arm configuration the evaluation
runner takes (the same settings label the inputs and score the teacher on the held-out examples).

MODEL is anything `lab ask --model` takes: a model id (`lab models`), a path, `default` (the lab's
default model), or an OpenAI-compatible server, `openai:http://gpu:8000/v1#llama-8b`. HOW is one of
- `best-prompt` (the default): the best prompt configuration measured for that model on this task
  (`lab eval TASK --best-prompt --model MODEL`); the task's own few-shot setting when none was;
- `best-rag`: the best measured RAG configuration (`lab eval TASK --best-rag`); plain rag when none;
- `zero-shot`, `few-shot`, `few-shot@K` (K fixed examples), `similar@K` (the K most similar), `rag`,
  `rag@K` (K passages);
and `+constrained` after any of them holds the teacher's answers to the task's labels or schema
(a best-* configuration measured constrained is constrained already).
A server spec has colons of its own, so HOW is read from after the last colon, and only when it is
one of these; `openai:http://gpu:8000/v1#llama-8b:rag` is the server's model answering with rag.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ..ladder import ArmError

HOWS = ("best-prompt", "best-rag", "zero-shot", "few-shot", "rag")
_HOW = re.compile(
    r"^(?:(best-prompt|best-rag|zero-shot|few-shot|rag)|(few-shot|similar|rag)@([1-9][0-9]*))(\+constrained)?$"
)
SPEC_HELP = (
    "MODEL[:HOW]: MODEL a model id, a path, 'default' or openai:URL#NAME; HOW best-prompt (default), "
    "best-rag, zero-shot, few-shot, few-shot@K, similar@K, rag, rag@K, each optionally +constrained"
)


class DistillError(ArmError):
    """A distillation cannot run as asked (a bad teacher spec, no inputs, ...); says why."""


@dataclass(frozen=True)
class TeacherSpec:
    model: str | None  # None: the lab's default model
    how: str  # one of HOWS (few-shot@K etc. are split into how + k + mode)
    k: int | None = None
    mode: str = "fixed"
    constrain: bool = False  # +constrained
    text: str = ""  # as the user wrote it, for messages

    def as_dict(self) -> dict:
        return asdict(self)


def parse_teacher(spec: str) -> TeacherSpec:
    """`MODEL[:HOW]` -> TeacherSpec; a DistillError naming the spec when it cannot be read."""
    text = (spec or "").strip()
    if not text:
        raise DistillError(f"teacher spec is empty: {SPEC_HELP}")
    model, how = text, "best-prompt"
    head, sep, tail = text.rpartition(":")
    if sep and _HOW.match(tail):
        model, how = head, tail
    elif sep and not text.startswith("openai:") and not re.match(r"^[A-Za-z]:[\\/]", text):
        raise DistillError(f"teacher spec {spec!r}: unknown way of answering {tail!r} ({SPEC_HELP})")
    if not model:
        raise DistillError(f"teacher spec {spec!r} names no model ({SPEC_HELP})")
    m = _HOW.match(how)
    how, k, mode = m.group(1), None, "fixed"
    if m.group(2):
        how, k = ("rag" if m.group(2) == "rag" else "few-shot"), int(m.group(3))
        mode = "similar" if m.group(2) == "similar" else "fixed"
    return TeacherSpec(None if model == "default" else model, how, k, mode, bool(m.group(4)), text)


@dataclass
class ArmConfig:
    """One way of answering, as `runner.run_eval` takes it (model aside), with its name."""

    arm: str
    mode: str = "fixed"
    k: int | None = None  # few-shot examples (None: the task's few_shot_k)
    rag_k: int = 4
    instruction: str | None = None  # None: the task's own
    chunk_tokens: int | None = None
    rag_shots: dict | None = None
    constrain: bool | None = None  # None: the task's own setting
    label: str = ""
    note: str = ""  # how it was chosen, when that is worth saying (no sweep measured: the task's setting)

    def run_kwargs(self) -> dict:
        return {
            "few_shot_mode": self.mode,
            "k": self.k,
            "rag_k": self.rag_k,
            "instruction": self.instruction,
            "chunk_tokens": self.chunk_tokens,
            "rag_shots": self.rag_shots,
            "constrain": self.constrain,
        }

    def as_dict(self) -> dict:
        return asdict(self)


def resolve(lab, task, spec: TeacherSpec, model_id: str) -> ArmConfig:
    """The arm configuration `spec` means for `task`: a best-* spec reads what was measured for
    `model_id` on the task (nothing is run here)."""
    from ..ladder import constraint_options

    if spec.constrain and not constraint_options(task):
        raise DistillError(f"teacher spec {spec.text!r}: task '{task.name}' is free text, with nothing to constrain to")
    config = _resolve(lab, task, spec, model_id)
    if spec.constrain and not config.constrain:
        config.constrain, config.label = True, config.label + ", constrained"
    return config


def _resolve(lab, task, spec: TeacherSpec, model_id: str) -> ArmConfig:
    from ..evaluation.runner import config_label

    if spec.how == "best-prompt":
        return _best_prompt(lab, task, model_id)
    if spec.how == "best-rag":
        return _best_rag(lab, task, model_id)
    if spec.how == "zero-shot":
        return ArmConfig("zero-shot", label="zero-shot")
    if spec.how == "few-shot":
        k = task.few_shot_k if spec.k is None else spec.k
        return ArmConfig("few-shot", spec.mode, k, label=config_label("few-shot", spec.mode, k))
    if not task.corpus:
        raise DistillError(f"teacher spec {spec.text!r}: task '{task.name}' has no corpus for rag to search")
    rag_k = spec.k or 4
    return ArmConfig("rag", rag_k=rag_k, label=config_label("rag", variant={"rag_k": rag_k}))


def _latest_run(lab, task, model_id: str) -> dict | None:
    """The newest untagged evaluation of this task (these files) by this model, as `summary.load_run` gives it."""
    import json

    from ..evaluation.summary import load_run

    for run in lab.store.eval_runs_matching(task.name, task.hash(), model_id):
        if not json.loads(run["config_json"] or "{}").get("tag"):
            return load_run(lab, run["id"])
    return None


def _best_prompt(lab, task, model_id: str) -> ArmConfig:
    from ..evaluation import prompt_rung

    run = _latest_run(lab, task, model_id)
    # the examples the newest run scored (a sweep on --limit 40 measured those 40, not all)
    scored_ids = [prompt_rung.run_scores(lab, run["id"], a) for a in ("zero-shot", "few-shot")] if run else []
    ids = sorted(max(scored_ids, key=len)) if scored_ids else []
    configs = prompt_rung.measured_prompt_configs(lab, run, ids) if ids else []
    scored = [c for c in configs if c.score is not None and not c.dropped]
    if sum(c.arm == "few-shot" for c in scored) < 2:
        from ..evaluation.runner import config_label

        k = task.few_shot_k
        return ArmConfig(
            "few-shot",
            k=k,
            label=config_label("few-shot", "fixed", k),
            note=f"no prompt sweep measured for {model_id} on this task: its own few-shot setting "
            f"(lab eval {task.name} --best-prompt measures the best)",
        )
    best = prompt_rung.best_prompt_config(scored)
    return ArmConfig(
        best.arm,
        best.mode,
        best.k if best.arm == "few-shot" else None,
        instruction=best.instruction,
        constrain=best.constrain,
        label=best.label(),
        note=f"the best of {len(configs)} prompt configurations measured",
    )


def _best_rag(lab, task, model_id: str) -> ArmConfig:
    from ..evaluation.rag_rung import best_rag_for_run
    from ..evaluation.runner import config_label

    if not task.corpus:
        raise DistillError(f"teacher best-rag: task '{task.name}' has no corpus for rag to search")
    run = _latest_run(lab, task, model_id)
    best = best_rag_for_run(lab, run) if run else None
    if best is None:
        return ArmConfig(
            "rag",
            label=config_label("rag", variant={"rag_k": 4}),
            note=f"no RAG sweep measured for {model_id} on this task: rag at 4 passages "
            f"(lab eval {task.name} --best-rag measures the best)",
        )
    c = best.config
    return ArmConfig(
        "rag",
        rag_k=c.k,
        chunk_tokens=None if c.own else c.chunk_tokens,
        rag_shots=c.shots,
        constrain=c.constrain,
        label=c.label(),
        note=f"the best of {best.candidates} RAG configurations measured",
    )
