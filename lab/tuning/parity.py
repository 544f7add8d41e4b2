"""Does llama.cpp with the exported adapter.gguf compute what transformers + PEFT computes?

For each prompt, the HF+adapter greedy continuation is fed to four models token by token
(teacher forcing): HF base, HF + PEFT adapter, llama.cpp base, llama.cpp + adapter.gguf, all on
the same loaded backends the arms use. Compared per position:
  * top-1 agreement and KL between HF and llama.cpp, without and with the adapter: the base
    pair is the quantisation noise (llama.cpp runs the Q4 weights with 8-bit activations, HF the
    same weights dequantised to float32), the adapter pair must be no worse;
  * the adapter's own effect on the logits in each engine (with - without): its relative
    difference between the engines is the export's error, free of the base model's noise.
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

    with hf.lock, hf._use_adapter(adapter), torch.no_grad():
        out = hf.model(input_ids=torch.tensor([ids], device=hf.device)).logits[0]
    return out[n_prompt - 1:len(ids) - 1].float().cpu().numpy()


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


def compare(lab, adapter: AdapterInfo, prompts: list[list[dict]], max_tokens: int = 24) -> dict:
    """Measure HF vs llama.cpp, base and tuned, on `prompts` (chat messages). Returns a dict of
    figures (see the module docstring) plus the greedy answers of both engines with the adapter."""
    hf = lab.backend(adapter.base_model, "hf")
    ll = lab.backend(adapter.base_model)  # the llama.cpp backend every arm shares
    options = lab.options(max_tokens=max_tokens, temperature=0)
    peft_dir, gguf_file = adapter.serve_path("hf"), adapter.serve_path("llamacpp")
    rows = []
    agree = {"base": [], "tuned": [], "hf_effect": [], "llama_effect": []}
    kls = {"base": [], "tuned": []}
    effect_err = []
    for messages in prompts:
        hf_gen = hf.generate(messages, options, adapter=peft_dir)
        ll_gen = ll.generate(messages, options, adapter=gguf_file)
        prompt_ids = ll.tokenize(ll.render(messages))
        cont = hf.tokenizer(hf_gen.text, add_special_tokens=False)["input_ids"] or [hf.tokenizer.eos_token_id]
        ids = prompt_ids + cont + [cont[-1]]  # one extra so every continuation token gets a row
        n = len(prompt_ids)
        hb, ht = _hf_logits(hf, ids, n, None), _hf_logits(hf, ids, n, peft_dir)
        lb, lt = _llama_logits(ll, ids, n, None), _llama_logits(ll, ids, n, gguf_file)
        agree["base"].append(float((hb.argmax(-1) == lb.argmax(-1)).mean()))
        agree["tuned"].append(float((ht.argmax(-1) == lt.argmax(-1)).mean()))
        agree["hf_effect"].append(float((hb.argmax(-1) == ht.argmax(-1)).mean()))
        agree["llama_effect"].append(float((lb.argmax(-1) == lt.argmax(-1)).mean()))
        kls["base"].append(_kl(hb, lb))
        kls["tuned"].append(_kl(ht, lt))
        d_hf, d_ll = ht - hb, lt - lb
        effect_err.append(float(np.linalg.norm(d_ll - d_hf) / max(np.linalg.norm(d_hf), 1e-9)))
        rows.append({"prompt": messages[-1]["content"][:60], "hf_tuned": hf_gen.text, "llama_tuned": ll_gen.text,
                     "same_text": hf_gen.text == ll_gen.text})
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {
        "prompts": len(prompts),
        "top1_agree_base": mean(agree["base"]),  # HF base vs llama base: the quantisation noise
        "top1_agree_tuned": mean(agree["tuned"]),  # HF+PEFT vs llama+adapter.gguf
        "top1_same_as_base_hf": mean(agree["hf_effect"]),  # how much the adapter changes HF's choices
        "top1_same_as_base_llama": mean(agree["llama_effect"]),
        "kl_base": mean(kls["base"]), "kl_tuned": mean(kls["tuned"]),
        "adapter_effect_rel_err": mean(effect_err),  # |Δllama − Δhf| / |Δhf|
        "same_text": sum(r["same_text"] for r in rows), "answers": rows,
    }
