"""Peak GPU memory of one LoRA / QLoRA training step, from the model's shape alone (`model_shape.py`):
the arithmetic of the VRAM planner (`vram.py` compares it with the GPU and proposes what fits).

`estimate()` adds up the components below. Assumptions (bytes; h hidden, I intermediate, V vocab, L layers, T = batch*seq):

- Base weights. qlora: every decoder linear in NF4, 0.5 byte/param, plus its quant constants:
  with double quant (the lab's setting) an 8-bit absmax per 64 weights and an fp32 one per 256
  blocks = 0.127 bit/param (0.5 bit without double quant, QLoRA paper sec. 3). Embeddings, lm_head
  and norms are not quantized: bf16 under Unsloth, fp32 under PEFT + bitsandbytes, because
  `prepare_model_for_kbit_training` upcasts every non-4-bit parameter. lora: all weights in
  `dtype` (bf16 unless told).
- LoRA: r*(in+out) per targeted linear per layer, kept in fp32 (PEFT casts adapters to fp32;
  assumed the same for Unsloth): 4 B weight + 4 B gradient + 8 B AdamW moments = 16 B/param.
- Activations, per token. Without gradient checkpointing every layer keeps what its backward
  needs (norm inputs/outputs, q/k/v, attention output, the MLP's gate/up products, LoRA-A outputs,
  dropout copies). With it, HF keeps each layer's input (L*h) and recomputes one layer at a time;
  Unsloth's offloaded checkpointing moves the layer inputs to CPU RAM and keeps ~2 in flight.
  Plus one layer's gradient buffers (2I + 2h). PEFT + 4-bit runs its residual stream in fp32
  (upcast norms/embeddings; bitsandbytes returns the input dtype), so those count 4 B/element;
  Unsloth and 16-bit LoRA 2 B (4 B for dtype fp32).
- Logits: PEFT materialises them for every position: logits, log-softmax and their gradients,
  16 B * V per token (12 B when already fp32, as with 4-bit PEFT). The lab's loop keeps only the
  answer positions, so there this is an upper bound. Unsloth's fused / Cut Cross-Entropy never
  builds them: ~0.
- Attention: SDPA / flash keep O(T) (a logsumexp per head); eager keeps the softmax (fp32) and
  the probabilities for each layer: O(batch * heads * seq^2). Unsloth always uses a fused kernel.
- Workspace: for 4-bit, the dequantised bf16 copy of the largest weight (its transpose is a view).
- CUDA overhead: 0.5 GiB context + 5 % of the per-step memory (activations, logits, attention,
  workspace) for the caching allocator's slack; weights are allocated once, in exact blocks.
- Not counted: a multimodal model's vision tower (only `text_config` is read), CPU-side memory.
`vram_gb` is GiB, as GPU makers' "GB" are (an 80 GB A100 has 81,920 MiB). Calibrated against
Unsloth's published Llama-3.1-8B context lengths (within 10 % above 12 GB; see tests/test_vram.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .model_shape import ModelShape, VRAMError, lora_params, model_shape, targeted

GIB = 1 << 30
CUDA_CONTEXT_BYTES = GIB // 2
ALLOCATOR_SLACK = 0.05
NF4_BYTES_PER_PARAM = 0.5
QUANT_CONST_BYTES_PER_PARAM = {True: 1 / 64 + 4 / (64 * 256), False: 4 / 64}  # double quant or not
# Per position and vocab entry, PEFT's loss keeps the logits, an fp32 log-softmax and their
# gradients: 16 B when the logits come out in bf16 (plus an fp32 upcast), 12 B when already fp32.
PEFT_LOGIT_BYTES = {2: 16, 4: 12}
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


class Settings(BaseModel):
    """One training configuration, as the planner sees it."""

    method: Literal["lora", "qlora"] = "qlora"
    engine: Literal["unsloth", "peft"] = "peft"  # "bitsandbytes" / "peft+bitsandbytes" mean peft
    rank: int = Field(8, ge=1)
    target_modules: list[str] | Literal["all-linear"] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    seq_len: int = Field(512, ge=1)
    batch_size: int = Field(1, ge=1)
    gradient_checkpointing: bool = True
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"  # weights and activations for method lora
    attention: Literal["sdpa", "flash", "eager"] = "sdpa"
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    double_quant: bool = True

    model_config = ConfigDict(extra="forbid")


def make_settings(**values: Any) -> Settings:
    if values.get("engine") in ("bitsandbytes", "peft+bitsandbytes"):
        values["engine"] = "peft"
    if isinstance(values.get("target_modules"), str) and values["target_modules"] != "all-linear":
        values["target_modules"] = [m.strip() for m in values["target_modules"].split(",") if m.strip()]
    try:
        return Settings.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        raise VRAMError(f"VRAM planner setting '{'.'.join(map(str, err['loc']))}': {err['msg']}") from e


# ---- the estimate --------------------------------------------------------------------------------


@dataclass
class MemoryEstimate:
    settings: Settings
    shape: ModelShape
    breakdown: dict[str, int]  # component -> bytes, in the order shown
    notes: dict[str, str] = field(default_factory=dict)  # component -> how it was counted

    @property
    def total_bytes(self) -> int:
        return sum(self.breakdown.values())

    def to_text(self) -> str:
        s, shape = self.settings, self.shape
        targets = "all-linear" if s.target_modules == "all-linear" else ",".join(s.target_modules)
        lines = [
            f"VRAM estimate: {shape.model_type or 'model'} {shape.total_params / 1e9:.2f} B params; "
            f"{s.method} via {s.engine}, rank {s.rank} on {targets} "
            f"({lora_params(shape, s.rank, s.target_modules) / 1e6:.1f} M LoRA params); "
            f"batch {s.batch_size} x seq {s.seq_len}; gradient checkpointing "
            f"{'on' if s.gradient_checkpointing else 'off'}"
        ]
        for name, size in self.breakdown.items():
            if size:
                lines.append(f"  {name:<26} {format_gib(size):>10}   {self.notes.get(name, '')}".rstrip())
        lines.append(f"  {'total':<26} {format_gib(self.total_bytes):>10}")
        return "\n".join(lines)


def format_gib(n: float) -> str:
    """Bytes as GiB, two decimals."""
    return f"{n / GIB:.2f} GiB"


def estimate(
    model_config: dict,
    *,
    method: str = "qlora",
    engine: str = "peft",
    rank: int = 8,
    target_modules: list[str] | str = ("q_proj", "v_proj"),
    seq_len: int = 512,
    batch_size: int = 1,
    gradient_checkpointing: bool = True,
    dtype: str = "bf16",
    attention: str = "sdpa",
    lora_dropout: float = 0.0,
    double_quant: bool = True,
) -> MemoryEstimate:
    """Peak GPU memory of one training step, component by component (see the module docstring)."""
    settings = make_settings(
        method=method,
        engine=engine,
        rank=rank,
        target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
        seq_len=seq_len,
        batch_size=batch_size,
        gradient_checkpointing=gradient_checkpointing,
        dtype=dtype,
        attention=attention,
        lora_dropout=lora_dropout,
        double_quant=double_quant,
    )
    return estimate_for(model_shape(model_config), settings)


def estimate_for(shape: ModelShape, s: Settings) -> MemoryEstimate:
    unsloth, qlora = s.engine == "unsloth", s.method == "qlora"
    parts: dict[str, int] = {}
    notes: dict[str, str] = {}
    n_linear, n_other = shape.linear_params, shape.other_params
    if qlora:
        parts["base weights"] = int(n_linear * NF4_BYTES_PER_PARAM)
        notes["base weights"] = f"{n_linear / 1e9:.2f} B decoder-linear params in NF4 (0.5 B/param)"
        parts["quant constants"] = int(n_linear * QUANT_CONST_BYTES_PER_PARAM[s.double_quant])
        notes["quant constants"] = "absmax per 64 weights, " + (
            "double-quantized: 0.127 bit/param" if s.double_quant else "fp32: 0.5 bit/param"
        )
        other_bytes, other_dtype = (2, "bf16") if unsloth else (4, "fp32, upcast by prepare_model_for_kbit_training")
    else:
        parts["base weights"] = n_linear * _DTYPE_BYTES[s.dtype]
        notes["base weights"] = f"{n_linear / 1e9:.2f} B decoder-linear params in {s.dtype}"
        other_bytes, other_dtype = _DTYPE_BYTES[s.dtype], s.dtype
    parts["embeddings/lm_head/norms"] = n_other * other_bytes
    notes["embeddings/lm_head/norms"] = f"{n_other / 1e6:.0f} M params, not quantized, {other_dtype}; " + (
        "lm_head tied to the embeddings" if shape.tied else "lm_head separate"
    )
    n_lora = lora_params(shape, s.rank, s.target_modules)
    parts["LoRA weights"], parts["LoRA gradients"], parts["AdamW states"] = n_lora * 4, n_lora * 4, n_lora * 8
    notes["LoRA weights"] = f"{n_lora / 1e6:.1f} M params = r*(in+out) per targeted linear per layer, fp32"
    notes["LoRA gradients"], notes["AdamW states"] = "fp32", "exp_avg + exp_avg_sq, fp32"
    parts["activations"], notes["activations"] = _activations(shape, s)
    parts["logits"], notes["logits"] = _logits(shape, s)
    parts["attention"], notes["attention"] = _attention(shape, s)
    if qlora:
        biggest = max(a * b for a, b in shape.linears().values())
        parts["dequant workspace"] = biggest * 2
        notes["dequant workspace"] = "bf16 copy of the largest 4-bit weight, made for each matmul"
    transient = sum(parts[k] for k in ("activations", "logits", "attention", "dequant workspace") if k in parts)
    parts["CUDA context + allocator"] = CUDA_CONTEXT_BYTES + int(ALLOCATOR_SLACK * transient)
    notes["CUDA context + allocator"] = (
        f"{format_gib(CUDA_CONTEXT_BYTES)} context + {ALLOCATOR_SLACK:.0%} of the per-step memory for allocator slack"
    )
    return MemoryEstimate(s, shape, parts, notes)


def _activation_width(s: Settings) -> int:
    """Bytes per activation element: PEFT + 4-bit runs an fp32 residual stream (see the docstring)."""
    if s.method == "lora":
        return _DTYPE_BYTES[s.dtype]
    return 2 if s.engine == "unsloth" else 4


def _activations(shape: ModelShape, s: Settings) -> tuple[int, str]:
    h, i, L = shape.hidden, shape.intermediate, shape.layers
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    width = _activation_width(s)
    if s.engine == "unsloth":
        # fused RMSNorm keeps its input and output; RoPE in place; fused SwiGLU keeps gate and up only
        layer = 4 * h + 2 * q + 2 * kv + 2 * i
    else:
        # HF RMSNorm keeps an fp32 copy of its input and the normed output; q,k,v, the attention
        # output and its contiguous copy; gate, silu(gate), up and their product
        norms = 6 * h if width == 2 else 4 * h
        layer = norms + 3 * q + 2 * kv + 4 * i
    for n_in, _ in targeted(shape, s.target_modules).values():
        layer += s.rank + (n_in * (1 + 1 / width) if s.lora_dropout > 0 else 0)  # LoRA-A out; dropout copy+mask
    grads = 2 * i + 2 * h  # one layer's gradient buffers in backward
    if s.gradient_checkpointing:
        kept = 2 * h if s.engine == "unsloth" else (L + 1) * h
        elements, how = (
            kept + layer + grads,
            (
                "Unsloth offloads layer inputs to CPU; one layer recomputed"
                if s.engine == "unsloth"
                else f"{L} layer inputs kept; one layer recomputed"
            ),
        )
    else:
        elements, how = L * layer + h + grads, f"all {L} layers' saved tensors"
    per_token = elements * width
    tokens = s.batch_size * s.seq_len
    return int(tokens * per_token), f"{per_token / 1024:.0f} KiB/token x {tokens} tokens ({how})"


def _logits(shape: ModelShape, s: Settings) -> tuple[int, str]:
    tokens = s.batch_size * s.seq_len
    if s.engine == "unsloth":
        return tokens * shape.hidden * 2 * 2, "fused cross-entropy: no logits, only the last hidden state + grad"
    per_entry = PEFT_LOGIT_BYTES[_activation_width(s)]
    return (
        tokens * shape.vocab * per_entry,
        f"{tokens} tokens x {shape.vocab} vocab x {per_entry} B (logits, log-softmax, grads)",
    )


def _attention(shape: ModelShape, s: Settings) -> tuple[int, str]:
    layers = 1 if s.gradient_checkpointing else shape.layers
    if s.attention == "eager" and s.engine != "unsloth":
        width = _DTYPE_BYTES["fp32" if s.method == "qlora" else s.dtype]
        scores = s.batch_size * shape.heads * s.seq_len * s.seq_len
        return (
            scores * (4 + width) * layers + scores * 4,
            f"eager: {shape.heads} heads x seq^2 softmax + probs kept in {layers} layer(s)",
        )
    return (s.batch_size * s.seq_len * shape.heads * 4 * layers, "SDPA/flash: linear in seq (a logsumexp per head)")
