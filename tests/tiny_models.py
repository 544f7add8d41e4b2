"""Tiny random-weight models for the GGUF LoRA export tests: a transformers model of each
architecture, its weights written to an f32 GGUF the way llama.cpp's converter writes them, and
random LoRA adapters in PEFT's on-disk format. Test-only code: the base GGUF is checked against
llama.cpp by the tests themselves (base logits must match), so a mistake here fails loudly."""

from __future__ import annotations

import json
from pathlib import Path

from lab.tuning.synthetic import finish_gguf, write_arch_metadata, write_tensors

HIDDEN, FFN, LAYERS = 64, 128, 2
# The first tokens of SmolLM2's BPE vocabulary (and the merges among them): a real tokenizer that
# llama.cpp and transformers both load, small enough that reading it from a GGUF takes no time.
VOCAB = 2048
ARCHS = ("llama", "mistral", "qwen2", "qwen3", "gemma3", "phi3")
# PEFT target modules per architecture: every linear layer of the blocks.
TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
}
TARGETS["mistral"] = TARGETS["qwen2"] = TARGETS["qwen3"] = TARGETS["gemma3"] = TARGETS["llama"]


def hf_config(arch: str, vocab_size: int):
    """A small config; heads chosen so GQA and (for mistral) head_dim != hidden/heads are covered."""
    import transformers as tf

    common = dict(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    )
    if arch == "llama":
        return tf.LlamaConfig(num_attention_heads=4, num_key_value_heads=2, **common)
    if arch == "mistral":
        return tf.MistralConfig(num_attention_heads=4, num_key_value_heads=1, head_dim=32, **common)
    if arch == "qwen2":
        return tf.Qwen2Config(num_attention_heads=4, num_key_value_heads=2, **common)
    if arch == "qwen3":
        # transformers does not read a qwen3 GGUF's key_length and assumes head_dim 128 (as in
        # every released Qwen3): the tiny model has to match.
        return tf.Qwen3Config(num_attention_heads=4, num_key_value_heads=2, head_dim=128, **common)
    if arch == "gemma3":
        # transformers cannot read query_pre_attn_scalar from a GGUF and defaults it to 256;
        # llama.cpp scales by 1/sqrt(head_dim): head_dim 256 keeps both honest.
        return tf.Gemma3TextConfig(
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=256,
            query_pre_attn_scalar=256,
            sliding_window=512,
            **common,
        )
    if arch == "phi3":
        return tf.Phi3Config(
            num_attention_heads=4,
            num_key_value_heads=2,
            original_max_position_embeddings=512,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            **common,
        )
    raise ValueError(arch)


def random_hf_model(arch: str, vocab_size: int, seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config(arch, vocab_size), dtype=torch.float32)
    with torch.no_grad():  # larger than the init's std 0.02, so logits have clear winners
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.1 if "embed" in name else 0.08)
            elif "bias" in name:
                p.normal_(0, 0.05)
            else:  # norms: not all-ones (or all-zero for gemma3), so a norm offset would show
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _copy_tokenizer(writer, tokenizer_gguf: Path, n_vocab: int) -> None:
    """tokenizer.* metadata of `tokenizer_gguf`, cut to its first `n_vocab` tokens."""
    import gguf

    reader = gguf.GGUFReader(tokenizer_gguf)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()[:n_vocab]
    kept = set(tokens)
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        value = field.contents()
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"):
            value = value[:n_vocab]
        elif key == "tokenizer.ggml.merges":
            value = [
                m for m in value if m.split(" ")[0] in kept and m.split(" ")[1] in kept and m.replace(" ", "") in kept
            ]
        elif key.endswith("_token_id"):
            assert value < n_vocab, (key, value)
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub)


def write_gguf(model, arch: str, path: Path, tokenizer_gguf: Path) -> Path:
    """The model's weights as an f32 GGUF (what convert_hf_to_gguf.py writes, minus quantisation)
    with the tokenizer metadata of `tokenizer_gguf`. Mistral is written as `llama`, as llama.cpp does."""
    import gguf

    gguf_arch = "llama" if arch == "mistral" else arch
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), gguf_arch)
    # general.name matters to both readers. transformers 5.x switches a `llama` GGUF to
    # MistralForCausalLM only if the name is exactly "mistral" (it tests `"mistral" in [name]`),
    # and then fails (gguf-py has no "mistral" architecture); any real Mistral name loads as
    # LlamaForCausalLM, the same computation, which is what the lab trains on. llama.cpp's
    # vocabulary loader wants Phi-3's own special tokens when the name contains "phi3".
    writer.add_name(f"Tiny {arch.capitalize()} (lab test)" if arch != "phi3" else "Tiny P3 (lab test)")
    write_arch_metadata(writer, gguf_arch, cfg)
    _copy_tokenizer(writer, tokenizer_gguf, cfg.vocab_size)
    write_tensors(writer, model, gguf_arch, "f32")
    finish_gguf(writer)
    return path


def random_lora(
    model, out_dir: Path, targets: list[str], rank: int = 4, alpha: float = 8.0, b_std: float = 0.05, seed: int = 1
) -> Path:
    """A PEFT LoRA adapter folder for `model` with random non-zero A and B (PEFT itself starts B
    at zero, which would make every export look right)."""
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, task_type="CAUSAL_LM").save_pretrained(out_dir)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            n_out, n_in = module.weight.shape
            prefix = f"base_model.model.{name}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, n_in, generator=gen) / n_in**0.5
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(n_out, rank, generator=gen) * b_std
    assert tensors, f"no module named {targets} in {type(model).__name__}"
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    config = json.loads((out_dir / "adapter_config.json").read_text())
    assert config["r"] == rank and config["lora_alpha"] == alpha
    return out_dir
