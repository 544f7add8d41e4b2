"""The server backend's logic against a tiny OpenAI-compatible HTTP server run by the test (slow on
purpose, failing on purpose): concurrency bounds, resume, retries, clear errors, adapters by name,
token counts through /tokenize. The real server (llama-cpp-python's) is in test_openai_compat.py."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time

import pytest

from lab.backends.base import BackendError, ServerUnavailable
from lab.backends.openai_compat import OpenAICompatBackend
from lab.engine import Lab
from lab.evaluation.runner import run_eval
from lab.models import describe_server, resolve
from lab.tuning.adapters import AdapterError, resolve_adapter


class FakeServer:
    """A loopback server speaking enough of the OpenAI protocol (and vLLM's or llama.cpp's extras).
    `delay_s` per answer; `fail_next` requests answered 503; counts requests and the most in flight."""

    def __init__(self, models=("tiny",), delay_s=0.0, tokenize=None, loras=(), port=0, extra_entry=None):
        self.models, self.delay_s, self.tokenize, self.loras = list(models), delay_s, tokenize, list(loras)
        self.extra_entry = extra_entry or {}
        self.json_object_only = False
        self.fail_next, self.in_flight, self.max_in_flight, self.chats = 0, 0, 0, []
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, data):
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                if self.path == "/v1/models":
                    data = [{"id": m, "object": "model", **server.extra_entry.get(m, {})} for m in server.models]
                    return self.reply(200, {"object": "list", "data": data})
                if self.path == "/lora-adapters" and server.loras:
                    return self.reply(200, [{"id": i, "path": p, "scale": 0.0} for i, p in enumerate(server.loras)])
                self.reply(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/v1/chat/completions":
                    return server.chat(self, body)
                style = server.tokenize
                if style == "vllm" and self.path == "/tokenize" and "prompt" in body:
                    return self.reply(200, {"count": len(body["prompt"].split()), "max_model_len": 512})
                if style == "llama-cpp-python" and self.path == "/extras/tokenize":  # adds a BOS, like it
                    return self.reply(200, {"tokens": [1] + list(range(len(body["input"].split())))})
                self.reply(404, {"error": "not found"})

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.http.daemon_threads = True
        self.port = self.http.server_port
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def chat(self, handler, body):
        shape = (body.get("response_format") or {}).get("type")
        if self.json_object_only and shape not in (None, "json_object"):  # llama-cpp-python's server
            # as the real one answers (measured): a 500 whose message names response_format
            message = "1 validation error: {'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\"}"
            return handler.reply(500, {"error": {"message": message}})
        with self.lock:
            failing = self.fail_next > 0
            self.fail_next -= failing
            if not failing:
                self.chats.append(body)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if failing:
            return handler.reply(503, {"error": "busy"})
        try:
            time.sleep(self.delay_s)
            answer = f"answer to {body['messages'][-1]['content'][:20]} via {body['model']}"
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Connection", "close")
            handler.end_headers()
            for piece in answer.split(" "):
                chunk = {"choices": [{"delta": {"content": piece + " "}, "finish_reason": None}]}
                handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.write(b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')
            handler.close_connection = True
        finally:
            with self.lock:
                self.in_flight -= 1

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server():
    s = FakeServer(delay_s=0.15)
    yield s
    s.close()


def server_lab(tmp_path, server, model="tiny", retries=1, **kw) -> tuple[Lab, str]:
    """A lab whose server backend retries fast (the defaults wait seconds between tries)."""
    lab = Lab(home=tmp_path)
    spec = f"openai:{server.url}#{model}"
    lab.add_backend(OpenAICompatBackend(resolve(lab.home, spec), retries=retries, backoff_s=0.01, **kw), name=spec)
    return lab, spec


def result_keys(lab, run_id):
    return [
        (r["example_id"], r["arm"])
        for r in lab.store.query("select example_id, arm from eval_results where eval_run_id = ?", [run_id])
    ]


# ---- concurrency and resume ------------------------------------------------------------------


def test_evaluation_keeps_at_most_n_requests_in_flight_and_writes_each_row_once(tmp_path, server):
    lab, spec = server_lab(tmp_path, server)
    t0 = time.perf_counter()
    run_id = run_eval(lab, "specialty", ["zero-shot"], limit=12, model=spec, progress=False, concurrency=4)
    wall = time.perf_counter() - t0
    keys = result_keys(lab, run_id)
    assert server.max_in_flight == 4 and len(server.chats) == 12
    assert len(keys) == len(set(keys)) == 12
    assert wall < 12 * 0.15  # in parallel: serial would take 1.8 s or more
    gens = lab.store.query(
        "select count(*) as n, count(distinct example_id) as d from generations where eval_run_id = ?", [run_id]
    )[0]
    assert gens == {"n": 12, "d": 12}
    assert lab.store.eval_run(run_id)["status"] == "partial"  # 12 of the 84 held-out examples


def test_a_local_backend_is_asked_one_at_a_time(fake_lab):
    seen, lock, state = [], threading.Lock(), {"now": 0}
    real = fake_lab.fake.generate

    def counting(*a, **kw):
        with lock:
            state["now"] += 1
            seen.append(state["now"])
        time.sleep(0.01)
        try:
            return real(*a, **kw)
        finally:
            with lock:
                state["now"] -= 1

    fake_lab.fake.generate = counting
    run_eval(fake_lab, "specialty", ["zero-shot"], limit=6, progress=False, concurrency=8)
    assert len(seen) == 6 and max(seen) == 1


def test_cancel_stops_taking_work_and_a_rerun_resumes_without_asking_twice(tmp_path, server):
    lab, spec = server_lab(tmp_path, server)
    cancel, done = threading.Event(), []

    def stop_after_three(row):
        done.append(row)
        if len(done) == 3:
            cancel.set()

    run_id = run_eval(
        lab,
        "specialty",
        ["zero-shot"],
        limit=10,
        model=spec,
        progress=False,
        concurrency=3,
        cancel=cancel,
        on_result=stop_after_three,
    )
    first = len(result_keys(lab, run_id))
    assert lab.store.eval_run(run_id)["status"] == "cancelled"
    assert 3 <= first <= 5 and len(server.chats) == first  # those in flight finish and are written
    again = run_eval(lab, "specialty", ["zero-shot"], limit=10, model=spec, progress=False, concurrency=3)
    keys = result_keys(lab, again)
    assert again == run_id and len(keys) == len(set(keys)) == 10
    asked = [c["messages"][-1]["content"] for c in server.chats]
    assert len(asked) == len(set(asked)) == 10  # no example was sent twice


def test_a_server_killed_mid_run_is_a_clean_error_and_the_run_resumes_when_it_is_back(tmp_path, server):
    lab, spec = server_lab(tmp_path, server, retries=2)
    rows = []

    def kill_after_four(row):
        rows.append(row)
        if len(rows) == 4:
            server.close()

    with pytest.raises(ServerUnavailable, match="is it running"):
        run_eval(
            lab,
            "specialty",
            ["zero-shot"],
            limit=10,
            model=spec,
            progress=False,
            concurrency=2,
            on_result=kill_after_four,
        )
    run = lab.store.query("select * from eval_runs")[0]
    kept = result_keys(lab, run["id"])
    assert run["status"] == "failed" and 4 <= len(kept) < 10
    errors = lab.store.query("select count(*) as n from eval_results where error is not null")[0]["n"]
    assert errors == 0  # an unreachable server scores nothing: the examples stay to do
    back = FakeServer(port=server.port)  # the same address again
    try:
        run_id = run_eval(lab, "specialty", ["zero-shot"], limit=10, model=spec, progress=False, concurrency=2)
        keys = result_keys(lab, run_id)
        assert run_id == run["id"] and len(keys) == len(set(keys)) == 10
        assert len(back.chats) == 10 - len(kept)
    finally:
        back.close()


# ---- retries and clear errors ------------------------------------------------------------------


def test_busy_answers_are_retried_with_backoff(tmp_path, server):
    lab, spec = server_lab(tmp_path, server, retries=3)
    server.fail_next = 2
    ans = lab.answer("zero-shot", "Capital of France?", model=spec)
    assert ans.text.startswith("answer to Capital of France?") and len(server.chats) == 1
    server.fail_next = 5
    with pytest.raises(ServerUnavailable, match=r"failed the chat request 4 times \(HTTP 503"):
        lab.answer("zero-shot", "again?", model=spec)


def test_an_unreachable_server_or_an_unknown_model_is_a_clear_error(tmp_path, server):
    info = describe_server(f"openai:{server.url}#nope")
    with pytest.raises(BackendError, match=r"serves no model 'nope' \(it serves: tiny\)"):
        OpenAICompatBackend(info, retries=0)
    closed = FakeServer()
    closed.close()
    with pytest.raises(ServerUnavailable, match=r"127.0.0.1:\d+/v1 failed the list of models"):
        OpenAICompatBackend(describe_server(f"openai:{closed.url}#tiny"), retries=1, backoff_s=0.01)
    with pytest.raises(Exception, match="unknown option"):
        describe_server(f"openai:{server.url}#tiny?tokeniser=x")


def test_streaming_still_reaches_the_caller_piece_by_piece(tmp_path, server):
    lab, spec = server_lab(tmp_path, server)
    pieces = []
    ans = lab.answer("zero-shot", "Hi", model=spec, on_text=pieces.append)
    assert len(pieces) > 2 and "".join(pieces).strip() == ans.text


def test_a_json_schema_goes_in_the_shape_the_server_takes(tmp_path, server):
    lab, spec = server_lab(tmp_path, server)
    server.json_object_only = True
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    for _ in range(2):  # the second request is sent in that shape at once
        lab.answer("zero-shot", "json?", model=spec, options=lab.options(json_schema=schema))
    assert [c["response_format"] for c in server.chats] == [{"type": "json_object", "schema": schema}] * 2


# ---- token counts ------------------------------------------------------------------------------


def test_tokens_are_counted_by_the_servers_tokenize_route(tmp_path):
    for style in ("vllm", "llama-cpp-python"):
        s = FakeServer(tokenize=style)
        try:
            backend = OpenAICompatBackend(describe_server(f"openai:{s.url}#tiny"), retries=0)
            assert backend.token_counts == "server"
            assert backend.count_tokens("one two three four five") == 5  # the BOS it adds is not counted
            assert backend.count_tokens("") == 0
        finally:
            s.close()


def test_without_a_tokenize_route_counts_are_estimated_and_logged(tmp_path, server, caplog):
    lab, spec = server_lab(tmp_path, server)
    backend = lab.backend(spec)
    with caplog.at_level(logging.WARNING):
        assert backend.count_tokens("x" * 40) == 10
    assert backend.token_counts == "estimated" and "estimated" in caplog.text and "tokenizer=" in caplog.text
    answer = lab.answer("zero-shot", "Hi", model=spec)
    assert answer.generation.extra["token_counts"] == "estimated"
    row = lab.store.query("select token_counts from generations where id = ?", [answer.row_id])[0]
    assert row["token_counts"] == "estimated"  # the log says the count was estimated


# ---- adapters by name --------------------------------------------------------------------------


def write_adapter(lab, name: str, base: str, sha: str = "a" * 64):
    folder = lab.home.adapters / name
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "lab_adapter.json").write_text(
        json.dumps({"base_model": {"id": base, "sha256": sha}, "adapter": {"sha256": "b" * 64}, "config": {}})
    )
    return folder


def test_an_adapter_is_asked_for_by_the_name_the_server_serves_it_under(tmp_path):
    s = FakeServer(
        models=("smollm2-135m-instruct", "tickets"), extra_entry={"tickets": {"parent": "smollm2-135m-instruct"}}
    )
    try:
        lab, spec = server_lab(tmp_path, s, model="smollm2-135m-instruct")
        write_adapter(lab, "tickets", "smollm2-135m-instruct")
        tuned = resolve_adapter(lab, "tickets", spec)
        ans = lab.answer("tune", "refund?", model=spec, adapter=tuned)
        assert s.chats[-1]["model"] == "tickets" and ans.text.endswith("via tickets")
        row = lab.store.db["generations"].get(ans.row_id)
        assert row["adapter_id"] == "tickets" and row["adapter_sha"] == "b" * 64
        lab.answer("zero-shot", "refund?", model=spec)
        assert s.chats[-1]["model"] == "smollm2-135m-instruct"
    finally:
        s.close()


def test_llama_server_adapters_are_selected_by_id(tmp_path):
    s = FakeServer(models=("smollm2",), loras=["/a/other/adapter.gguf", "/srv/adapters/tickets/adapter.gguf"])
    try:
        lab, spec = server_lab(tmp_path, s, model="smollm2")  # an alias of the lab's default model
        folder = write_adapter(lab, "tickets", "smollm2-135m-instruct")
        lab.answer("tune", "refund?", model=spec, adapter=resolve_adapter(lab, "tickets", spec))
        assert s.chats[-1]["model"] == "smollm2" and s.chats[-1]["lora"] == [{"id": 1, "scale": 1.0}]
        write_adapter(lab, "unserved", "smollm2-135m-instruct")
        with pytest.raises(AdapterError, match="does not serve the adapter 'unserved'.*lab adapters serve"):
            resolve_adapter(lab, "unserved", spec)
        assert folder.exists()
    finally:
        s.close()


def test_an_adapter_on_another_base_is_refused_by_name_and_by_hash(tmp_path):
    s = FakeServer(models=("gemma3-270m", "facts"), extra_entry={"gemma3-270m": {"sha256": "c" * 64}})
    try:
        lab, spec = server_lab(tmp_path, s, model="gemma3-270m")
        write_adapter(lab, "facts", "smollm2-135m-instruct")
        with pytest.raises(
            AdapterError, match="trained on smollm2-135m-instruct but the server .* serves 'gemma3-270m'"
        ):
            resolve_adapter(lab, "facts", spec)
        (lab.home.adapters / "facts").rename(lab.home.adapters / "old")
        write_adapter(lab, "facts", "gemma3-270m", sha="d" * 64)
        with pytest.raises(AdapterError, match=r"sha256 dddddddddddd\) but the server's 'gemma3-270m' has sha256 cccc"):
            resolve_adapter(lab, "facts", spec)
        (lab.home.adapters / "facts").rename(lab.home.adapters / "old2")
        write_adapter(lab, "facts", "gemma3-270m", sha="c" * 64)
        assert resolve_adapter(lab, "facts", spec).name == "facts"
    finally:
        s.close()
    # a served name that is not the lab's model id: `base=` says which model it is
    s = FakeServer(models=("g3", "facts"))
    try:
        lab, spec = server_lab(tmp_path / "2", s, model="g3?base=gemma3-270m")
        write_adapter(lab, "facts", "gemma3-270m")
        assert resolve_adapter(lab, "facts", spec).name == "facts"
        lab, spec = server_lab(tmp_path / "3", s, model="g3")
        write_adapter(lab, "facts", "gemma3-270m")
        with pytest.raises(AdapterError, match=r"#g3\?base=MODEL_ID"):
            resolve_adapter(lab, "facts", spec)
    finally:
        s.close()
