"""QLoRA: the base weights in 4-bit NF4, LoRA on top, two ways.

- PEFT + bitsandbytes, on CUDA or on the CPU (bitsandbytes >= 0.47 has CPU 4-bit kernels).
  On a CPU with AVX512-BF16 a Linear4bit layer repacks its weights in place the first time it
  runs without gradients (our validation loss), for faster inference; the repacked layer then
  answers through a kernel with no backward, so LoRA layers before it would stop learning.
  `keep_trainable_layout` switches that repacking off on every 4-bit layer. (Its import-time
  warning about a hub kernel is filtered for every lab process in lab/__init__.py.)
- Unsloth (CUDA only, when installed): faster, its own fused kernels and loss. It must be
  imported before transformers and peft in the process, and runs offline with its statistics
  and hub look-ups off and its compile cache inside the lab home's `.lab/`. It trains from an
  HF folder (safetensors, or a -bnb-4bit one), never from a GGUF: a GGUF base gives it the
  paired HF folder or the dequantised cache (`loading.hf_source`, which refuses a GGUF too big
  to dequantise).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from .config import gradient_checkpointing, lora_config
from .run import TrainingError, TrainRun
from .targets import resolve_targets

CPU_MIN_BITSANDBYTES = (0, 47)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def cpu_qlora_problem() -> str | None:
    """Why QLoRA cannot run on this CPU (None: it can)."""
    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        return "bitsandbytes is not installed"
    if _version_tuple(version) < CPU_MIN_BITSANDBYTES:
        return f"bitsandbytes {version} is installed"
    return None


def compute_dtype(device: str):
    """The dtype 4-bit layers compute in: bf16 where the device has it, else fp16 (CUDA) or
    float32 (CPU)."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def _cpu_has_bf16() -> bool:
    try:
        from bitsandbytes.functional import has_avx512bf16

        return bool(has_avx512bf16())
    except Exception:  # an older bitsandbytes: ask torch's CPU capability instead
        import torch

        return "AVX512" in str(torch.backends.cpu.get_cpu_capability())


def keep_trainable_layout(model) -> int:
    """Switch off the in-place CPU repacking of every bitsandbytes 4-bit layer (undoing it where
    it already happened) -> the number of 4-bit layers."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_functional

    count = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            state = getattr(module.weight, "quant_state", None)
            if getattr(state, "packing_format_for_cpu", False):
                module.weight.data, module.weight.quant_state = bnb_functional._convert_weight_packed_for_cpu_inverse(
                    module.weight.data, state
                )
            count += 1
    return count


# ---- Unsloth ------------------------------------------------------------------------------------


def unsloth_wanted(method: str, engine: str, cuda: bool) -> bool:
    """Does this run train through Unsloth? (qlora on CUDA, engine auto/unsloth, unsloth installed.)"""
    if method != "qlora" or engine == "bitsandbytes":
        return False
    if engine == "unsloth" and not cuda:
        raise TrainingError(
            "--qlora-engine unsloth needs a CUDA GPU; on the CPU use --qlora-engine bitsandbytes (or auto)"
        )
    if not cuda:
        return False
    if importlib.util.find_spec("unsloth") is None:
        if engine == "unsloth":
            raise TrainingError(
                "unsloth is not installed: pip install 'ladder-lab[gpu]' (CUDA only), "
                "or use the PEFT + bitsandbytes path (--qlora-engine bitsandbytes)"
            )
        return False
    return True


def unsloth_env(lab) -> dict[str, str]:
    """The environment Unsloth runs offline in, its compile cache inside the lab home. Each variable
    is one the pinned unsloth / unsloth_zoo read (checked in the 2026.9.1 and 2026.10.9 wheels' source):
    - HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE: unsloth/models/_utils.py (`has_internet` answers False
      without a socket; `get_statistics` returns before its download), unsloth/models/loader_utils.py;
    - HF_DATASETS_OFFLINE: unsloth_zoo/__init__.py (one of the three offline flags it syncs);
    - UNSLOTH_DISABLE_STATISTICS: unsloth/models/_utils.py `get_statistics` (presence is enough);
    - UNSLOTH_COMPILE_LOCATION: unsloth_zoo/compiler.py, read once when it is imported, so it must
      be set before `import unsloth`.
    Unsloth's llama.cpp download (unsloth/save.py) runs only from its own GGUF export, which the
    lab never calls (it exports with lab.tuning.export_gguf), so no variable is needed for it."""
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "UNSLOTH_DISABLE_STATISTICS": "1",
        "UNSLOTH_COMPILE_LOCATION": str(lab.home.state / "unsloth_compiled_cache"),
    }


def import_unsloth_first(lab, say=None) -> None:
    """Set Unsloth's environment and import it, before transformers/peft are (it patches them on
    import). Call at the very start of a qlora run on CUDA."""
    os.environ.update(unsloth_env(lab))
    Path(os.environ["UNSLOTH_COMPILE_LOCATION"]).mkdir(parents=True, exist_ok=True)
    late = [m for m in ("transformers", "peft", "trl") if m in sys.modules and "unsloth" not in sys.modules]
    if late and say:
        say(
            f"note: {', '.join(late)} was imported before unsloth in this process; "
            "some of Unsloth's speed-ups may be missing"
        )
    import unsloth  # noqa: F401


def _load_unsloth(run: TrainRun, src: Path) -> None:
    from unsloth import FastLanguageModel

    cfg = run.config
    model, tok = FastLanguageModel.from_pretrained(
        model_name=str(src), max_seq_length=cfg.max_seq_len, dtype=None, load_in_4bit=True, local_files_only=True
    )
    run.targets = resolve_targets(cfg.target_modules, model)
    gc = gradient_checkpointing(cfg, run.method, run.device)
    run.model = FastLanguageModel.get_peft_model(
        model,
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=run.targets,
        bias="none",
        random_state=cfg.seed,
        use_gradient_checkpointing="unsloth" if gc else False,
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    run.tokenizer, run.engine = tok, "unsloth"


def _load_bitsandbytes(run: TrainRun, src: Path) -> None:
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    compute = compute_dtype(run.device)
    # Double quantisation saves ~0.4 bit a weight of GPU memory; on the CPU memory is not what
    # runs out, and dequantising the scales again on every pass costs time.
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_use_double_quant=run.device == "cuda",
    )
    model = AutoModelForCausalLM.from_pretrained(
        str(src),
        quantization_config=quant,
        dtype=compute,
        device_map={"": 0 if run.device == "cuda" else "cpu"},
        local_files_only=True,
    )
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]
    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if run.device == "cpu":
        keep_trainable_layout(model)
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing(run.config, run.method, run.device)
    )
    run.targets = resolve_targets(run.config.target_modules, model)
    run.model = get_peft_model(model, lora_config(run.config, run.targets))
    run.tokenizer, run.engine = tok, "peft+bitsandbytes"


def load_qlora(run: TrainRun, src: Path) -> None:
    """Load `src` (an HF folder) in 4-bit and wrap it for LoRA, through Unsloth when it is wanted."""
    if unsloth_wanted(run.method, run.config.qlora_engine, run.device == "cuda"):
        _load_unsloth(run, src)
    else:
        _load_bitsandbytes(run, src)
