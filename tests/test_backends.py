import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from lab import models
from lab.backends import ContextTooLong, backend_class, stream
from lab.backends.base import AdapterCache, content_sha256
from lab.backends.fake import FakeBackend
from lab.config import GenerationOptions
from lab.home import LabHome

QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France? Answer in one short sentence."},
]


def test_fake_backend_queues_and_records():
    fake = FakeBackend(["one", "two"])
    pieces = []
    assert fake.generate(QUESTION, on_text=pieces.append).text == "one"
    assert fake.generate(QUESTION).text == "two"
    assert fake.generate(QUESTION).text == "fake answer"
    assert len(fake.calls) == 3 and pieces == ["one "]


def test_stream_yields_pieces_then_generation():
    items = list(stream(FakeBackend(["a b c"]), QUESTION))
    assert items[:-1] == ["a ", "b ", "c "] and items[-1].text == "a b c"


def test_stream_reraises_errors():
    with pytest.raises(ContextTooLong):
        list(stream(FakeBackend(n_ctx=3), QUESTION))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    home = LabHome.resolve(tmp_path_factory.mktemp("home")).ensure()
    return backend_class("llamacpp")(models.resolve(home, None), n_ctx=1024)


@pytest.mark.integration
def test_llamacpp_generates_from_a_multi_token_prompt(llama):
    # A one-token smoke test hides the AMX segfault of native builds: this prompt is ~30 tokens.
    pieces = []
    gen = llama.generate(QUESTION, GenerationOptions(max_tokens=40), on_text=pieces.append)
    assert gen.prompt_tokens > 20 and gen.completion_tokens > 1
    assert "paris" in gen.text.lower()
    assert "".join(pieces).strip() == gen.text
    assert gen.prompt_text.startswith("<|im_start|>system") and gen.prompt_text.endswith("assistant\n")
    assert 0 < gen.ttft_s <= gen.total_s


@pytest.mark.integration
def test_llamacpp_is_deterministic_at_temperature_zero(llama):
    q = [{"role": "user", "content": "Write two sentences about the sea."}]
    opts = GenerationOptions(max_tokens=40, seed=1)
    llama.reuse_prefix = False
    a = llama.generate(q, opts).text
    llama.reuse_prefix = True
    b = llama.generate(q, opts).text
    c = llama.generate(q, opts).text  # served with the prompt prefix cached
    assert a == b == c and len(a.split()) > 3


@pytest.mark.integration
def test_llamacpp_json_schema_constraint(llama):
    schema = {
        "type": "object",
        "properties": {"priority": {"enum": ["low", "high"]}, "ok": {"type": "boolean"}},
        "required": ["priority", "ok"],
        "additionalProperties": False,
    }
    gen = llama.generate(
        [{"role": "user", "content": "My card was charged twice! Make a ticket."}],
        GenerationOptions(max_tokens=40, json_schema=schema),
    )
    data = json.loads(gen.text)
    assert data["priority"] in ("low", "high") and isinstance(data["ok"], bool)
    assert gen.extra["constrained"]


@pytest.mark.integration
def test_llamacpp_context_too_long_says_so(llama):
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ContextTooLong, match="context holds 1024"):
        llama.generate(long)


@pytest.mark.integration
@pytest.mark.slow
def test_transformers_backend_loads_the_same_gguf_and_agrees(llama, shared_home):
    """The HF backend runs the same weights (GGUF dequantised by transformers): same question,
    sensible answer, and the two backends render the same chat prompt."""
    home = LabHome.resolve(shared_home).ensure()
    info = models.resolve(home, None)
    cache = home.state / "hf" / f"{info.id}-{models.model_sha256(home, info)[:12]}"
    hf = backend_class("hf")(info, n_ctx=1024, cache_dir=cache)
    assert hf.model.config.architectures == ["LlamaForCausalLM"]
    assert (cache / "config.json").exists()  # converted once, reused by later loads
    gen = hf.generate(QUESTION, GenerationOptions(max_tokens=30))
    assert "paris" in gen.text.lower() and gen.completion_tokens > 1
    assert hf.render(QUESTION) == llama.render(QUESTION)
    same = llama.generate(QUESTION, GenerationOptions(max_tokens=30))
    # Q4_1 weights dequantised to float32 vs run quantised: the first words agree.
    assert gen.text.split()[:4] == same.text.split()[:4]


# ---- where the model runs: n_gpu_layers and dtype ----------------------------------------------


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def test_n_gpu_layers_is_every_layer_with_gpu_offload_else_none(monkeypatch):
    import llama_cpp

    from lab.backends.llamacpp import resolve_gpu_layers

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    assert resolve_gpu_layers(None) == -1
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    assert resolve_gpu_layers(None) == 0
    assert resolve_gpu_layers(7) == 7 and resolve_gpu_layers(0) == 0 and resolve_gpu_layers(-1) == -1


def test_placement_says_where_the_layers_run():
    from lab.backends.llamacpp import placement

    assert placement(0, 30, offload=True) == "cpu"
    assert placement(-1, 30, offload=True) == placement(99, 30, offload=True) == "gpu (all 30 layers)"
    assert placement(12, 30, offload=True) == "gpu (12/30 layers)"
    assert placement(0, 30, offload=False) == "cpu"
    assert placement(-1, 30, offload=False) == "cpu (this llama.cpp has no GPU offload; n_gpu_layers=-1 ignored)"


@pytest.mark.integration
def test_llamacpp_gets_n_gpu_layers_and_reports_placement(llama):
    from lab.backends.llamacpp import gpu_offload_supported

    if gpu_offload_supported():
        assert llama.n_gpu_layers == -1 and llama.placement == "gpu (all 30 layers)"
        return
    assert llama.n_gpu_layers == 0 and llama.llm.model_params.n_gpu_layers == 0 and llama.placement == "cpu"
    three = backend_class("llamacpp")(llama.info, n_ctx=256, n_gpu_layers=3)
    assert three.llm.model_params.n_gpu_layers == 3 and "n_gpu_layers=3 ignored" in three.placement
    gen = three.generate([{"role": "user", "content": "Hi"}], GenerationOptions(max_tokens=3))
    assert gen.extra["placement"] == three.placement


@pytest.mark.gpu
@pytest.mark.integration
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_llamacpp_puts_every_layer_on_the_gpu(llama):
    from lab.backends.llamacpp import gpu_offload_supported

    if not gpu_offload_supported():
        pytest.skip("this llama.cpp was built without GPU offload (CPU wheel)")
    assert llama.placement == "gpu (all 30 layers)"
    assert "paris" in llama.generate(QUESTION, GenerationOptions(max_tokens=30)).text.lower()


def test_hf_dtype_follows_the_device(monkeypatch):
    from lab.backends import hf

    assert hf.resolve_dtype(None, "cpu") == "float32" and hf.resolve_dtype("float16", "cpu") == "float16"
    monkeypatch.setattr(hf, "cpu_supports_bf16", lambda: True)
    assert hf.resolve_dtype("auto", "cpu") == "bfloat16" and hf.resolve_dtype(None, "cpu") == "float32"
    monkeypatch.setattr(hf, "cpu_supports_bf16", lambda: False)
    assert hf.resolve_dtype("auto", "cpu") == "float32"


def test_dequantised_cache_keeps_float32_and_other_dtypes_apart(tmp_path):
    """A float32 consumer (parity checks, LoRA training) never loads a bf16 copy of the GGUF."""
    from lab.backends.hf import _source, dequantised_dir

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    info = models.ModelInfo("m", "gguf", gguf, "user", gguf_path=gguf)
    cache = tmp_path / "hf" / "m-abc"
    assert dequantised_dir(cache, "float32") == cache and dequantised_dir(cache, "bfloat16").name == "m-abc-bfloat16"
    # nothing cached: dequantise the GGUF, save under the dtype's own folder
    assert _source(info, "bfloat16", cache) == (
        str(tmp_path),
        {"gguf_file": "m.gguf"},
        tmp_path / "hf" / "m-abc-bfloat16",
    )
    # a bf16 copy in the float32 folder (written by an older lab) is rebuilt, not used
    cache.mkdir(parents=True)
    (cache / "config.json").write_text(json.dumps({"dtype": "bfloat16"}))
    assert _source(info, "float32", cache) == (str(tmp_path), {"gguf_file": "m.gguf"}, cache)
    # the float32 copy serves any dtype (cast on load); a dtype's own copy is preferred
    (cache / "config.json").write_text(json.dumps({"dtype": "float32"}))
    assert _source(info, "float32", cache) == (str(cache), {}, None)
    assert _source(info, "bfloat16", cache) == (str(cache), {}, None)
    own = dequantised_dir(cache, "bfloat16")
    own.mkdir()
    (own / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    assert _source(info, "bfloat16", cache) == (str(own), {}, None)
    # a model with its own HF weights loads them: no GGUF, no cache
    paired = models.ModelInfo("p", "gguf", gguf, "user", gguf_path=gguf, hf_path=tmp_path / "weights")
    assert _source(paired, "float32", cache) == (str(tmp_path / "weights"), {}, None)


def test_openai_compatible_server_backend(tmp_path):
    """A real HTTP round trip to a loopback server speaking the OpenAI streaming protocol."""
    import http.server
    import threading

    from lab.engine import Lab

    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen["path"] = self.path
            seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ("Par", "is."):
                self.wfile.write(f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n".encode())
            usage = {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 2}}
            self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        lab = Lab(home=tmp_path)
        spec = f"openai:http://127.0.0.1:{server.server_port}/v1#tiny"
        pieces = []
        ans = lab.answer("zero-shot", "Capital of France?", model=spec, on_text=pieces.append)
        gen, row_id = ans.generation, ans.row_id
        assert gen.text == "Paris." and pieces == ["Par", "is."]
        assert (gen.prompt_tokens, gen.completion_tokens) == (21, 2)
        assert seen["path"] == "/v1/chat/completions" and seen["body"]["model"] == "tiny"
        assert seen["body"]["messages"][-1]["content"] == "Capital of France?"
        row = lab.store.db["generations"].get(row_id)
        assert row["model_id"] == "openai:tiny" and row["backend"] == "openai"
    finally:
        server.shutdown()


# ---- cancelling, and adapters cached by content ---------------------------------------------------


def test_fake_backend_stops_at_the_next_token_once_cancelled():
    cancel = threading.Event()
    pieces = []

    def on_text(piece):
        pieces.append(piece)
        cancel.set()  # a page closed after the first token

    gen = FakeBackend(["one two three four"]).generate(QUESTION, on_text=on_text, cancel=cancel)
    assert gen.finish_reason == "cancelled" and gen.text == "one" and pieces == ["one "]
    assert FakeBackend(["one two"]).generate(QUESTION, cancel=threading.Event()).finish_reason == "stop"


class Endless(FakeBackend):
    """Generates until cancelled (or 10 s): a model that would hold its lock for long."""

    def generate(self, messages, options=None, on_text=None, adapter=None, adapter_sha=None, cancel=None):
        self.cancel = cancel
        t0 = time.monotonic()
        while not cancel.is_set() and time.monotonic() - t0 < 10:
            on_text("word ")
            time.sleep(0.01)
        return super().generate(messages, options, adapter=adapter, cancel=cancel)


def test_leaving_a_stream_early_cancels_the_generation():
    backend = Endless()
    items = stream(backend, QUESTION)
    assert next(items) == "word "
    items.close()  # the reader went away
    assert backend.cancel.wait(1)


def test_adapter_cache_reloads_and_frees_a_retrained_adapter(tmp_path):
    loads, freed = [], []
    cache = AdapterCache(lambda path: loads.append(Path(path).read_bytes()) or len(loads), freed.append)
    path = tmp_path / "adapter.gguf"
    path.write_bytes(b"first training")
    first = cache.get(str(path))
    assert first.sha256 == hashlib.sha256(b"first training").hexdigest() and first.handle == 1
    assert cache.get(str(path)) is first and len(loads) == 1  # unchanged: loaded once
    tmp = tmp_path / "new.gguf"  # retrained: a new file renamed over the old one, as training does
    tmp.write_bytes(b"second training, other data")
    tmp.replace(path)
    second = cache.get(str(path))
    assert loads == [b"first training", b"second training, other data"] and freed == [first]
    assert second.sha256 == hashlib.sha256(b"second training, other data").hexdigest()
    assert cache.get(str(path), sha=second.sha256) is second
    third = cache.get(str(path), sha="given-by-the-manifest")  # a caller naming other content reloads
    assert third.sha256 == "given-by-the-manifest" and freed == [first, second]


def test_peft_folders_are_hashed_by_their_weights(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    assert content_sha256(tmp_path) == hashlib.sha256(b"weights").hexdigest()


@pytest.mark.integration
def test_llamacpp_cancel_stops_at_the_next_token_and_frees_the_lock(llama):
    cancel = threading.Event()
    first = []

    def on_text(piece):
        first.append(time.perf_counter())
        cancel.set()

    story = [{"role": "user", "content": "Write a very long story about a dragon, in many chapters."}]
    llama.generate(story, GenerationOptions(max_tokens=2))  # warm (the first run pays page-ins)
    gen = llama.generate(story, GenerationOptions(max_tokens=400), on_text=on_text, cancel=cancel)
    assert gen.finish_reason == "cancelled" and len(first) == 1
    assert time.perf_counter() - first[0] < 2.0, "stopped at the next token, not after 400"
    assert gen.completion_tokens <= 3  # (the prompt's own evaluation is not interruptible)
    assert llama.lock.acquire(timeout=0.1)  # free for the next request
    llama.lock.release()
    again = llama.generate(QUESTION, GenerationOptions(max_tokens=16))  # the model still answers
    assert again.text and again.finish_reason in ("stop", "length")
