"""Any OpenAI-compatible chat server (llama.cpp's llama-server, vLLM, Ollama, ...), for users
who outgrow one machine. Standard library only; the server is whatever URL the user names, so
the lab itself still reaches nothing on its own.

Model spec: `openai:http://127.0.0.1:8080/v1` or `openai:http://host:port/v1#model-name`
(parsed by `lab.models.describe_server`: naming models is the models module's job).
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

from ..config import GenerationOptions
from ..models import ModelInfo
from .base import BackendError, Generation


class OpenAICompatBackend:
    def __init__(self, info: ModelInfo, n_ctx: int = 2048, timeout: float = 300, api_key: str | None = None):
        self.info, self.n_ctx, self.timeout = info, n_ctx, timeout
        self.url = info.extra["url"]
        self.api_key = api_key
        self.lock = threading.Lock()

    def render(self, messages) -> str:
        # The server applies its own template; log a readable transcript instead.
        return "\n".join(f"<{m['role']}> {m['content']}" for m in messages)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # no tokenizer here: a rough estimate (~4 chars/token)

    def generate(self, messages, options: GenerationOptions | None = None, on_text=None,
                 adapter: str | None = None, adapter_sha: str | None = None,
                 cancel=None) -> Generation:
        options = options or GenerationOptions()
        if adapter:
            raise BackendError("adapters are not served through an OpenAI-compatible server by the lab")
        body = {"model": self.info.extra["model"], "messages": messages, "stream": True,
                "max_tokens": options.max_tokens, "temperature": options.temperature,
                "top_p": options.top_p, "seed": options.seed,
                "stream_options": {"include_usage": True}}
        if options.stop:
            body["stop"] = options.stop
        if options.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": options.json_schema}}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.url}/chat/completions", json.dumps(body).encode(), headers)
        t0, ttft, pieces, usage, finish = time.perf_counter(), None, [], {}, "stop"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                for raw in resp:
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    if cancel is not None and cancel.is_set():  # closing the stream stops the server
                        finish = "cancelled"
                        break
                    chunk = json.loads(data)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices", []):
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            ttft = ttft if ttft is not None else time.perf_counter() - t0
                            pieces.append(piece)
                            if on_text:
                                on_text(piece)
                        finish = choice.get("finish_reason") or finish
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as e:
            raise BackendError(f"OpenAI-compatible server at {self.url} failed: {e}") from e
        total = time.perf_counter() - t0
        text = "".join(pieces)
        prompt_text = self.render(messages)
        return Generation(
            text=text.strip(), prompt_tokens=usage.get("prompt_tokens") or self.count_tokens(prompt_text),
            completion_tokens=usage.get("completion_tokens") or self.count_tokens(text),
            ttft_s=ttft if ttft is not None else total, total_s=total, prompt_text=prompt_text,
            finish_reason=finish, model_id=self.info.id, extra={"usage_reported": bool(usage)})
