"""Which modules LoRA adapts: "all-linear" spelled in each architecture's own module names.

PEFT understands "all-linear" itself, but Unsloth needs the names, and the manifest should say
what was adapted. Known architectures come from a table keyed by the HF `model_type`; any other
model is asked: every nn.Linear leaf (bitsandbytes' Linear4bit is one) except the vocabulary
projection.
"""

from __future__ import annotations

_LLAMA_STYLE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

ALL_LINEAR: dict[str, list[str]] = {
    "llama": _LLAMA_STYLE,
    "mistral": _LLAMA_STYLE,
    "qwen2": _LLAMA_STYLE,
    "qwen3": _LLAMA_STYLE,
    "gemma": _LLAMA_STYLE,
    "gemma2": _LLAMA_STYLE,
    "gemma3": _LLAMA_STYLE,
    "gemma3_text": _LLAMA_STYLE,
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],  # fused q/k/v and gate/up
}


def linear_leaf_names(model) -> list[str]:
    """The distinct last names of the model's nn.Linear modules, the output (vocabulary)
    projection excluded: the names "all-linear" means for this model."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for full_name, module in model.named_modules():
        leaf = full_name.rsplit(".", 1)[-1]
        if isinstance(module, torch.nn.Linear) and module is not head and leaf != "lm_head":
            names.add(leaf)
    return sorted(names)


def resolve_targets(target_modules: list[str] | str, model) -> list[str]:
    """Module names for PEFT/Unsloth: the configured list, or "all-linear" for this architecture."""
    if target_modules != "all-linear":
        return list(target_modules)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in ALL_LINEAR:
        return list(ALL_LINEAR[model_type])
    return linear_leaf_names(model)
