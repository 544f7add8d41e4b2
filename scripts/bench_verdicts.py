#!/usr/bin/env python
"""How often the lab's verdicts are wrong, measured by simulation with known truth through the
lab's own decision code (nothing here re-implements a rule):

- `verdict.meets` (one arm), the prompt sweep's pick (`prompt_rung.best_prompt_config`, judged as
  the best of N), the climb (`climb.decide.next_step` after the prompt step) and the advisor's
  choice (`evaluation.rung_choice.choose`);
- `stats.compare` through `verdict.helped` ("tuning helped"), and the learning curve's crossover
  (`curve.find_crossover`);
- `verdict.as_good_as` and `choose`'s "as good" pick (non-inferiority);
- `stats.mean_ci` (the Clopper-Pearson interval every "meets" reads).

Scores are drawn per example with a difficulty shared by every arm (a Gaussian copula: arm j's
uniform is Phi(sqrt(RHO) z_i + sqrt(1 - RHO) e_ij), so arms are correlated across examples as real
arms are) and each arm's true mean set exactly: binary scores are 1[u < p]; graded ones take the
levels 0, 0.5 and 1 (partial credit) with mean exactly p; coverage also uses a Beta(p, 1 - p)
score (the most spread a continuous [0, 1] score with mean p gets here).

Scenarios, TARGET 0.75 and MARGIN 0.05 (rows: score_type x n held-out examples x N prompt configurations):
 1. every configuration and tune sit exactly at the target: a "meets" is false. (a) one arm;
    (b) the sweep's best of N judged with candidates=N; (c) the climb after the prompt step; (d)
    `choose` over the advisor's rungs (N = 1: the run's zero-shot, few-shot and tune, each alone;
    N > 1: the sweep's best of N and tune), counting "meets" and "as-good" (both say the target is
    reached). The same draws: (2) "tuning helped" over the best of N is false, and so is a
    crossover (`find_crossover` with the N configurations as few-shot points and three tuned sizes).
 3. tune truly better by 2 x MARGIN: "the cheaper rung is as good" is false (`choose`'s "as-good",
    and `as_good_as` of the best of N against tune, candidates=N).
 4. interval coverage (separate table): `mean_ci` containing the truth, and its lower end above it.
 6. racing (separate table): the sweep's N configurations with true accuracies spread evenly over
    RACE_SPREAD; `race_slice` and `racing_drops` decide what stops after the slice. Printed: the
    share of answers saved, how often the truly best configuration was dropped, and how often the
    pick (`best_prompt_config` over the survivors on all n) equals the pick without racing.
 5. power: tune better than the prompt configurations by GAIN (`compare`, through `helped`), and
    the best of N configurations all at TARGET + GAIN judged "meets".
 "naive" columns judge the best of N as if it were one arm (candidates=1), for contrast.

Goals: every false rate <= 5% (within 2 Monte Carlo SEs), coverage >= 94% at n >= 8.

    .venv/bin/python scripts/bench_verdicts.py                 # R = 2000; paired tests 400 / graded 100
    .venv/bin/python scripts/bench_verdicts.py --quick         # about a minute: R = 300, n = 20, 100
    .venv/bin/python scripts/bench_verdicts.py --reps 5000 --test-reps 1000 --graded-test-reps 300 --seed 7

Speed: `verdict.bound` (a pure function of mean, n and candidates) is memoized while simulating,
and `compare` gets n_boot=200 (the bootstrap interval of the difference is printed by the lab, never
decided on); the permutation test keeps the lab's n_perm. The paired tests (a few ms a call on
binary scores, 15-100 ms on graded ones) run on the first `--test-reps` / `--graded-test-reps`
draws of a cell, so those cells have fewer draws and larger SEs. Everything is seeded (one numpy
default_rng per table cell, whatever process runs it). Exit status 1 when a goal FAILs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
from scipy import stats as sps

from lab.climb import decide
from lab.evaluation import curve, stats, verdict
from lab.evaluation.prompt_rung import PromptConfig, best_prompt_config, race_slice, racing_drops
from lab.evaluation.rung_choice import AS_GOOD, Rung, choose

TARGET, MARGIN, GAIN, RHO = 0.75, verdict.MARGIN, 0.15, 0.5
FALSE_MAX, COVERAGE_MIN, N_BOOT, PARTIAL = 0.05, 0.94, 200, 0.2
NS, CONFIGS, SCORE_TYPES = (10, 20, 50, 100), (1, 5, 11), ("binary", "graded")
COVER_NS, COVER_MEANS, COVER_SCORE_TYPES = (8, 12, 20, 50, 100), (0.5, 0.75, 0.9), ("binary", "graded", "graded-beta")
TUNED_SIZES = (25, 50, 100)  # the curve's tuned points in scenario 1, all at the target
COLUMNS = [  # (heading, key, goal): goal 1 false meets, 2 false helped, 3 false as-good, None: not a goal
    ("1a meets", "meets_one", 1),
    ("1b sweep", "meets_best", 1),
    ("1c climb", "climb", 1),
    ("1d choose", "choose", 1),
    ("2 helped", "helped", 2),
    ("2 crossovr", "crossover", 2),
    ("3 choose", "choose_as_good", 3),
    ("3 as_good", "as_good", 3),
    ("naive 1b", "naive_best", None),
    ("naive 3", "as_good_naive", None),
    ("5 helped", "helped_power", None),
    ("5 meets", "meets_power", None),
]
GOALS = {
    1: "false 'meets the target'",
    2: "false 'tuning helped' / crossover",
    3: "false 'the cheaper rung is as good'",
}


# ---- drawing scores with known truth ---------------------------------------------------------


def to_scores(u: np.ndarray, mean: float, score_type: str) -> np.ndarray:
    """Scores with true mean exactly `mean` from uniforms u (a lower u is an easier example)."""
    if score_type == "binary":
        return (u < mean).astype(float)
    if score_type == "graded":  # 1 with prob mean - w/2, 0.5 (partial credit) with prob w, else 0
        w = min(PARTIAL, 2 * mean, 2 * (1 - mean))
        return np.where(u < mean - w / 2, 1.0, np.where(u < mean + w / 2, 0.5, 0.0))
    if score_type == "graded-beta":
        return sps.beta.ppf(u, mean, 1 - mean)
    raise ValueError(score_type)


def draw(rng: np.random.Generator, n: int, means: list[float], score_type: str, rho: float = RHO) -> np.ndarray:
    """(arms, n) scores; arm j has true mean means[j]; arms share each example's difficulty."""
    z = math.sqrt(rho) * rng.standard_normal(n) + math.sqrt(1 - rho) * rng.standard_normal((len(means), n))
    u = sps.norm.cdf(z)
    return np.stack([to_scores(u[j], m, score_type) for j, m in enumerate(means)])


def prompt_plan(n_configs: int) -> list[tuple[str, str, int, str]]:
    """(arm, mode, k, its label on the climb's path) of the sweep's configurations: zero-shot and the run's
    few-shot first, then the sweep's other (k, mode); N = 1 is the run's few-shot alone."""
    if n_configs == 1:
        return [("few-shot", "fixed", 4, "few-shot")]
    own = [("zero-shot", "fixed", 0, "zero-shot"), ("few-shot", "fixed", 4, "few-shot")]
    extra = [
        ("few-shot", m, k, f"few-shot, {k} {m} example{'s' if k != 1 else ''}")
        for k in (1, 2, 8, 16, 4)
        for m in ("fixed", "similar")
        if (k, m) != (4, "fixed")
    ]
    return (own + extra)[:n_configs]


def as_configs(rows: np.ndarray, ids: list[str], plan: list) -> list[PromptConfig]:
    return [
        PromptConfig(arm, mode, k, False, i, float(s.mean()), len(s), dict(zip(ids, s.tolist())))
        for i, ((arm, mode, k, _), s) in enumerate(zip(plan, rows))
    ]


# ---- the lab's decisions on one draw ---------------------------------------------------------


def climb_outcome(configs: list[PromptConfig], plan: list, target: float) -> str:
    """`next_step` after the prompt step, with every configuration in `results`."""
    results = {
        key: decide.ArmResult(key, c.score, None, None, c.n, ladder_arm=c.arm) for c, (*_, key) in zip(configs, plan)
    }
    s = decide.Situation(
        task="sim",
        target=target,
        output_format="label",
        has_corpus=False,
        train_examples=1000,
        eval_examples=configs[0].n,
        done=["prompt"],
        results=results,
    )
    return decide.next_step(s).outcome


def ladder_rungs(configs: list[PromptConfig], zero: PromptConfig, tune: dict) -> list[Rung]:
    """The advisor's rungs (`advisor._choose`): no sweep (N = 1): the run's zero-shot and few-shot,
    each alone; a sweep: its best configuration, judged as the best of N. Then tune."""
    if len(configs) == 1:
        prompt = [Rung(c.arm, c.arm, c.score, c.n, c.per_example) for c in (zero, configs[0])]
    else:
        b = best_prompt_config(configs)
        prompt = [Rung(b.arm, b.label(), b.score, b.n, b.per_example, candidates=len(configs))]
    return prompt + [Rung("tune", "tune", float(np.mean(list(tune.values()))), len(tune), tune)]


def _setup(rng, n: int, n_configs: int, score_type: str, tune_means: list[float], prompt_mean: float = TARGET):
    """One draw: N prompt configurations and an extra zero-shot at prompt_mean, the tuned arms at tune_means."""
    plan, ids = prompt_plan(n_configs), [f"e{i:03d}" for i in range(n)]
    rows = draw(rng, n, [prompt_mean] * (n_configs + 1) + tune_means, score_type)
    configs = as_configs(rows[:n_configs], ids, plan)
    zero = as_configs(rows[n_configs : n_configs + 1], ids, [("zero-shot", "fixed", 0, "zero-shot")])[0]
    tuned = [dict(zip(ids, r.tolist())) for r in rows[n_configs + 1 :]]
    return plan, ids, configs, zero, tuned


def _helped(best: PromptConfig, tune: dict, ids: list[str], score_type: str) -> bool:
    return verdict.helped(stats.compare([best.per_example[i] for i in ids], [tune[i] for i in ids], score_type))


def null_trial(rng, n: int, n_configs: int, score_type: str, tests: bool) -> dict[str, bool]:
    """Scenario 1: every arm at the target (goals 1 and 2)."""
    plan, ids, configs, zero, tuned = _setup(rng, n, n_configs, score_type, [TARGET] * len(TUNED_SIZES))
    best, tune = best_prompt_config(configs), tuned[-1]
    choice = choose(ladder_rungs(configs, zero, tune), TARGET, MARGIN, score_type)
    out = {
        "meets_one": verdict.meets(configs[0].score, n, TARGET).ok,
        "meets_best": verdict.meets(best.score, best.n, TARGET, n_configs).ok,
        "naive_best": verdict.meets(best.score, best.n, TARGET, 1).ok,
        "climb": climb_outcome(configs, plan, TARGET) == "meets",
        "choose": choice.state in (verdict.MEETS, AS_GOOD),
    }
    if tests:
        out["helped"] = _helped(best, tune, ids, score_type)
        few = {i: c.per_example for i, c in enumerate(configs)}
        out["crossover"] = curve.find_crossover(few, dict(zip(TUNED_SIZES, tuned)), score_type).at_n is not None
    return out


def better_trial(rng, n: int, n_configs: int, score_type: str, tests: bool) -> dict[str, bool]:
    """Scenario 3: tune truly better than every prompt configuration by 2 x MARGIN (goal 3)."""
    _, _, configs, zero, tuned = _setup(rng, n, n_configs, score_type, [TARGET + 2 * MARGIN])
    best, tune = best_prompt_config(configs), tuned[0]
    choice = choose(ladder_rungs(configs, zero, tune), TARGET, MARGIN, score_type)
    return {
        "choose_as_good": choice.state == AS_GOOD,
        "as_good": verdict.as_good_as(best.per_example, tune, MARGIN, score_type, candidates=n_configs).shown,
        "as_good_naive": verdict.as_good_as(best.per_example, tune, MARGIN, score_type, candidates=1).shown,
    }


def power_trial(rng, n: int, n_configs: int, score_type: str, tests: bool) -> dict[str, bool]:
    """Scenario 5: tune better by GAIN; and every configuration at TARGET + GAIN."""
    _, _, high, _, _ = _setup(rng, n, n_configs, score_type, [], prompt_mean=TARGET + GAIN)
    best_high = best_prompt_config(high)
    out = {"meets_power": verdict.meets(best_high.score, best_high.n, TARGET, n_configs).ok}
    if tests:
        _, ids, configs, _, tuned = _setup(rng, n, n_configs, score_type, [TARGET + GAIN])
        out["helped_power"] = _helped(best_prompt_config(configs), tuned[0], ids, score_type)
    return out


# ---- the tables ------------------------------------------------------------------------------


@contextmanager
def fast_lab():
    """Speed without changing a decision: memoize `verdict.bound` (pure in mean, n, candidates; the
    "maybe" state's more-examples search calls it dozens of times) and give `stats.compare` n_boot
    N_BOOT (its bootstrap interval of the difference is printed, never decided on)."""
    bound, compare = verdict.bound, stats.compare

    def fast_compare(*args, **kw):
        kw.setdefault("n_boot", N_BOOT)
        return compare(*args, **kw)

    verdict.bound, stats.compare = lru_cache(maxsize=None)(bound), fast_compare
    try:
        yield
    finally:
        verdict.bound, stats.compare = bound, compare


def rate(hits: int, count: int) -> dict:
    """A rate with its Monte Carlo standard error."""
    p = hits / count if count else float("nan")
    return {"rate": p, "se": math.sqrt(p * (1 - p) / count) if count else float("nan"), "reps": count}


def _rng(seed: int, *key: int) -> np.random.Generator:
    """One generator per table cell, independent of the order (and process) cells run in."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def decision_row(
    n: int,
    n_configs: int,
    score_type: str,
    reps: int,
    test_reps: int,
    seed: int,
    trials: tuple = ("null", "better", "power"),
) -> dict:
    """{column key: rate} over `reps` draws of each scenario in `trials`; the paired tests (`compare`,
    slow) on the first test_reps."""
    rng, tally = _rng(seed, 0, n, n_configs, SCORE_TYPES.index(score_type)), {}
    scenarios = [{"null": null_trial, "better": better_trial, "power": power_trial}[t] for t in trials]
    with fast_lab():
        for r in range(reps):
            for trial in scenarios:
                for key, hit in trial(rng, n, n_configs, score_type, r < test_reps).items():
                    tally.setdefault(key, [0, 0])
                    tally[key][0] += bool(hit)
                    tally[key][1] += 1
    return {"n": n, "N": n_configs, "scores": score_type, **{k: rate(*v) for k, v in tally.items()}}


def coverage_row(score_type: str, n: int, mean: float, reps: int, seed: int) -> dict:
    """How often `stats.mean_ci` holds the true mean, and how often its lower end lies above it."""
    rng = _rng(seed, 1, COVER_SCORE_TYPES.index(score_type), n, round(mean * 1000))
    inside = above = 0
    for row in to_scores(rng.random((reps, n)), mean, score_type):
        e = stats.mean_ci(row, "binary" if score_type == "binary" else "graded")
        inside += e.lo <= mean <= e.hi
        above += e.lo > mean
    return {"scores": score_type, "n": n, "mean": mean, "coverage": rate(inside, reps), "above": rate(above, reps)}


def _call(job: tuple) -> dict:
    fn, args = job
    return fn(*args)


def run_jobs(jobs: list[tuple], workers: int) -> list[dict]:
    """Run (function, args) jobs, in processes when workers > 1; results in the jobs' order."""
    if workers <= 1:
        return [_call(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_call, jobs))


def decision_table(
    ns=NS,
    configs=CONFIGS,
    score_types=SCORE_TYPES,
    reps: int = 2000,
    test_reps: int = 400,
    graded_test_reps: int = 100,
    seed: int = 0,
    workers: int = 1,
) -> list[dict]:
    """One row per score_type x n x N: the verdicts on `reps` draws, the paired tests (`compare`: a few ms
    a call on binary scores, the graded permutation test 15-100 ms) on the first test_reps draws
    (graded_test_reps for graded scores)."""
    cells = [(k, n, c) for k in score_types for n in ns for c in configs]
    jobs = [
        (decision_row, (n, c, k, reps, min(reps, test_reps if k == "binary" else graded_test_reps), seed))
        for k, n, c in cells
    ]
    order = sorted(range(len(jobs)), key=lambda i: -cells[i][1] * (5 if cells[i][0] != "binary" else 1))
    done = dict(zip(order, run_jobs([jobs[i] for i in order], workers)))  # the slowest first
    return [done[i] for i in range(len(jobs))]


def coverage_table(
    ns=COVER_NS, means=COVER_MEANS, score_types=COVER_SCORE_TYPES, reps: int = 2000, seed: int = 0, workers: int = 1
) -> list[dict]:
    jobs = [(coverage_row, (k, n, m, reps, seed)) for k in score_types for n in ns for m in means]
    return run_jobs(jobs, workers)


# ---- printing and the goals ------------------------------------------------------------------


def cell(r: dict | None) -> str:
    return "-" if r is None else f"{100 * r['rate']:.1f}±{100 * r['se']:.1f}"


def decision_text(rows: list[dict]) -> list[str]:
    head = ["scores", "n", "N"] + [h for h, _, _ in COLUMNS]
    body = [[r["scores"], str(r["n"]), str(r["N"])] + [cell(r.get(k)) for _, k, _ in COLUMNS] for r in rows]
    return _table(head, body)


def coverage_text(rows: list[dict]) -> list[str]:
    head = ["scores", "n", "true mean", "coverage %", "lower end above truth %", "reps"]
    body = [
        [
            r["scores"],
            str(r["n"]),
            f"{r['mean']:.2f}",
            cell(r["coverage"]),
            cell(r["above"]),
            str(r["coverage"]["reps"]),
        ]
        for r in rows
    ]
    return _table(head, body)


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda row: "  ".join(x.rjust(w) for x, w in zip(row, widths))  # noqa: E731
    return [line(head), line(["-" * w for w in widths])] + [line(row) for row in body]


def goal_lines(decisions: list[dict], coverage: list[dict]) -> list[str]:
    """PASS/FAIL per goal: a false rate fails when it exceeds 5% by more than 2 Monte Carlo SEs,
    coverage when it falls short of 94% by more than 2 SEs. The worst cell is named."""
    lines = []
    for goal, what in GOALS.items():
        cells = [
            (r[k], f"{h}, {r['scores']} n={r['n']} N={r['N']}")
            for r in decisions
            for h, k, g in COLUMNS
            if g == goal and k in r
        ]
        if not cells:
            continue
        worst = max(cells, key=lambda c: c[0]["rate"])
        fail = [c for c in cells if c[0]["rate"] - 2 * c[0]["se"] > FALSE_MAX]
        lines.append(
            f"{'FAIL' if fail else 'PASS'} goal {goal}: {what} <= {FALSE_MAX:.0%} (+2 SE): worst "
            f"{cell(worst[0])}% ({worst[1]}); {len(fail)} of {len(cells)} cells over"
        )
    if coverage:
        cov = [(r["coverage"], f"{r['scores']} n={r['n']} mean={r['mean']}") for r in coverage]
        worst = min(cov, key=lambda c: c[0]["rate"])
        fail = [c for c in cov if c[0]["rate"] + 2 * c[0]["se"] < COVERAGE_MIN]
        lines.append(
            f"{'FAIL' if fail else 'PASS'} goal 4: coverage >= {COVERAGE_MIN:.0%} (-2 SE): worst "
            f"{cell(worst[0])}% ({worst[1]}); {len(fail)} of {len(cov)} cells under"
        )
        above = max(coverage, key=lambda r: r["above"]["rate"])
        lines.append(
            f"info: lower end above the truth at most {cell(above['above'])}% ({above['scores']} "
            f"n={above['n']} mean={above['mean']}); a 95% two-sided interval promises <= 2.5%"
        )
    return lines


RACE_SPREAD = (0.35, 0.8)  # scenario 6: the sweep's true accuracies, evenly spread, the best last


def race_row(n: int, n_configs: int, score_type: str, reps: int, seed: int) -> dict:
    """Scenario 6 on one (n, N, score_type): answers saved by the race, the best dropped, the same pick."""
    rng = _rng(seed, 6, n, n_configs, SCORE_TYPES.index(score_type))
    means, plan, ids = list(np.linspace(*RACE_SPREAD, n_configs)), prompt_plan(n_configs), [f"e{i}" for i in range(n)]
    first, saved, best_dropped, same = race_slice(n), 0, 0, 0
    for _ in range(reps):
        rows = draw(rng, n, means, score_type)
        full = as_configs(rows, ids, plan)
        behind = (
            {c.eval_run_id for c, _ in racing_drops(as_configs(rows[:, :first], ids[:first], plan))} if first else set()
        )
        saved += len(behind) * (n - first) if first else 0
        best_dropped += (n_configs - 1) in behind
        raced = best_prompt_config([c for c in full if c.eval_run_id not in behind])
        same += raced.eval_run_id == best_prompt_config(full).eval_run_id
    return {
        "scores": score_type,
        "n": n,
        "N": n_configs,
        "slice": first,
        "saved": saved / (reps * n * n_configs),
        "best_dropped": rate(best_dropped, reps),
        "same_pick": rate(same, reps),
    }


def race_text(rows: list[dict]) -> list[str]:
    return _table(
        ["score_type", "n", "N", "slice", "answers saved", "best dropped %", "same pick %"],
        [
            [
                r["scores"],
                str(r["n"]),
                str(r["N"]),
                str(r["slice"] or "-"),
                f"{r['saved']:.0%}",
                cell(r["best_dropped"]),
                cell(r["same_pick"]),
            ]
            for r in rows
        ],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=None, help="draws per table cell for the verdicts (default 2000)")
    ap.add_argument(
        "--test-reps", type=int, default=None, help="draws for the paired tests on binary scores (default 400)"
    )
    ap.add_argument(
        "--graded-test-reps",
        type=int,
        default=None,
        help="draws for the paired tests on graded scores (default 100: the permutation test is slow)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="R = 300 (tests 100, graded 40), n = 20 and 100, N = 1, 11")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args(argv)
    defaults = (300, 100, 40) if a.quick else (2000, 400, 100)
    reps, test_reps, graded_reps = (
        d if v is None else v for v, d in zip((a.reps, a.test_reps, a.graded_test_reps), defaults)
    )
    ns, configs = ((20, 100), (1, 11)) if a.quick else (NS, CONFIGS)
    print(f"command: python scripts/bench_verdicts.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(
        f"seed {a.seed}; R = {reps} draws per cell (paired tests: {test_reps} binary, {graded_reps} graded); "
        f"target {TARGET}, margin {MARGIN}, gain {GAIN}, difficulty correlation {RHO}; rates in % ± Monte Carlo SE"
    )
    t0 = time.perf_counter()
    decisions = decision_table(ns, configs, SCORE_TYPES, reps, test_reps, graded_reps, a.seed, a.workers)
    print("\nVerdicts, false and true (n held-out examples, N prompt configurations; columns: the docstring):")
    print("\n".join(decision_text(decisions)))
    cover = coverage_table(
        (8, 20, 100) if a.quick else COVER_NS, COVER_MEANS, COVER_SCORE_TYPES, reps, a.seed, a.workers
    )
    print("\nstats.mean_ci (Clopper-Pearson, 95%): coverage of the true mean:")
    print("\n".join(coverage_text(cover)))
    races = [
        race_row(n, k, score_type, max(100, reps // 10), a.seed)
        for score_type in SCORE_TYPES
        for n in (48, 100)
        for k in (5, 11)
    ]
    print(f"\nRacing the prompt sweep (true accuracies spread over {RACE_SPREAD}; {max(100, reps // 10)} draws):")
    print("\n".join(race_text(races)))
    lines = goal_lines(decisions, cover)
    print("\n" + "\n".join(lines) + f"\n({time.perf_counter() - t0:.0f} s)")
    return 1 if any(x.startswith("FAIL") for x in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
