"""Hugging Face models through transformers: HF folders (a model's `hf_path`), and GGUF-only
models loaded with transformers' GGUF support (dequantised, cached once), so LoRA adapters are
trained on the same weights the llama.cpp arms run. PEFT adapters are switched on the one loaded
model. On CUDA the weights load in bf16 straight onto the GPU (`device_map`); on the CPU in float32.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

from ..config import GenerationOptions
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
from .constrain import LabelTrie, end_token_ids


def cpu_supports_bf16() -> bool:
    """Native bf16 arithmetic on this CPU (AVX512-BF16 or AMX): without it bf16 is emulated, slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_dtype(dtype: str | None, device: str) -> str:
    """None: bf16 on a GPU that has it (else float16), float32 on the CPU (what the parity checks
    were measured with). "auto": the same, but bf16 also on a CPU with native bf16."""
    if dtype not in (None, "auto"):
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if dtype == "auto" and cpu_supports_bf16() else "float32"


def dequantised_dir(cache_dir: Path, dtype: str) -> Path:
    """Where a GGUF dequantised to `dtype` is cached. float32 (lossless) is `cache_dir` itself, the
    folder LoRA training reads; other dtypes sit beside it with the dtype in the name, so a float32
    consumer never gets rounded weights."""
    cache_dir = Path(cache_dir)
    return cache_dir if dtype == "float32" else cache_dir.with_name(f"{cache_dir.name}-{dtype}")


def saved_dtype(folder: Path) -> str | None:
    """The dtype a saved HF folder's weights are in (config.json), or None without one."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return config.get("dtype") or config.get("torch_dtype")


def _source(info: ModelInfo, dtype: str, cache_dir: Path | None) -> tuple[str, dict, Path | None]:
    """(folder to load, extra from_pretrained kwargs, folder to save the dequantised GGUF in)."""
    hf_folder = info.hf_path or (Path(info.path) if info.format == "hf" else None)
    if hf_folder is not None:  # the model's own HF weights: nothing to dequantise
        return str(hf_folder), {}, None
    path = Path(info.path)
    if cache_dir is None:
        return str(path.parent), {"gguf_file": path.name}, None
    own = dequantised_dir(cache_dir, dtype)
    if saved_dtype(own) == dtype:
        return str(own), {}, None
    if saved_dtype(cache_dir) == "float32":  # the lossless copy serves any dtype
        return str(cache_dir), {}, None
    return str(path.parent), {"gguf_file": path.name}, own


def load_hf_model(info: ModelInfo, dtype: str = "float32", device: str | None = None, cache_dir: Path | None = None):
    """(model, tokenizer) for a model's HF folder, or its GGUF dequantised. Shared with `lab.tuning`.

    dtype: a torch dtype name, or "auto" (see resolve_dtype). On CUDA the weights are placed with
    `device_map` (needed for bitsandbytes 4-bit folders). Dequantising a GGUF through transformers
    takes ~20-40 s; with `cache_dir` the result is saved once as an ordinary HF folder (see
    dequantised_dir) and later loads take ~1 s. A model with HF weights ignores cache_dir."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(info.hf_path or info.path)
    if not path.exists():
        raise BackendError(f"model path {path} does not exist (see `lab models`)")
    dtype = resolve_dtype(dtype, device or "cpu")
    src, kwargs, save_to = _source(info, dtype, cache_dir)
    kwargs["local_files_only"] = True
    on_gpu = bool(device) and device.startswith("cuda")
    try:
        with _gguf_read_once(active="gguf_file" in kwargs):
            tokenizer = AutoTokenizer.from_pretrained(src, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                src, dtype=getattr(torch, dtype), device_map=device if on_gpu else None, **kwargs
            )
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        raise BackendError(f"transformers could not load {src}: {e}") from e
    # Configs converted from GGUF lack `architectures`; the GGUF LoRA export needs it.
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]
    _forget_gguf_quantizer(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if save_to is not None:
        _save_atomically(model, tokenizer, save_to)
    if device and not on_gpu:
        model.to(device)
    model.eval()
    return model, tokenizer


@contextlib.contextmanager
def _gguf_read_once(active: bool = True):
    """One GGUF reader per file during one load. transformers opens a GGUF three times (config,
    tokenizer, weights), and `gguf.GGUFReader` parses every metadata entry each time: for Gemma
    3's 262k-token vocabulary that is ~18 s a parse here, 55 s of a first load. The reader is
    read-only over a memmap, so the three can share it; transformers imports the class from
    `gguf` at each call, which is where it is swapped (and put back after)."""
    try:
        import gguf
    except ImportError:
        gguf = None
    if not active or gguf is None:
        yield
        return
    original, readers = gguf.GGUFReader, {}

    def shared(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _forget_gguf_quantizer(model) -> None:
    """A GGUF dequantised to plain float weights still carries transformers' GGUF quantizer,
    which refuses save_pretrained (the cache) and marks the model untrainable (LoRA). With every
    weight already a plain tensor there is nothing quantized left: drop the marker."""
    import torch

    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or type(quantizer).__name__ != "GgufHfQuantizer":
        return
    linear_ok = all(type(m) is torch.nn.Linear for m in model.modules() if "Linear" in type(m).__name__)
    if not linear_ok:  # weights kept packed by GGUF kernels: leave it as transformers made it
        return
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _save_atomically(model, tokenizer, folder: Path) -> None:
    import os
    import shutil

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


class _Streamer:
    """transformers streamer: decodes new tokens incrementally, records time to first token."""

    def __init__(self, tokenizer, on_text, t0):
        self.tok, self.on_text, self.t0 = tokenizer, on_text, t0
        self.ids: list[int] = []
        self.sent = 0
        self.ttft = None
        self._prompt_seen = False

    def put(self, value):
        if not self._prompt_seen:  # the first call carries the prompt
            self._prompt_seen = True
            return
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.t0
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if not text.endswith("\ufffd") and len(text) > self.sent:
            if self.on_text:
                self.on_text(text[self.sent :])
            self.sent = len(text)

    def end(self):
        pass


class HFBackend:
    def __init__(
        self,
        info: ModelInfo,
        n_ctx: int = 2048,
        device: str | None = None,
        dtype: str | None = None,
        cache_dir: Path | None = None,
    ):
        import torch

        self.info = info
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = resolve_dtype(dtype, self.device)
        self.model, self.tokenizer = load_hf_model(info, dtype=self.dtype, device=self.device, cache_dir=cache_dir)
        self.placement = f"{self.device} ({self.dtype})"
        self.n_ctx = min(n_ctx, info.context_length or n_ctx)
        self.lock = threading.Lock()
        self._adapters = AdapterCache(self._load_peft, self._free_peft)  # handle: the PEFT adapter name
        self._n_loaded = 0

    def render(self, messages) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return plain_render(messages)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _load_peft(self, adapter: str) -> str:
        from peft import PeftModel

        name = f"a{self._n_loaded}"  # never reused: a retrained adapter gets a new name
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(adapter, adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, adapter, adapter_name=name)
        self.model.eval()
        self._n_loaded += 1
        return name

    def _free_peft(self, entry: LoadedAdapter) -> None:
        self.model.delete_adapter(entry.handle)

    def _use_adapter(self, adapter: str | None, sha: str | None = None):
        """(context to generate in, the adapter served): a PEFT adapter folder loaded once per
        content (see AdapterCache) and enabled, or the base model with adapters disabled."""
        import contextlib

        if adapter is None:
            if hasattr(self.model, "disable_adapter"):
                return self.model.disable_adapter(), None
            return contextlib.nullcontext(), None
        if not Path(adapter, "adapter_config.json").exists():
            raise BackendError(f"{adapter} is not a PEFT adapter folder (no adapter_config.json)")
        entry = self._adapters.get(adapter, sha)
        self.model.set_adapter(entry.handle)
        return contextlib.nullcontext(), entry

    def token_nll(self, text: str, adapter: str | None = None, adapter_sha: str | None = None) -> list[float]:
        """Each token's negative log-likelihood given those before it (see `base.text_nll`): one
        forward pass, with the PEFT adapter at `adapter` enabled or every adapter disabled."""
        import torch

        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        if len(ids) > self.n_ctx:
            raise ContextTooLong(len(ids), self.n_ctx, self.info.id)
        if len(ids) < 2:
            return []
        with self.lock:
            context, _served = self._use_adapter(adapter, adapter_sha)
            with context, torch.no_grad():
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, :-1]
        return nll_of(logits.float().cpu().numpy(), ids[1:])

    def generate(
        self,
        messages,
        options: GenerationOptions | None = None,
        on_text=None,
        adapter: str | None = None,
        adapter_sha: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        options = options or GenerationOptions()
        prompt_text = self.render(messages)
        enc = self.tokenizer(prompt_text, return_tensors="pt", add_special_tokens=False).to(self.device)
        n_prompt = enc["input_ids"].shape[1]
        if n_prompt >= self.n_ctx - 8:
            raise ContextTooLong(n_prompt, self.n_ctx, self.info.id)
        stops = list(options.stop) + ([] if getattr(self.tokenizer, "chat_template", None) else PLAIN_STOPS)
        kwargs = dict(
            max_new_tokens=min(options.max_tokens, self.n_ctx - n_prompt), pad_token_id=self.tokenizer.pad_token_id
        )
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stops:
            kwargs.update(stop_strings=stops, tokenizer=self.tokenizer)
        if options.choices:  # a label set: a trie over the labels' tokens (no JSON-schema library here)
            trie = LabelTrie.for_tokenizer(self.tokenizer, options.choices, end_token_ids(self.model, self.tokenizer))
            kwargs["prefix_allowed_tokens_fn"] = trie.prefix_fn(n_prompt)
        stopped = []  # set when the cancel event stopped generation

        class Cancelled(StoppingCriteria):  # checked after every token
            def __call__(self, input_ids, scores, **kw):
                if cancelled(cancel):
                    stopped.append(True)
                return torch.full((input_ids.shape[0],), bool(stopped), dtype=torch.bool, device=input_ids.device)

        with self.lock:
            torch.manual_seed(options.seed)
            t0 = time.perf_counter()
            streamer = _Streamer(self.tokenizer, on_text, t0)
            context, served = self._use_adapter(adapter, adapter_sha)
            if cancelled(cancel):
                stopped.append(True)
                out = enc["input_ids"]
            else:
                with context, torch.no_grad():
                    out = self.model.generate(
                        **enc, streamer=streamer, stopping_criteria=StoppingCriteriaList([Cancelled()]), **kwargs
                    )
            total = time.perf_counter() - t0
        new_ids = out[0, n_prompt:].tolist()
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        for s in stops:  # generate() stops *after* the stop string; cut it like llama.cpp does
            if s in text:
                text = text[: text.index(s)]
        finish = "cancelled" if stopped else "length" if len(new_ids) >= kwargs["max_new_tokens"] else "stop"
        return Generation(
            text=text.strip(),
            prompt_tokens=n_prompt,
            completion_tokens=len(new_ids),
            ttft_s=streamer.ttft or total,
            total_s=total,
            prompt_text=prompt_text,
            finish_reason=finish,
            model_id=self.info.id,
            adapter_id=adapter,
            extra={
                "device": self.device,
                "dtype": self.dtype,
                "constrained": bool(options.choices),
                "adapter_sha256": served.sha256 if served else None,
            },
        )
