"""Any OpenAI-compatible chat server (vLLM, llama.cpp's llama-server, llama-cpp-python's server,
Ollama, ...), for users who outgrow one machine. The server is whatever URL the user names, so the
lab itself still reaches nothing on its own.

Model spec: `openai:http://host:port/v1#model-name`, options after it: `?tokenizer=ID&base=ID`
(parsed by `lab.models.describe_server`). On load the backend asks `/v1/models`: an unreachable
server or a model it does not serve is a clear error there, not on the first answer.

- Concurrent: `concurrent = True`, so the evaluation runner sends several requests at once; one
  httpx connection pool serves every thread. Connect errors, timeouts, 429 and 5xx are retried
  with backoff (`server_api.ServerClient`); when they keep failing, `ServerUnavailable`.
- Tokens: counted by the server's `/tokenize`, else by the local tokenizer the spec names, else
  estimated (~4 characters a token, logged once, and `token_counts: "estimated"` in the answer).
- Adapters: the tune arms hand over the lab's adapter folder; the request names the adapter as
  the server serves it (`server_api.adapter_fields`), after checking the server's base is the
  adapter's (`check_adapter`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import httpx

from ..config import GenerationOptions
from ..models import ALIASES, ModelInfo
from .base import BackendError, ContextTooLong, Generation, cancelled
from .server_api import RETRY_STATUS, RetryableStatus, ServerClient, adapter_fields, check_base, read_manifest

log = logging.getLogger(__name__)


def _same_model(a: str, b: str) -> bool:
    return ALIASES.get(a, a) == ALIASES.get(b, b)


class OpenAICompatBackend:
    concurrent = True  # a server takes several requests at once (the runner's --concurrency)

    def __init__(
        self,
        info: ModelInfo,
        n_ctx: int = 2048,
        timeout: float = 300,
        api_key: str | None = None,
        retries: int = 4,
        backoff_s: float = 0.5,
    ):
        self.info = info
        self.url = info.extra["url"]
        self.client = ServerClient(
            self.url, api_key or os.environ.get("LAB_OPENAI_API_KEY"), timeout, retries, backoff_s
        )
        requested = info.extra.get("model")
        entry = self.client.model_entry(None if requested in (None, "default") else requested)
        self.served_model = entry["id"]
        self.lab_base = info.extra.get("base") or self.served_model  # what adapters are checked against
        self.n_ctx = self.client.context_length(entry) or n_ctx
        self.tokenizer = None
        if info.extra.get("tokenizer_path"):
            from .local_tokenizer import LocalTokenizer

            self.tokenizer = LocalTokenizer(info.extra["tokenizer_path"])
        self._adapters: dict[tuple[str, str], dict] = {}
        self._schema_style = "json_schema"  # OpenAI's; llama-cpp-python's server wants json_object + schema
        self._warned = False

    # -- tokens and prompts -------------------------------------------------------------------
    @property
    def token_counts(self) -> str:
        """How counts are made: "tokenizer" (local, exact), "server" (/tokenize) or "estimated"."""
        if self.tokenizer is not None:
            return "tokenizer"
        return "server" if self.client.tokenizer_route(self.served_model) else "estimated"

    def render(self, messages) -> str:
        """The prompt the server's template makes, where the lab can know it; else a transcript."""
        if self.tokenizer is not None:
            return self.tokenizer.render(messages)
        prompt = self.client.apply_template(self.served_model, messages)
        return prompt if prompt is not None else "\n".join(f"<{m['role']}> {m['content']}" for m in messages)

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count_tokens(text)
        n = self.client.count_tokens(self.served_model, text)
        if n is not None:
            return n
        if not self._warned:
            self._warned = True
            log.warning(
                "token counts for %s are estimated (~4 characters a token): the server has no "
                "/tokenize; name a local tokenizer: %s#%s?tokenizer=MODEL_ID",
                self.info.id,
                "openai:" + self.url,
                self.served_model,
            )
        return max(1, len(text) // 4)

    # -- adapters -----------------------------------------------------------------------------
    def check_adapter(self, name: str, base_model: str, base_sha: str) -> dict:
        """The request fields that select adapter `name` on this server, after refusing an adapter
        trained on another base (BackendError). Cached per (name, base sha)."""
        key = (name, base_sha)
        if key not in self._adapters:
            checked = check_base(self.client, self.served_model, self.lab_base, name, base_model, base_sha, _same_model)
            fields = adapter_fields(self.client, self.served_model, name)
            log.info("adapter %s on %s: %s (base checked by %s)", name, self.url, fields, checked)
            self._adapters[key] = fields
        return self._adapters[key]

    def _adapter_request(self, adapter: str) -> dict:
        """`adapter` is the lab's adapter folder (its name and manifest say what to ask for)."""
        manifest = read_manifest(adapter)
        base = manifest.get("base_model") or {}
        return self.check_adapter(Path(adapter).name, base.get("id", "?"), base.get("sha256", ""))

    # -- generation ---------------------------------------------------------------------------
    def _body(self, messages, options: GenerationOptions, max_tokens: int, adapter: str | None) -> dict:
        body = {
            "model": self.served_model,
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "seed": options.seed,
            "stream_options": {"include_usage": True},
            # llama.cpp's servers default to 1.1, unlike the local backend (and vLLM): the
            # same options must decode the same way wherever the model runs
            "repeat_penalty": 1.0,
        }
        if options.stop:
            body["stop"] = options.stop
        if options.grammar:
            body["grammar"] = options.grammar  # llama.cpp's servers take GBNF
        if options.json_schema is not None:
            body["response_format"] = self._response_format(options.json_schema)
        if adapter:
            body.update(self._adapter_request(adapter))
        return body

    def _response_format(self, schema: dict) -> dict:
        if self._schema_style == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}

    def generate(
        self,
        messages,
        options: GenerationOptions | None = None,
        on_text=None,
        adapter: str | None = None,
        adapter_sha: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        options = options or GenerationOptions()
        prompt_text = self.render(messages)
        counted = self.token_counts
        n_prompt = self.count_tokens(prompt_text)
        max_tokens = options.max_tokens
        if counted != "estimated":  # exact: the same context check as the local backend
            if n_prompt >= self.n_ctx - 8:
                raise ContextTooLong(n_prompt, self.n_ctx, self.info.id)
            max_tokens = min(max_tokens, self.n_ctx - n_prompt)
        body = self._body(messages, options, max_tokens, adapter)
        t0 = time.perf_counter()
        pieces, usage, finish, ttft = self._stream(body, on_text, cancel, t0)
        total = time.perf_counter() - t0
        text = "".join(pieces)
        return Generation(
            text=text.strip(),
            prompt_tokens=usage.get("prompt_tokens") or n_prompt,
            completion_tokens=usage.get("completion_tokens") or (self.count_tokens(text) if text else 0),
            ttft_s=ttft if ttft is not None else total,
            total_s=total,
            prompt_text=prompt_text,
            finish_reason=finish,
            model_id=self.info.id,
            adapter_id=adapter,
            extra={
                "usage_reported": bool(usage),
                "token_counts": counted,
                "served_model": body["model"],
                "adapter_sha256": adapter_sha if adapter else None,
            },
        )

    def _stream(self, body: dict, on_text, cancel, t0: float):
        """POST the chat request and read its server-sent events; retried (see ServerClient) only
        while nothing has been streamed yet, so a caller never sees a piece twice."""
        state = {"pieces": [], "usage": {}, "finish": "stop", "ttft": None}

        def attempt():
            state.update(pieces=[], usage={}, finish="stop", ttft=None)
            with self.client.http.stream("POST", f"{self.url}/chat/completions", json=body) as r:
                if r.status_code >= 400:
                    detail = r.read().decode("utf-8", errors="replace")
                    shape = body.get("response_format") or {}
                    # llama-cpp-python's server answers OpenAI's json_schema shape with a 500 that
                    # names response_format: a refusal of the shape, not a failure to retry
                    refused = r.status_code in (400, 422) or "response_format" in detail
                    if shape.get("type") == "json_schema" and refused:
                        self._schema_style = "json_object"  # the other shape of the same request
                        body["response_format"] = self._response_format(shape["json_schema"]["schema"])
                        return attempt()
                    if r.status_code in RETRY_STATUS:
                        raise RetryableStatus(r)
                    raise BackendError(
                        f"the server at {self.url} refused the request: HTTP {r.status_code}: {detail[:300]}"
                    )
                try:
                    self._read_events(r, state, on_text, cancel, t0)
                except (httpx.TransportError, httpx.TimeoutException):
                    if state["pieces"] and on_text is not None:  # already shown: do not stream it twice
                        raise BackendError(f"the server at {self.url} dropped the answer midway") from None
                    raise

        self.client.with_retries("the chat request", attempt)
        return state["pieces"], state["usage"], state["finish"], state["ttft"]

    @staticmethod
    def _read_events(r: httpx.Response, state: dict, on_text, cancel, t0: float) -> None:
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue  # comments (": ping"), event names, blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                break
            if cancelled(cancel):  # closing the stream stops the server
                state["finish"] = "cancelled"
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError as e:
                raise BackendError(f"the server sent an event that is not JSON: {data[:200]!r}") from e
            if chunk.get("error"):
                raise BackendError(f"the server failed the request: {chunk['error']}")
            state["usage"] = chunk.get("usage") or state["usage"]
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    state["ttft"] = state["ttft"] if state["ttft"] is not None else time.perf_counter() - t0
                    state["pieces"].append(piece)
                    if on_text:
                        on_text(piece)
                state["finish"] = choice.get("finish_reason") or state["finish"]
