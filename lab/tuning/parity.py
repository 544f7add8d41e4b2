"""Does llama.cpp with the exported adapter.gguf compute what transformers + PEFT computes?

For each prompt, the HF+adapter greedy continuation is fed to four models token by token
(teacher forcing): HF base, HF + PEFT adapter, llama.cpp base, llama.cpp + adapter.gguf, all on
the same loaded backends the arms use. Compared per position:
  * top-1 agreement and KL between HF and llama.cpp, without and with the adapter: the base
    pair is the quantisation noise (llama.cpp runs the Q4 weights with 8-bit activations, HF the
    same weights dequantised to float32), the adapter pair must be no worse;
  * the adapter's own effect on the logits in each engine (with - without): its relative
    difference between the engines is the export's error, free of the base model's noise
    (a q/k row order llama.cpp does not expect shows as an error of ~0.35 or more).
`logit_figures` is also what the export's tests assert on, for every supported architecture.
"""

from __future__ import annotations

import numpy as np

from .adapters import AdapterInfo


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    lp, lq = _log_softmax(p_logits.astype(np.float64)), _log_softmax(q_logits.astype(np.float64))
    return float((np.exp(lp) * (lp - lq)).sum(axis=-1).mean())


def _hf_logits(hf, ids: list[int], n_prompt: int, adapter: str | None) -> np.ndarray:
    import torch

    with hf.lock:
        context, _served = hf._use_adapter(adapter)
        with context, torch.no_grad():
            out = hf.model(input_ids=torch.tensor([ids], device=hf.device)).logits[0]
    return out[n_prompt - 1 : len(ids) - 1].float().cpu().numpy()


def _llama_logits(ll, ids: list[int], n_prompt: int, adapter: str | None) -> np.ndarray:
    import llama_cpp

    def last_logits() -> np.ndarray:  # the served Llama keeps no logits array (logits_all=False)
        ptr = llama_cpp.llama_get_logits_ith(ll.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(ll.llm.n_vocab(),)).copy()

    with ll.lock:
        ll._set_adapter(adapter)
        ll.llm.reset()
        ll.llm.eval(ids[:n_prompt])
        rows = [last_logits()]
        for t in ids[n_prompt:-1]:
            ll.llm.eval([t])
            rows.append(last_logits())
        ll.llm.reset()  # the next generation must not reuse this cache
    return np.stack(rows)


def engine_logits(hf, ll, ids: list[int], n_prompt: int, peft_dir: str, gguf_file: str) -> dict[str, np.ndarray]:
    """Logits of the four models for the positions n_prompt-1 .. len(ids)-2 (each predicting the
    next token of `ids`): HF base/tuned, llama.cpp base/tuned."""
    return {
        "hf_base": _hf_logits(hf, ids, n_prompt, None),
        "hf_tuned": _hf_logits(hf, ids, n_prompt, peft_dir),
        "llama_base": _llama_logits(ll, ids, n_prompt, None),
        "llama_tuned": _llama_logits(ll, ids, n_prompt, gguf_file),
    }


def logit_figures(hf_base, hf_tuned, llama_base, llama_tuned) -> dict:
    """How far apart the engines are, per position (rows), without and with the adapter."""
    top1 = lambda x, y: float((x.argmax(-1) == y.argmax(-1)).mean())  # noqa: E731
    d_hf, d_ll = hf_tuned - hf_base, llama_tuned - llama_base
    return {
        "top1_agree_base": top1(hf_base, llama_base),  # HF base vs llama base: the quantisation noise
        "top1_agree_tuned": top1(hf_tuned, llama_tuned),  # HF+PEFT vs llama+adapter.gguf
        "top1_same_as_base_hf": top1(hf_base, hf_tuned),  # how much the adapter changes HF's choices
        "top1_same_as_base_llama": top1(llama_base, llama_tuned),
        "kl_base": _kl(hf_base, llama_base),
        "kl_tuned": _kl(hf_tuned, llama_tuned),
        "max_abs_base": float(np.abs(hf_base - llama_base).max()),
        "max_abs_tuned": float(np.abs(hf_tuned - llama_tuned).max()),
        "adapter_effect_norm": float(np.linalg.norm(d_hf) / max(np.linalg.norm(hf_base), 1e-9)),
        "adapter_effect_rel_err": float(np.linalg.norm(d_ll - d_hf) / max(np.linalg.norm(d_hf), 1e-9)),
    }


def compare(lab, adapter: AdapterInfo, prompts: list[list[dict]], max_tokens: int = 24) -> dict:
    """Measure HF vs llama.cpp, base and tuned, on `prompts` (chat messages). Returns the mean of
    `logit_figures` over the prompts plus the greedy answers of both engines with the adapter."""
    hf = lab.backend(adapter.base_model, "hf")
    ll = lab.backend(adapter.base_model)  # the llama.cpp backend every arm shares
    options = lab.options(max_tokens=max_tokens, temperature=0)
    peft_dir, gguf_file = adapter.serve_path("hf"), adapter.serve_path("llamacpp")
    rows, figures = [], []
    for messages in prompts:
        hf_gen = hf.generate(messages, options, adapter=peft_dir)
        ll_gen = ll.generate(messages, options, adapter=gguf_file)
        prompt_ids = ll.tokenize(ll.render(messages))
        cont = hf.tokenizer(hf_gen.text, add_special_tokens=False)["input_ids"] or [hf.tokenizer.eos_token_id]
        ids = prompt_ids + cont + [cont[-1]]  # one extra so every continuation token gets a row
        figures.append(logit_figures(**engine_logits(hf, ll, ids, len(prompt_ids), peft_dir, gguf_file)))
        rows.append(
            {
                "prompt": messages[-1]["content"][:60],
                "hf_tuned": hf_gen.text,
                "llama_tuned": ll_gen.text,
                "same_text": hf_gen.text == ll_gen.text,
            }
        )
    keys = logit_figures(*[np.zeros((1, 2))] * 4)  # only the names: no prompts gives NaNs
    result = {"prompts": len(prompts)}
    for key in keys:
        values = [f[key] for f in figures]
        result[key] = (max(values) if key.startswith("max_") else float(np.mean(values))) if values else float("nan")
    result.update(same_text=sum(r["same_text"] for r in rows), answers=rows)
    return result
