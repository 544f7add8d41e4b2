#!/usr/bin/env python
"""Backend speed, side by side in one run, on the same model and prompts.

Prints prompt-processing and generation tokens/s for llama.cpp and transformers (their ratio),
and the lab's overhead over calling `llama_cpp.Llama` directly (target: under 5%).

The overhead side goes through `Lab.generate` as the zero-shot arm (every generation the lab
logs is one of the ladder's arms), with the zero-shot arm's own messages (`prompts.zero_shot`).

    python scripts/bench_backends.py            # default model, 6 prompts x 3 rounds
    python scripts/bench_backends.py --skip-hf  # llama.cpp only
    python scripts/bench_backends.py --quick    # a short check: 2 prompts, 1 round, 8 tokens
    python scripts/bench_backends.py --home .   # reuse this home's GGUF -> transformers conversion
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lab.config import GenerationOptions
from lab.engine import Lab
from lab.prompts import zero_shot

TOPICS = [
    "the ocean",
    "mountains",
    "a library",
    "winter mornings",
    "trains",
    "gardening",
    "the moon",
    "coffee",
    "bridges",
    "old maps",
]


def prompts(n: int, long: bool) -> list[list[dict]]:
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        context = (
            (
                f"Background notes on {topic}: "
                + " ".join(
                    f"Note {j}: {topic} appear in stories, songs and daily life in many ways." for j in range(12)
                )
            )
            if long
            else ""
        )
        out.append(
            zero_shot(f"{context}\nWrite a short paragraph about {topic}.", instruction="You are a helpful assistant.")
        )
    return out


def bench_backend(backend, msgs, opts, reset):
    prompt_tps, gen_tps = [], []
    for m in msgs:
        if reset:
            backend.reuse_prefix = False
        g = backend.generate(m, opts)
        prompt_tps.append(g.prompt_tokens / g.ttft_s)
        gen_tps.append(g.tokens_per_s)
    return statistics.median(prompt_tps), statistics.median(gen_tps)


def direct_llama(llm, token_lists, opts):
    """The reference: llama_cpp.Llama.create_completion on the same tokens, no lab code around it."""
    t0 = time.perf_counter()
    for tokens in token_lists:
        llm.reset()
        for _ in llm.create_completion(
            prompt=tokens, max_tokens=opts.max_tokens, temperature=0.0, seed=opts.seed, stream=True
        ):
            pass
    return time.perf_counter() - t0


def via_lab(lab, model, msgs, opts):
    """The lab's one generation path, on the very model the reference calls (`lab.backend(model)`:
    one llama.cpp context, one thread count; a second copy would compete for the cores)."""
    backend = lab.backend(model)
    backend.reuse_prefix = False  # the reference resets too: compare like with like
    t0 = time.perf_counter()
    for m in msgs:  # render + tokenize + stream + SQLite row
        lab.generate(m, arm="zero-shot", model=model, options=opts)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model id or path (default: the embedded SmolLM2)")
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3, help="overhead rounds (median taken)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--skip-hf", action="store_true", help="skip the transformers backend")
    ap.add_argument(
        "--home",
        help="lab home whose cache of GGUF models converted for transformers to reuse "
        "(the bench still logs to a throwaway home; default: convert afresh, timed in the load line)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="a short check that everything runs: 2 prompts, 1 round, 8 tokens"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.rounds, args.max_tokens = 2, 1, 8

    home = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    if args.home:  # share the real home's converted models, as scripts/bench_training.py does
        cache = Path(args.home).resolve() / ".lab" / "hf"
        cache.mkdir(parents=True, exist_ok=True)
        (home / ".lab").mkdir()
        os.symlink(cache, home / ".lab" / "hf")
    lab = Lab(home=home)
    opts = GenerationOptions(max_tokens=args.max_tokens, stop=["\n\n\n"])
    llama = lab.backend(args.model)  # the model's own engine: the one lab.generate uses below
    if not hasattr(llama, "llm"):
        raise SystemExit(f"{llama.info.id} does not run on llama.cpp here: bench_backends needs a GGUF model")
    msgs = prompts(args.prompts, long=True)
    print(f"model: {llama.info.id}  threads: {llama.n_threads}  prompts: {len(msgs)}  max_tokens: {args.max_tokens}")
    bench_backend(llama, msgs[:1], opts, reset=True)  # warm-up
    l_prompt, l_gen = bench_backend(llama, msgs, opts, reset=True)

    rows = [("llama.cpp", l_prompt, l_gen)]
    if not args.skip_hf:
        t0 = time.perf_counter()
        hf = lab.backend(args.model, "hf")
        print(f"transformers load: {time.perf_counter() - t0:.1f} s (GGUF dequantised; cached after the first time)")
        bench_backend(hf, msgs[:1], opts, reset=False)
        h_prompt, h_gen = bench_backend(hf, msgs, opts, reset=False)
        rows.append(("transformers", h_prompt, h_gen))

    print(f"\n{'backend':<14}{'prompt tok/s':>14}{'gen tok/s':>12}")
    for name, p, g in rows:
        print(f"{name:<14}{p:>14.1f}{g:>12.1f}")
    if len(rows) == 2:
        print(f"{'ratio llama/hf':<14}{l_prompt / rows[1][1]:>13.2f}x{l_gen / rows[1][2]:>11.2f}x")

    # Overhead: same prompts, same tokens, same max_tokens; alternate the order each round.
    token_lists = [llama.tokenize(llama.render(m)) for m in msgs]
    direct, lab_t = [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            direct.append(direct_llama(llama.llm, token_lists, opts))
            lab_t.append(via_lab(lab, args.model, msgs, opts))
        else:
            lab_t.append(via_lab(lab, args.model, msgs, opts))
            direct.append(direct_llama(llama.llm, token_lists, opts))
    d, via = statistics.median(direct), statistics.median(lab_t)
    print(
        f"\nlab overhead over llama_cpp.Llama directly: {d:.2f} s direct vs {via:.2f} s via lab.generate "
        f"-> {100 * (via - d) / d:+.1f}% (target < 5%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
