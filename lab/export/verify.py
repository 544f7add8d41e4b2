"""`lab export --verify`: does the exported folder answer like the rung the lab evaluated?

It checks the files first (the base and the adapter are the ones evaluated, by sha256; the adapter
was trained on the server's base), then starts llama-cpp-python's server on loopback from the
exported `llama-cpp-server.json`, asks it N held-out questions the evaluation answered (in the
sampling order) with `prompt.json`'s instruction, examples, options and constraint, through the
lab's server backend (`Lab.generate`: logged like every answer), and compares with the stored answers:
- identical answers out of N, and the score on both sides;
- a template mismatch: a prompt of another length in tokens than the evaluated one (a lost or
  different chat template, a missing end-of-turn token);
- an adapter that does nothing: for a tuned rung, the server's answers with the adapter equal the
  base model's on all N.
It passes only when every answer is identical and neither flag is raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..models import sha256_of
from .bundle import MANIFEST
from .pick import ExportError
from .server import llama_cpp_server

DEFAULT_N = 20


@dataclass
class Verification:
    n: int = 0
    identical: int = 0
    score_evaluated: float | None = None
    score_export: float | None = None
    first_diff: dict | None = None  # {"example_id", "question", "evaluated", "export"}
    template_mismatch: list[dict] = field(default_factory=list)  # {"example_id", "evaluated", "export"} tokens
    adapter_noop: bool = False
    problems: list[str] = field(default_factory=list)  # refused before anything ran

    @property
    def ok(self) -> bool:
        return not self.problems and self.n > 0 and self.identical == self.n and not self.flags

    @property
    def flags(self) -> list[str]:
        out = []
        if self.template_mismatch:
            t = self.template_mismatch[0]
            out.append(
                f"template mismatch: the exported prompt of {t['example_id']} is {t['export']} tokens, the "
                f"evaluated one {t['evaluated']} ({len(self.template_mismatch)} of {self.n} differ): the server "
                "renders the chat another way than the evaluation did"
            )
        if self.adapter_noop:
            out.append(
                f"the adapter does nothing: with it the server answers exactly as the base model on all {self.n} "
                "(module names the engine does not know, or an adapter of zeros)"
            )
        return out

    def lines(self) -> list[str]:
        if self.problems:
            return [f"not verified: {p}" for p in self.problems]
        head = "verified" if self.ok else "does NOT reproduce the evaluation"
        out = [f"{head}: {self.identical} of {self.n} answers identical to the evaluated ones"]
        if self.score_evaluated is not None:
            out.append(
                f"score on these {self.n}: evaluated {self.score_evaluated:.3f}, exported {self.score_export:.3f}"
            )
        out += self.flags
        if self.first_diff:
            d = self.first_diff
            out += [
                f"first difference, {d['example_id']}: {d['question'][:120]!r}",
                f"  evaluated: {d['evaluated'][:200]!r}",
                f"  exported:  {d['export'][:200]!r}",
            ]
        return out

    def as_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok, "flags": self.flags, "lines": self.lines()}


def _read(folder: Path) -> tuple[dict, dict, dict]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        prompt = json.loads((folder / "prompt.json").read_text())
        config = json.loads((folder / "llama-cpp-server.json").read_text())
    except FileNotFoundError as e:
        raise ExportError(
            f"{folder} is not a lab export ({Path(e.filename).name} is missing): run `lab export` first"
        ) from e
    except json.JSONDecodeError as e:
        raise ExportError(f"{folder}: a file is not valid JSON ({e})") from e
    return manifest, prompt, config


def check_files(manifest: dict, config: dict) -> list[str]:
    """What makes the export unable to reproduce the evaluation before anything runs: a base or
    adapter that is not the one evaluated, an adapter served on a base it was not trained on."""
    from functools import cache

    model, adapter = manifest["model"], manifest.get("adapter")
    sha_of = cache(sha256_of)  # a tuned export's config names the base twice: hashed once
    problems = []
    for m in config.get("models", []):
        path = Path(m["model"])
        if not path.exists():
            problems.append(f"llama-cpp-server.json names {path}, which does not exist")
            continue
        sha = sha_of(path)
        lora = m.get("lora_path")
        if lora and adapter and sha != adapter["base_sha256"]:
            problems.append(
                f"adapter '{adapter['name']}' was trained on {model['id']} (sha256 {adapter['base_sha256'][:12]}…), "
                f"but the server's base for it is {path.name} (sha256 {sha[:12]}…): an adapter for another base"
            )
        elif sha != model["sha256"]:
            problems.append(f"the server's base {path.name} is not the evaluated {model['id']} (sha256 differs)")
        if lora and adapter and Path(lora).exists() and sha_of(Path(lora)) != adapter["gguf_sha256"]:
            problems.append(f"the server's adapter {lora} is not the evaluated '{adapter['name']}' (sha256 differs)")
    return problems


def verify_export(lab, folder: str | Path, n: int = DEFAULT_N, progress=None) -> Verification:
    """Serve the export, ask it `n` of the evaluated questions, compare; see the module's doc."""
    from ..tasks import load_task

    folder = Path(folder)
    manifest, prompt, config = _read(folder)
    result = Verification(problems=check_files(manifest, config))
    if result.problems:
        return result
    task = load_task(manifest["task"], home=lab.home)
    evaluated = _evaluated(lab, task, manifest, n)
    rag = json.loads((folder / "rag.json").read_text()) if (folder / "rag.json").exists() else {}
    if not evaluated:
        raise ExportError(f"eval run {manifest['eval_run_id']} has no answers to compare with")
    with llama_cpp_server(config) as url:
        spec = f"openai:{url}#{manifest['model']['id']}"
        try:
            answers = [_ask(lab, task, prompt, rag, spec, ex, manifest.get("adapter")) for ex, _ in evaluated]
            served = manifest["adapter"]["name"] if manifest.get("adapter") else manifest["model"]["id"]
            tokens = [_served_prompt_tokens(lab, url, served, a.row_id) for a in answers]
            if progress:
                progress(len(answers), len(evaluated))
            base = None
            if manifest.get("adapter"):
                base = [_ask(lab, task, prompt, rag, spec, ex, None) for ex, _ in evaluated]
        finally:
            lab.drop_backend(spec)
    return _compare(task, evaluated, answers, tokens, base)


def _served_prompt_tokens(lab, url: str, served: str, row_id: int) -> int | None:
    """The server's own count of the prompt it rendered for the messages the answer sent (its
    usage, from a one-token request: a streamed answer carries none), None when it gives none."""
    import httpx

    messages = json.loads(lab.store.generation(row_id)["messages_json"])
    body = {"model": served, "messages": messages, "max_tokens": 1, "temperature": 0.0}
    try:
        r = httpx.post(f"{url}/chat/completions", json=body, timeout=300)
        r.raise_for_status()
        return r.json().get("usage", {}).get("prompt_tokens")
    except (httpx.HTTPError, ValueError):
        return None


def _evaluated(lab, task, manifest: dict, n: int) -> list[tuple]:
    """(example, stored row) for the first `n` held-out examples the rung answered without error."""
    from ..evaluation.sample import held_out

    rows = {
        r["example_id"]: r
        for r in lab.store.eval_result_rows(manifest["eval_run_id"])
        if r["arm"] == manifest["arm"] and r["repeat"] == 0 and not r.get("error") and r.get("generation_id")
    }
    return [(ex, rows[ex.id]) for ex in held_out(task) if ex.id in rows][:n]


def _ask(lab, task, prompt: dict, rag: dict, spec: str, ex, adapter: dict | None):
    """One question as the export asks it: prompt.json's settings, on the served model."""
    from .. import ladder
    from ..config import GenerationOptions

    o = prompt["options"]
    c = prompt["constraint"] or {}
    options = GenerationOptions(
        max_tokens=o["max_tokens"],
        temperature=o["temperature"],
        top_p=o["top_p"],
        seed=o["seed"],
        stop=o["stop"],
        grammar=c.get("grammar"),
        json_schema=c.get("json_schema"),
    )
    shots, arm = None, prompt["arm"]
    ex_cfg = prompt["examples"]
    if ex_cfg and ex_cfg["mode"] == "fixed":
        shots = [(p["input"], p["output"]) for p in ex_cfg["pairs"]]
    elif ex_cfg:
        shots = ladder.similar_shots(lab, ladder.few_shot_pool(task), ex.input, ex_cfg["k"])
    if adapter is None and arm in ladder.TUNE_ARMS:
        arm = "rag" if arm == "tune+rag" else "zero-shot"  # the base model, asked the same way
    return lab.answer(
        arm,
        ex.input,
        task=task,
        model=spec,
        options=options,
        system=prompt["instruction"] or "",
        shots=shots,
        adapter=adapter["name"] if adapter else None,
        rag_k=rag.get("k", 4),
        chunk_tokens=rag.get("chunk_tokens"),
        log={"example_id": ex.id},
    )


def _compare(task, evaluated: list[tuple], answers: list, tokens: list, base: list | None) -> Verification:
    from ..evaluation.scorers import score_example

    r = Verification(n=len(evaluated))
    ours, theirs = [], []
    for (ex, row), ans, n_tokens in zip(evaluated, answers, tokens, strict=True):
        stored = (row.get("output") or "").strip()
        if ans.text.strip() == stored:
            r.identical += 1
        elif r.first_diff is None:
            r.first_diff = {"example_id": ex.id, "question": ex.input, "evaluated": stored, "export": ans.text}
        if row.get("prompt_tokens") and n_tokens is not None and n_tokens != row["prompt_tokens"]:
            r.template_mismatch.append({"example_id": ex.id, "evaluated": row["prompt_tokens"], "export": n_tokens})
        theirs.append(json.loads(row.get("scores_json") or "{}").get("primary") or 0.0)
        ours.append(score_example(task, ex, ans.text, ans.passages).get("primary") or 0.0)
    r.score_evaluated, r.score_export = sum(theirs) / len(theirs), sum(ours) / len(ours)
    if base is not None:
        r.adapter_noop = all(a.text == b.text for a, b in zip(answers, base, strict=True))
    return r
