"""GGUF models through llama.cpp (llama-cpp-python): the fast path every arm runs on.

On a llama.cpp built with GPU offload (CUDA, Metal, ...) every layer goes to the GPU unless
`n_gpu_layers` says otherwise; `placement` says where the model actually runs."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from ..config import GenerationOptions
from ..gguf_meta import read_metadata
from ..models import ModelInfo
from .base import (
    PLAIN_STOPS,
    AdapterCache,
    BackendError,
    ContextTooLong,
    Generation,
    LoadedAdapter,
    cancelled,
    nll_of,
    plain_render,
)
from .constrain import llama_grammar


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints its load log to fd 2 even with verbose=False in some builds."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


def gpu_offload_supported() -> bool:
    """True when this llama.cpp can put layers on a GPU (built with CUDA/Metal/... and one is seen)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def resolve_gpu_layers(requested: int | None, offload: bool | None = None) -> int:
    """The n_gpu_layers given to llama.cpp: None means all layers (-1) when it can offload, else 0."""
    if requested is not None:
        return requested
    offload = gpu_offload_supported() if offload is None else offload
    return -1 if offload else 0


def planned_placement(requested: int | None) -> str:
    """Where a model would run with this n_gpu_layers setting, before it is loaded (`lab models`,
    the app's banner)."""
    offload = gpu_offload_supported()
    return placement(resolve_gpu_layers(requested, offload), None, offload)


def placement(n_gpu_layers: int, n_layers: int | None, offload: bool) -> str:
    """Where the model runs, in words: "cpu", "gpu (all 30 layers)", "gpu (12/30 layers)"."""
    if n_gpu_layers == 0:
        return "cpu"
    if not offload:  # llama.cpp ignores n_gpu_layers then: say so rather than claim a GPU
        return f"cpu (this llama.cpp has no GPU offload; n_gpu_layers={n_gpu_layers} ignored)"
    if n_layers is None:
        return "gpu (all layers)" if n_gpu_layers < 0 else f"gpu ({n_gpu_layers} layers)"
    if n_gpu_layers < 0 or n_gpu_layers >= n_layers:
        return f"gpu (all {n_layers} layers)"
    return f"gpu ({n_gpu_layers}/{n_layers} layers)"


class LlamaCppBackend:
    def __init__(
        self,
        info: ModelInfo,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        verbose: bool = False,
        n_gpu_layers: int | None = None,
    ):
        from llama_cpp import Llama, llama_chat_format

        from ..threads import threads_for_load

        self.info = info
        path = Path(info.path)
        if not path.is_file():
            raise BackendError(f"model file {path} does not exist (see `lab models`)")
        meta = read_metadata(path)  # fails fast, naming the path, on a file that is not GGUF
        self.n_threads = threads_for_load(n_threads)  # free cores now, unless set explicitly
        offload = gpu_offload_supported()
        self.n_gpu_layers = resolve_gpu_layers(n_gpu_layers, offload)
        self.n_layers = meta.get(f"{meta.get('general.architecture')}.block_count")
        self.placement = placement(self.n_gpu_layers, self.n_layers, offload)
        # Adapters are attached later through llama_adapter_lora_init, not Llama(lora_path=...):
        # the latter turns mmap off, so the weights would be read into RAM as well.
        try:
            with contextlib.nullcontext() if verbose else _quiet_stderr():
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=self.n_gpu_layers,
                    seed=seed,
                    verbose=verbose,
                )
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"llama.cpp could not load {path}: {e} (corrupt or unsupported GGUF?)") from e
        self.n_ctx = self.llm.n_ctx()
        self.lock = threading.Lock()  # one llama.cpp context runs one generation at a time
        self.reuse_prefix = True  # keep the KV cache of a shared prompt prefix between calls
        self._adapters = AdapterCache(self._load_lora, self._free_lora)
        self._active_adapter: LoadedAdapter | None = None

        template = self.llm.metadata.get("tokenizer.chat_template")
        self._bos = self._token_text(self.llm.token_bos())
        self._eos = self._token_text(self.llm.token_eos())
        if template:
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=self._eos, bos_token=self._bos
            )
        else:
            self._formatter = None

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    # -- prompts ---------------------------------------------------------------------
    def render(self, messages) -> str:
        if self._formatter is None:
            return plain_render(messages)
        return self._formatter(messages=messages).prompt

    def _stops(self, options: GenerationOptions) -> list[str]:
        stops = list(options.stop)
        if self._formatter is None:
            stops += PLAIN_STOPS
        elif self._eos:
            stops.append(self._eos)
        return stops

    def tokenize(self, text: str) -> list[int]:
        # A template that writes the BOS text itself must not get a second BOS.
        add_bos = not (self._bos and text.startswith(self._bos))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # -- adapters (LoRA in GGUF form, switched on the one loaded model) -------------------
    def _load_lora(self, adapter: str):
        import llama_cpp

        ptr = llama_cpp.llama_adapter_lora_init(self.llm._model.model, adapter.encode("utf-8"))
        if not ptr:
            raise BackendError(f"llama.cpp could not load the LoRA adapter {adapter}")
        return ptr

    def _free_lora(self, entry: LoadedAdapter) -> None:
        import llama_cpp

        if self._active_adapter is entry:  # never leave a freed adapter attached to the context
            self._attach(None)
        llama_cpp.llama_adapter_lora_free(entry.handle)

    def _attach(self, entry: LoadedAdapter | None) -> None:
        import llama_cpp

        ctx = self.llm._ctx.ctx
        if entry is None:
            llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            arr = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(entry.handle)
            scales = (llama_cpp.ctypes.c_float * 1)(1.0)
            llama_cpp.llama_set_adapters_lora(ctx, arr, 1, scales)
        # The KV cache was computed with the other weights: drop it.
        self.llm.reset()
        self._active_adapter = entry

    def _set_adapter(self, adapter: str | None, sha: str | None = None) -> LoadedAdapter | None:
        """Attach the adapter at `adapter` as its content is now (see AdapterCache); None: the base model."""
        entry = None
        if adapter is not None:
            if not Path(adapter).is_file():
                raise BackendError(f"GGUF LoRA adapter {adapter} does not exist")
            entry = self._adapters.get(adapter, sha)
        if entry is not self._active_adapter:
            self._attach(entry)
        return entry

    # -- the likelihood of a text (base.text_nll) -------------------------------------------
    def token_nll(self, text: str, adapter: str | None = None, adapter_sha: str | None = None) -> list[float]:
        """Each token's negative log-likelihood given those before it (see `base.text_nll`). One
        batch asks for the logits of every position: 0.7 s for 156 tokens here, against 1.25 s fed
        token by token (as `tuning.parity` does), with the same mean to 0.001 nats (single tokens
        differ by up to ~0.2: batched matrix products round otherwise). Base and adapter are read
        the same way, so their difference is paired."""
        import llama_cpp
        import numpy as np

        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(ids) > self.n_ctx:
            raise ContextTooLong(len(ids), self.n_ctx, self.info.id)
        if len(ids) < 2:
            return []
        rows, ctx, n_vocab = [], self.llm._ctx, self.llm.n_vocab()
        with self.lock:
            self._set_adapter(adapter, adapter_sha)
            self.llm.reset()
            try:
                ctx.kv_cache_seq_rm(-1, 0, -1)
                for start in range(0, len(ids), self.llm.n_batch):
                    chunk = ids[start : start + self.llm.n_batch]
                    self.llm._batch.set_batch(chunk, n_past=start, logits_all=True)
                    ctx.decode(self.llm._batch)
                    out = llama_cpp.llama_get_logits(ctx.ctx)
                    rows.append(np.ctypeslib.as_array(out, shape=(len(chunk), n_vocab)).copy())
            except RuntimeError as e:
                raise BackendError(f"llama.cpp could not score the text: {e}") from e
            finally:  # the next generation must not reuse this cache
                ctx.kv_cache_seq_rm(-1, 0, -1)
                self.llm.reset()
        return nll_of(np.concatenate(rows)[:-1], ids[1:])

    # -- generation ------------------------------------------------------------------
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
        tokens = self.tokenize(prompt_text)
        if len(tokens) >= self.n_ctx - 8:
            raise ContextTooLong(len(tokens), self.n_ctx, self.info.id)
        max_tokens = min(options.max_tokens, self.n_ctx - len(tokens))
        grammar = llama_grammar(options)  # a GBNF string, a label set or a JSON schema, else None
        with self.lock:
            served = self._set_adapter(adapter, adapter_sha)
            if not self.reuse_prefix:
                self.llm.reset()
            t0 = time.perf_counter()
            probs = self._choice_probs(tokens, options.choices) if options.choices else None
            ttft = None
            pieces: list[str] = []
            n_completion = 0
            finish = "cancelled" if cancelled(cancel) else "stop"
            chunks = self.llm.create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=options.temperature,
                top_p=options.top_p,
                seed=options.seed,
                stop=self._stops(options) or None,
                grammar=grammar,
                stream=True,
            )
            for chunk in [] if finish == "cancelled" else chunks:
                if cancelled(cancel):  # checked between tokens: the lock is free at once
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]
                piece = choice["text"]
                if piece:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    pieces.append(piece)
                    n_completion += 1
                    if on_text:
                        on_text(piece)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            chunks.close()  # a generator left early: end llama.cpp's sampling now, under the lock
            total = time.perf_counter() - t0
        text = "".join(pieces)
        # Stream chunks are ~one token each; the exact count comes from the tokenizer.
        n_completion = self.count_tokens(text) if text else 0
        return Generation(
            text=text.strip(),
            prompt_tokens=len(tokens),
            completion_tokens=n_completion,
            ttft_s=ttft if ttft is not None else total,
            total_s=total,
            prompt_text=prompt_text,
            finish_reason=finish,
            model_id=self.info.id,
            adapter_id=adapter,
            extra={
                "n_threads": self.n_threads,
                "placement": self.placement,
                "constrained": grammar is not None,
                "adapter_sha256": served.sha256 if served else None,
                **({"choice_probs": probs} if probs else {}),
            },
        )

    def _choice_probs(self, tokens: list[int], choices: list[str]) -> dict[str, float] | None:
        """Each choice's probability as the model's next-token distribution gives it (the softmax
        over the choices' first tokens), from the prompt evaluated once: the completion that follows
        finds it in the KV cache and evaluates only its last token again. None when two choices
        start with the same token (then the first token does not tell them apart)."""
        import llama_cpp
        import numpy as np

        firsts = [(self.llm.tokenize(c.encode("utf-8"), add_bos=False, special=False) or [None])[0] for c in choices]
        if None in firsts or len(set(firsts)) != len(firsts):
            return None
        keep = 0  # the cached prefix (a judge's system prompt and rubric), as create_completion reuses it
        for cached, wanted in zip(self.llm.input_ids[: self.llm.n_tokens], tokens):
            if cached != wanted:
                break
            keep += 1
        self.llm.n_tokens = min(keep, len(tokens) - 1)  # the last token again: its logits are the ones read
        self.llm.eval(tokens[self.llm.n_tokens :])
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(self.llm._ctx.ctx), shape=(self.llm.n_vocab(),))
        chosen = logits[firsts].astype(np.float64)
        weights = np.exp(chosen - chosen.max())
        return {c: float(w) for c, w in zip(choices, weights / weights.sum())}
