#!/usr/bin/env python
"""How often the judge's certificate is wrong, and how often your blind ratings' verdict is, measured
by simulation with known truth through the lab's own code (`certificate.certify`, the gate every
face uses, and `pairwise.preference_of`, the sign test on preferences). Nothing is re-implemented.

The certificate. Your rating of each pair is drawn from a realistic spread (the tuned arm preferred
50%, the other 25%, no preference 25%); the judge copies your rating with probability q and otherwise
draws its own from the same spread, so its true Cohen's kappa is q. The gate trusts a judge whose
kappa's lower 95% bound is >= 0.4 on >= 20 pairs (flips and unreadable verdicts held at 0 here:
they have their own thresholds). Goals:
  1. a judge whose true kappa is at or below 0.4 is trusted in at most 5% of draws (within 2 Monte
     Carlo SEs) at every size: trusting a bad judge is the error that matters;
  2. a good judge (kappa 0.8) is trusted in most draws (> 50%) at 40 pairs: the bar can be cleared.
Your verdict. "You preferred B" under the null (each arm preferred equally often, 25% ties) must be
said in at most 5% of draws (within 2 SEs), at 20, 40 and 80 pairs.

    .venv/bin/python scripts/bench_certificate.py            # 1000 draws a cell (~1 min)
    .venv/bin/python scripts/bench_certificate.py --quick    # 150 draws a cell
Exit status 1 when a goal FAILs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.evaluation import certificate, pairwise, verdict  # noqa: E402

SPREAD = {"b": 0.5, "a": 0.25, "none": 0.25}  # your ratings: the tuned arm is usually preferred
KAPPAS = [0.0, 0.2, 0.4, 0.6, 0.8]
SIZES = [20, 40, 80]


def draw(rng: np.random.Generator, n: int, q: float) -> tuple[list[str], list[str]]:
    keys, probs = list(SPREAD), list(SPREAD.values())
    you = list(rng.choice(keys, n, p=probs))
    own = list(rng.choice(keys, n, p=probs))
    copy = rng.random(n) < q
    return you, [y if c else o for y, o, c in zip(you, own, copy)]


def trusted_rate(rng, n: int, q: float, reps: int) -> float:
    hits = 0
    for _ in range(reps):
        you, says = draw(rng, n, q)
        hits += certificate.certify("sim#0", you, says, flips=0, unparseable=0, judged=n).trusted
    return hits / reps


def null_preference_rate(rng, n: int, reps: int) -> float:
    said = 0
    for _ in range(reps):
        outcomes = list(rng.choice(["a", "b", "tie"], n, p=[0.375, 0.375, 0.25]))
        said += verdict.preferred(pairwise.preference_of("a", "b", outcomes, "you"))
    return said / reps


def se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-9) / reps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="150 draws a cell instead of 1000")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    reps = 150 if args.quick else 1000
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"The judge's certificate: how often it is trusted ({reps} draws a cell)")
    print("  true kappa " + "".join(f"{n:>12} pairs" for n in SIZES))
    rates: dict[tuple[float, int], float] = {}
    for q in KAPPAS:
        cells = []
        for n in SIZES:
            rates[q, n] = trusted_rate(rng, n, q, reps)
            cells.append(f"{rates[q, n] * 100:>8.1f}% ± {se(rates[q, n], reps) * 100:3.1f}")
        print(f"  {q:>10.1f} " + "".join(f"{c:>18}" for c in cells))
    print(f"\nYour blind ratings: 'you preferred' said under the null ({reps} draws a cell)")
    nulls = {n: null_preference_rate(rng, n, reps) for n in SIZES}
    for n, r in nulls.items():
        print(f"  {n:>4} pairs: {r * 100:.1f}% ± {se(r, reps) * 100:.1f}")
    worst_bad = max((rates[q, n], q, n) for q in KAPPAS if q <= certificate.KAPPA_LOWER for n in SIZES)
    goals = [
        (
            worst_bad[0] <= 0.05 + 2 * se(worst_bad[0], reps),
            f"a judge of true kappa <= {certificate.KAPPA_LOWER} is trusted at most {worst_bad[0] * 100:.1f}% "
            f"(kappa {worst_bad[1]}, {worst_bad[2]} pairs; goal <= 5%)",
        ),
        (rates[0.8, 40] > 0.5, f"a judge of kappa 0.8 is trusted {rates[0.8, 40] * 100:.1f}% at 40 pairs (goal > 50%)"),
        (
            all(r <= 0.05 + 2 * se(r, reps) for r in nulls.values()),
            f"'you preferred' under the null at most {max(nulls.values()) * 100:.1f}% (goal <= 5%)",
        ),
    ]
    print()
    for i, (ok, text) in enumerate(goals, 1):
        print(f"{'PASS' if ok else 'FAIL'} goal {i}: {text}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0 if all(ok for ok, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
