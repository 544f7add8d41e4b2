import json

import pytest

from lab import models
from lab.gguf_meta import GGUFError, read_metadata
from lab.home import LabHome


@pytest.fixture
def home(tmp_path):
    return LabHome.resolve(tmp_path).ensure()


def test_embedded_default_is_found_without_importing_its_package(home):
    info = models.resolve(home, None)
    assert info.id == "smollm2-135m-instruct" and info.kind == "gguf"
    assert info.chat_template and info.architecture == "llama" and info.context_length == 8192
    assert "site-packages" in str(info.path) and info.path.suffix == ".gguf"
    assert models.resolve(home, "smollm2").id == info.id  # alias


def test_list_models_includes_user_gguf_and_hf_folders(home):
    src = models.resolve(home, None).path
    home.models.mkdir()
    (home.models / "mine.gguf").symlink_to(src)
    hf = home.models / "tiny-hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 512}))
    (hf / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{x}}"}))
    (home.models / "broken.gguf").write_bytes(b"not a model")
    found, problems = models.list_models(home)
    by_id = {m.id: m for m in found}
    assert {"smollm2-135m-instruct", "gemma3-270m", "mine", "tiny-hf"} <= set(by_id)
    assert by_id["mine"].source == "user" and by_id["mine"].architecture == "llama"
    assert by_id["tiny-hf"].kind == "hf" and by_id["tiny-hf"].chat_template and by_id["tiny-hf"].context_length == 512
    assert any("broken.gguf" in p and "not a GGUF file" in p for p in problems)


def test_missing_and_corrupt_models_name_the_path(home, tmp_path):
    with pytest.raises(models.ModelNotFound, match="/nope/model.gguf"):
        models.resolve(home, "/nope/model.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00")  # right magic, truncated header
    with pytest.raises(GGUFError, match=str(bad)):
        read_metadata(bad)
    with pytest.raises(models.ModelNotFound, match="known:"):
        models.resolve(home, "no-such-model")


def test_sha256_is_cached(home, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    digest = models.file_sha256(home, f)
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    cache = json.loads((home.state / "hashes.json").read_text())
    assert cache[str(f)]["sha256"] == digest


@pytest.mark.integration
def test_gemma_is_assembled_once_into_the_lab_home(home):
    listed = {m.id: m for m in models.list_models(home)[0]}
    assert listed["gemma3-270m"].ready is False
    info = models.resolve(home, "gemma3")
    assert info.ready and info.path.parent == home.model_cache and info.path.stat().st_size > 200e6
    assert info.architecture == "gemma3" and not info.chat_template
    mtime = info.path.stat().st_mtime_ns
    assert models.resolve(home, "gemma3-270m").path.stat().st_mtime_ns == mtime  # not re-assembled
    assert not list(home.model_cache.glob("*.partial"))
