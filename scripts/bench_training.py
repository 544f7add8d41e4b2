#!/usr/bin/env python
"""Training throughput and peak memory, measured side by side in one run.

CPU: PEFT LoRA on the default model (SmolLM2-135M-Instruct, the GGUF's own weights), on the
`tickets` training emails, LoRA on q/v projections vs all linear layers: seconds per step,
tokens per second (all tokens fed, prompt included), peak memory (max RSS of the process).
CPU threads under load: with one competing busy process that this bench starts itself (another
user's job), training on every core (what `lab train` did before `lab.threads`) vs the threads
the lab chooses for the load it finds (`lab.threads.threads_for_load`), and their ratio.
CUDA (when there is one): QLoRA with Unsloth vs PEFT + bitsandbytes 4-bit on the same model
and data: speed ratio and peak GPU memory. Without CUDA that part says it was skipped.

Each configuration trains in its own subprocess, so peak memory is that run's alone.

    python scripts/bench_training.py                   # CPU part, 10 steps each
    python scripts/bench_training.py --steps 20 --gpu-model models/Qwen2.5-7B-Instruct
    python scripts/bench_training.py --quick           # a short check: 1 short step, q/v only, no GPU part
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_run(spec: dict) -> dict:
    """Train one configuration in this process; return its figures."""
    import torch

    from lab.engine import Lab
    from lab.tasks import load_task
    from lab.tuning import make_config, train

    lab = Lab(spec["home"])
    task = load_task("tickets")
    config = make_config(
        name=spec["name"],
        data=str(task.train),
        base_model=spec["model"],
        instruction=task.instruction if spec.get("instruction", True) else None,
        method=spec["method"],
        qlora_engine=spec["engine"],
        target_modules=spec["targets"],
        rank=8,
        alpha=16,
        dropout=spec["dropout"],
        learning_rate=1e-4,
        max_steps=spec["steps"],
        batch_size=spec["batch_size"],
        max_seq_len=spec.get("max_seq_len", 384),
        val_fraction=0.0,
        save_every=10_000,
        eval_every=10_000,
        threads=spec["threads"],
    )
    clock = []  # (wall, this process's CPU time) at each step: CPU s/step shows the work
    adapter = train(
        config,
        lab,
        progress=False,
        overwrite=True,
        log=lambda m: None,  # even on a busy machine
        on_step=lambda row: clock.append((time.perf_counter(), time.process_time())),
    )
    m, man = adapter.metrics, adapter.manifest
    cpu = (clock[-1][1] - clock[0][1]) / (len(clock) - 1) if len(clock) > 1 else None  # after the first step
    return {
        "s_per_step": m["s_per_step"],
        "tokens_per_s": m["tokens_per_s"],
        "steps": m["steps"],
        "cpu_s_per_step": cpu,
        "threads": torch.get_num_threads(),  # what the trainer set
        "first_loss": m["first_loss"],
        "last_loss": m["train_loss"],
        "engine": man["engine"],
        "peak_rss_gb": man["process_max_rss_bytes"] / 2**30,
        "peak_gpu_gb": (man.get("peak_gpu_bytes") or 0) / 2**30,
    }


def run_isolated(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# Another user's job: one process that keeps one core busy, and ends when this bench does (however
# it ends), since it checks its parent every few milliseconds.
SPINNER = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(100_000): pass\n"


def under_load(base: dict, targets: str) -> tuple[dict, dict, int]:
    """Train the same configuration twice while one competing busy process runs: on every core
    this process may use (explicit threads), then with the threads the lab picks for the load it
    finds (threads=None: `lab.threads.threads_for_load`). Returns (all cores, chosen, cores)."""
    from lab.threads import cpus

    cores = len(cpus())
    busy = subprocess.Popen([sys.executable, "-c", SPINNER])
    try:
        time.sleep(1.0)  # running before either trainer starts
        spec = dict(base, targets=targets)
        every = run_isolated(dict(spec, name="bench-cpu-load-all", threads=cores))
        chosen = run_isolated(dict(spec, name="bench-cpu-load-chosen", threads=None))
    finally:
        busy.kill()
        busy.wait()
    return every, chosen, cores


def cpu_text(r: dict) -> str:
    return "-" if r.get("cpu_s_per_step") is None else f"{r['cpu_s_per_step']:.2f}"


def scratch_home(real_home: Path) -> Path:
    """A throwaway lab home (the bench's adapters go there) sharing the real home's cache of
    GGUF models converted for transformers, so the one-off conversion is not timed or redone."""
    home = Path(tempfile.mkdtemp(prefix="bench-training-"))
    (home / ".lab").mkdir()
    (real_home / ".lab" / "hf").mkdir(parents=True, exist_ok=True)
    os.symlink(real_home / ".lab" / "hf", home / ".lab" / "hf")
    return home


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--home", default=os.environ.get("LAB_HOME") or ".", help="lab home whose caches to reuse")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0],
        help="torch CPU threads to compare, e.g. --threads 1 2 (default, 0: the lab's choice for "
        "the load it finds, lab.threads)",
    )
    ap.add_argument("--gpu-model", help="model for the CUDA part (default: the lab's default model)")
    ap.add_argument("--skip-load", action="store_true", help="skip the threads-under-load comparison")
    ap.add_argument(
        "--load-steps",
        type=int,
        default=3,
        help="steps of each threads-under-load run (default 3: on every core they are slow by design)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a short check that everything runs: 1 step of one example of up to 128 tokens "
        "(no instruction), q/v only, no GPU part",
    )
    args = ap.parse_args()
    targets_measured, max_seq_len, instruction = ("q_proj,v_proj", "all-linear"), 384, True
    if args.quick:  # the emails alone, short: the oversubscribed run is slow by design
        args.steps, args.batch_size, targets_measured, max_seq_len, instruction = 1, 1, ("q_proj,v_proj",), 128, False
        args.load_steps = 1
    if args.one:
        print(json.dumps(one_run(json.loads(args.one))))
        return 0

    from lab.engine import Lab
    from lab.tuning.loading import cuda_available, hf_source, unsloth_available

    real = Lab(args.home)
    model = real.config.default_model
    hf_source(real, real.model_info(model))  # the one-off GGUF -> transformers conversion, untimed
    home = scratch_home(real.home.root)
    base = dict(
        home=str(home),
        model=model,
        steps=args.steps,
        batch_size=args.batch_size,
        dropout=0.05,
        method="lora",
        engine="auto",
        threads=None,
        max_seq_len=max_seq_len,
        instruction=instruction,
    )
    print(
        f"CPU LoRA, {model}, tickets emails, batch {args.batch_size}, {args.steps} steps, r=8, up to "
        f"{max_seq_len} tokens an example{'' if instruction else ' (no instruction)'} "
        f"(each in its own process; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
        "at the start: other work on the machine slows these figures)"
    )
    print(
        f"{'targets':<14} {'threads':>7} {'s/step':>8} {'CPU s/step':>11} {'tokens/s':>9} {'peak RSS':>9} "
        f"{'loss first -> last':>20}"
    )
    failed = False
    for targets in targets_measured:
        for threads in args.threads:
            r = run_isolated(
                dict(
                    base,
                    name=f"bench-cpu-{targets.replace(',', '-')}-{threads}",
                    targets=targets,
                    threads=threads or None,
                )
            )
            if "error" in r:
                print(f"{targets:<14} {threads or 'auto':>7} failed: {r['error']}")
                failed = True
                continue
            label = f"{targets:<14} {threads or 'auto ' + str(r['threads']):>7}"
            print(
                f"{label} {r['s_per_step']:>8.2f} {cpu_text(r):>11} {r['tokens_per_s']:>9.0f} "
                f"{r['peak_rss_gb']:>7.2f}GB {r['first_loss']:>9.3f} -> {r['last_loss']:.3f}"
            )

    if not args.skip_load:
        every, chosen, cores = under_load(dict(base, steps=args.load_steps), "q_proj,v_proj")
        print(
            f"\nCPU threads under load: one competing busy process started by this bench, q_proj,v_proj, "
            f"batch {args.batch_size}, {args.load_steps} steps each"
        )
        print(f"{'threads':<34} {'used':>4} {'s/step':>8} {'CPU s/step':>11} {'tokens/s':>9}")
        for label, r in ((f"every core (--threads {cores})", every), ("chosen for the load (lab.threads)", chosen)):
            if "error" in r:
                print(f"{label:<34} failed: {r['error']}")
                failed = True
            else:
                print(
                    f"{label:<34} {r['threads']:>4} {r['s_per_step']:>8.2f} {cpu_text(r):>11} {r['tokens_per_s']:>9.0f}"
                )
        if every.get("s_per_step") and chosen.get("s_per_step"):
            same = " (the same threads: no spare core to give up here)" if every["threads"] == chosen["threads"] else ""
            print(
                f"chosen threads are {every['s_per_step'] / chosen['s_per_step']:.2f}x the speed of every core "
                f"under this load{same}"
            )

    print()
    if args.quick:
        print("GPU part skipped: --quick.")
        return int(failed)
    if not cuda_available():
        print("GPU part skipped: no CUDA device here (Unsloth vs PEFT+bitsandbytes QLoRA needs one).")
        return int(failed)
    gpu = dict(base, model=args.gpu_model or model, method="qlora", dropout=0.0, targets="all-linear", threads=None)
    results = {}
    for engine in ("unsloth", "bitsandbytes"):
        if engine == "unsloth" and not unsloth_available():
            print("unsloth is not installed (pip install 'ladder-lab[gpu]'): only PEFT+bitsandbytes measured")
            continue
        results[engine] = run_isolated(dict(gpu, name=f"bench-qlora-{engine}", engine=engine))
    print(f"CUDA QLoRA, {gpu['model']}, batch {args.batch_size}, {args.steps} steps, all linear layers, r=8")
    print(f"{'engine':<14} {'s/step':>8} {'tokens/s':>9} {'peak GPU':>9}")
    for engine, r in results.items():
        if "error" in r:
            print(f"{engine:<14} failed: {r['error']}")
            failed = True
        else:
            print(f"{engine:<14} {r['s_per_step']:>8.2f} {r['tokens_per_s']:>9.0f} {r['peak_gpu_gb']:>7.2f}GB")
    u, b = results.get("unsloth", {}), results.get("bitsandbytes", {})
    if u.get("s_per_step") and b.get("s_per_step"):
        print(
            f"Unsloth is {b['s_per_step'] / u['s_per_step']:.2f}x the speed of PEFT+bitsandbytes, "
            f"using {u['peak_gpu_gb'] / max(b['peak_gpu_gb'], 1e-9):.2f}x its peak GPU memory"
        )
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
