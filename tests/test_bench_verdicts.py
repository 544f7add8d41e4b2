"""The lab's own error rates, small: scripts/bench_verdicts.py's functions with a few hundred seeded
draws (the script runs them at 2000). Each false rate must stay within 5% + 3 Monte Carlo SEs and
each interval's coverage above 94% - 3 SEs; and a deliberately naive rule (the best of 11
configurations judged as one arm) must break the bound, so the check can fail."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.evaluation import stats, verdict  # noqa: E402
from lab.evaluation.rung_choice import choose  # noqa: E402
from scripts import bench_verdicts as bench  # noqa: E402

SEED = 20240
SES = 3  # tolerance: Monte Carlo standard errors (at 400 draws it admits ~8.3% where the truth is 5%: this
# catches gross inflation such as the naive best of 11; the script's 2000 draws measure the finer failures)


@pytest.fixture(scope="module")
def decisions() -> list[dict]:  # ~30 s on 2 cores: the tests that use it are marked slow (CI runs them)
    return bench.decision_table(
        ns=(20, 100),
        configs=(1, 11),
        score_types=bench.SCORE_TYPES,
        reps=400,
        test_reps=80,
        graded_test_reps=20,
        seed=SEED,
        workers=2,
    )


def within(r: dict, bound: float = bench.FALSE_MAX) -> bool:
    return r["rate"] <= bound + SES * r["se"]


def test_the_simulation_has_the_truth_it_claims():
    rng = np.random.default_rng(SEED)
    for score_type in ("binary", "graded", "graded-beta"):
        for mean in (0.5, 0.75, 0.85, 0.9):
            s = bench.to_scores(rng.random(200_000), mean, score_type)
            assert s.min() >= 0 and s.max() <= 1
            assert abs(s.mean() - mean) < 0.005, (score_type, mean, s.mean())
    rows = bench.draw(rng, 20_000, [0.75, 0.9], "binary")
    assert abs(rows[0].mean() - 0.75) < 0.01 and abs(rows[1].mean() - 0.9) < 0.01
    assert np.corrcoef(rows)[0, 1] > 0.15  # the arms share each example's difficulty
    assert [key for *_, key in bench.prompt_plan(11)][:3] == ["zero-shot", "few-shot", "few-shot, 1 fixed example"]
    assert len({key for *_, key in bench.prompt_plan(11)}) == 11


def test_the_speedups_change_no_decision():
    rng = np.random.default_rng(SEED)
    for _ in range(15):
        plan, ids, configs, zero, tuned = bench._setup(rng, 30, 5, "binary", [0.75, 0.8, 0.85])
        rungs = bench.ladder_rungs(configs, zero, tuned[-1])
        plain = (
            choose(rungs, 0.75, 0.05, "binary").state,
            bench.climb_outcome(configs, plan, 0.75),
            stats.compare(list(configs[0].per_example.values()), list(tuned[-1].values()), "binary").p_value,
        )
        with bench.fast_lab():
            fast = (
                choose(rungs, 0.75, 0.05, "binary").state,
                bench.climb_outcome(configs, plan, 0.75),
                stats.compare(list(configs[0].per_example.values()), list(tuned[-1].values()), "binary").p_value,
            )
        assert plain == fast
    assert verdict.bound.__name__ == "bound" and not hasattr(verdict.bound, "cache_info")  # restored


@pytest.mark.slow
def test_false_verdicts_stay_within_five_percent(decisions):
    over = []
    for r in decisions:
        for heading, key, goal in bench.COLUMNS:
            if goal is None or key not in r:
                continue
            if not within(r[key]):
                over.append(f"{heading} {r['scores']} n={r['n']} N={r['N']}: {bench.cell(r[key])}%")
    assert not over, over
    cells = sum(1 for r in decisions for _, k, g in bench.COLUMNS if g and k in r)
    assert cells == 8 * 8  # every row has every goal column (the paired tests ran)


@pytest.mark.slow
def test_a_naive_best_of_n_breaks_the_bound(decisions):
    """Judging the best of 11 configurations as one arm (candidates=1) inflates "meets": the check
    above would catch it. The adjusted verdict on the same draws stays within the bound."""
    row = next(r for r in decisions if (r["scores"], r["n"], r["N"]) == ("binary", 20, 11))
    naive, adjusted = row["naive_best"], row["meets_best"]
    assert naive["rate"] - SES * naive["se"] > bench.FALSE_MAX, naive
    assert within(adjusted) and adjusted["rate"] < naive["rate"]
    lines = bench.goal_lines([{**row, "meets_best": naive}], [])
    assert lines[0].startswith("FAIL goal 1"), lines


@pytest.mark.slow
def test_the_paired_tests_have_power(decisions):
    """Not a goal, but a bench whose verdicts never fire would pass the false-rate goals trivially."""
    row = next(r for r in decisions if (r["scores"], r["n"], r["N"]) == ("binary", 100, 1))
    assert row["helped_power"]["rate"] > 0.7 and row["meets_power"]["rate"] > 0.9


def test_interval_coverage():
    rows = bench.coverage_table(ns=(8, 12, 20, 50), means=(0.5, 0.75, 0.9), reps=300, seed=SEED, workers=1)
    low = [
        f"{r['scores']} n={r['n']} mean={r['mean']}: {bench.cell(r['coverage'])}"
        for r in rows
        if r["coverage"]["rate"] + SES * r["coverage"]["se"] < bench.COVERAGE_MIN
    ]
    assert not low, low
    above = [r for r in rows if r["above"]["rate"] > 0.025 + SES * max(r["above"]["se"], 1 / 300)]
    assert not above, above


def test_ties_alone_do_not_show_as_good():
    """Six ties cannot show "as good" (a bound of -0.46), graded or not: Student's t, the graded test
    before, took the mean as the bound when the differences had no spread."""
    assert not stats.noninferior([1.0] * 6, [1.0] * 6, 0.05, "binary").shown
    assert not verdict.as_good_as(
        {f"e{i}": 1.0 for i in range(6)}, {f"e{i}": 1.0 for i in range(6)}, score_type="graded"
    ).shown


def test_racing_saves_answers_and_keeps_the_best():
    row = bench.race_row(100, 11, "binary", 100, SEED)
    assert row["slice"] == 25 and row["saved"] > 0.05
    assert row["best_dropped"]["rate"] <= 0.05 and row["same_pick"]["rate"] >= 0.9
