"""What a run trains on: the method and device, where the base weights come from, their
precision, and the model loaded and wrapped for LoRA (the 4-bit paths are in `qlora.py`, which
this module calls and which never imports it back; what both wrap with is in `config.py`).

Base weights, in order: the model's own HF folder; for a GGUF model, the HF folder paired
with it (`info.hf_path`), else the GGUF dequantised once into the lab's cache (shared with
the HF backend), so the adapter fits the model the llama.cpp arms run. A GGUF too big to
dequantise sensibly is refused with what to put on disk instead.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from ..models import ModelInfo
from .config import gradient_checkpointing, lora_config
from .qlora import cpu_qlora_problem, load_qlora
from .run import Precision, TrainingError, TrainRun
from .targets import resolve_targets

# Above this many parameters a GGUF-only base is not dequantised (float32: 4 bytes a parameter
# in memory and on disk); the user is asked for the model's HF weights instead.
MAX_DEQUANTISE_PARAMS = 3e9


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pick_method(method: str, cuda: bool) -> str:
    """ "lora" or "qlora" for `method` ("auto": qlora on CUDA, lora on the CPU). qlora on the
    CPU needs bitsandbytes >= 0.47 (its CPU 4-bit kernels)."""
    if method == "auto":
        return "qlora" if cuda else "lora"
    if method == "qlora" and not cuda:
        problem = cpu_qlora_problem()
        if problem:
            raise TrainingError(
                f"--method qlora on the CPU needs bitsandbytes >= 0.47: {problem}. "
                "pip install 'bitsandbytes>=0.47', or use --method lora."
            )
    return method


def unsloth_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def pick_precision(device: str, method: str) -> Precision:
    """bf16 where the GPU has it, else fp16 with a GradScaler; float32 on the CPU (4-bit layers
    compute in bf16 there where the CPU has it: see qlora.compute_dtype)."""
    import torch

    if device != "cuda":
        return Precision("float32")
    if torch.cuda.is_bf16_supported():
        return Precision("bfloat16", torch.bfloat16)
    return Precision("float16", torch.float16, torch.amp.GradScaler("cuda"))


# ---- the base weights ---------------------------------------------------------------------------


def paired_hf_folder(info: ModelInfo) -> Path | None:
    """The HF weights folder tied to a GGUF model (model pairs), if there is one on disk."""
    folder = getattr(info, "hf_path", None)
    return Path(folder) if folder and (Path(folder) / "config.json").exists() else None


def estimate_gguf_params(path: str | Path) -> int:
    """Parameters of the model in a GGUF file, from its header (layers x widths + vocabulary),
    else from its size and quantisation type. Reads the header only."""
    from ..gguf_meta import array_length, read_metadata

    path = Path(path)
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    get = lambda key: meta.get(f"{arch}.{key}")  # noqa: E731
    d, layers, ff = get("embedding_length"), get("block_count"), get("feed_forward_length")
    if all(isinstance(x, int) and x > 0 for x in (d, layers, ff)):
        heads = get("attention.head_count") or 1
        heads = max(heads) if isinstance(heads, list) else heads
        kv = get("attention.head_count_kv") or heads
        kv = max(kv) if isinstance(kv, list) else kv
        head_dim = get("attention.key_length") or d // heads
        vocab = get("vocab_size") or array_length(meta.get("tokenizer.ggml.tokens")) or 32000
        attention = 2 * d * heads * head_dim + 2 * d * kv * head_dim
        mlp = 3 * d * ff * (get("expert_count") or 1)
        return int(layers * (attention + mlp) + vocab * d)
    bits = {0: 32, 1: 16, 32: 16, 7: 8.5}.get(meta.get("general.file_type"), 5.0)
    return int(path.stat().st_size * 8 / bits)


def check_trainable_base(lab, info: ModelInfo) -> None:
    """Refuse a GGUF-only base too big to dequantise, saying what is needed on disk instead."""
    if info.format != "gguf" or paired_hf_folder(info) or (lab.hf_cache_dir(info) / "config.json").exists():
        return
    params = estimate_gguf_params(info.path)
    if params > MAX_DEQUANTISE_PARAMS:
        raise TrainingError(
            f"{info.path} holds a model of about {params / 1e9:.1f}B parameters and there are no HF weights "
            f"beside it. Training needs the model's HF weights: dequantising this GGUF would take about "
            f"{params * 4 / 1e9:.0f} GB of memory and disk. Put the same model's HF folder (config.json + "
            f"*.safetensors in bf16, or a '-bnb-4bit' folder for qlora) beside the GGUF in {Path(info.path).parent} "
            f"and train again."
        )


def hf_source_path(lab, info: ModelInfo) -> Path:
    """Where the base weights come from (the HF folder, the paired one, or the cache of the
    dequantised GGUF), without converting anything."""
    if info.format == "hf":
        return Path(info.path)
    return paired_hf_folder(info) or lab.hf_cache_dir(info)


def hf_source(lab, info: ModelInfo) -> Path:
    """An HF folder with the base weights, dequantising a GGUF into the cache the first time."""
    folder = hf_source_path(lab, info)
    if not (folder / "config.json").exists():
        from ..backends.hf import load_hf_model

        check_trainable_base(lab, info)
        load_hf_model(info, cache_dir=folder)  # converts and caches; the copy is dropped
    return folder


def load_tokenizer(lab, info: ModelInfo):
    """The base model's tokenizer (for the dataset report), without loading its weights."""
    from transformers import AutoTokenizer

    folder = hf_source_path(lab, info)
    if (folder / "config.json").exists():
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:  # a GGUF not yet converted: read the tokenizer from the file itself
        tok = AutoTokenizer.from_pretrained(
            str(Path(info.path).parent), gguf_file=Path(info.path).name, local_files_only=True
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


# ---- loading for training -----------------------------------------------------------------------


def _load_lora(run: TrainRun) -> None:
    """Float weights + PEFT LoRA (CPU or GPU)."""
    from peft import get_peft_model

    from ..backends.hf import load_hf_model

    info, lab = run.info, run.lab
    paired = paired_hf_folder(info)
    if paired:
        source = dataclasses.replace(info, format="hf", path=paired)
        model, tok = load_hf_model(source, dtype=run.precision.weights, device=run.device)
    else:
        check_trainable_base(lab, info)
        model, tok = load_hf_model(
            info,
            dtype=run.precision.weights,
            device=run.device,
            cache_dir=lab.hf_cache_dir(info) if info.format == "gguf" else None,
        )
    if gradient_checkpointing(run.config, run.method, run.device):
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    run.targets = resolve_targets(run.config.target_modules, model)
    run.model = get_peft_model(model, lora_config(run.config, run.targets))
    run.tokenizer, run.engine = tok, "peft"


def load_model(run: TrainRun) -> None:
    """Load the base model and wrap it for LoRA: sets run.model, .tokenizer, .engine, .targets."""
    import warnings

    import torch

    # peft asks transformers a deprecated question on every wrap; the answer is fine, the noise is not.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    torch.manual_seed(run.config.seed)  # LoRA A matrices start random: seeded
    if run.method == "lora":
        _load_lora(run)
    else:
        load_qlora(run, hf_source(run.lab, run.info))
    # adapter_config.json names the float weights it was trained on (the HF folder, the paired
    # one, or the converted GGUF), so standard PEFT tools can load it too.
    if hasattr(run.model, "peft_config"):
        run.model.peft_config["default"].base_model_name_or_path = str(hf_source_path(run.lab, run.info))
