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
    assert info.id == "smollm2-135m-instruct" and info.format == "gguf"
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
    assert by_id["tiny-hf"].format == "hf" and by_id["tiny-hf"].chat_template and by_id["tiny-hf"].context_length == 512
    assert any("broken.gguf" in p and "not a GGUF file" in p for p in problems)


def test_missing_and_corrupt_models_name_the_path(home, tmp_path):
    with pytest.raises(models.ModelNotFound, match="/nope/model.gguf"):
        models.resolve(home, "/nope/model.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00")  # right magic, truncated header
    with pytest.raises(GGUFError, match=str(bad)):
        read_metadata(bad)
    implausible = tmp_path / "kv.gguf"  # right magic and version, a key length of 2**62
    implausible.write_bytes(
        b"GGUF"
        + (3).to_bytes(4, "little")
        + (0).to_bytes(8, "little")
        + (1).to_bytes(8, "little")
        + (2**62).to_bytes(8, "little")
    )
    with pytest.raises(GGUFError, match=f"{implausible}: truncated or corrupt GGUF header .implausible string"):
        read_metadata(implausible)
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


# ---- a model as a pair: HF weights to train, a GGUF to serve ----------------------------------


def _hf_twin(gguf, folder, config=None, tokens=None, template=None):
    """An HF folder describing the same model as `gguf` (config, tokenizer.json, chat template),
    built from the GGUF's own metadata; the keyword arguments change one part of it."""
    meta = read_metadata(gguf, keep_arrays=True)
    arch = meta["general.architecture"]
    vocab = meta["tokenizer.ggml.tokens"]
    folder.mkdir(parents=True)
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": arch,
        "dtype": "bfloat16",
        "num_hidden_layers": meta[f"{arch}.block_count"],
        "hidden_size": meta[f"{arch}.embedding_length"],
        "vocab_size": len(vocab),
        "max_position_embeddings": meta.get(f"{arch}.context_length"),
    }
    (folder / "config.json").write_text(json.dumps({**cfg, **(config or {})}))
    vocab = list(vocab)
    for i, text in (tokens or {}).items():
        vocab[i] = text
    tok = {"model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab)}}, "added_tokens": []}
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    template = meta.get("tokenizer.chat_template") if template is None else template
    if template:
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return folder


@pytest.fixture
def pair(home):
    """models/smol/ holding the real SmolLM2 GGUF and an HF folder that matches it."""
    folder = home.models / "smol"
    folder.mkdir(parents=True)
    gguf = folder / "smol-q4_1.gguf"
    gguf.symlink_to(models.resolve(home, None).path)
    return folder, gguf


def test_a_folder_with_matching_hf_and_gguf_is_one_model(home, pair):
    folder, gguf = pair
    hf = _hf_twin(gguf, folder / "hf")
    info = models.resolve(home, "smol")
    assert (info.format, info.path, info.gguf_path, info.hf_path) == ("gguf", gguf, gguf, hf)
    assert info.architecture == "llama" and info.chat_template and not info.quantized_4bit
    checked = info.extra["pair_check"]
    assert checked["layer count"] == 30 and checked["hidden size"] == 576 and checked["vocabulary size"] == 49152
    assert checked["tokenizer"] == "same tokens" and checked["chat template"] == "same text"
    assert checked["not_checked"] == []
    caps = models.capabilities(info)
    assert caps["serve"] == "llama.cpp (GGUF)" and caps["train_from"] == "hf" and "HF bfloat16" in caps["parts"]
    row = info.as_row()
    assert row["hf_path"] == str(hf) and row["gguf_path"] == str(gguf)
    json.dumps(row)  # what `lab models --json` prints
    assert "smol" in {m.id for m in models.list_models(home)[0]}


MISMATCHES = [  # (field named in the error, file of the HF side named in it, how the HF side differs)
    ("architecture", "config.json", {"config": {"model_type": "qwen2"}}),
    ("layer count", "config.json", {"config": {"num_hidden_layers": 24}}),
    ("hidden size", "config.json", {"config": {"hidden_size": 512}}),
    ("vocabulary size", "config.json", {"config": {"vocab_size": 49153}}),
    ("tokenizer", "tokenizer.json", {"tokens": {1000: "<not-this-token>"}}),
    ("chat template", "tokenizer_config.json", {"template": "{{ messages[0]['content'] }}"}),
]


@pytest.mark.parametrize("field,hf_file,change", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_a_mismatched_pair_is_refused_naming_both_files_and_the_field(home, pair, field, hf_file, change):
    folder, gguf = pair
    hf = _hf_twin(gguf, folder / "hf", **change)
    with pytest.raises(models.ModelPairError) as e:
        models.resolve(home, "smol")
    msg = str(e.value)
    assert f"{field} differs" in msg and str(gguf) in msg and str(hf / hf_file) in msg, msg
    found, problems = models.list_models(home)
    assert "smol" not in {m.id for m in found} and any(f"{field} differs" in p for p in problems)


def test_model_toml_names_the_parts_when_the_folder_is_ambiguous(home, pair):
    folder, gguf = pair
    other = folder / "other.gguf"
    other.symlink_to(gguf.resolve())
    _hf_twin(gguf, folder / "bf16")
    _hf_twin(
        gguf,
        folder / "bnb-4bit",
        config={
            "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}
        },
    )
    with pytest.raises(models.ModelPairError, match="several GGUF files .*model.toml"):
        models.resolve(home, "smol")
    other.unlink()
    with pytest.raises(models.ModelPairError, match="several HF folders \\(bf16, bnb-4bit\\)"):
        models.resolve(home, "smol")
    (folder / "model.toml").write_text('hf = "bnb-4bit"\ngguf = "smol-q4_1.gguf"\ndescription = "SmolLM2 pair"\n')
    info = models.resolve(home, "smol")
    assert info.hf_path == (folder / "bnb-4bit").resolve() and info.quantized_4bit
    assert info.description == "SmolLM2 pair"
    caps = models.capabilities(info)
    assert caps["train_from"] == "hf-4bit" and "CUDA" in caps["train"] and "bnb 4-bit" in caps["parts"]
    (folder / "model.toml").write_text('hf = "bf16"\nweights = "x"\n')
    with pytest.raises(models.ModelPairError, match="model.toml: field 'weights'"):
        models.resolve(home, "smol")
    (folder / "model.toml").write_text('gguf = "missing.gguf"\n')
    with pytest.raises(models.ModelPairError, match="field 'gguf': .*missing.gguf does not exist"):
        models.resolve(home, "smol")


def test_single_part_models_say_what_each_rung_can_do(home, pair):
    folder, gguf = pair
    gguf_only = models.capabilities(models.resolve(home, "smol"))
    assert gguf_only["train_from"] == "gguf-dequantised" and gguf_only["serve"] == "llama.cpp (GGUF)"
    hf = _hf_twin(gguf, home.models / "smol-hf")
    info = models.resolve(home, "smol-hf")
    assert (info.format, info.hf_path, info.gguf_path) == ("hf", hf, None)
    caps = models.capabilities(info)
    assert caps["serve"] == "transformers (HF folder)" and caps["train_from"] == "hf"
    big = models.ModelInfo("big", "gguf", gguf, "user", size_bytes=5_000_000_000, gguf_path=gguf)
    assert models.capabilities(big)["train_from"] is None and "too big" in models.capabilities(big)["train_note"]
    server = models.resolve(home, "openai:http://127.0.0.1:9/v1#tiny")
    assert server.format == "openai" and server.extra == {
        "url": "http://127.0.0.1:9/v1",
        "model": "tiny",
        "spec": "openai:http://127.0.0.1:9/v1#tiny",
    }
    assert models.capabilities(server)["train"] is None


def _tiny_gguf(path, arch, layers=2, hidden=64, n_tokens=100, template=None):
    """A GGUF holding only header metadata (no tensors): enough for the pair check."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_token_list([f"t{i}" for i in range(n_tokens)])
    if template:
        w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("arch,model_type", [("qwen2", "qwen2"), ("gemma3", "gemma3_text"), ("phi3", "phi3")])
def test_gguf_architectures_map_to_hf_model_types(tmp_path, arch, model_type):
    from lab.model_pairs import check_pair

    gguf = _tiny_gguf(tmp_path / "m.gguf", arch, template="{{ x }}")
    hf = tmp_path / "hf"
    hf.mkdir()
    config = {"model_type": model_type, "num_hidden_layers": 2, "hidden_size": 64, "vocab_size": 100}
    (hf / "config.json").write_text(json.dumps(config))
    (hf / "chat_template.jinja").write_text("{{ x }}\n")
    checked = check_pair(hf, gguf)
    assert checked["vocabulary size"] == 100 and checked["chat template"] == "same text"
    assert checked["not_checked"] == ["tokenizer"]  # no tokenizer.json in this folder
    (hf / "config.json").write_text(json.dumps({**config, "text_config": {"hidden_size": 32}}))
    with pytest.raises(models.ModelPairError, match="hidden size differs .*hidden_size=32.*embedding_length=64"):
        check_pair(hf, gguf)


def test_models_does_not_import_the_backends():
    """Parsing a model spec is the models module's job: importing it loads no backend (no loop)."""
    import subprocess
    import sys

    code = (
        "import sys, lab.models; m = lab.models.describe_server('openai:http://127.0.0.1:1/v1');"
        "assert not [k for k in sys.modules if k.startswith('lab.backends')], sys.modules.keys();"
        "import lab.backends.openai_compat as o; assert not hasattr(o, 'describe')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.integration
@pytest.mark.slow
def test_a_gguf_and_its_transformers_conversion_are_a_matching_pair(home, shared_home):
    """The real thing: the HF folder transformers writes from the SmolLM2 GGUF (config, tokenizer,
    chat template) pairs with that GGUF, and the pair trains/serves from the HF weights directly."""
    from lab.backends.hf import load_hf_model

    shared = LabHome.resolve(shared_home).ensure()
    gguf_info = models.resolve(shared, None)
    cache = shared.state / "hf" / f"{gguf_info.id}-{models.model_sha256(shared, gguf_info)[:12]}"
    if not (cache / "config.json").exists():  # the conversion the HF backend test also uses
        load_hf_model(gguf_info, cache_dir=cache)
    folder = home.models / "smol-pair"
    folder.mkdir(parents=True)
    (folder / "smollm2.gguf").symlink_to(gguf_info.path)
    (folder / "hf").symlink_to(cache, target_is_directory=True)
    info = models.resolve(home, "smol-pair")
    checked = info.extra["pair_check"]
    assert info.format == "gguf" and info.hf_path == folder / "hf", checked
    assert checked["tokenizer"] == "same tokens" and checked["chat template"] == "same text", checked
    assert checked["not_checked"] == [] and checked["vocabulary size"] == 49152
    assert models.capabilities(info)["train_from"] == "hf"
    model, tok = load_hf_model(info)  # from the HF weights: no GGUF to dequantise
    assert model.config.num_hidden_layers == 30 and model.dtype.is_floating_point
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith("<|im_start|>")
