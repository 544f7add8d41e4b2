"""A model's sizes, as the VRAM planner (`vram.py`) needs them: hidden size, layers, heads, vocabulary,
the decoder layer's linear modules, from an HF config.json or the equivalent fields of a GGUF header.
No weights are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class VRAMError(ValueError):
    """A model config or setting the planner cannot use; the message names the file and field."""


# ---- the model's shape ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    model_type: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    fused: bool  # phi3: one qkv_proj and one gate_up_proj
    norm_params_per_layer: int
    bias_params_per_layer: int

    def linears(self) -> dict[str, tuple[int, int]]:
        """The decoder layer's linear modules: name -> (in_features, out_features)."""
        h, i, q, kv = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        if self.fused:
            return {"qkv_proj": (h, q + 2 * kv), "o_proj": (q, h), "gate_up_proj": (h, 2 * i), "down_proj": (i, h)}
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    @property
    def linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.linears().values())

    @property
    def other_params(self) -> int:
        """Embeddings, lm_head (when not tied), norms and biases: never quantized."""
        emb = self.vocab * self.hidden * (1 if self.tied else 2)
        return emb + self.layers * (self.norm_params_per_layer + self.bias_params_per_layer) + self.hidden

    @property
    def total_params(self) -> int:
        return self.linear_params + self.other_params


def model_shape(config: dict, source: str = "config.json") -> ModelShape:
    """The sizes the planner needs, from an HF config (llama / qwen2 / mistral / gemma3 / phi3 style)."""
    cfg = config.get("text_config") or config  # multimodal Gemma 3 nests the language model

    def need(key: str) -> int:
        value = cfg.get(key)
        if not isinstance(value, int) or value <= 0:
            raise VRAMError(f"{source}: field '{key}' is missing or not a positive integer (got {value!r})")
        return value

    h, heads = need("hidden_size"), need("num_attention_heads")
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or h // heads
    model_type = str(cfg.get("model_type") or config.get("model_type") or "")
    gemma = model_type.startswith("gemma")
    norms = 2 * h
    if model_type.startswith("gemma3"):
        norms = 4 * h + 2 * head_dim  # pre/post norms around attention and MLP, plus q/k norms
    elif model_type.startswith("qwen3"):
        norms = 2 * h + 2 * head_dim
    bias = (heads + 2 * kv_heads) * head_dim if model_type.startswith("qwen2") else 0
    return ModelShape(
        model_type=model_type,
        hidden=h,
        layers=need("num_hidden_layers"),
        intermediate=need("intermediate_size"),
        heads=heads,
        kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        vocab=need("vocab_size"),
        tied=bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", gemma))),
        fused=model_type.startswith("phi3"),
        norm_params_per_layer=norms,
        bias_params_per_layer=bias,
    )


def targeted(shape: ModelShape, target_modules: list[str] | str) -> dict[str, tuple[int, int]]:
    linears = shape.linears()
    if target_modules == "all-linear":
        return linears
    unknown = [m for m in target_modules if m not in linears]
    if unknown:
        raise VRAMError(
            f"target_modules {unknown} are not linear layers of this {shape.model_type or 'model'}; "
            f"its layers have {', '.join(linears)} (or use 'all-linear')"
        )
    return {name: linears[name] for name in target_modules}


def lora_params(shape: ModelShape, rank: int, target_modules: list[str] | str) -> int:
    return shape.layers * sum(rank * (a + b) for a, b in targeted(shape, target_modules).values())


# ---- reading a model's config --------------------------------------------------------------------


def read_model_config(path: str | Path) -> dict:
    """The HF-style config of a model: config.json (a file, or in an HF folder), or the equivalent
    fields of a GGUF file's metadata (a folder with one .gguf counts as that file)."""
    path = Path(path)
    if path.is_dir():
        if (path / "config.json").exists():
            path = path / "config.json"
        else:
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise VRAMError(f"{path}: no config.json and not exactly one .gguf file to read the model's shape from")
            path = ggufs[0]
    if not path.exists():
        raise VRAMError(f"{path}: no such file")
    if path.suffix == ".gguf":
        return _gguf_config(path)
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VRAMError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise VRAMError(f"{path}: expected a JSON object")
    model_shape(config, str(path))  # says which field is missing, naming the file
    return config


def _gguf_config(path: Path) -> dict:
    from ..gguf_meta import GGUFError, hf_config

    try:
        config = hf_config(path)
    except GGUFError as e:
        raise VRAMError(str(e)) from e
    model_shape(config, str(path))
    return config
