"""Talking to an OpenAI-compatible server (vLLM, llama.cpp's llama-server, llama-cpp-python's
server, ...) over httpx: retries with backoff, the models it serves, its tokenizer, its adapters.

The routes beyond `/v1/chat/completions` and `/v1/models` differ per engine; each is probed once
and the answer cached:
- tokens: vLLM `POST /tokenize {"prompt"}`, llama-server `POST /tokenize {"content"}`,
  llama-cpp-python `POST /extras/tokenize {"input"}`;
- the prompt the chat template makes: llama-server `POST /apply-template`, vLLM `POST /tokenize
  {"messages"}` then `/detokenize`;
- adapters: vLLM and llama-cpp-python serve each one as a model of its own name (the request's
  `model`); llama-server loads them at start and lists them at `GET /lora-adapters` (the request
  selects one with `"lora": [{"id", "scale"}]`).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .base import BackendError, ServerUnavailable

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
PROBE_TEXT = "Hello world, how are you?"


class RetryableStatus(Exception):
    def __init__(self, response: httpx.Response):
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.read().decode("utf-8", errors="replace")
    except httpx.HTTPError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code}: {body[:300]}"


class ServerClient:
    """One httpx client (a connection pool, safe to share between threads) for one server URL
    (`http://host:port/v1`). `retries` more tries after a connect error, a timeout, 429 or 5xx,
    waiting `backoff_s` * 2^n (jittered, capped at 10 s, or the server's Retry-After)."""

    def __init__(
        self, url: str, api_key: str | None = None, timeout: float = 300, retries: int = 4, backoff_s: float = 0.5
    ):
        self.url = url.rstrip("/")
        self.root = self.url[:-3] if self.url.endswith("/v1") else self.url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers=headers,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.retries, self.backoff_s = retries, backoff_s
        self._models: list[dict] | None = None
        self.lists_models = True
        self._probed: dict[str, Any] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    # -- requests with retries --------------------------------------------------------------
    def with_retries(self, what: str, attempt: Callable[[], Any]) -> Any:
        """Run `attempt()` until it returns; retry what a busy or restarting server causes."""
        for n in range(self.retries + 1):
            try:
                return attempt()
            except RetryableStatus as e:
                error: str = _detail(e.response)
                wait = _retry_after(e.response)
            except (httpx.TransportError, httpx.TimeoutException) as e:  # refused, reset, timed out
                error, wait = f"{type(e).__name__}: {e}", None
            if n == self.retries:
                raise ServerUnavailable(
                    f"the server at {self.url} failed {what} {self.retries + 1} times ({error}): is it "
                    "running? Start it again and rerun: finished examples are kept, the run resumes"
                )
            delay = wait if wait is not None else min(10.0, self.backoff_s * 2**n) * (0.5 + random.random() / 2)
            log.warning("%s: %s; retrying in %.1f s", what, error, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def call(
        self,
        method: str,
        url: str,
        body: dict | None = None,
        *,
        what: str,
        retry: bool = True,
        ok_missing: bool = False,
    ) -> Any:
        """One JSON request; returns the decoded body (None for a 404/405/400/422 when `ok_missing`:
        the route or shape is not this engine's). Other 4xx: BackendError with the server's words."""

        def attempt():
            r = self.http.request(method, url, json=body)
            if r.status_code in RETRY_STATUS:
                raise RetryableStatus(r)
            if ok_missing and r.status_code in (400, 404, 405, 422, 501):
                return None
            if r.status_code >= 400:
                raise BackendError(f"the server at {self.url} refused {what}: {_detail(r)}")
            try:
                return r.json()
            except json.JSONDecodeError as e:
                if ok_missing:  # a probe answered by something else (a catch-all route)
                    return None
                raise BackendError(f"the server at {self.url} sent {what} that is not JSON: {e}") from e

        if not retry:
            try:
                return attempt()
            except (httpx.TransportError, RetryableStatus):
                return None
        return self.with_retries(what, attempt)

    # -- what it serves ---------------------------------------------------------------------
    def models(self, refresh: bool = False) -> list[dict]:
        """The entries of `/v1/models` (vLLM adds root, parent and max_model_len)."""
        if self._models is None or refresh:
            data = self.call("GET", f"{self.url}/models", what="the list of models (/v1/models)", ok_missing=True)
            self.lists_models = isinstance(data, dict)  # a server without the route: names are unchecked
            self._models = list((data or {}).get("data") or []) if self.lists_models else []
        return self._models

    def model_entry(self, name: str | None) -> dict:
        """The served model `name` (None: the only one, or the first listed); a clear error naming
        what the server serves otherwise (llama-cpp-python's server would silently answer with
        its default model instead)."""
        entries = self.models()
        ids = [m.get("id") for m in entries]
        if not self.lists_models:
            log.warning("the server at %s does not list its models (/v1/models): '%s' is not checked", self.url, name)
            return {"id": name or "default"}
        if not entries:
            raise BackendError(f"the server at {self.url} lists no models at /v1/models")
        if name is None:
            return entries[0]
        for m in entries:
            if m.get("id") == name:
                return m
        raise BackendError(
            f"the server at {self.url} serves no model '{name}' (it serves: {', '.join(map(str, ids))}): "
            f"use openai:{self.url}#NAME with one of those"
        )

    def context_length(self, entry: dict) -> int | None:
        """The server's context window where it says: vLLM's max_model_len, llama-server's /props."""
        if entry.get("max_model_len"):
            return int(entry["max_model_len"])
        props = self.call("GET", f"{self.root}/props", what="/props", ok_missing=True, retry=False)
        if isinstance(props, dict):
            settings = props.get("default_generation_settings") or {}
            n = settings.get("n_ctx") or props.get("n_ctx")
            return int(n) if n else None
        return None

    def lora_adapters(self) -> list[dict]:
        """llama-server's adapters loaded at start ([] on engines without the route)."""
        if "lora" not in self._probed:
            data = self.call("GET", f"{self.root}/lora-adapters", what="/lora-adapters", ok_missing=True, retry=False)
            self._probed["lora"] = data if isinstance(data, list) else []
        return self._probed["lora"]

    # -- its tokenizer ----------------------------------------------------------------------
    def _tokenize_routes(self, model: str) -> list[tuple[str, str, Callable[[str], dict]]]:
        return [
            ("vllm", f"{self.root}/tokenize", lambda t: {"model": model, "prompt": t, "add_special_tokens": False}),
            ("llama-server", f"{self.root}/tokenize", lambda t: {"content": t, "add_special": False}),
            ("llama-cpp-python", f"{self.root}/extras/tokenize", lambda t: {"model": model, "input": t}),
        ]

    def tokenizer_route(self, model: str) -> tuple | None:
        """The first tokenize route that counts a probe sentence (cached); None: the server has none.
        `offset` is what the route adds to every count (a BOS token), measured on ""."""
        with self._lock:
            if "tokenize" not in self._probed:
                self._probed["tokenize"] = None
                for name, url, body in self._tokenize_routes(model):
                    data = self.call("POST", url, body(PROBE_TEXT), what="/tokenize", ok_missing=True, retry=False)
                    if _count(data):
                        offset = _count(self.call("POST", url, body(""), what="/tokenize", ok_missing=True)) or 0
                        self._probed["tokenize"] = (name, url, body, offset)
                        break
            return self._probed["tokenize"]

    def count_tokens(self, model: str, text: str) -> int | None:
        route = self.tokenizer_route(model)
        if route is None:
            return None
        _, url, body, offset = route
        return max(0, _count(self.call("POST", url, body(text), what="/tokenize")) - offset)

    def apply_template(self, model: str, messages: list[dict]) -> str | None:
        """The prompt text the server's chat template makes of `messages`, where it can say."""
        style = self._probed.get("template", "?")
        if style in ("?", "llama-server"):
            data = self.call(
                "POST",
                f"{self.root}/apply-template",
                {"messages": messages},
                what="/apply-template",
                ok_missing=True,
                retry=False,
            )
            if isinstance(data, dict) and isinstance(data.get("prompt"), str):
                self._probed["template"] = "llama-server"
                return data["prompt"]
        if style in ("?", "vllm"):
            data = self.call(
                "POST",
                f"{self.root}/tokenize",
                {"model": model, "messages": messages, "add_generation_prompt": True},
                what="/tokenize",
                ok_missing=True,
                retry=False,
            )
            if isinstance(data, dict) and data.get("tokens"):
                text = self.call(
                    "POST",
                    f"{self.root}/detokenize",
                    {"model": model, "tokens": data["tokens"]},
                    what="/detokenize",
                    ok_missing=True,
                    retry=False,
                )
                if isinstance(text, dict) and isinstance(text.get("prompt"), str):
                    self._probed["template"] = "vllm"
                    return text["prompt"]
        self._probed["template"] = None
        return None


def _count(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("count"), int):
        return data["count"]
    tokens = data.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(30.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


# ---- adapters by name ------------------------------------------------------------------------


def read_manifest(adapter_dir: str | Path) -> dict:
    """The lab adapter's manifest (lab_adapter.json): its name is the folder's, its base model
    id and sha256 are what the server's base is checked against."""
    path = Path(adapter_dir) / "lab_adapter.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BackendError(f"{path}: cannot read the adapter's manifest ({e})") from e


def _served_hash(entry: dict) -> str | None:
    for holder in (entry, entry.get("meta") or {}):
        for key in ("sha256", "digest"):
            value = holder.get(key)
            if isinstance(value, str) and value:
                return value.removeprefix("sha256:")
    return None


def check_base(
    client: ServerClient,
    served_base: str,
    lab_base: str,
    adapter: str,
    adapter_base: str,
    adapter_base_sha: str,
    same_model: Callable[[str, str], bool],
) -> str:
    """Refuse an adapter trained on another base than the server's: by name (`lab_base`, what the
    lab calls the served model, against the adapter's base id) and by hash where the server tells
    one. Returns what was checked: "name" or "name+sha256"."""
    if not same_model(lab_base, adapter_base):
        raise BackendError(
            f"adapter '{adapter}' was trained on {adapter_base} but the server at {client.url} serves "
            f"'{served_base}' as {lab_base}: serve the adapter on its own base (`lab adapters serve`), or name "
            f"the base with openai:{client.url}#{served_base}?base=MODEL_ID if it is the same model"
        )
    sha = _served_hash(client.model_entry(served_base))
    if sha is None:
        return "name"
    if sha != adapter_base_sha:
        raise BackendError(
            f"adapter '{adapter}' was trained on {adapter_base} (sha256 {adapter_base_sha[:12]}) but "
            f"the server's '{served_base}' has sha256 {sha[:12]}: not the same weights"
        )
    return "name+sha256"


def adapter_fields(client: ServerClient, served_base: str, adapter: str) -> dict:
    """What a chat request carries to be answered by `adapter` on this server: vLLM and
    llama-cpp-python serve it as a model of that name; llama-server selects it by id."""
    entries = {m.get("id"): m for m in client.models(refresh=True)}
    if adapter in entries:
        parent = entries[adapter].get("parent")  # vLLM says which base an adapter runs on
        if parent and parent != served_base and entries.get(parent, {}).get("root") != served_base:
            raise BackendError(
                f"the server at {client.url} serves adapter '{adapter}' on '{parent}', not on '{served_base}'"
            )
        return {"model": adapter}
    for lora in client.lora_adapters():
        path = Path(str(lora.get("path", "")))
        if adapter in (path.parent.name, path.stem):
            return {"model": served_base, "lora": [{"id": lora.get("id"), "scale": 1.0}]}
    loras = ", ".join(str(x.get("path")) for x in client.lora_adapters()) or "none"
    raise BackendError(
        f"the server at {client.url} does not serve the adapter '{adapter}' (models: {', '.join(map(str, entries))}; "
        f"llama-server adapters: {loras}): `lab adapters serve` prints a command line that serves it"
    )
