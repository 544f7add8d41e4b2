#!/usr/bin/env python
"""How often "the adapter costs something elsewhere" is wrong, and how often a real cost is found,
measured by simulation with known truth through the lab's own decision code: each draw is shaped
as `evaluation.side_effects.measure_side_effects` writes a result (the perplexity's paired
`stats.compare` on per-passage NLLs, each other task's on its held-out scores), then judged by
`side_effects._holm` (Holm across the measurement's tests) and `side_effects.losses` (which words
a significant loss through `verdict.perplexity_rose` / `verdict.lost`). Nothing is re-implemented.

Scenarios, at the sizes the lab uses (`lab adapters check`: 24 passages, 20 examples a task; after
`lab train`: 12 and 8), with two other tasks (binary scores, true mean 0.5, the two arms sharing
each example's difficulty like real arms) and per-passage NLLs around 3.2 nats (sd 0.6 between
passages; the adapter's paired effect has sd 0.05):
- null: the adapter changes nothing (same true perplexity and task means): any loss is false;
  goal <= 5% (within 2 Monte Carlo SEs) for the family, since "costs something elsewhere" is one claim.
- power, perplexity: the adapter raises perplexity by 10%; and tasks: one task's mean drops by 0.25.

    .venv/bin/python scripts/bench_side_effects.py            # 400 draws a cell (a few minutes)
    .venv/bin/python scripts/bench_side_effects.py --quick    # 60 draws a cell
Exit status 1 when the goal FAILs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.evaluation import side_effects, stats  # noqa: E402

RHO = 0.5  # how much the two arms share an example's difficulty
NLL_MEAN, NLL_SD, EFFECT_SD = 3.2, 0.6, 0.05
TASKS = 2
TASK_MEAN = 0.5
SIZES = [(24, 20), (12, 8)]  # (passages, examples a task): lab adapters check; after lab train
SCENARIOS = {"null": (0.0, 0.0), "perplexity +10%": (math.log(1.10), 0.0), "a task -0.25": (0.0, 0.25)}


def draw_result(rng: np.random.Generator, passages: int, n: int, log_ratio: float, task_drop: float) -> dict:
    """One measurement's result dict, shaped as `measure_side_effects` writes it."""
    base = rng.normal(NLL_MEAN, NLL_SD, passages)
    tuned = base + rng.normal(log_ratio, EFFECT_SD, passages)
    ppl = stats.compare(list(base), list(tuned), "graded", name_a="base", name_b="tuned", n_boot=200)
    tasks = []
    for j in range(TASKS):
        z = math.sqrt(RHO) * rng.standard_normal(n) + math.sqrt(1 - RHO) * rng.standard_normal((2, n))
        u = sps.norm.cdf(z)
        drop = task_drop if j == 0 else 0.0
        a, b = (u[0] < TASK_MEAN).astype(float), (u[1] < TASK_MEAN - drop).astype(float)
        c = stats.compare(list(a), list(b), "binary", name_a="base", name_b="tuned", n_boot=200)
        tasks.append(
            {
                "task": f"t{j}",
                "metric": "label_accuracy",
                "base": a.mean(),
                "tuned": b.mean(),
                "comparison": c.as_dict(),
            }
        )
    result = {"perplexity": {"source": "simulated passages", "comparison": ppl.as_dict()}, "tasks": tasks}
    side_effects._holm(result)
    return result


def cell(seed: int, reps: int, passages: int, n: int, log_ratio: float, task_drop: float) -> tuple[float, float]:
    """(rate of draws where `losses` says the adapter costs something, its Monte Carlo SE)."""
    rng = np.random.default_rng(seed)
    hits = sum(bool(side_effects.losses(draw_result(rng, passages, n, log_ratio, task_drop))) for _ in range(reps))
    p = hits / reps
    return p, math.sqrt(max(p * (1 - p), 1e-12) / reps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=400, help="draws per cell")
    ap.add_argument("--quick", action="store_true", help="60 draws a cell")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    reps = 60 if args.quick else args.reps
    t0 = time.perf_counter()
    print(f"Side effects: how often a loss elsewhere is said ({reps} draws a cell, {TASKS} other tasks)")
    print(f"{'passages':>8} {'examples':>8}  " + "  ".join(f"{name:>18}" for name in SCENARIOS))
    worst = 0.0
    for i, (passages, n) in enumerate(SIZES):
        rates = [cell(args.seed + 100 * i + j, reps, passages, n, *s) for j, s in enumerate(SCENARIOS.values())]
        print(f"{passages:>8} {n:>8}  " + "  ".join(f"{100 * p:>8.1f}% ± {100 * se:>4.1f}" for p, se in rates))
        p, se = rates[0]
        worst = max(worst, p - 2 * se)
    ok = worst <= 0.05
    print(
        f"{'PASS' if ok else 'FAIL'} goal: a loss said of an adapter that changes nothing <= 5% (worst, less 2 SE: {100 * worst:.1f}%)"
    )
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
