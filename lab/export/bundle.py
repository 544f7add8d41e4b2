"""`lab export`: the chosen rung as a folder a user runs elsewhere, written all at once.

    export_rung(lab, task, rung="auto", to="ship/")

writes Modelfile, SERVE.md (llama-server and vLLM commands, a request as evaluated),
llama-cpp-server.json, prompt.json, rag.json (rag rungs), grammar.gbnf or schema.json (constrained
rungs), EVIDENCE.md and export.json (what was exported, every file's sha256; `--verify` reads it).
Models are referenced by absolute path and sha256 (`copy_models`: copied into models/ and referenced
there). The folder is built beside its destination and renamed into place, so a killed export
leaves the old folder or none, never half of one; nothing in it depends on when it ran, so the
same inputs write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..home import replace_folder
from ..models import sha256_of
from .pick import ExportError, Pick, pick_rung
from .prompt import build_prompt, rag_settings
from .serving import JINJA_TEMPLATE_PLAIN, modelfile, serve_md, server_plans

MANIFEST = "export.json"


@dataclass
class Export:
    folder: Path
    pick: Pick
    files: dict[str, str]  # name -> sha256
    notes: list[str] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)  # what to copy: ollama create, the servers


def _json(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _model(lab, pick: Pick, copy_models: bool) -> tuple:
    """(ModelInfo, prompt.json's model entry, the GGUF path the files name)."""
    info = lab.model_info(pick.config.get("model"))
    if info.format == "openai":
        raise ExportError(
            f"eval run {pick.eval_run_id} ran on a model server ({info.id}): it is served already; "
            "export a rung evaluated on a local model"
        )
    if info.gguf_path is None:
        raise ExportError(f"{info.id} has no GGUF: Ollama and llama.cpp need one (vLLM: `lab adapters serve`)")
    sha = lab.model_sha(info)
    if pick.config.get("model_sha") and pick.config["model_sha"] != sha:
        raise ExportError(
            f"{info.id}'s weights changed since eval run {pick.eval_run_id} measured them: "
            f"run `lab eval {pick.task.name}` again, then export"
        )
    gguf = Path(info.gguf_path).resolve()
    shown = f"models/{gguf.name}" if copy_models else str(gguf)
    entry = {"id": info.id, "gguf": shown, "sha256": sha, "chat_template": bool(info.chat_template)}
    return info, entry, gguf


def _adapter(lab, pick: Pick, base_sha: str, copy_models: bool) -> tuple:
    """(AdapterInfo, prompt.json's adapter entry) for a tuned rung; (None, None) otherwise."""
    if not pick.adapter:
        return None, None
    from ..tuning.adapters import AdapterError, find_adapter

    try:
        a = find_adapter(lab.home.adapters, pick.adapter)
    except AdapterError as e:
        raise ExportError(f"the rung's adapter: {e}") from e
    if a.sha != pick.config["adapter"]["sha"]:
        raise ExportError(
            f"adapter '{a.name}' changed since eval run {pick.eval_run_id} measured it (retrained?): "
            f"run `lab eval {pick.task.name} --arms {pick.arm}` again, then export"
        )
    if a.base_sha != base_sha:
        raise ExportError(f"adapter '{a.name}' was trained on another base model than the one evaluated")
    if a.gguf_path is None:
        raise ExportError(f"adapter '{a.name}' has no adapter.gguf: run `lab adapters export {a.name}` first")
    gguf = Path(a.gguf_path).resolve()
    entry = {
        "name": a.name,
        "gguf": f"models/{a.name}.gguf" if copy_models else str(gguf),
        "gguf_sha256": sha256_of(gguf),
        "peft": str(Path(a.path).resolve()),
        "sha256": a.sha,
        "base_sha256": a.base_sha,
    }
    return a, entry


def export_rung(lab, task, rung: str = "auto", to: str | Path | None = None, copy_models: bool = False) -> Export:
    """Write the rung to `to` (default: <home>/exports/TASK-RUNG); an ExportError says what is missing."""
    from ..tasks import load_task
    from .evidence import evidence_md

    task = load_task(task, home=lab.home)
    pick = pick_rung(lab, task, rung)
    folder = Path(to) if to else lab.home.exports / f"{task.name}-{pick.rung}"  # as default_folder says
    info, model, gguf = _model(lab, pick, copy_models)
    tuned, adapter = _adapter(lab, pick, model["sha256"], copy_models)
    prompt = build_prompt(lab, pick, model, adapter)
    files = {"prompt.json": _json(prompt)}
    rag = rag_settings(lab, task, pick.config) if pick.arm in ("rag", "tune+rag") else None
    if rag:
        files["rag.json"] = _json(rag)
    c = prompt["constraint"] or {}
    if "grammar" in c:
        files["grammar.gbnf"] = c["grammar"]
    elif "json_schema" in c:
        files["schema.json"] = _json(c["json_schema"])
    stop = _eos_text(lab, info)
    files["Modelfile"] = modelfile(
        prompt, model["gguf"], adapter["gguf"] if adapter else None, model["chat_template"], stop
    )
    plans = server_plans(
        lab, prompt, info.id, tuned.name if tuned else None, info.hf_path is not None, model["chat_template"]
    )
    if not model["chat_template"]:
        files["chat_template.jinja"] = JINJA_TEMPLATE_PLAIN + "\n"
    served = tuned.name if tuned else info.id
    question = task.examples("eval")[0].input if task.examples("eval") else "…"
    files["SERVE.md"] = serve_md(prompt, plans, served, question, rag)
    files["llama-cpp-server.json"] = _json(_local_paths(plans["llama-cpp-python"].config, folder, copy_models))
    files["EVIDENCE.md"] = evidence_md(lab, pick, prompt, {**files})
    files[MANIFEST] = _json(
        {
            "task": task.name,
            "rung": pick.rung,
            "arm": pick.arm,
            "name": pick.name,
            "eval_run_id": pick.eval_run_id,
            "model": model,
            "adapter": adapter,
            "served_name": served,
            "files": {n: hashlib.sha256(t.encode()).hexdigest() for n, t in sorted(files.items())},
        }
    )
    copies = (
        {model["gguf"]: gguf, **({adapter["gguf"]: Path(tuned.gguf_path)} if adapter else {})} if copy_models else {}
    )
    _write_atomically(folder, files, copies)
    sums = {**json.loads(files[MANIFEST])["files"], MANIFEST: hashlib.sha256(files[MANIFEST].encode()).hexdigest()}
    commands = {
        "ollama": f"ollama create {task.name} -f {folder / 'Modelfile'}",
        "llama-server": plans["llama-server"].text().splitlines()[0],
        **({"vllm": plans["vllm"].text().splitlines()[0]} if "vllm" in plans else {}),
        "verify": f"lab export {task.name} --rung {pick.rung} --to {folder} --verify",
    }
    return Export(folder, pick, sums, list(pick.notes), commands)


def default_folder(lab, task: str, rung: str, to: str | Path | None = None) -> Path:
    """Where an export of `rung` is (`to`, else <home>/exports/TASK-RUNG; auto: the rung it resolved to)."""
    if to:
        return Path(to)
    if rung == "auto":
        from ..tasks import load_task

        rung = pick_rung(lab, load_task(task, home=lab.home), rung).rung
    return lab.home.exports / f"{task}-{rung}"


def _eos_text(lab, info) -> str | None:
    """The end-of-turn text Ollama must stop at (the lab's backend stops there too)."""
    backend = lab.backend(info.id)
    return getattr(backend, "_eos", None) or None


def _local_paths(config: dict, folder: Path, copy_models: bool) -> dict:
    """llama-cpp-python's config with the copied models' paths, when they were copied."""
    if not copy_models:
        return config
    out = json.loads(json.dumps(config))
    for m in out["models"]:
        m["model"] = str(folder.resolve() / "models" / Path(m["model"]).name)
        if m.get("lora_path"):
            m["lora_path"] = str(folder.resolve() / "models" / f"{m['model_alias']}.gguf")
    return out


def _write_atomically(folder: Path, files: dict[str, str], copies: dict[str, Path]) -> None:
    """Build the folder beside `folder`, then swap it in: a killed export leaves no half folder."""
    folder = folder.resolve()
    if folder.exists() and not (folder / MANIFEST).exists():
        raise ExportError(f"{folder} exists and is not a lab export: choose another --to, or remove it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        for rel, src in copies.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / rel)
        os.chmod(tmp, 0o755)
        replace_folder(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
