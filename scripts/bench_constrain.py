#!/usr/bin/env python
"""The effect of constrained decoding on each arm of a label task (default: the built-in
`specialty`), measured in one run: the same held-out examples through every arm without and with
`constrain` (the answer held to the label set by a llama.cpp grammar), side by side: format
validity, accuracy, the paired gain (exact McNemar test), answers outside the label set, latency.

The tune arm is measured when an adapter for the task exists in the lab home (or `--adapter`);
`--train-steps N` trains a quick one first (CPU: minutes). `--best-prompt` also compares the prompt
rung's configurations (fixed vs similar examples, several k) and names the best.

    python scripts/bench_constrain.py                          # 20 examples, zero-shot + few-shot
    python scripts/bench_constrain.py --limit 84 --home .      # every held-out example, your lab home
    python scripts/bench_constrain.py --train-steps 30 --best-prompt --ks 4,12
    python scripts/bench_constrain.py --quick              # a short check: 2 examples, k = 2, --best-prompt
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from lab import ladder
from lab.engine import Lab
from lab.evaluation import run_eval, stats, summarize
from lab.evaluation.prompt_rung import best_prompt_config, measure_prompt_rung, run_scores
from lab.evaluation.summary import text_table
from lab.tasks import load_task


def tune_arm(lab: Lab, task, adapter: str | None, train_steps: int) -> tuple[list[str], str | None]:
    """(["tune"], adapter name) when an adapter can be served (trained first if asked), else ([], None)."""
    name = adapter or task.name
    if train_steps and adapter is None:
        from lab.tuning import make_config, train

        print(f"training adapter '{name}' ({train_steps} steps)...", file=sys.stderr)
        t0 = time.perf_counter()
        cfg = make_config(
            "bench_constrain",
            device="auto",
            name=name,
            data=str(task.train),
            instruction=task.instruction or None,
            max_steps=train_steps,
            base_model=lab.config.default_model,
        )
        train(cfg, lab, overwrite=True, progress=True)
        print(f"  trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    try:
        ladder.resolve_adapter(lab, name)
    except Exception as e:  # noqa: BLE001 - any reason: say it and measure the prompt arms
        print(f"(no tune arm: {e})", file=sys.stderr)
        return [], None
    return ["tune"], name


def measure(lab: Lab, task, arms: list[str], adapter: str | None, limit: int, constrain: bool):
    t0 = time.perf_counter()
    run_id = run_eval(lab, task, arms, limit=limit, adapter=adapter, constrain=constrain, progress=True)
    return run_id, summarize(lab, run_id, task=task), time.perf_counter() - t0


def row(arm: str, off, on, lab: Lab, runs: tuple[int, int]) -> list[str]:
    a, b = off.arm(arm), on.arm(arm)
    ids = sorted(set(run_scores(lab, runs[0], arm)) & set(run_scores(lab, runs[1], arm)))
    before, after = run_scores(lab, runs[0], arm, ids), run_scores(lab, runs[1], arm, ids)
    c = stats.compare([before[i] for i in ids], [after[i] for i in ids], name_a="off", name_b="on")
    gain = (
        "n/a"
        if c.diff is None
        else (
            f"{c.diff:+.3f}"
            + ("" if c.lo is None else f" [{c.lo:+.3f}, {c.hi:+.3f}]")
            + f" {stats.format_p(c.p_value)}"
        )
    )
    return [
        arm,
        str(a.n),
        f"{a.format_valid:.0%} -> {b.format_valid:.0%}",
        f"{a.failures.get('output invalid', 0)} -> {b.failures.get('output invalid', 0)}",
        f"{a.quality.mean:.3f} -> {b.quality.mean:.3f}",
        gain,
        f"{a.latency_p50:.2f} -> {b.latency_p50:.2f}",
        "yes" if b.constrained else "NO",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="specialty", help="A label or JSON task (default: specialty).")
    ap.add_argument("--limit", type=int, default=20, help="Held-out examples (default 20; specialty has 84).")
    ap.add_argument("--home", help="Lab home (default: a fresh temporary one, so nothing is reused).")
    ap.add_argument("--adapter", help="Adapter for the tune arm (default: the one named after the task, if any).")
    ap.add_argument("--train-steps", type=int, default=0, help="Train a quick adapter first (LoRA, this many steps).")
    ap.add_argument("--best-prompt", action="store_true", help="Also compare the prompt rung's configurations.")
    ap.add_argument("--ks", default="4,12", help="With --best-prompt: few-shot k values (default 4,12).")
    ap.add_argument(
        "--threads",
        type=int,
        help="llama.cpp threads (default: lab.toml, else one per core; 1 is faster on a machine whose cores are busy).",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="A short check that everything runs: 2 held-out examples, "
        "few-shot at k = 2 (the task's own k otherwise), --best-prompt at --ks 2; no training.",
    )
    args = ap.parse_args()
    if args.quick:
        args.limit, args.best_prompt, args.ks, args.train_steps = 2, True, "2", 0

    lab = Lab(home=args.home or tempfile.mkdtemp(prefix="bench-constrain-"), n_threads=args.threads)
    task = load_task(args.task, home=lab.home)
    if args.quick:
        task = task.model_copy(update={"few_shot_k": 2})
    extra, adapter = tune_arm(lab, task, args.adapter, args.train_steps)
    arms = ["zero-shot", "few-shot"] + extra
    off_id, off, off_s = measure(lab, task, arms, adapter, args.limit, constrain=False)
    on_id, on, on_s = measure(lab, task, arms, adapter, args.limit, constrain=True)

    print(
        f"\nconstrained decoding on '{task.name}' ({task.primary_metric}), model {off.run['model_id']}, "
        f"eval runs {off_id} (off) and {on_id} (on); wall {off_s:.0f} s off, {on_s:.0f} s on"
    )
    head = [
        "arm",
        "n",
        "format valid",
        "invalid answers",
        task.primary_metric,
        "gain on-off [95% CI] p",
        "p50 s",
        "enforced",
    ]
    print("\n".join(text_table(head, [row(a, off, on, lab, (off_id, on_id)) for a in arms])))

    if args.best_prompt:
        ks = [int(k) for k in args.ks.split(",") if k.strip()]
        for constrain in (False, True):
            configs = measure_prompt_rung(
                lab,
                task,
                limit=args.limit,
                ks=ks,
                constrain=constrain,
                progress=True,
                on_note=lambda n: print(n, file=sys.stderr),
            )
            best = best_prompt_config(configs)
            print(f"\nprompt rung, constrain={constrain}:")
            print(
                "\n".join(
                    text_table(
                        ["configuration", task.primary_metric, "n", "eval run"],
                        [
                            [
                                c.label() + ("  <- best" if c is best else ""),
                                f"{c.score:.3f}",
                                str(c.n),
                                str(c.eval_run_id),
                            ]
                            for c in configs
                        ],
                    )
                )
            )


if __name__ == "__main__":
    main()
