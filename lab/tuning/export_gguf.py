"""PEFT LoRA adapter -> GGUF LoRA adapter, so llama.cpp serves the tune arm on the model it
already has loaded.

Follows llama.cpp's convert_lora_to_gguf.py: an `adapter`-type GGUF for the base model's
architecture with `adapter.type = "lora"`, `adapter.lora.alpha`, and for every adapted weight
`<gguf tensor name>.lora_a` (PEFT's lora_A, shape rank x in) and `.lora_b` (lora_B, out x rank),
written as they are: GGUF lists dims reversed, so llama.cpp sees a: [in, rank], b: [rank, out]
against the base weight's [in, out] and computes W x + (alpha / rank) * B (A x).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

# Architectures whose GGUF q/k weights are stored with rows permuted for llama.cpp's rotary
# layout (convert_hf_to_gguf.py's LlamaModel.permute); lora_B's rows must move the same way.
_ROPE_PERMUTED = {"llama"}


class ExportError(ValueError):
    pass


def _permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """The row order convert_hf_to_gguf.py gives llama q_proj/k_proj weights (HF -> GGUF)."""
    return (rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:])
            .swapaxes(1, 2).reshape(rows.shape))


def _field(reader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def export_gguf(adapter_dir: str | Path, base_gguf: str | Path, out_path: str | Path | None = None) -> Path:
    """Write `adapter.gguf` (default: inside `adapter_dir`) for the base model `base_gguf`.
    Checks every tensor against the base model's shapes, so a file llama.cpp would reject is
    never written. Written to a temporary name, then renamed."""
    import gguf
    import torch
    from safetensors.torch import load_file  # torch, not numpy: numpy has no bfloat16

    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    out_path = Path(out_path) if out_path else adapter_dir / "adapter.gguf"
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

    reader = gguf.GGUFReader(base_gguf)
    arch = _field(reader, "general.architecture")
    n_blocks = _field(reader, f"{arch}.block_count")
    n_head = _field(reader, f"{arch}.attention.head_count")
    n_head_kv = _field(reader, f"{arch}.attention.head_count_kv") or n_head
    arch_enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}.get(arch)
    if arch_enum is None or n_blocks is None:
        raise ExportError(f"{base_gguf}: architecture {arch!r} is not known to the gguf package")
    name_map = gguf.get_tensor_name_map(arch_enum, n_blocks)
    base_shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}  # GGUF order: (in, out)
    del reader

    tensors = load_file(str(weights_file))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        if ".lora_A." in key:
            part = "a"
        elif ".lora_B." in key:
            part = "b"
        else:
            raise ExportError(f"{weights_file}: tensor {key} is not a lora_A/lora_B weight "
                              "(trained embeddings or extra modules cannot go into a GGUF LoRA)")
        hf_name = key.replace("base_model.model.", "", 1)
        hf_name = hf_name.replace(".lora_A.weight", ".weight").replace(".lora_B.weight", ".weight")
        pairs.setdefault(hf_name, {})[part] = value.to(torch.float32).numpy()

    tmp = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_name(f"{adapter_dir.name} (LoRA for {base_gguf.name})")
    for hf_name, ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise ExportError(f"{weights_file}: {hf_name} has lora_{'A' if 'a' in ab else 'B'} but not its pair")
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ExportError(f"no GGUF tensor for {hf_name} in architecture {arch}")
        a, b = ab["a"], ab["b"]  # (rank, in), (out, rank)
        if arch in _ROPE_PERMUTED and hf_name.endswith("q_proj.weight"):
            b = _permute(b, n_head)
        elif arch in _ROPE_PERMUTED and hf_name.endswith("k_proj.weight"):
            b = _permute(b, n_head_kv)
        want = base_shapes.get(gguf_name)
        if want is None:
            raise ExportError(f"{base_gguf} has no tensor {gguf_name} (for {hf_name}): wrong base model?")
        if (a.shape[1], b.shape[0]) != want or a.shape[0] != b.shape[1]:
            raise ExportError(f"{hf_name}: LoRA shapes A{a.shape} B{b.shape} do not fit {gguf_name} "
                              f"{want} of {base_gguf.name}: the adapter was trained for another model")
        writer.add_tensor(f"{gguf_name}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{gguf_name}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out_path)
    return out_path
