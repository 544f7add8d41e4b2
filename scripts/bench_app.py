"""How heavy is the app? Measured side by side in one run, on the real default model:

1. time from `lab serve` (a subprocess) to a page that answers (HTTP 200), and to the first
   Compare answer through the app;
2. resident memory of the server after answering with one arm, against a fresh server after
   answering with three arms (target: < 1.2x, because every arm shares the one loaded base model);
3. the app's overhead per Compare request (HTTP, queue, streaming) over calling the engine's
   arm runner directly, same question, same settings, in this process.

    .venv/bin/python scripts/bench_app.py [--home DIR] [--requests 10]
    .venv/bin/python scripts/bench_app.py --quick     # a short check: 2 requests, no adapter trained
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTION = "What warranty period does the FL-200 come with?"
TASK = "acme-facts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str, float]:
    """`lab serve` as a user runs it; returns (process, url, seconds until the page answered)."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(ROOT),
    )
    atexit.register(lambda: proc.poll() is None and stop(proc))  # a failed run leaves no server behind
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"lab serve exited with {proc.returncode}") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def compare(client, arms: list[str], corpus: str | None, adapter: str | None, max_tokens: int):
    return client.predict(QUESTION, TASK, None, arms, corpus, adapter, max_tokens, api_name="/compare")


def tiny_adapter(lab) -> str | None:
    """A 3-step LoRA adapter for the default model, so the tune arm can be one of the three
    (its quality is beside the point here: it is the memory of serving it that is measured)."""
    from lab.tasks import load_task
    from lab.tuning import make_config, train

    task = load_task("tickets")
    print("training a 3-step adapter for the tune arm (bench-tiny)...", flush=True)
    cfg = make_config(
        "bench",
        name="bench-tiny",
        data=str(task.train),
        system=task.instruction,
        max_steps=3,
        batch_size=2,
        max_seq_len=256,
        eval_every=3,
        save_every=100,
    )
    return train(cfg, lab, progress=False, overwrite=True).name


def row_id(stats: str) -> int:
    return int(re.search(r"logged as #(\d+)", stats).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="Lab home to serve (default: a fresh temp home with the sample corpus)")
    ap.add_argument("--requests", type=int, default=10, help="Compare requests per side for the overhead")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--no-train", action="store_true", help="Do not train a tiny adapter when there is none")
    ap.add_argument("--quick", action="store_true", help="A short check that everything runs: --requests 2 --no-train")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.no_train = 2, True

    from gradio_client import Client

    from lab.app import bridge
    from lab.engine import Lab
    from lab.tasks import load_task

    tmp = None
    if args.home:
        home = Path(args.home).resolve()
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
        home = tmp
        (home / "corpora").mkdir()
        os.symlink(ROOT / "corpora" / "acme", home / "corpora" / "acme")
    lab = Lab(home=home)
    adapters = bridge.adapter_names(lab)
    if not adapters and not args.no_train:
        adapters = [a for a in [tiny_adapter(lab)] if a]
    corpus = bridge.corpora(lab).get("acme")
    third = "tune" if adapters else "rag"
    three = ["zero-shot", "few-shot", third]
    adapter = adapters[0] if adapters else None
    print(f"lab home {home} · model {lab.config.default_model} · {os.cpu_count()} CPUs")

    # 1 + 2a: a fresh server, one arm
    proc, url, up_s = start_server(home)
    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    compare(client, ["zero-shot"], corpus, adapter, args.max_tokens)
    first_s = time.perf_counter() - t0
    one_mb = rss_mb(proc.pid)

    # 3: overhead. The machine may be busy, so requests through the app and straight to the
    # engine (in this process) alternate, and each side's overhead is its wall time minus the
    # model's own generation time (total_s in the log row), which is what load disturbs.
    task = load_task(TASK).model_copy(update={"max_tokens": args.max_tokens})
    lab.answer("zero-shot", QUESTION, task=task)  # load the model here too, warm its prefix cache
    app_wall, app_model, eng_wall, eng_model, same = [], [], [], [], True
    for _ in range(args.requests):
        t0 = time.perf_counter()
        out = compare(client, ["zero-shot"], corpus, adapter, args.max_tokens)
        app_wall.append(time.perf_counter() - t0)
        app_model.append(lab.store.db["generations"].get(row_id(out[1]))["total_s"])
        t0 = time.perf_counter()
        gen = lab.answer("zero-shot", QUESTION, task=task).generation
        eng_wall.append(time.perf_counter() - t0)
        eng_model.append(gen.total_s)
        same = same and gen.text == out[0]
    stop(proc)

    # 2b: a fresh server, three arms
    proc, url, up2_s = start_server(home)
    client = Client(url, verbose=False)
    compare(client, three, corpus, adapter, args.max_tokens)
    three_mb = rss_mb(proc.pid)
    stop(proc)

    med = statistics.median
    app_over = med([w - m for w, m in zip(app_wall, app_model)]) * 1000
    eng_over = med([w - m for w, m in zip(eng_wall, eng_model)]) * 1000
    print(
        f"\n1. `lab serve` -> page answers (HTTP 200): {up_s:.1f} s (second start {up2_s:.1f} s); "
        f"first Compare answer {first_s:.1f} s after that (model load + generation)"
    )
    print(
        f"2. server RSS after answering with 1 arm (zero-shot): {one_mb:.0f} MB; "
        f"fresh server after 3 arms ({', '.join(three)}): {three_mb:.0f} MB; "
        f"ratio {three_mb / one_mb:.2f}x (target < 1.2x)"
    )
    if third == "rag":
        print(
            "   (no adapter for the default model, so the third arm is rag: its extra memory is the embedding "
            "model (torch) and the index, not a second copy of the base model)"
        )
    print(
        f"3. Compare request ({args.max_tokens} tokens, median of {args.requests}, alternating): wall via the app "
        f"{med(app_wall) * 1000:.0f} ms, engine directly {med(eng_wall) * 1000:.0f} ms; "
        f"beyond the model's own generation time: app {app_over:.0f} ms, engine {eng_over:.0f} ms "
        f"-> the app adds {app_over - eng_over:.0f} ms per request; same answer text: {same}"
    )
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
