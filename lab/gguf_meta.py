"""Read a GGUF file's header metadata (not its tensors) quickly, with errors that name the file.

`gguf.GGUFReader` maps every tensor and takes seconds; listing models only needs the
key/value header, which this reads in a fraction of that, skipping the big token arrays.
"""

from __future__ import annotations

import struct
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    pass


class _Corrupt(GGUFError):
    """A value in the header cannot be right; the caller adds the file's name."""


def read_metadata(path: str | Path, keep_arrays: bool = False) -> dict:
    """Return the header key/values. Long arrays (vocabularies) are replaced by their length
    unless keep_arrays is set."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
        if head != b"GGUF":
            raise GGUFError(
                f"{path} is not a GGUF file (starts with {head!r}, expected b'GGUF'): "
                "re-download or re-convert it, or point the lab at another model."
            )
        try:
            version, _n_tensors, n_kv = struct.unpack("<IQQ", f.read(20))
            if version < 2:
                raise GGUFError(f"{path}: GGUF version {version} is too old (need 2 or later)")
            meta: dict = {"GGUF.version": version}
            for _ in range(n_kv):
                key = _read_str(f)
                (vtype,) = struct.unpack("<I", f.read(4))
                meta[key] = _read_value(f, vtype, keep_arrays)
        except (struct.error, UnicodeDecodeError, MemoryError, _Corrupt) as e:
            raise GGUFError(f"{path}: truncated or corrupt GGUF header ({e})") from e
    return meta


def _read_str(f) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    if n > 1 << 28:
        raise _Corrupt(f"implausible string length {n}")
    data = f.read(n)
    if len(data) != n:
        raise struct.error("unexpected end of file")
    return data.decode("utf-8")


def _read_value(f, vtype: int, keep_arrays: bool):
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if vtype == _STRING:
        return _read_str(f)
    if vtype == _ARRAY:
        item_type, count = struct.unpack("<IQ", f.read(12))
        if not keep_arrays and count > 64:
            if item_type in _SCALARS:
                f.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
            else:
                for _ in range(count):
                    _read_value(f, item_type, False)
            return f"<array of {count}>"
        return [_read_value(f, item_type, keep_arrays) for _ in range(count)]
    raise _Corrupt(f"unknown GGUF value type {vtype}")


# GGUF architecture names that differ from transformers' model_type.
HF_MODEL_TYPES = {"gemma3": "gemma3_text"}


def hf_config(path: str | Path) -> dict:
    """The transformers-style config fields of a GGUF model (model_type, hidden_size,
    num_hidden_layers, intermediate_size, heads, vocab_size, tie_word_embeddings, head_dim),
    from its header alone: what the VRAM planner and the HF/GGUF pair check compare."""
    path = Path(path)
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    if not arch:
        raise GGUFError(f"{path}: GGUF metadata has no 'general.architecture'")

    def field(key: str, required: bool = True):
        value = meta.get(f"{arch}.{key}")
        if value is None and required:
            raise GGUFError(f"{path}: GGUF metadata field '{arch}.{key}' is missing")
        return value

    vocab = field("vocab_size", required=False) or array_length(meta.get("tokenizer.ggml.tokens"))
    if not vocab:
        raise GGUFError(f"{path}: GGUF metadata has neither '{arch}.vocab_size' nor 'tokenizer.ggml.tokens'")
    config = {
        "model_type": HF_MODEL_TYPES.get(arch, arch),
        "hidden_size": field("embedding_length"),
        "num_hidden_layers": field("block_count"),
        "intermediate_size": field("feed_forward_length"),
        "num_attention_heads": field("attention.head_count"),
        "num_key_value_heads": field("attention.head_count_kv", required=False) or field("attention.head_count"),
        "vocab_size": vocab,
        # llama.cpp writes no output.weight when the lm_head is the embedding matrix
        "tie_word_embeddings": "output.weight" not in tensor_names(path),
    }
    head_dim = field("attention.key_length", required=False)
    if head_dim:
        config["head_dim"] = head_dim
    return config


def array_length(value) -> int | None:
    """read_metadata shortens long arrays to '<array of N>'."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, str) and value.startswith("<array of "):
        return int(value[len("<array of ") : -1])
    return None


def tensor_names(path: str | Path) -> set[str]:
    """Tensor names from the GGUF header (gguf.GGUFReader maps every tensor and takes seconds;
    this milliseconds): after the key/values come, per tensor, its name, dims, type and offset."""
    try:
        with open(path, "rb") as f:
            _magic, _version, n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
            for _ in range(n_kv):
                _read_str(f)
                _read_value(f, struct.unpack("<I", f.read(4))[0], False)
            names = set()
            for _ in range(n_tensors):
                names.add(_read_str(f))
                (n_dims,) = struct.unpack("<I", f.read(4))
                f.seek(8 * n_dims + 4 + 8, 1)  # dims, type, offset
            return names
    except (struct.error, UnicodeDecodeError, _Corrupt) as e:
        raise GGUFError(f"{path}: truncated or corrupt GGUF tensor list ({e})") from e
