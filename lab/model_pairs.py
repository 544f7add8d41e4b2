"""One model, two forms: Hugging Face weights to train, a GGUF to serve.

A folder in `models/` holds an HF folder, a GGUF, or both for the same model:

    models/qwen2.5-7b-instruct/
        qwen2.5-7b-instruct-q4_k_m.gguf     served by llama.cpp (prompt and RAG rungs)
        hf/                                  trained (tune rung): config.json, *.safetensors,
                                             tokenizer.json, tokenizer_config.json
        model.toml                           optional: names the parts when the layout is ambiguous

Without `model.toml` the parts are found by convention: the GGUF is the one `*.gguf` at the top of
the folder; the HF weights are the folder itself when it has `config.json`, else its one subfolder
that has one. `model.toml` names them instead (paths relative to the folder; either may be left out):

    hf = "qwen2.5-7b-instruct-bnb-4bit"
    gguf = "qwen2.5-7b-instruct-q4_k_m.gguf"
    description = "Qwen2.5 7B Instruct"

Before the two are used together `check_pair` compares architecture, layer count, hidden size,
vocabulary size, tokenizer and chat template, and refuses a mismatch with `ModelPairError`, naming
both files and the field. This module knows nothing of `ModelInfo`; `lab.models` builds that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from .config import tomllib
from .gguf_meta import array_length, read_metadata

# GGUF `general.architecture` -> the HF `model_type`s converted to it (llama.cpp's converter
# writes Mistral as llama; Gemma 3 text-only checkpoints say gemma3_text).
GGUF_TO_HF_TYPES = {
    "llama": {"llama", "mistral"},
    "mistral3": {"mistral3", "mistral"},
    "qwen2": {"qwen2"},
    "qwen2moe": {"qwen2_moe"},
    "qwen3": {"qwen3"},
    "qwen3moe": {"qwen3_moe"},
    "gemma": {"gemma"},
    "gemma2": {"gemma2"},
    "gemma3": {"gemma3", "gemma3_text"},
    "phi2": {"phi"},
    "phi3": {"phi3"},
    "starcoder2": {"starcoder2"},
    "olmo2": {"olmo2"},
    "granite": {"granite"},
    "smollm3": {"smollm3"},
    "falcon": {"falcon"},
    "gpt2": {"gpt2"},
}


class ModelPairError(ValueError):
    """The HF weights and the GGUF in one model folder are not the same model (or the folder's
    parts cannot be told apart). The message names the files and the field."""


class ModelToml(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hf: str | None = None
    gguf: str | None = None
    description: str = ""


@dataclass
class ModelParts:
    folder: Path
    hf: Path | None = None
    gguf: Path | None = None
    description: str = ""


# ---- finding the parts -------------------------------------------------------------------


def find_parts(folder: Path) -> ModelParts:
    """The HF folder and GGUF file of a model folder, from model.toml or the folder convention."""
    toml_file = folder / "model.toml"
    if toml_file.exists():
        return _parts_from_toml(folder, toml_file)
    parts = ModelParts(folder)
    ggufs = sorted(p for p in folder.glob("*.gguf") if p.is_file())
    if len(ggufs) > 1:
        names = ", ".join(p.name for p in ggufs)
        raise ModelPairError(
            f'{folder}: several GGUF files ({names}); name the one to serve in {toml_file} (gguf = "...")'
        )
    parts.gguf = ggufs[0] if ggufs else None
    if (folder / "config.json").exists():
        parts.hf = folder
    else:
        subs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.json").exists())
        if len(subs) > 1:
            names = ", ".join(p.name for p in subs)
            raise ModelPairError(
                f'{folder}: several HF folders ({names}); name the one to train in {toml_file} (hf = "...")'
            )
        parts.hf = subs[0] if subs else None
    return parts


def _parts_from_toml(folder: Path, toml_file: Path) -> ModelParts:
    try:
        spec = ModelToml.model_validate(tomllib.loads(toml_file.read_text()))
    except tomllib.TOMLDecodeError as e:
        raise ModelPairError(f"{toml_file}: not valid TOML: {e}") from e
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ModelPairError(f"{toml_file}: field '{field}': {err['msg']}") from e
    if not spec.hf and not spec.gguf:
        raise ModelPairError(f"{toml_file}: names neither `hf` (weights folder) nor `gguf` (file)")
    parts = ModelParts(folder, description=spec.description)
    if spec.hf:
        parts.hf = (folder / spec.hf).resolve()
        if not (parts.hf / "config.json").is_file():
            raise ModelPairError(f"{toml_file}: field 'hf': {parts.hf} is not an HF folder (no config.json)")
    if spec.gguf:
        parts.gguf = (folder / spec.gguf).resolve()
        if not parts.gguf.is_file():
            raise ModelPairError(f"{toml_file}: field 'gguf': {parts.gguf} does not exist")
    return parts


# ---- reading each side ---------------------------------------------------------------------


def read_hf_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelPairError(f"{path}: unreadable HF config ({e})") from e


def is_bnb_4bit(config: dict) -> bool:
    """An HF folder saved pre-quantised by bitsandbytes in 4 bit (e.g. unsloth's `-bnb-4bit`)."""
    q = config.get("quantization_config") or {}
    return q.get("quant_method") == "bitsandbytes" and bool(q.get("load_in_4bit") or q.get("_load_in_4bit"))


def hf_chat_template(folder: Path) -> str | None:
    """The chat template of an HF folder: chat_template.jinja, else tokenizer_config.json's."""
    jinja = folder / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text()
    tok = folder / "tokenizer_config.json"
    try:
        template = json.loads(tok.read_text()).get("chat_template") if tok.exists() else None
    except json.JSONDecodeError:
        return None
    if isinstance(template, list):  # named templates: the default one is what chat uses
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default")
    return template


def hf_tokens(folder: Path) -> dict[int, str] | None:
    """id -> token text from tokenizer.json (vocabulary plus added tokens); None without one."""
    path = folder / "tokenizer.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelPairError(f"{path}: unreadable tokenizer ({e})") from e
    vocab = (data.get("model") or {}).get("vocab") or {}
    if isinstance(vocab, list):  # Unigram models keep [token, score] pairs in id order
        tokens = {i: pair[0] for i, pair in enumerate(vocab)}
    else:
        tokens = {int(i): t for t, i in vocab.items()}
    tokens.update({int(a["id"]): a["content"] for a in data.get("added_tokens", [])})
    return tokens


def _text_config(config: dict) -> dict:
    """Multimodal configs (Gemma 3 4B+, Mistral 3) keep the language model's sizes in text_config."""
    text = config.get("text_config") or {}
    return {**config, **text}


def _gguf_vocab_size(meta: dict, arch: str) -> int | None:
    return array_length(meta.get("tokenizer.ggml.tokens")) or meta.get(f"{arch}.vocab_size")


# ---- the check ---------------------------------------------------------------------------


def _refuse(hf_file: Path, gguf: Path, field: str, hf_value, gguf_value) -> ModelPairError:
    return ModelPairError(
        f"{hf_file} and {gguf} are not the same model: {field} differs "
        f"(HF {hf_value} vs GGUF {gguf_value}). Put the GGUF converted from these weights beside "
        "them, or name the right parts in model.toml (see models/README.md)."
    )


def check_pair(hf: Path, gguf: Path) -> dict:
    """Refuse (ModelPairError) unless the HF folder and the GGUF are the same model; returns what
    was compared: {field: value} (values equal on both sides), plus `not_checked`: fields one side
    lacks (e.g. no tokenizer.json)."""
    config_file = hf / "config.json"
    config = _text_config(read_hf_config(hf))
    meta = read_metadata(gguf)
    arch = str(meta.get("general.architecture"))
    hf_type = config.get("model_type")
    allowed = GGUF_TO_HF_TYPES.get(arch, {arch.replace("-", "_")})
    if hf_type not in allowed:
        raise _refuse(config_file, gguf, "architecture", f"model_type={hf_type!r}", f"general.architecture={arch!r}")
    checked: dict = {"architecture": f"{arch} / {hf_type}"}
    not_checked: list[str] = []
    for field, hf_key, gguf_key in (
        ("layer count", "num_hidden_layers", f"{arch}.block_count"),
        ("hidden size", "hidden_size", f"{arch}.embedding_length"),
    ):
        a, b = config.get(hf_key), meta.get(gguf_key)
        if a is None or b is None:
            not_checked.append(field)
        elif a != b:
            raise _refuse(config_file, gguf, field, f"{hf_key}={a}", f"{gguf_key}={b}")
        else:
            checked[field] = a
    gguf_vocab = _gguf_vocab_size(meta, arch)
    hf_vocab = config.get("vocab_size")
    if hf_vocab is None or gguf_vocab is None:
        not_checked.append("vocabulary size")
    elif hf_vocab != gguf_vocab:
        raise _refuse(
            config_file,
            gguf,
            "vocabulary size",
            f"vocab_size={hf_vocab}",
            f"{gguf_vocab} tokens (tokenizer.ggml.tokens)",
        )
    else:
        checked["vocabulary size"] = hf_vocab
    if _check_tokens(hf, gguf, not_checked):
        checked["tokenizer"] = "same tokens"
    _check_template(hf, gguf, meta.get("tokenizer.chat_template"), checked, not_checked)
    checked["not_checked"] = not_checked
    return checked


def _check_tokens(hf: Path, gguf: Path, not_checked: list[str]) -> bool:
    """Every token of the HF tokenizer must be the GGUF's token with the same id (the GGUF may
    have more: llama.cpp's converter pads the vocabulary to the embedding size)."""
    hf_tok = hf_tokens(hf)
    if hf_tok is None:
        not_checked.append("tokenizer")
        return False
    gguf_tok = read_metadata(gguf, keep_arrays=True).get("tokenizer.ggml.tokens")
    if not isinstance(gguf_tok, list):
        not_checked.append("tokenizer")
        return False
    tok_file = hf / "tokenizer.json"
    top = max(hf_tok) + 1 if hf_tok else 0
    if top > len(gguf_tok):
        raise _refuse(tok_file, gguf, "tokenizer", f"{top} tokens", f"{len(gguf_tok)} tokens")
    for i in sorted(hf_tok):
        if hf_tok[i] != gguf_tok[i]:
            raise _refuse(tok_file, gguf, "tokenizer", f"token {i} = {hf_tok[i]!r}", f"token {i} = {gguf_tok[i]!r}")
    return True


def _check_template(hf: Path, gguf: Path, gguf_template, checked: dict, not_checked: list[str]) -> None:
    hf_template = hf_chat_template(hf)
    if not hf_template or not gguf_template:
        if hf_template or gguf_template:
            not_checked.append("chat template (only one side has one)")
        return
    a, b = hf_template.strip(), str(gguf_template).strip()
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        where = "tokenizer_config.json" if not (hf / "chat_template.jinja").exists() else "chat_template.jinja"
        raise _refuse(
            hf / where, gguf, "chat template", f"{a[at : at + 40]!r} at character {at}", repr(b[at : at + 40])
        )
    checked["chat template"] = "same text"
