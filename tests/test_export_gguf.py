"""The PEFT -> GGUF LoRA export, per architecture: llama.cpp + adapter.gguf must compute what
transformers + PEFT computes.

Tiny random-weight models (tests/tiny_models.py) of every architecture the export supports are
written to f32 GGUFs, loaded by transformers (as the lab trains on them) and by llama.cpp; a
random LoRA with non-zero B on every linear layer is exported and the logits compared position
by position. In float32 the engines agree to ~1e-3 (llama.cpp keeps the KV cache in f16), so
the adapter's effect must match closely; each test also exports the adapter the wrong way (the
row order of another architecture) and checks that the comparison catches it. The integration
tests do the same on the real SmolLM2 (llama) and Gemma 3 (gemma3) GGUFs, Q4 quantised, where
llama.cpp's 8-bit activations leave a noise floor of a few percent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file
from tiny_models import ARCHS, TARGETS, VOCAB, random_hf_model, random_lora, write_gguf

from lab.backends.hf import HFBackend
from lab.backends.llamacpp import LlamaCppBackend
from lab.engine import Lab
from lab.home import LabHome
from lab.models import describe_path, resolve
from lab.tuning import export_gguf as export
from lab.tuning.adapters import AdapterInfo
from lab.tuning.export_gguf import ExportError, export_gguf, permute_qk
from lab.tuning.parity import _llama_logits, compare, engine_logits, logit_figures


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    return resolve(LabHome.resolve(tmp_path_factory.mktemp("home")), "smollm2-135m-instruct").path


# ---- wrong exports: what a converter that got the architecture wrong would write -----------------


def _skip_permutation(layout, hf_name, b):
    return b


def _permute_as_llama(layout, hf_name, b):
    if hf_name.endswith("q_proj.weight"):
        return permute_qk(b, layout.n_head)
    if hf_name.endswith("k_proj.weight"):
        return permute_qk(b, layout.n_head_kv)
    return b


def _up_before_gate(layout, hf_name, b):  # phi3: llama.cpp's fused ffn_up is [gate; up]
    if hf_name.endswith("gate_up_proj.weight"):
        return np.concatenate([b[len(b) // 2 :], b[: len(b) // 2]])
    return b


WRONG = {
    "llama": _skip_permutation,
    "mistral": _skip_permutation,
    "qwen2": _permute_as_llama,
    "qwen3": _permute_as_llama,
    "gemma3": _permute_as_llama,
    "phi3": _up_before_gate,
}


# ---- unit tests ------------------------------------------------------------------------------------


def test_permutation_is_undone_by_transformers_gguf_loader():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rows = np.arange(4 * 2 * 8 * 3, dtype=np.float32).reshape(4 * 2 * 8, 3)  # 4 heads of dim 16
    undo = LlamaTensorProcessor()._reverse_permute_weights
    assert not np.array_equal(permute_qk(rows, 4), rows)
    assert np.array_equal(undo(permute_qk(rows, 4), 4, 4), rows)
    assert np.array_equal(undo(permute_qk(rows[:32], 2), 4, 2), rows[:32])  # GQA: k has 2 heads


def test_every_supported_architecture_is_tested():
    assert set(export.PERMUTES_QK) | {"mistral"} == set(ARCHS) == set(WRONG)


def _peft_folder(path, tensors, **config):
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4, **config}))
    save_file(tensors, str(path / "adapter_model.safetensors"))
    return path


def test_refuses_what_a_gguf_lora_cannot_hold(tmp_path, smollm2):
    q = "base_model.model.model.layers.0.self_attn.q_proj"
    a, b = np.ones((2, 576), np.float32), np.ones((576, 2), np.float32)
    extra = _peft_folder(
        tmp_path / "extra",
        {
            f"{q}.lora_A.weight": a,
            f"{q}.lora_B.weight": b,
            "base_model.model.model.norm.weight": np.ones(576, np.float32),
        },
    )
    with pytest.raises(ExportError, match="model.norm.weight is not a lora_A/lora_B weight"):
        export_gguf(extra, smollm2)
    half = _peft_folder(tmp_path / "half", {f"{q}.lora_A.weight": a})
    with pytest.raises(ExportError, match="q_proj.weight has lora_A but not its pair"):
        export_gguf(half, smollm2)
    head = _peft_folder(
        tmp_path / "head",
        {
            "base_model.model.lm_head.lora_A.weight": a,
            "base_model.model.lm_head.lora_B.weight": np.ones((49152, 2), np.float32),
        },
    )
    with pytest.raises(ExportError, match="no tensor output.weight .*tied to the embeddings"):
        export_gguf(head, smollm2)
    dora = _peft_folder(tmp_path / "dora", {f"{q}.lora_A.weight": a, f"{q}.lora_B.weight": b}, use_dora=True)
    with pytest.raises(ExportError, match="DoRA"):
        export_gguf(dora, smollm2)
    assert not list(tmp_path.rglob("*.gguf*"))


def test_refuses_an_architecture_it_does_not_know(tmp_path):
    import gguf

    base = tmp_path / "other.gguf"
    writer = gguf.GGUFWriter(str(base), "starcoder2")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    q = "base_model.model.model.layers.0.self_attn.q_proj"
    adapter = _peft_folder(
        tmp_path / "a",
        {f"{q}.lora_A.weight": np.ones((2, 8), np.float32), f"{q}.lora_B.weight": np.ones((8, 2), np.float32)},
    )
    with pytest.raises(ExportError, match=r"other.gguf: general.architecture is 'starcoder2'.*gemma3.*llama"):
        export_gguf(adapter, base)


# ---- tiny models: float32, every architecture ----------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("arch", ARCHS)
def test_llamacpp_with_the_export_matches_transformers_peft(arch, tmp_path, smollm2, monkeypatch):
    base = write_gguf(random_hf_model(arch, VOCAB), arch, tmp_path / f"tiny-{arch}.gguf", smollm2)
    info = describe_path(base)
    hf, ll = HFBackend(info, device="cpu"), LlamaCppBackend(info, n_ctx=64)
    peft_dir = random_lora(hf.model, tmp_path / "lora", TARGETS[arch])
    adapter = export_gguf(peft_dir, base)
    ids = np.random.default_rng(0).integers(20, VOCAB, 24).tolist()
    logits = engine_logits(hf, ll, ids, 1, str(peft_dir), str(adapter))
    f = logit_figures(**logits)
    print(arch, json.dumps(f))
    assert f["max_abs_base"] < 0.02 and f["top1_agree_base"] >= 0.95  # the GGUF itself is right
    assert f["adapter_effect_norm"] > 0.2 and f["top1_same_as_base_hf"] < 0.9  # the adapter matters
    assert f["max_abs_tuned"] < 0.02 and f["top1_agree_tuned"] >= 0.95
    assert f["adapter_effect_rel_err"] < 0.01  # measured 5e-4 .. 1.2e-3

    monkeypatch.setattr(export, "gguf_rows", WRONG[arch])
    wrong = export_gguf(peft_dir, base, tmp_path / "wrong.gguf")
    logits["llama_tuned"] = _llama_logits(ll, ids, 1, str(wrong))
    assert logit_figures(**logits)["adapter_effect_rel_err"] > 0.2


# ---- the real embedded models (Q4 GGUFs, dequantised for transformers) -------------------------------


def _parity_on_real_model(home, model_id: str, b_std: float, wrong_rows) -> tuple[dict, dict]:
    """compare() (what `lab adapters check` runs) on a random attention LoRA, exported right and wrong."""
    lab = Lab(home=home)
    hf = lab.backend(model_id, "hf")
    base = lab.model_info(model_id).path
    peft_dir = random_lora(
        hf.model,
        home / f"random-lora-{model_id}",
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        rank=8,
        alpha=16,
        b_std=b_std,
    )
    prompts = [
        [{"role": "user", "content": "Can you help with the printer? It is not printing."}],
        [{"role": "user", "content": "Write one sentence about the sea."}],
    ]
    right = AdapterInfo("random", peft_dir, model_id, "", "", gguf_path=export_gguf(peft_dir, base))
    good = compare(lab, right, prompts, max_tokens=12)
    bad = None
    if wrong_rows is not None:
        original = export.gguf_rows
        export.gguf_rows = wrong_rows
        try:
            wrong_file = export_gguf(peft_dir, base, peft_dir / "wrong.gguf")
        finally:
            export.gguf_rows = original
        bad = compare(
            lab, AdapterInfo("wrong", peft_dir, model_id, "", "", gguf_path=wrong_file), prompts, max_tokens=12
        )
    print(
        model_id,
        json.dumps({k: v for k, v in good.items() if k != "answers"}),
        "wrong:",
        bad and bad["adapter_effect_rel_err"],
    )
    return good, bad


@pytest.mark.integration
@pytest.mark.slow
# B's scale: an adapter that changes some answers without wrecking the model (Gemma 3 with B at 0.1
# changes every top-1 token and the engines' Q4 noise then diverges: rel. error 0.49).
# A wrong export is caught on the real SmolLM2 here; for gemma3 the float32 tiny-model test above
# catches the same q/k permutation rule (the real Gemma pass cost 35 s of a suite near its bar).
@pytest.mark.parametrize(
    "model_id, b_std, wrong_rows", [("smollm2-135m-instruct", 0.1, _skip_permutation), ("gemma3-270m", 0.02, None)]
)
def test_real_model_adapter_parity(shared_home, model_id, b_std, wrong_rows):
    good, bad = _parity_on_real_model(shared_home, model_id, b_std, wrong_rows)
    assert good["top1_same_as_base_hf"] < 0.95  # the adapter changes the model
    assert good["top1_agree_tuned"] >= good["top1_agree_base"] - 0.1
    # measured: SmolLM2 0.15 (wrong export 1.16), Gemma 3 0.18 (wrong 0.51); the floor is Q4 noise
    assert good["adapter_effect_rel_err"] < 0.25
    if bad is not None:
        assert bad["adapter_effect_rel_err"] > 1.5 * good["adapter_effect_rel_err"]
