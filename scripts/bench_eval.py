#!/usr/bin/env python
"""Evaluation speed and scoreboards, measured in one run.

1. Shared-prefix reuse: the few-shot arm's system prompt + k examples is the same for every
   question, and llama.cpp keeps the longest common token prefix in its KV cache. The same
   examples run with reuse on and off, interleaved (on(i) right after off(i-1), so each "on"
   call finds exactly the shared prefix in the cache and load drift hits both modes alike);
   prints examples/second for each and the ratio (target: >= 3x at k = 8).
2. The wall time of the `tickets` evaluation across the available arms (`--limit` to shorten).
3. `--scoreboards`: the scoreboard of each built-in scenario on the default model.

    python scripts/bench_eval.py                       # reuse bench + full tickets eval
    python scripts/bench_eval.py --limit 20 --n 6      # shorter
    python scripts/bench_eval.py --skip-full --scoreboards --limit 20
    python scripts/bench_eval.py --quick               # a short check: specialty k=2 n=2, tickets 2 examples
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from lab import ladder
from lab.engine import Lab
from lab.evaluation import run_eval, summarize
from lab.prompts import few_shot
from lab.tasks import load_task


def bench_reuse(lab: Lab, task_name: str, k: int, n: int) -> dict:
    task = load_task(task_name)
    backend = lab.backend()
    pool = ladder.few_shot_pool(task)
    examples = task.examples("eval")[: n + 1]  # +1: a warm-up that is not timed
    shots = ladder.fixed_shots(pool, k)
    opts = lab.options(max_tokens=task.max_tokens, temperature=0.0, seed=0)

    def one(ex, reuse: bool):
        backend.reuse_prefix = reuse
        s = ladder.fit_shots(lab, None, ex.input, shots, task.instruction, task.max_tokens)
        t0 = time.perf_counter()
        gen = backend.generate(few_shot(ex.input, s, task.instruction), opts)
        return time.perf_counter() - t0, gen, len(s)

    one(examples[0], reuse=False)  # warm-up: model pages in, caches fill
    off_s, on_s, same, used = [], [], 0, []
    for ex in examples[1:]:
        t_on, g_on, k_used = one(ex, reuse=True)  # the cache holds the previous prompt: shared prefix only
        t_off, g_off, _ = one(ex, reuse=False)  # reset: the whole prompt again
        on_s.append(t_on)
        off_s.append(t_off)
        same += g_on.text == g_off.text
        used.append(k_used)
        print(
            f"  {ex.id}: prompt {g_off.prompt_tokens} tok, completion {g_off.completion_tokens} tok, "
            f"reuse off {t_off:.2f}s, on {t_on:.2f}s",
            file=sys.stderr,
        )
    backend.reuse_prefix = True
    return {
        "task": task_name,
        "k": k,
        "k_used": min(used),
        "n": len(on_s),
        "off_ex_per_s": len(off_s) / sum(off_s),
        "on_ex_per_s": len(on_s) / sum(on_s),
        "ratio": sum(off_s) / sum(on_s),
        "median_off_s": statistics.median(off_s),
        "median_on_s": statistics.median(on_s),
        "identical_answers": f"{same}/{len(on_s)}",
    }


def available_arms(lab: Lab, task) -> list[str]:
    arms = ["zero-shot", "few-shot"] + (["rag"] if task.corpus else [])
    try:
        ladder.resolve_adapter(lab, task.name)
        arms += ["tune"] + (["tune+rag"] if task.corpus else [])
    except Exception as e:  # noqa: BLE001
        print(f"  (no tune arms for {task.name}: {e})", file=sys.stderr)
    return arms


def timed_eval(lab: Lab, task_name: str, limit: int | None, arms: list[str] | None = None):
    task = load_task(task_name)
    arms = arms or available_arms(lab, task)
    t0 = time.perf_counter()
    run_id = run_eval(lab, task, arms, limit=limit, fresh=True)
    wall = time.perf_counter() - t0
    return wall, summarize(lab, run_id, task=task), arms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="Lab home (default: a temporary one; adapters are looked up there)")
    ap.add_argument("--reuse-tasks", default="tickets,specialty", help="Tasks for the prefix-reuse bench")
    ap.add_argument("--k", type=int, default=8, help="Few-shot examples in the reuse bench")
    ap.add_argument("--n", type=int, default=8, help="Examples per mode in the reuse bench")
    ap.add_argument("--limit", type=int, help="Held-out examples for the full evaluations (default: all)")
    ap.add_argument("--arms", help="Arms for the tickets evaluation (default: every available one)")
    ap.add_argument("--skip-reuse", action="store_true")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--scoreboards", action="store_true", help="Also evaluate every built-in scenario")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="A short check that everything runs: the reuse bench on "
        "specialty at k=2 with 2 examples, tickets' zero-shot and few-shot on 2 held-out examples",
    )
    args = ap.parse_args()
    if args.quick:
        args.reuse_tasks, args.k, args.n, args.limit = "specialty", 2, 2, 2
        args.arms = args.arms or "zero-shot,few-shot"

    home = args.home or tempfile.mkdtemp(prefix="bench-eval-")
    lab = Lab(home=home)
    info = lab.backend().info
    print(f"model {info.id}, lab home {home}, threads {getattr(lab.backend(), 'n_threads', '?')}")

    if not args.skip_reuse:
        print(f"\n== few-shot arm, shared-prefix reuse off vs on (k={args.k}), interleaved in one run")
        for t in args.reuse_tasks.split(","):
            r = bench_reuse(lab, t, args.k, args.n)
            print(
                f"{r['task']:<10} k={r['k']} (fits {r['k_used']}) n={r['n']}: reuse off {r['off_ex_per_s']:.3f} ex/s "
                f"(median {r['median_off_s']:.2f}s), on {r['on_ex_per_s']:.3f} ex/s (median {r['median_on_s']:.2f}s)"
                f"  -> {r['ratio']:.2f}x   identical answers {r['identical_answers']}"
            )

    if not args.skip_full:
        limit = f"first {args.limit}" if args.limit else "all"
        print(f"\n== tickets evaluation ({limit} held-out examples)")
        wall, board, arms = timed_eval(lab, "tickets", args.limit, args.arms.split(",") if args.arms else None)
        print(
            f"arms {','.join(arms)}: {wall:.1f} s wall, {board.arms[0].n} examples x {len(arms)} arms "
            f"= {sum(a.n for a in board.arms) / wall:.3f} ex/s"
        )
        print(board.to_text())

    if args.scoreboards:
        from lab.tasks import builtin_tasks

        for name in builtin_tasks():
            if name == "tickets" and not args.skip_full:
                continue
            print(f"\n== {name}")
            wall, board, arms = timed_eval(lab, name, args.limit, None)
            print(f"arms {','.join(arms)}: {wall:.1f} s wall")
            print(board.to_text())


if __name__ == "__main__":
    main()
