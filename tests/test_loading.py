"""Where the base weights come from: a GGUF-only base too big to dequantise is refused, naming
the file and what to put beside it; the size estimate read from the GGUF header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.engine import Lab
from lab.tuning import TrainingError, make_config, train
from lab.tuning.loading import MAX_DEQUANTISE_PARAMS, estimate_gguf_params, hf_source_path


def write_gguf(path: Path, arch: str = "llama", **widths) -> Path:
    """A GGUF header whose metadata describes a model; no tensors (no weights to speak of)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("fake")
    if widths:
        writer.add_block_count(widths["layers"])
        writer.add_embedding_length(widths["d"])
        writer.add_feed_forward_length(widths["ff"])
        writer.add_head_count(widths["heads"])
        writer.add_head_count_kv(widths["kv"])
        writer.add_vocab_size(widths["vocab"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return path


LLAMA_8B = dict(layers=32, d=4096, ff=14336, heads=32, kv=8, vocab=128256)


def test_estimate_from_the_header(tmp_path):
    from lab.home import LabHome
    from lab.models import resolve

    # Llama 3.1 8B has 8.03e9 parameters, 0.5e9 of them its untied output head (not counted).
    assert estimate_gguf_params(write_gguf(tmp_path / "b.gguf", **LLAMA_8B)) == pytest.approx(7.5e9, rel=0.02)
    assert estimate_gguf_params(write_gguf(tmp_path / "bare.gguf")) < 1e6  # no widths: from the file size
    smol = resolve(LabHome.resolve(None), "smollm2-135m-instruct")
    if Path(smol.path).exists():
        assert estimate_gguf_params(smol.path) == pytest.approx(134.5e6, rel=0.05)


def test_a_large_gguf_only_base_is_refused_before_any_work(tmp_path):
    big = write_gguf(tmp_path / "big-8b.gguf", **LLAMA_8B)
    assert big.stat().st_size < 10_000  # the header says 8B; the file is tiny
    lab = Lab(home=tmp_path / "home")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"input": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(25)))
    with pytest.raises(TrainingError) as e:
        train(make_config(name="big", data=str(data), base_model=str(big), method="lora"), lab, progress=False)
    text = str(e.value)
    assert str(big) in text and "7.5B parameters" in text and "HF folder" in text and "-bnb-4bit" in text
    info = lab.model_info(str(big))
    assert not hf_source_path(lab, info).exists()  # nothing dequantised
    assert not lab.store.query("select * from training_runs")


def test_a_large_gguf_with_its_hf_weights_beside_it_is_not_refused(tmp_path):
    from lab.tuning.loading import check_trainable_base

    big = write_gguf(tmp_path / "big-8b.gguf", **LLAMA_8B)
    lab = Lab(home=tmp_path / "home")
    info = lab.model_info(str(big))
    with pytest.raises(TrainingError):
        check_trainable_base(lab, info)
    paired = tmp_path / "big-8b-hf"
    paired.mkdir()
    (paired / "config.json").write_text("{}")
    info.hf_path = paired  # the model pairs' field (lab.models): the HF folder tied to this GGUF
    check_trainable_base(lab, info)  # the paired HF folder is used: no dequantising
    assert hf_source_path(lab, info) == paired


def test_threshold_is_about_3b():
    assert 2.5e9 < MAX_DEQUANTISE_PARAMS <= 3.5e9
