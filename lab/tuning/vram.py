"""Will this LoRA / QLoRA run fit on the GPU? Peak memory from config.json alone, no weights loaded.

`estimate()` adds up the components below; `plan()` compares the total with the GPU (free memory
from torch.cuda.mem_get_info) or a given `vram_gb`, and when it does not fit proposes the nearest
settings that do. Assumptions (bytes; h hidden, I intermediate, V vocab, L layers, T = batch*seq):

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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

GIB = 1 << 30
CUDA_CONTEXT_BYTES = GIB // 2
ALLOCATOR_SLACK = 0.05
NF4_BYTES_PER_PARAM = 0.5
QUANT_CONST_BYTES_PER_PARAM = {True: 1 / 64 + 4 / (64 * 256), False: 4 / 64}  # double quant or not
# Per position and vocab entry, PEFT's loss keeps the logits, an fp32 log-softmax and their
# gradients: 16 B when the logits come out in bf16 (plus an fp32 upcast), 12 B when already fp32.
PEFT_LOGIT_BYTES = {2: 16, 4: 12}
MIN_SEQ_LEN = 16  # TrainConfig.max_seq_len's lower bound
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


class VRAMError(ValueError):
    """A model config or setting the planner cannot use; the message names the file and field."""


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
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

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
        model_type=model_type, hidden=h, layers=need("num_hidden_layers"), intermediate=need("intermediate_size"),
        heads=heads, kv_heads=int(kv_heads), head_dim=int(head_dim), vocab=need("vocab_size"),
        tied=bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", gemma))),
        fused=model_type.startswith("phi3"), norm_params_per_layer=norms, bias_params_per_layer=bias)


def targeted(shape: ModelShape, target_modules: list[str] | str) -> dict[str, tuple[int, int]]:
    linears = shape.linears()
    if target_modules == "all-linear":
        return linears
    unknown = [m for m in target_modules if m not in linears]
    if unknown:
        raise VRAMError(f"target_modules {unknown} are not linear layers of this {shape.model_type or 'model'}; "
                        f"its layers have {', '.join(linears)} (or use 'all-linear')")
    return {name: linears[name] for name in target_modules}


def lora_params(shape: ModelShape, rank: int, target_modules: list[str] | str) -> int:
    return shape.layers * sum(rank * (a + b) for a, b in targeted(shape, target_modules).values())


# ---- the estimate --------------------------------------------------------------------------------

@dataclass
class Estimate:
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
        lines = [f"VRAM estimate: {shape.model_type or 'model'} {shape.total_params / 1e9:.2f} B params; "
                 f"{s.method} via {s.engine}, rank {s.rank} on {targets} "
                 f"({lora_params(shape, s.rank, s.target_modules) / 1e6:.1f} M LoRA params); "
                 f"batch {s.batch_size} x seq {s.seq_len}; gradient checkpointing "
                 f"{'on' if s.gradient_checkpointing else 'off'}"]
        for name, size in self.breakdown.items():
            if size:
                lines.append(f"  {name:<26} {_gib(size):>10}   {self.notes.get(name, '')}".rstrip())
        lines.append(f"  {'total':<26} {_gib(self.total_bytes):>10}")
        return "\n".join(lines)


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def estimate(model_config: dict, *, method: str = "qlora", engine: str = "peft", rank: int = 8,
             target_modules: list[str] | str = ("q_proj", "v_proj"), seq_len: int = 512, batch_size: int = 1,
             gradient_checkpointing: bool = True, dtype: str = "bf16", attention: str = "sdpa",
             lora_dropout: float = 0.0, double_quant: bool = True) -> Estimate:
    """Peak GPU memory of one training step, component by component (see the module docstring)."""
    settings = make_settings(
        method=method, engine=engine, rank=rank,
        target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
        seq_len=seq_len, batch_size=batch_size, gradient_checkpointing=gradient_checkpointing, dtype=dtype,
        attention=attention, lora_dropout=lora_dropout, double_quant=double_quant)
    return estimate_for(model_shape(model_config), settings)


def estimate_for(shape: ModelShape, s: Settings) -> Estimate:
    unsloth, qlora = s.engine == "unsloth", s.method == "qlora"
    parts: dict[str, int] = {}
    notes: dict[str, str] = {}
    n_linear, n_other = shape.linear_params, shape.other_params
    if qlora:
        parts["base weights"] = int(n_linear * NF4_BYTES_PER_PARAM)
        notes["base weights"] = f"{n_linear / 1e9:.2f} B decoder-linear params in NF4 (0.5 B/param)"
        parts["quant constants"] = int(n_linear * QUANT_CONST_BYTES_PER_PARAM[s.double_quant])
        notes["quant constants"] = "absmax per 64 weights, " + (
            "double-quantized: 0.127 bit/param" if s.double_quant else "fp32: 0.5 bit/param")
        other_bytes, other_dtype = (2, "bf16") if unsloth else (4, "fp32, upcast by prepare_model_for_kbit_training")
    else:
        parts["base weights"] = n_linear * _DTYPE_BYTES[s.dtype]
        notes["base weights"] = f"{n_linear / 1e9:.2f} B decoder-linear params in {s.dtype}"
        other_bytes, other_dtype = _DTYPE_BYTES[s.dtype], s.dtype
    parts["embeddings/lm_head/norms"] = n_other * other_bytes
    notes["embeddings/lm_head/norms"] = (f"{n_other / 1e6:.0f} M params, not quantized, {other_dtype}; "
                                         + ("lm_head tied to the embeddings" if shape.tied else "lm_head separate"))
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
    notes["CUDA context + allocator"] = (f"{_gib(CUDA_CONTEXT_BYTES)} context + {ALLOCATOR_SLACK:.0%} "
                                         "of the per-step memory for allocator slack")
    return Estimate(s, shape, parts, notes)


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
        elements, how = kept + layer + grads, (
            "Unsloth offloads layer inputs to CPU; one layer recomputed" if s.engine == "unsloth"
            else f"{L} layer inputs kept; one layer recomputed")
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
    return (tokens * shape.vocab * per_entry,
            f"{tokens} tokens x {shape.vocab} vocab x {per_entry} B (logits, log-softmax, grads)")


def _attention(shape: ModelShape, s: Settings) -> tuple[int, str]:
    layers = 1 if s.gradient_checkpointing else shape.layers
    if s.attention == "eager" and s.engine != "unsloth":
        width = _DTYPE_BYTES["fp32" if s.method == "qlora" else s.dtype]
        scores = s.batch_size * shape.heads * s.seq_len * s.seq_len
        return (scores * (4 + width) * layers + scores * 4,
                f"eager: {shape.heads} heads x seq^2 softmax + probs kept in {layers} layer(s)")
    return (s.batch_size * s.seq_len * shape.heads * 4 * layers,
            "SDPA/flash: linear in seq (a logsumexp per head)")


# ---- will it fit? --------------------------------------------------------------------------------

@dataclass
class Plan:
    estimate: Estimate
    available_bytes: int | None  # None: no GPU visible and no vram_gb given
    available_source: str  # where that figure came from
    fits: bool | None  # None when available_bytes is unknown
    suggestion: dict[str, Any] | None = None  # the settings changed to fit, new values
    suggested: Estimate | None = None  # the estimate with the suggestion applied
    message: str = ""

    def to_text(self) -> str:
        lines = [self.estimate.to_text(), f"available: {self.available_source}"]
        if self.fits is None:
            lines.append("fits: unknown (give vram_gb to check against a GPU)")
        elif self.fits:
            headroom = self.available_bytes - self.estimate.total_bytes
            lines.append(f"fits: yes, {_gib(headroom)} to spare")
        else:
            short = self.estimate.total_bytes - self.available_bytes
            lines.append(f"fits: NO, short by {_gib(short)}")
        if self.suggestion:
            old = self.estimate.settings.model_dump()
            changes = ", ".join(f"{k} {_show(old[k])} -> {_show(v)}" for k, v in self.suggestion.items())
            lines.append(f"nearest that fits: {changes} (estimate {_gib(self.suggested.total_bytes)})")
        if self.message:
            lines.append(self.message)
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(value) if isinstance(value, list) else str(value)


def detect_gpu() -> tuple[int, str] | None:
    """(free bytes, description) of the current CUDA device, or None without one. Imports torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    name = torch.cuda.get_device_name()
    return free, f"{name}: {_gib(free)} free of {_gib(total)} (torch.cuda.mem_get_info)"


def _available(vram_gb: float | None) -> tuple[int | None, str]:
    if vram_gb is not None:
        if vram_gb <= 0:
            raise VRAMError(f"vram_gb must be positive (got {vram_gb})")
        return int(vram_gb * GIB), f"{vram_gb:g} GiB (given as vram_gb)"
    gpu = detect_gpu()
    if gpu is None:
        return None, "no CUDA GPU visible and no vram_gb given"
    return gpu


def plan(model_config: dict, *, vram_gb: float | None = None, **settings: Any) -> Plan:
    """Estimate, compare with the GPU (or `vram_gb`, in GiB as GPU makers' "GB" are), and when it does
    not fit propose the nearest settings that do. `settings` are `estimate()`'s keywords."""
    s = make_settings(**settings)
    shape = model_shape(model_config)
    est = estimate_for(shape, s)
    available, source = _available(vram_gb)
    if available is None:
        return Plan(est, None, source, None)
    if est.total_bytes <= available:
        return Plan(est, available, source, True)
    changed = _nearest_fit(shape, s, available)
    if changed is None:
        return Plan(est, available, source, False, message=(
            "nothing nearby fits (tried gradient checkpointing, batch 1, fewer target modules, "
            f"sequences down to {MIN_SEQ_LEN}, 4-bit): use a smaller model or a bigger GPU"))
    new = s.model_copy(update=changed)
    note = ("raise grad_accum to keep the effective batch size" if "batch_size" in changed else "")
    return Plan(est, available, source, False, changed, estimate_for(shape, new), note)


def _fewer_targets(shape: ModelShape, s: Settings) -> list[list[str]]:
    """Smaller target sets to try: attention projections, then the two LoRA paper ones."""
    options = ([["qkv_proj", "o_proj"], ["qkv_proj"]] if shape.fused
               else [["q_proj", "k_proj", "v_proj", "o_proj"], ["q_proj", "v_proj"]])
    current = lora_params(shape, s.rank, s.target_modules)
    return [o for o in options if lora_params(shape, s.rank, o) < current]


def _nearest_fit(shape: ModelShape, s: Settings, available: int) -> dict[str, Any] | None:
    """Changes in order of what they cost the run: checkpointing (speed only), smaller batches
    (same effective batch with grad_accum), fewer target modules, shorter sequences (cuts the
    data), and last 4-bit weights for a 16-bit LoRA."""
    def fits(x: Settings) -> bool:
        return estimate_for(shape, x).total_bytes <= available

    def changes(x: Settings) -> dict[str, Any]:
        old, new = s.model_dump(), x.model_dump()
        return {k: v for k, v in new.items() if v != old[k]}

    methods = [s.method] + (["qlora"] if s.method == "lora" else [])
    for method in methods:
        x = s.model_copy(update={"method": method})
        if fits(x):
            return changes(x)
        if not x.gradient_checkpointing:
            x = x.model_copy(update={"gradient_checkpointing": True})
            if fits(x):
                return changes(x)
        while x.batch_size > 1:
            x = x.model_copy(update={"batch_size": x.batch_size // 2})
            if fits(x):
                return changes(x)
        candidates = [x] + [x.model_copy(update={"target_modules": t}) for t in _fewer_targets(shape, x)]
        for c in candidates[1:]:
            if fits(c):
                return changes(c)
        for c in candidates:  # the full targets with shorter sequences first
            longest = _max_seq(shape, c, available)
            if longest >= MIN_SEQ_LEN:
                rounded = longest - longest % 64 if longest >= 128 else longest
                return changes(c.model_copy(update={"seq_len": min(rounded, c.seq_len)}))
    return None


def _max_seq(shape: ModelShape, s: Settings, available: int, limit: int = 1 << 24) -> int:
    """The longest seq_len whose estimate fits (memory grows with seq_len), or 0."""
    def fits(n: int) -> bool:
        return estimate_for(shape, s.model_copy(update={"seq_len": n})).total_bytes <= available

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    if hi > limit:
        return limit
    while hi - lo > 1:  # fits(lo) and not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def max_seq_len_that_fits(model_config: dict, *, vram_gb: float | None = None, **settings: Any) -> int:
    """The longest sequence (tokens per example) that fits in `vram_gb` GiB (or the detected GPU's
    free memory) with the other settings as given; 0 when not even one token fits."""
    available, source = _available(vram_gb)
    if available is None:
        raise VRAMError(f"max_seq_len_that_fits: {source}")
    return _max_seq(model_shape(model_config), make_settings(**settings), available)


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


def plan_for_config(config, model_path: str | Path, *, vram_gb: float | None = None) -> Plan:
    """The plan for a TrainConfig on the model at `model_path` (an HF folder, config.json or GGUF):
    method `auto` means qlora when a GPU is planned for (one is visible, or `vram_gb` is given),
    the engine is Unsloth when it is installed, as `lab train` would choose."""
    import importlib.util

    gpu = vram_gb is not None or detect_gpu() is not None
    method = config.method if config.method != "auto" else ("qlora" if gpu else "lora")
    unsloth = importlib.util.find_spec("unsloth") is not None
    engine = "unsloth" if method == "qlora" and config.qlora_engine != "bitsandbytes" and unsloth else "peft"
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else method == "qlora"
    return plan(read_model_config(model_path), vram_gb=vram_gb, method=method, engine=engine, rank=config.rank,
                target_modules=config.target_modules, seq_len=config.max_seq_len, batch_size=config.batch_size,
                gradient_checkpointing=checkpointing, dtype="bf16" if gpu else "fp32",
                lora_dropout=config.dropout)
