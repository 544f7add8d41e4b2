#!/usr/bin/env python
"""Worked example: train the demo LoRA adapter for the built-in `tickets` scenario, offline,
on the default model (SmolLM2-135M-Instruct), on the CPU, in a few minutes.

    python scripts/train_adapter.py                 # -> adapters/tickets/ (the name `lab eval` looks for)
    python scripts/train_adapter.py --steps 20 --name tickets-quick
    lab eval tickets --arms zero-shot,few-shot,tune # then compare the rungs

The same run from the shell:
    lab train --task tickets --name tickets --max-steps 60 --lr 1e-3

Exit codes: 0 done, 2 bad input (nothing trained), 130 interrupted (run again with --resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.engine import Lab  # noqa: E402
from lab.tasks import load_task  # noqa: E402
from lab.tuning import DatasetError, TrainConfigError, TrainingError, TrainingInterrupted, make_config, train  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="lab home (default: LAB_HOME or the current directory)")
    ap.add_argument("--name", default="tickets", help="adapter name (default: tickets)")
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps (default 60: 240 emails)")
    ap.add_argument("--model", help="base model (default: the lab's default model)")
    ap.add_argument(
        "--threads", type=int, help="torch CPU threads (default: all cores; 1 can be faster on a busy machine)"
    )
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing adapter of this name")
    args = ap.parse_args()

    lab = Lab(args.home)
    task = load_task("tickets")
    # The task's instruction is the system prompt of every training example, and the tune arm
    # is served with the same one (it is stored in the adapter's manifest). The same settings as
    # the app's "train the demo adapter" button (lab/app/bridge.py: device_defaults on a CPU).
    config = make_config(
        name=args.name,
        data=str(task.train),
        base_model=args.model or lab.config.default_model,
        instruction=task.instruction,
        method="auto",
        rank=8,
        alpha=16,
        dropout=0.05,
        target_modules="q_proj,v_proj",
        learning_rate=1e-3,
        max_steps=args.steps,
        batch_size=4,
        grad_accum=1,
        max_seq_len=512,
        val_fraction=0.1,
        eval_every=20,
        save_every=20,
        seed=0,
        threads=args.threads,
    )
    try:
        adapter = train(config, lab, resume=args.resume, overwrite=args.overwrite)
    except (DatasetError, TrainConfigError, TrainingError, FileNotFoundError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    except TrainingInterrupted as e:
        print(e, file=sys.stderr)
        return 130

    m = adapter.metrics
    print(f"\nadapter '{adapter.name}' in {adapter.path}")
    print(
        f"  loss {m['first_loss']:.3f} -> {m['train_loss']:.3f}, val loss {m['val_loss']:.3f}, "
        f"{m['steps']} steps in {adapter.wall_s:.0f} s ({m['s_per_step']:.2f} s/step, "
        f"{m['tokens_per_s']:.0f} tokens/s), peak memory {adapter.manifest['peak_mem_bytes'] / 2**30:.2f} GB"
    )

    example = task.examples("eval")[0]
    options = lab.options(max_tokens=task.max_tokens)
    base = lab.answer("zero-shot", example.input, task=task, options=options).generation
    tuned = lab.answer("tune", example.input, task=task, adapter=adapter, options=options).generation
    flat = lambda text: " ".join(text.split())[:160]  # noqa: E731
    print(
        f"\none held-out email:\n  expected: {example.output}\n  base:     {flat(base.text)}\n"
        f"  tuned:    {flat(tuned.text)}"
    )
    print(f"\nnext: lab eval tickets --arms zero-shot,few-shot,tune --adapter {adapter.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
