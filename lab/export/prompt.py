"""What the exported rung sends the model: `prompt.json`, built from the eval run that measured it.

Everything here is read from the run's identity and the task, so the file says how the evaluated
answers were asked: the system prompt (`ladder.instruction_for`, as the arm answered), the worked
examples (fixed: the first k of the pool, as `ladder.fixed_shots` gave them; similar: the pool and
k, chosen per question by the embedder), the decoding options (greedy, seed, the answer budget the
run used), the constraint (a label set as a GBNF grammar, a JSON schema), and for the rag rungs how
passages were searched and packed (`rag.json`).
"""

from __future__ import annotations

from .. import ladder
from ..backends.constrain import choices_grammar


def rung_options(lab, config: dict) -> dict:
    """The decoding options the run's answers were made with (`runner._one`: greedy, seed 0, the
    run's answer budget), plus llama.cpp's repeat penalty off as the lab's backends have it."""
    base = lab.options()
    return {
        "temperature": 0.0,
        "top_p": base.top_p,
        "seed": 0,
        "max_tokens": int(config["max_tokens"]),
        "stop": list(base.stop),
        "repeat_penalty": 1.0,
    }


def constraint(task, config: dict) -> dict | None:
    """The run's constraint: {"labels", "grammar"} or {"json_schema"}; None when unconstrained."""
    if not config.get("constrain"):
        return None
    held = ladder.constraint_options(task)
    if "choices" in held:
        return {"labels": held["choices"], "grammar": choices_grammar(held["choices"])}
    return {"json_schema": held["json_schema"]}


def examples(lab, task, arm: str, config: dict) -> dict | None:
    """The worked examples the arm was given: {"mode", "k", "pairs"} (fixed: the pairs every
    question got; similar: the whole pool, k chosen per question); None: the arm had none."""
    if arm == "few-shot":
        mode, k = config.get("few_shot_mode", "fixed"), config.get("few_shot_k")
    elif arm in ladder.RAG_ARMS and config.get("rag_shots"):
        mode, k = config["rag_shots"]["mode"], config["rag_shots"]["k"]
    else:
        return None
    pool = ladder.few_shot_pool(task)
    pairs = ladder.fixed_shots(pool, k) if mode == "fixed" else [(e.input, e.output) for e in pool]
    return {"mode": mode, "k": k, "pairs": [{"input": i, "output": o} for i, o in pairs]}


def build_prompt(lab, pick, model: dict, adapter: dict | None) -> dict:
    """prompt.json's content for `pick` (an `export.pick.Pick`)."""
    from ..tuning.adapters import find_adapter

    task, config = pick.task, pick.config
    tuned = find_adapter(lab.home.adapters, pick.adapter) if pick.adapter else None
    return {
        "task": task.name,
        "rung": pick.rung,
        "arm": pick.arm,
        "name": pick.name,
        "eval_run_id": pick.eval_run_id,
        "instruction": ladder.instruction_for(task, config.get("instruction"), tuned),
        "examples": examples(lab, task, pick.arm, config),
        "options": rung_options(lab, config),
        "constraint": constraint(task, config),
        "n_ctx": lab.config.n_ctx,
        "model": model,
        "adapter": adapter,
        "input": {"column": "the question, as the user's message", "format": task.output_format},
    }


def rag_settings(lab, task, config: dict) -> dict:
    """rag.json: the corpus, the index version and hash searched, passages per question, packing."""
    from ..retrieval import index_root
    from ..retrieval.corpus import resolve_corpus
    from ..retrieval.index import current_dir, read_manifest

    name, folder = resolve_corpus(lab.home, ladder.task_corpus(lab, task))
    root = index_root(lab, name, config.get("chunk_tokens"))
    manifest = read_manifest(root) or {}
    version = current_dir(root)
    return {
        "corpus": name,
        "corpus_folder": str(folder),
        "index": str(version) if version else None,
        "index_version": manifest.get("version"),
        "index_hash": manifest.get("manifest_hash"),
        "embedder": manifest.get("embedder") or lab.config.embedder,
        "chunk_tokens": (manifest.get("chunking") or {}).get("chunk_tokens"),
        "k": config.get("rag_k", 4),
        "packing": (
            "the k passages most similar to the question (cosine), numbered [1]..[k] in the system "
            "message after the instruction and the line 'Answer using only the sources below, and cite "
            "them like [1]. If they do not contain the answer, say you do not know.', then 'Sources:'; "
            "passages that do not fit the context are dropped from the least similar"
        ),
    }
