"""PEFT LoRA adapter -> GGUF LoRA adapter, so llama.cpp serves the tune arm on the model it
already has loaded.

Follows llama.cpp's convert_lora_to_gguf.py: an `adapter`-type GGUF for the base model's
architecture with `adapter.type = "lora"`, `adapter.lora.alpha`, and for every adapted weight
`<gguf tensor name>.lora_a` (PEFT's lora_A, shape rank x in) and `.lora_b` (lora_B, out x rank),
written as they are: GGUF lists dims reversed, so llama.cpp sees a: [in, rank], b: [rank, out]
against the base weight's [in, out] and computes W x + (alpha / rank) * B (A x).

The adapter was trained on transformers' view of the GGUF (lab.backends.hf dequantises it), so
its output rows must go back the way transformers brought the base weights in. Per GGUF
architecture (`general.architecture`), from llama.cpp's converter and transformers' GGUF loader:

  llama   q/k rows permuted: llama.cpp's "normal" RoPE rotates adjacent pairs, so the converter
          (LlamaModel.permute) reorders HF's half-split q/k rows and transformers' loader
          (LlamaTensorProcessor) undoes it. Mistral has no GGUF architecture of its own: HF
          MistralForCausalLM converts to `llama` (transformers loads it back as Mistral when
          general.name says so) and gets the same permutation.
  qwen2, qwen3, gemma3, phi3
          NEOX RoPE (half-split, like HF): tensors are stored as HF has them. gemma3's norms are
          stored +1, which only matters to adapters on norms (refused here: not a LoRA weight).
          phi3 keeps its fused layers: HF qkv_proj -> attn_qkv and gate_up_proj -> ffn_up
          ([gate; up], which llama.cpp's SwiGLU splits the same way), so their LoRA maps 1:1.

Other architectures are refused rather than guessed: a wrong row order loads fine and serves a
silently different model.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# GGUF architecture -> whether its q/k rows are stored permuted relative to transformers.
PERMUTES_QK = {"llama": True, "qwen2": False, "qwen3": False, "gemma3": False, "phi3": False}


class ExportError(ValueError):
    pass


@dataclass
class BaseLayout:
    """What the export needs to know about the base GGUF."""

    path: Path
    arch: str
    n_head: int
    n_head_kv: int
    name_map: object  # gguf.TensorNameMap: HF tensor name -> GGUF tensor name
    shapes: dict  # GGUF tensor name -> (in, out), GGUF's dim order


def permute_qk(rows: np.ndarray, n_head: int) -> np.ndarray:
    """The row order llama.cpp's converter gives llama q_proj/k_proj weights (HF -> GGUF):
    within each head, rows [first half | second half] become interleaved pairs."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def gguf_rows(layout: BaseLayout, hf_name: str, b: np.ndarray) -> np.ndarray:
    """lora_B (out x rank) with its output rows in the order the GGUF base weight has them."""
    if PERMUTES_QK[layout.arch]:
        if hf_name.endswith("self_attn.q_proj.weight"):
            return permute_qk(b, layout.n_head)
        if hf_name.endswith("self_attn.k_proj.weight"):
            return permute_qk(b, layout.n_head_kv)
    return b


def _field(reader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def read_base_layout(base_gguf: str | Path) -> BaseLayout:
    import gguf

    base_gguf = Path(base_gguf)
    reader = gguf.GGUFReader(base_gguf)
    arch = _field(reader, "general.architecture")
    if arch not in PERMUTES_QK:
        raise ExportError(
            f"{base_gguf}: general.architecture is {arch!r}; exporting a LoRA adapter to GGUF is only "
            f"implemented for {', '.join(sorted(PERMUTES_QK))} (Mistral GGUFs are 'llama'). Serve this "
            "adapter with transformers instead (--backend hf)"
        )
    n_blocks = _field(reader, f"{arch}.block_count")
    n_head = _field(reader, f"{arch}.attention.head_count")
    n_head_kv = _field(reader, f"{arch}.attention.head_count_kv") or n_head
    if not isinstance(n_blocks, int) or not isinstance(n_head, int) or not isinstance(n_head_kv, int):
        raise ExportError(
            f"{base_gguf}: {arch}.block_count / attention.head_count(_kv) missing or per-layer "
            f"({n_blocks!r}, {n_head!r}, {n_head_kv!r}): cannot place LoRA rows"
        )
    arch_enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}[arch]
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}
    return BaseLayout(base_gguf, arch, n_head, n_head_kv, gguf.get_tensor_name_map(arch_enum, n_blocks), shapes)


def read_peft_adapter(adapter_dir: Path) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(llama.cpp alpha, {HF weight name: (A, B)}) from a PEFT LoRA folder, refusing what a GGUF
    LoRA cannot express."""
    import torch
    from safetensors.torch import load_file  # torch, not numpy: numpy has no bfloat16

    cfg_file = adapter_dir / "adapter_config.json"
    weights_file = adapter_dir / "adapter_model.safetensors"
    for f in (cfg_file, weights_file):
        if not f.exists():
            raise ExportError(f"{adapter_dir} is not a PEFT LoRA adapter: {f.name} is missing")
    cfg = json.loads(cfg_file.read_text())
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"{cfg_file}: peft_type {cfg.get('peft_type')} is not LORA")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise ExportError(f"{cfg_file}: per-module rank/alpha patterns cannot be expressed in one GGUF alpha")
    if cfg.get("use_dora"):
        raise ExportError(f"{cfg_file}: DoRA adapters are not supported by llama.cpp")
    rank, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    if cfg.get("use_rslora"):
        alpha = alpha * math.sqrt(rank)  # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r

    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, value in load_file(str(weights_file)).items():
        if key.endswith(".lora_A.weight"):
            part = "a"
        elif key.endswith(".lora_B.weight"):
            part = "b"
        else:
            raise ExportError(
                f"{weights_file}: tensor {key} is not a lora_A/lora_B weight "
                "(trained embeddings, norms or extra modules cannot go into a GGUF LoRA)"
            )
        hf_name = key.replace("base_model.model.", "", 1).replace(f".lora_{part.upper()}.weight", ".weight")
        parts.setdefault(hf_name, {})[part] = value.to(torch.float32).numpy()
    pairs = {}
    for hf_name, ab in sorted(parts.items()):
        if set(ab) != {"a", "b"}:
            raise ExportError(f"{weights_file}: {hf_name} has lora_{'A' if 'a' in ab else 'B'} but not its pair")
        pairs[hf_name] = (ab["a"], ab["b"])
    return alpha, pairs


def export_gguf(adapter_dir: str | Path, base_gguf: str | Path, out_path: str | Path | None = None) -> Path:
    """Write `adapter.gguf` (default: inside `adapter_dir`) for the base model `base_gguf`.
    Checks every tensor against the base model's shapes, so a file llama.cpp would reject is
    never written. Written to a temporary name, then renamed."""
    import gguf

    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    out_path = Path(out_path) if out_path else adapter_dir / "adapter.gguf"
    alpha, pairs = read_peft_adapter(adapter_dir)
    layout = read_base_layout(base_gguf)
    tensors = []
    for hf_name, (a, b) in pairs.items():
        gguf_name = layout.name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ExportError(f"{adapter_dir}: no GGUF tensor for {hf_name} in architecture {layout.arch}")
        want = layout.shapes.get(gguf_name)
        if want is None:
            tied = (
                " (its lm_head is tied to the embeddings: adapt the embeddings, not lm_head)"
                if gguf_name == "output.weight"
                else ""
            )
            raise ExportError(f"{base_gguf} has no tensor {gguf_name} (for {hf_name}){tied or ': wrong base model?'}")
        if (a.shape[1], b.shape[0]) != want or a.shape[0] != b.shape[1]:
            raise ExportError(
                f"{hf_name}: LoRA shapes A{a.shape} B{b.shape} do not fit {gguf_name} "
                f"{want} of {base_gguf.name}: the adapter was trained for another model"
            )
        tensors.append((f"{gguf_name}.lora_a", a))
        tensors.append((f"{gguf_name}.lora_b", gguf_rows(layout, hf_name, b)))

    tmp = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp), layout.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_name(f"{adapter_dir.name} (LoRA for {base_gguf.name})")
    for name, data in tensors:
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out_path)
    return out_path
