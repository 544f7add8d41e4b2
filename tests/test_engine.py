import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from lab.backends.base import ContextTooLong
from lab.backends.fake import FakeBackend
from lab.engine import Lab


def test_answer_logs_one_row_per_generation(fake_lab):
    fake_lab.fake.queue("Paris.")
    ans = fake_lab.answer("zero-shot", "Capital of France?", system="Be brief.")
    row = fake_lab.store.db["generations"].get(ans.row_id)
    assert ans.text == row["output"] == "Paris."
    assert row["arm"] == "zero-shot" and row["model_id"] == "fake"
    assert fake_lab.fake.calls[0]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_failed_generation_is_logged_and_raised(tmp_path):
    lab = Lab(home=tmp_path, default_model="tiny")
    lab.add_backend(FakeBackend(model_id="tiny", n_ctx=4))
    with pytest.raises(ContextTooLong):
        lab.answer("zero-shot", "a question far longer than four tokens")
    row = lab.store.recent_generations(1)[0]
    assert "ContextTooLong" in row["error"] and row["output"] is None


def test_options_merge_config_and_overrides(fake_lab):
    opts = fake_lab.options(max_tokens=12, temperature=None)
    assert opts.max_tokens == 12 and opts.temperature == 0.0


@pytest.mark.integration
def test_a_model_is_loaded_once_even_when_asked_from_many_threads(tmp_path):
    lab = Lab(home=tmp_path)
    got = []
    threads = [threading.Thread(target=lambda: got.append(lab.backend())) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len({id(b) for b in got}) == 1
    assert lab.backend("smollm2") is got[0]


def test_a_cancelled_generation_is_logged_as_cancelled(fake_lab):
    fake_lab.fake.queue("one two three four")
    cancel = threading.Event()
    gen, row_id = fake_lab.generate(
        [{"role": "user", "content": "hi"}], arm="zero-shot", cancel=cancel, on_text=lambda piece: cancel.set()
    )
    row = fake_lab.store.db["generations"].get(row_id)
    assert gen.finish_reason == row["finish_reason"] == "cancelled" and row["output"] == "one"


def test_the_log_records_the_adapter_content_the_backend_served(fake_lab, tmp_path):
    path = tmp_path / "adapter.gguf"
    messages = [{"role": "user", "content": "hi"}]
    logged = []
    for content in (b"trained once", b"trained again on other data"):
        path.write_bytes(content)
        _, row_id = fake_lab.generate(messages, arm="tune", adapter=str(path))
        logged.append(fake_lab.store.db["generations"].get(row_id)["adapter_sha"])
    assert logged == [
        hashlib.sha256(b"trained once").hexdigest(),
        hashlib.sha256(b"trained again on other data").hexdigest(),
    ]
    _, row_id = fake_lab.generate(messages, arm="tune", adapter=str(path), adapter_sha="from-manifest")
    assert fake_lab.store.db["generations"].get(row_id)["adapter_sha"] == "from-manifest"
    assert fake_lab.fake.calls[-1]["adapter_sha"] == "from-manifest"  # the backend's cache key


def _smollm2_lora(lab, folder: Path, seed: int) -> str:
    """A finished adapter for SmolLM2 at `folder` (PEFT files with random non-zero LoRA B, its
    adapter.gguf, a manifest), as training writes it; returns its sha256. Shapes come from the
    GGUF's header, so no transformers model is loaded."""
    import torch
    from tiny_models import random_lora

    from lab.gguf_meta import read_metadata
    from lab.tuning.export_gguf import export_gguf

    info = lab.model_info()
    meta = read_metadata(Path(info.path))
    hidden, heads = meta["llama.embedding_length"], meta["llama.attention.head_count"]
    kv = meta["llama.attention.head_count_kv"] * hidden // heads
    stub = torch.nn.Module()
    stub.model = torch.nn.Module()
    stub.model.layers = torch.nn.ModuleList()
    for _ in range(meta["llama.block_count"]):
        layer = torch.nn.Module()
        layer.self_attn = torch.nn.Module()
        layer.self_attn.q_proj = torch.nn.Linear(hidden, hidden, bias=False, device="meta")
        layer.self_attn.v_proj = torch.nn.Linear(hidden, kv, bias=False, device="meta")
        stub.model.layers.append(layer)
    tmp = folder.with_name(folder.name + ".partial")
    random_lora(stub, tmp, ["q_proj", "v_proj"], b_std=0.5, seed=seed)
    export_gguf(tmp, info.path)
    sha = hashlib.sha256((tmp / "adapter_model.safetensors").read_bytes()).hexdigest()
    (tmp / "lab_adapter.json").write_text(
        json.dumps({"base_model": {"id": info.id, "sha256": lab.model_sha(info)}, "adapter": {"sha256": sha}})
    )
    shutil.rmtree(folder, ignore_errors=True)  # retraining replaces the folder, as training does
    tmp.rename(folder)
    return sha


@pytest.mark.integration
def test_a_retrained_adapter_is_served_and_logged_as_the_new_one(tmp_path):
    lab = Lab(home=tmp_path)
    folder = lab.home.adapters / "facts"
    question = "Name three colours."
    answers, logged, shas = [], [], []
    for seed in (1, 2):  # train, answer, retrain with other data, answer again: one process
        shas.append(_smollm2_lora(lab, folder, seed))
        ans = lab.answer("tune", question, adapter="facts", options=lab.options(max_tokens=24))
        answers.append(ans.text)
        logged.append(lab.store.db["generations"].get(ans.row_id)["adapter_sha"])
    assert shas[0] != shas[1] and logged == shas
    assert answers[0] != answers[1], "the answer changes with the adapter"
    fresh = Lab(home=tmp_path)  # a new process would load only the retrained adapter
    assert fresh.answer("tune", question, adapter="facts", options=fresh.options(max_tokens=24)).text == answers[1]
    backend = lab.backend()
    assert list(backend._adapters.entries) == [str(folder / "adapter.gguf")]  # the old one was freed
