""" "all-linear" per architecture: the table against tiny random-weight models of each model type, and
the discovery fallback for an architecture not in the table."""

from __future__ import annotations

import pytest

from lab.tuning.targets import ALL_LINEAR, linear_leaf_names, resolve_targets

SMALL = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=256,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)


def tiny_model(model_type: str):
    import transformers

    config_class, model_class = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
        "mistral": ("MistralConfig", "MistralForCausalLM"),
        "phi3": ("Phi3Config", "Phi3ForCausalLM"),
        "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM"),
        "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    }[model_type]
    if model_type == "gpt2":
        config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=256)
    else:
        extra = {"head_dim": 16} if model_type == "gemma3_text" else {}
        config = getattr(transformers, config_class)(**SMALL, **extra)
    return getattr(transformers, model_class)(config)


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "mistral", "phi3", "gemma3_text"])
def test_table_names_every_linear_layer_of_the_architecture(model_type):
    model = tiny_model(model_type)
    assert model.config.model_type == model_type
    assert sorted(ALL_LINEAR[model_type]) == linear_leaf_names(model)  # all of them, and only them
    assert resolve_targets("all-linear", model) == ALL_LINEAR[model_type]
    assert "lm_head" not in resolve_targets("all-linear", model)


def test_phi3_has_fused_projections():
    assert resolve_targets("all-linear", tiny_model("phi3")) == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]


def test_unknown_architecture_is_asked_for_its_linear_layers():
    from peft import LoraConfig, get_peft_model

    model = tiny_model("gpt2")  # GPT-2 uses Conv1D, not nn.Linear, for its blocks: only the head is Linear
    assert model.config.model_type not in ALL_LINEAR
    assert resolve_targets("all-linear", model) == []
    model = tiny_model("llama")
    model.config.model_type = "my-llama-fork"
    targets = resolve_targets("all-linear", model)
    assert targets == sorted(ALL_LINEAR["llama"])
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=targets, task_type="CAUSAL_LM"))
    assert not any("lm_head" in n for n, p in wrapped.named_parameters() if p.requires_grad)


def test_a_list_of_modules_is_kept_as_given():
    assert resolve_targets(["q_proj", "v_proj"], tiny_model("phi3")) == ["q_proj", "v_proj"]
