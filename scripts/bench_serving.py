#!/usr/bin/env python
"""Evaluation throughput, local vs a server, measured in one run: examples/second of the same
held-out examples (temperature 0) through

1. the local llama.cpp backend (one request at a time, as always);
2. llama-cpp-python's OpenAI-compatible server on loopback, serving the same GGUF, at
   `--concurrency` 1, 4 and 8 (it answers one request at a time: this measures the lab's HTTP
   overhead and that concurrency costs nothing, not a speed-up);
3. with `--url openai:http://gpu-box:8000/v1#MODEL`: that server too (vLLM or llama-server on a
   CUDA GPU batches concurrent requests: there concurrency pays).

Also checks that every server run gave the local answers (same weights, same engine).

    python scripts/bench_serving.py                                  # specialty, 16 examples
    python scripts/bench_serving.py --task tickets --limit 24 --levels 1,4,8,16
    python scripts/bench_serving.py --url 'openai:http://gpu-box:8000/v1#smollm2-135m-instruct'
    python scripts/bench_serving.py --quick                          # a short check: 2 examples, c = 1, 2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lab.engine import Lab
from lab.evaluation import run_eval
from lab.export.server import (
    die_with_parent,
    free_port,
)  # the server `lab export --verify` starts, started the same way
from lab.tuning.serve_commands import serve_plan


def start_server(lab: Lab, folder: Path, n_threads: int | None) -> tuple[subprocess.Popen, str]:
    plan = serve_plan(lab, "llama-cpp-python", port=free_port())
    for m in plan.config["models"]:
        if n_threads:
            m["n_threads"] = m["n_threads_batch"] = n_threads
    config = folder / "server.json"
    config.write_text(json.dumps(plan.config))
    log = open(folder / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    url = plan.spec.split("#")[0][len("openai:") :]
    for _ in range(360):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {(folder / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, plan.spec
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not start in 180 s")


def timed_eval(lab: Lab, task: str, arms: list[str], limit: int, model: str | None, concurrency: int) -> tuple:
    t0 = time.perf_counter()
    run_id = run_eval(lab, task, arms, limit=limit, model=model, progress=False, fresh=True, concurrency=concurrency)
    wall = time.perf_counter() - t0
    rows = lab.store.query(
        "select r.example_id, r.arm, g.output from eval_results r join generations g "
        "on g.id = r.generation_id where r.eval_run_id = ?",
        [run_id],
    )
    return len(rows) / wall, wall, {(r["example_id"], r["arm"]): r["output"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="specialty")
    ap.add_argument("--arms", default="zero-shot")
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--levels", default="1,4,8", help="concurrency levels")
    ap.add_argument("--url", help="also bench this server spec (openai:URL#MODEL)")
    ap.add_argument("--skip-loopback", action="store_true", help="only the --url server")
    ap.add_argument("--quick", action="store_true", help="a short check that everything runs: --limit 2 --levels 1,2")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.levels = 2, "1,2"
    arms, levels = args.arms.split(","), [int(x) for x in args.levels.split(",")]
    home = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    lab = Lab(home=home)
    results = []
    local_eps, local_wall, local = timed_eval(lab, args.task, arms, args.limit, None, 1)
    results.append(("local llama.cpp", 1, local_eps, local_wall, "-"))
    servers = []
    proc = None
    try:
        if not args.skip_loopback:
            proc, spec = start_server(lab, home, lab.backend().n_threads)
            servers.append(("llama-cpp-python server (loopback)", spec + "?tokenizer=" + lab.config.default_model))
        if args.url:
            servers.append((f"{args.url}", args.url))
        for name, spec in servers:
            timed_eval(lab, args.task, arms, 2, spec, 1)  # warm-up: connection, model pages, probes
            for c in levels:
                eps, wall, out = timed_eval(lab, args.task, arms, args.limit, spec, c)
                same = sum(out.get(k) == v for k, v in local.items())
                results.append((name, c, eps, wall, f"{same}/{len(local)}"))
                print(f"  {name} c={c}: {eps:.2f} ex/s", file=sys.stderr)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"\n{args.task} ({','.join(arms)}), {args.limit} examples, temperature 0, {os.cpu_count()} CPUs")
    print(f"{'backend':<40} {'concurrency':>11} {'ex/s':>7} {'wall s':>8} {'same answers as local':>22}")
    for name, c, eps, wall, same in results:
        print(f"{name[:40]:<40} {c:>11} {eps:>7.2f} {wall:>8.1f} {same:>22}")


if __name__ == "__main__":
    main()
