"""Random-weight models that need no download: SmolLM2-135M-Instruct's real shape (or a smaller
one) with random weights and a file-free tokenizer, written as a model pair the lab recognises
(`models/<name>/hf/` + `models/<name>/<name>.gguf`). For the GPU check (`scripts/gpu_check.py`)
on a box with no weights and no internet, and for tests. Random weights measure speed and memory
exactly as real ones would; they say nothing about quality.

The tokenizer is byte-level BPE with no merges: the 256 byte symbols, the ChatML specials and
filler tokens up to the vocabulary size, the same ids written as an HF `tokenizer.json` and as
GGUF `tokenizer.ggml.*` metadata, so transformers and llama.cpp tokenize every string to its bytes
identically. The GGUF writer (`write_arch_metadata`, `write_tensors`) is llama.cpp's converter in
miniature: q/k rows permuted for `llama`, tied output left out, 1-D tensors in float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# SmolLM2-135M-Instruct's config.json (HuggingFaceTB). Checked against the embedded GGUF's header
# (`lab.gguf_meta.hf_config` and transformers' `AutoConfig.from_pretrained(folder, gguf_file=...)`
# agree on every size; tests/test_synthetic.py compares them).
SMOLLM2_CONFIG: dict = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.041666666666666664,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 0, 1, 2 as in SmolLM2
BOS_ID, EOS_ID = 1, 2
# The one merge (two spaces -> one token): llama.cpp's BPE loader needs a non-empty merges list
# (gguf-py writes no empty arrays), and it checks both engines split text the same way.
MERGE = "\u0120 \u0120"
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# GGUF token types (llama.cpp's llama_token_type)
NORMAL, CONTROL = 1, 3


# ---- the tokenizer -------------------------------------------------------------------------


def _byte_symbols() -> list[str]:
    """GPT-2's byte -> printable character map, in byte order (what byte-level BPE vocabularies hold)."""
    return [_gpt2_byte_char(b) for b in range(256)]


def _gpt2_byte_char(b: int) -> str:
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    if b in printable:
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if x not in printable))


def byte_vocab(vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens and GGUF token types: specials, the 256 bytes, the one merge's token (two spaces),
    then `<|filler_N|>` tokens (normal tokens no string tokenizes to, so a random model's output
    decodes to the same text in both engines)."""
    tokens = list(SPECIALS) + _byte_symbols() + ["".join(MERGE.split(" "))]
    if vocab_size < len(tokens):
        raise ValueError(f"vocab_size {vocab_size} < {len(tokens)} (specials + 256 bytes)")
    tokens += [f"<|filler_{i}|>" for i in range(len(tokens), vocab_size)]
    types = [CONTROL] * len(SPECIALS) + [NORMAL] * (vocab_size - len(SPECIALS))
    return tokens, types


def hf_tokenizer(vocab_size: int):
    """The byte vocabulary as a transformers PreTrainedTokenizerFast with a ChatML chat template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokens, _ = byte_vocab(vocab_size)
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(MERGE.split(" "))]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=SPECIALS[BOS_ID],
        eos_token=SPECIALS[EOS_ID],
        pad_token=SPECIALS[EOS_ID],
        unk_token=None,
        chat_template=CHATML_TEMPLATE,
        model_max_length=8192,
        clean_up_tokenization_spaces=False,
    )


def write_gguf_tokenizer(writer, vocab_size: int) -> None:
    """The same vocabulary as GGUF metadata (model "gpt2": byte-level BPE, GPT-2's split regex)."""
    tokens, types = byte_vocab(vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # llama.cpp: GPT-2's regex, as HF ByteLevel(use_regex=True)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([MERGE])
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_pad_token_id(EOS_ID)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHATML_TEMPLATE)


# ---- the GGUF writer -----------------------------------------------------------------------


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py LlamaModel.permute (HF q/k rows -> GGUF order)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_arch_metadata(writer, arch: str, cfg) -> None:
    """`<arch>.*` hyperparameters of a transformers config, as the converter writes them."""
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    rope = getattr(cfg, "rope_parameters", None) or {}
    rope = rope.get("full_attention", rope)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    if arch in ("llama", "phi3"):
        writer.add_rope_dimension_count(head_dim)
    if arch == "gemma3":
        writer.add_sliding_window(cfg.sliding_window)
    if arch == "phi3":
        writer.add_rope_scaling_orig_ctx_len(cfg.original_max_position_embeddings)


def write_tensors(writer, model, arch: str, float_type: str = "f32") -> None:
    """The model's weights as GGUF tensors: 2-D ones in `float_type` ("f32" or "f16"), 1-D in f32."""
    import gguf

    cfg = model.config
    arch_enum = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch]
    name_map = gguf.get_tensor_name_map(arch_enum, cfg.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and getattr(cfg, "tie_word_embeddings", False):
            continue  # tied: llama.cpp uses token_embd
        data = tensor.float().numpy().copy()
        if arch == "llama" and hf_name.endswith("q_proj.weight"):
            data = permute_qk(data, cfg.num_attention_heads)
        elif arch == "llama" and hf_name.endswith("k_proj.weight"):
            data = permute_qk(data, cfg.num_key_value_heads)
        if arch == "gemma3" and "norm" in hf_name:
            data = data + 1.0  # Gemma3RMSNorm scales by (1 + w); llama.cpp stores 1 + w
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gguf_name, f"no GGUF name for {hf_name}"
        dtype = np.float16 if float_type == "f16" and data.ndim == 2 else np.float32
        writer.add_tensor(gguf_name, np.ascontiguousarray(data, dtype=dtype))


def finish_gguf(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# ---- the random model and the pair ---------------------------------------------------------


def random_model(config: dict, seed: int = 0):
    """A LlamaForCausalLM (float32) from `config` with random weights, scaled so logits have clear
    winners (the init's std 0.02 gives near-uniform ones, where engines' top-1 picks are noise)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")})
    model = LlamaForCausalLM(cfg).to(torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.1 if "embed" in name else 0.08)
            else:  # norms: not all-ones, so a wrong norm would show
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def shaped_config(config: dict = SMOLLM2_CONFIG, layers: int | None = None) -> dict:
    """`config`, with `layers` blocks instead of its own when given (a smaller model for tests)."""
    out = dict(config)
    if layers:
        out["num_hidden_layers"] = layers
    return out


def make_random_pair(
    folder: str | Path,
    config: dict = SMOLLM2_CONFIG,
    seed: int = 0,
    dtype: str = "bfloat16",
    gguf_type: str = "f16",
    layers: int | None = None,
) -> Path:
    """Write a random-weight model pair: folder/hf/ (config.json, model.safetensors in `dtype`,
    tokenizer files) and folder/<folder name>.gguf (`gguf_type` "f16" or "f32"). Returns the
    folder; put it under the lab home's models/ and `lab models` lists it (GGUF + HF)."""
    import gguf
    import torch

    folder = Path(folder)
    config = shaped_config(config, layers)
    model = random_model(config, seed)
    hf_dir = folder / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.to(getattr(torch, dtype)).save_pretrained(hf_dir, safe_serialization=True)
    model.to(torch.float32)
    hf_tokenizer(config["vocab_size"]).save_pretrained(hf_dir)
    saved = json.loads((hf_dir / "config.json").read_text())
    saved["_name_or_path"] = f"random SmolLM2-shaped model (seed {seed}, {config['num_hidden_layers']} layers)"
    (hf_dir / "config.json").write_text(json.dumps(saved, indent=2))

    gguf_path = folder / f"{folder.name}.gguf"
    writer = gguf.GGUFWriter(str(gguf_path), "llama")
    writer.add_name(f"Random SmolLM2-shaped (seed {seed})")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if gguf_type == "f16" else gguf.LlamaFileType.ALL_F32)
    write_arch_metadata(writer, "llama", model.config)
    write_gguf_tokenizer(writer, config["vocab_size"])
    write_tensors(writer, model, "llama", gguf_type)
    finish_gguf(writer)
    return folder
