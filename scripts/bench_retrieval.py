"""Retrieval benchmark: embedding throughput, index build time, hnswlib against exact search.

Prints, in one run and side by side:
  * the sample corpus: cold index build (chunk + embed + HNSW), embedding throughput (chunks/s),
    recall@10 of the hnswlib index against exact brute-force search (numpy) for the acme-facts
    questions, query latency p50/p99 for both, and the time of a no-change re-index;
  * 100,000 random 384-d vectors: HNSW build time, recall@10 against brute force, query latency
    p50/p99 for both and the speed-up. Two kinds of random vectors are measured:
      embedding-like  points near a random low-dimensional subspace (sentence embeddings
                      concentrate on a few dozen directions), what an index of real text sees;
      uniform         i.i.d. Gaussian directions: every point is almost equally far from a
                      query, so no graph index can find the exact top 10 quickly (the worst case).

  * --repeats (issue 23): one file of the same paragraph repeated 1,000 / 2,000 / 4,000 / 8,000 times,
    the chunk-id assignment (`index._assign_ids`) and the whole chunk -> id step, the old quadratic
    id search (a labelled copy here) against the lab's own, and their ratios.

  * --real: real MiniLM embeddings of text generated from what ships with the lab (sentences of the
    sample corpora and the scenarios' examples, recombined), at 1k, 10k and 100k vectors: the
    ef the lab's own calibration (lab/retrieval/calibrate.py) picks and the recall@10 it reaches on
    held-out queries, HNSW vs exact latency, and the crossover size below which exact search wins
    (what calibrate.EXACT_BELOW is set from). Embeddings are cached in ~/.cache/ladder-lab-bench.

Targets (issue 3): recall@10 >= 0.98 with p50 < 1 ms at 100k on 2 cores, >= 50x faster than brute
force there, and a no-change re-index of the sample corpus under 1 s.

    .venv/bin/python scripts/bench_retrieval.py     # everything; the two 100k HNSW builds dominate
                                                    # (10-20 min each on a busy 2-core machine)
    .venv/bin/python scripts/bench_retrieval.py --n 20000 --data embedding-like
    .venv/bin/python scripts/bench_retrieval.py --real 1000,10000,100000 --no-corpus --data ""
    .venv/bin/python scripts/bench_retrieval.py --repeats 1000,2000,4000,8000 --no-corpus --data ""
    .venv/bin/python scripts/bench_retrieval.py --quick  # a short check: the sample corpus, 2,000
                                                         # embedding-like vectors, --real 100,
                                                         # --repeats 1000,2000
"""

from __future__ import annotations

import os

# Brute force runs numpy with one BLAS thread, as each HNSW query runs on one thread: the
# speed-up is per core (both spread over cores the same way, one query per core). torch (the
# embedder) keeps its own threads: it does not use numpy's OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.retrieval.calibrate import EXACT_BELOW  # noqa: E402
from lab.retrieval.index import DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M  # noqa: E402


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))  # milliseconds


def timed(fn):
    """(result, wall seconds, CPU seconds of this thread). On a shared machine the CPU time is what
    the query costs; the wall time adds the waits for a core the other processes hold."""
    w, c = time.perf_counter(), time.thread_time()
    out = fn()
    return out, time.perf_counter() - w, time.thread_time() - c


def brute_topk(X: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact search: every inner product, then the k best (what the index approximates)."""
    scores = X @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def measure(X: np.ndarray, Q: np.ndarray, index, k: int, brute_queries: int) -> dict:
    """recall@k of the index against exact search, and per-query latency of both (one query at a
    time, as a user asks them)."""
    truth = []
    for b in range(0, len(Q), 256):
        s = Q[b : b + 256] @ X.T
        truth.extend(np.argpartition(-s, k, axis=1)[:, :k])
    hnsw_wall, hnsw_cpu, hits = [], [], 0
    for q, true in zip(Q, truth):
        (labels, _), wall, cpu = timed(lambda q=q: index.knn_query(q.reshape(1, -1), k=k))
        hnsw_wall.append(wall)
        hnsw_cpu.append(cpu)
        hits += len(set(labels[0].tolist()) & set(true.tolist()))
    brute_wall, brute_cpu = [], []
    for q in Q[:brute_queries]:
        _, wall, cpu = timed(lambda q=q: brute_topk(X, q, k))
        brute_wall.append(wall)
        brute_cpu.append(cpu)
    out = {"recall": hits / (len(Q) * k)}
    for name, values in (
        ("hnsw", hnsw_cpu),
        ("brute", brute_cpu),
        ("hnsw_wall", hnsw_wall),
        ("brute_wall", brute_wall),
    ):
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = pct(values, 50), pct(values, 99)
    out["speedup"] = out["brute_p50_ms"] / out["hnsw_p50_ms"]
    out["speedup_wall"] = out["brute_wall_p50_ms"] / out["hnsw_wall_p50_ms"]
    return out


def random_vectors(kind: str, n: int, dim: int, latent: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        X = rng.standard_normal((n, dim), dtype=np.float32)
    else:  # a random `latent`-dim subspace of R^dim, plus 5% isotropic noise
        basis = rng.standard_normal((latent, dim), dtype=np.float32)
        X = rng.standard_normal((n, latent), dtype=np.float32) @ basis
        X += 0.05 * np.sqrt(latent) * rng.standard_normal((n, dim), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def bench_synthetic(kind: str, args) -> dict:
    import hnswlib

    A = random_vectors(kind, args.n + args.queries, args.dim, args.latent, seed=0)
    X, Q = A[: args.n], A[args.n :]
    index = hnswlib.Index(space="ip", dim=args.dim)
    index.init_index(max_elements=args.n, M=args.M, ef_construction=args.ef_construction, random_seed=100)
    t = time.perf_counter()
    index.add_items(X, np.arange(args.n))
    build = time.perf_counter() - t
    index.set_num_threads(1)  # queries one at a time, as `lab search` runs them
    out = {"data": kind, "n": args.n, "build_s": build, "by_ef": {}}
    for ef in sorted({args.ef, *args.sweep}):
        index.set_ef(ef)
        out["by_ef"][ef] = measure(X, Q, index, 10, args.brute_queries)
    out.update(out["by_ef"][args.ef])
    return out


def bench_corpus(args) -> dict:
    from lab.engine import Lab
    from lab.retrieval import index_corpus, loaded_index
    from lab.retrieval.chunking import context_line

    corpus = Path(args.corpus).resolve()
    home = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    try:
        shutil.copytree(corpus, home / "corpora" / corpus.name)
        lab = Lab(home=home)
        embedder = lab.embedder()
        t = time.perf_counter()
        embedder.model  # noqa: B018  (load it now, so the build time below is chunk + embed + HNSW)
        load_s = time.perf_counter() - t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cold = index_corpus(
                lab, corpus.name, progress=False, M=args.M, ef_construction=args.ef_construction, ef=args.ef
            )
            noop = []
            for _ in range(5):
                noop.append(index_corpus(lab, corpus.name, progress=False).seconds)
        idx = loaded_index(lab, corpus.name)
        labels = sorted(int(k) for k in idx.manifest["chunks"])
        texts = [
            f"{context_line(c['title'], c.get('heading', ''), idx.texts[int(k)])}\n\n{idx.texts[int(k)]}"
            for k, c in sorted(idx.manifest["chunks"].items(), key=lambda kv: int(kv[0]))
        ]
        reps = max(1, 512 // len(texts))
        batch = texts[:64] if args.quick else texts * reps
        t = time.perf_counter()
        embedder.encode(batch)
        throughput = len(batch) / (time.perf_counter() - t)

        X = np.asarray(idx.index.get_items(labels), dtype=np.float32)
        questions = (
            [json.loads(line)["input"] for line in args.questions.read_text().splitlines() if line.strip()]
            if args.questions.exists()
            else texts
        )
        Q = embedder.encode(questions)
        k = min(10, len(labels))
        idx.index.set_num_threads(1)
        m = measure(X, Q, _Relabel(idx.index, labels), k, len(Q))
        return {
            "corpus": str(corpus),
            "chunks": cold.chunks,
            "files": cold.files,
            "model_load_s": load_s,
            "cold_build_s": cold.seconds,
            "embed_chunks_per_s": throughput,
            "embedded_texts": len(batch),
            "noop_reindex_median_s": statistics.median(noop),
            "noop_reindex_max_s": max(noop),
            "questions": len(Q),
            **m,
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


class _Relabel:
    """Map the index's labels to row numbers of X (labels can have gaps after deletions)."""

    def __init__(self, index, labels):
        self.index, self.row = index, {label: i for i, label in enumerate(labels)}

    def knn_query(self, q, k):
        labels, dists = self.index.knn_query(q, k=k)
        return np.asarray([[self.row[int(x)] for x in labels[0]]]), dists


# ---- chunk ids against repeats (issue 23) ------------------------------------------------------


def _old_assign_ids(chunks: dict, to_add: list) -> None:
    """OLD ALGORITHM, kept here only to measure against: `lab.retrieval.index._assign_ids` before
    issue 23. Every repeat of a text probes `~2`, `~3`, … from the start: quadratic in the repeats.
    The lab's own function gives exactly these ids, resuming each base id where it stopped."""
    from lab.retrieval.index import _chunk_entry

    taken = {c["id"] for c in chunks.values()}
    for label, c in to_add:
        base = f"{c.source}@{c.hash[:10]}"
        cid, n = base, 1
        while cid in taken:
            n += 1
            cid = f"{base}~{n}"
        taken.add(cid)
        chunks[label] = _chunk_entry(c, cid)


REPEATED_PARAGRAPH = "2024-01-01 12:00:00 INFO worker heartbeat ok; queue depth 0; nothing to do. " * 12


def _best(fn, budget_s: float = 1.0, reps: int = 5) -> float:
    """The fastest of up to `reps` runs of fn, stopping once `budget_s` is spent (a slow one runs once)."""
    times: list[float] = []
    while len(times) < reps and (not times or sum(times) < budget_s):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_repeats(sizes: list[int]) -> dict:
    """One log-like file of the same paragraph repeated n times (144 words: one chunk each), cold.
    ids: `_assign_ids` alone, old vs new. chunk->id: the whole step from the file's text to its
    chunks with ids (chunk_document with a word count, then `_match_chunks`, which assigns the
    ids), with the old function swapped in for the old column. Both give the same ids (checked)."""
    import lab.retrieval.index as ix
    from lab.retrieval.chunking import chunk_document
    from lab.retrieval.corpus import Document

    def words(text: str) -> int:
        return len(text.split())

    out: dict = {}
    for n in sizes:
        doc = Document("log.txt", "log.txt", "log", "\n\n".join([REPEATED_PARAGRAPH.strip()] * n))
        chunks = chunk_document(doc, words)
        to_add = list(enumerate(chunks))
        new_ids, old_ids = {}, {}
        probes = ix._assign_ids(new_ids, to_add)
        _old_assign_ids(old_ids, to_add)
        same = new_ids == old_ids
        ids_old = _best(lambda to_add=to_add: _old_assign_ids({}, to_add))
        ids_new = _best(lambda to_add=to_add: ix._assign_ids({}, to_add))

        def chunk_to_ids(doc=doc):
            fresh = {"log.txt": chunk_document(doc, words)}
            ix._match_chunks({}, {}, [], {"log.txt": b""}, fresh, {"log.txt": {"labels": []}}, 0, ix.IndexReport())

        step_new = _best(chunk_to_ids)
        new_fn = ix._assign_ids
        ix._assign_ids = _old_assign_ids  # the old column: the same step with the old id search
        try:
            step_old = _best(chunk_to_ids)
        finally:
            ix._assign_ids = new_fn
        out[n] = {
            "chunks": len(chunks),
            "distinct_texts": len({c.hash for c in chunks}),
            "probes_new": probes,
            "same_ids": same,
            "ids_old_s": ids_old,
            "ids_new_s": ids_new,
            "step_old_s": step_old,
            "step_new_s": step_new,
        }
        m = out[n]
        print(
            f"{n:>8,} {m['ids_old_s'] * 1e3:>10.1f} {m['ids_new_s'] * 1e3:>10.2f} {ids_old / ids_new:>8.0f}x "
            f"{m['step_old_s'] * 1e3:>12.1f} {m['step_new_s'] * 1e3:>12.1f} {step_old / step_new:>8.1f}x "
            f"{probes:>9,}  {'yes' if same else 'NO'}",
            flush=True,
        )
    return out


def generated_texts(n: int, seed: int = 0) -> list[str]:
    """n distinct passages of two or three sentences drawn from the lab's own shipped texts."""
    import random
    import re

    sentences = set()
    for path in [*(REPO / "corpora").rglob("*.md"), *(REPO / "lab" / "scenarios").rglob("*.jsonl")]:
        for part in re.split(r"(?<=[.!?])\s+|\n+|\\n|\"", path.read_text(encoding="utf-8", errors="ignore")):
            part = part.strip(" #-*{}:,")
            if 25 <= len(part) <= 220 and not part.startswith(("input", "output", "label")):
                sentences.add(part)
    pool, rng, out, seen = sorted(sentences), random.Random(seed), [], set()
    while len(out) < n:
        text = " ".join(rng.sample(pool, rng.choice((2, 3))))
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def real_embeddings(n: int) -> np.ndarray:
    """MiniLM embeddings of generated_texts(n), cached on disk: generated_texts is a deterministic
    stream, so a longer cache serves a shorter run and a shorter one is extended, not redone."""
    folder = Path.home() / ".cache" / "ladder-lab-bench"
    cached = sorted(folder.glob("minilm-*.npy"), key=lambda p: int(p.stem.split("-")[1]))
    have = np.load(cached[-1]) if cached else np.zeros((0, 384), dtype=np.float32)
    if len(have) >= n:
        return have[:n]
    from lab.retrieval.embed import Embedder

    embedder = Embedder()
    texts = generated_texts(n)
    parts, step, t = [have], 2048, time.perf_counter()
    for b in range(len(have), n, step):
        parts.append(embedder.encode(texts[b : b + step]))
        done = b + len(parts[-1])
        print(
            f"  embedded {done:,}/{n:,} ({(done - len(have)) / (time.perf_counter() - t):.0f}/s)", end="\r", flush=True
        )
        if len(parts) % 5 == 0 or done == n:  # keep what is done: embedding 100k takes long
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"minilm-{done}.npy", np.concatenate(parts))
            for old in folder.glob("minilm-*.npy"):
                if old.name != f"minilm-{done}.npy":
                    old.unlink()
    print()
    return np.concatenate(parts)


def bench_real(sizes: list[int], args) -> dict:
    """The lab's calibration on real embeddings: chosen ef, recall on held-out queries, latencies."""
    import hnswlib

    from lab.retrieval.calibrate import calibrate, exact_topk

    held_out = 300
    A = real_embeddings(max(sizes) + held_out)
    Q, pool = A[:held_out], A[held_out:]
    grid = sorted({*sizes, *[s for s in (50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000) if s <= max(sizes)]})
    out = {}
    for n in grid:
        X = pool[:n]
        index = hnswlib.Index(space="ip", dim=X.shape[1])
        index.init_index(max_elements=n, M=args.M, ef_construction=args.ef_construction, random_seed=100)
        t = time.perf_counter()
        index.add_items(X, np.arange(n))
        build = time.perf_counter() - t
        index.set_num_threads(1)
        cal = calibrate(index, np.arange(n), X, exact_below=0)  # always HNSW: measure both sides
        truth = exact_topk(X, Q, 10)
        index.set_ef(cal.ef)
        found, _ = index.knn_query(Q, k=10)
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist())]))
        hnsw = [timed(lambda q=q, index=index: index.knn_query(q.reshape(1, -1), k=10))[2] for q in Q[:200]]
        exact = [timed(lambda q=q, X=X: exact_topk(X, q.reshape(1, -1), 10))[2] for q in Q[:200]]
        out[n] = {
            "build_s": build,
            "ef": cal.ef,
            "calib_recall": cal.recall_at_10,
            "heldout_recall": recall,
            "hnsw_p50_ms": pct(hnsw, 50),
            "exact_p50_ms": pct(exact, 50),
        }
        m = out[n]
        print(
            f"{n:>8,} {m['build_s']:>8.1f}s {m['ef']:>5} {m['calib_recall']:>9.3f} {m['heldout_recall']:>9.3f} "
            f"{m['hnsw_p50_ms']:>9.3f} {m['exact_p50_ms']:>9.3f} {m['exact_p50_ms'] / m['hnsw_p50_ms']:>7.1f}x",
            flush=True,
        )
    wins = [n for n in grid if out[n]["hnsw_p50_ms"] < out[n]["exact_p50_ms"]]
    out["crossover"] = next((n for n in grid if all(m in wins for m in grid if m >= n)), None)
    out["exact_cheap_up_to"] = max([n for n in grid if out[n]["exact_p50_ms"] < 0.1], default=None)
    return out


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument("--n", type=int, default=100_000, help="random vectors (default 100000)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=500, help="queries for recall and HNSW latency")
    ap.add_argument("--brute-queries", type=int, default=100, help="queries timed for brute force")
    ap.add_argument("--M", type=int, default=DEFAULT_M)
    ap.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION)
    ap.add_argument("--ef", type=int, default=DEFAULT_EF, help="the query-time beam reported against the targets")
    ap.add_argument(
        "--sweep",
        type=int,
        nargs="*",
        default=[32, 64, 256],
        help="other ef values to print (recall/latency trade-off)",
    )
    ap.add_argument("--data", default="embedding-like,uniform", help="comma list: embedding-like, uniform")
    ap.add_argument("--latent", type=int, default=32, help="dimension of the embedding-like subspace")
    ap.add_argument("--corpus", default=str(REPO / "corpora" / "acme"))
    ap.add_argument("--questions", type=Path, default=REPO / "lab" / "scenarios" / "acme-facts" / "eval.jsonl")
    ap.add_argument("--no-corpus", action="store_true", help="skip the sample-corpus part")
    ap.add_argument(
        "--real",
        default="",
        help="comma list of sizes for the real-embedding part, e.g. "
        "1000,10000,100000 (off by default: embedding 100k texts takes many minutes)",
    )
    ap.add_argument(
        "--repeats",
        default="1000,2000,4000,8000",
        help="comma list: repeats of one paragraph in one file, for chunk-id assignment old vs new "
        '(issue 23; "" skips it)',
    )
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a short check that everything runs: the sample corpus "
        "(embedding throughput on 64 chunks), 2,000 embedding-like vectors (50 queries, the default ef "
        "only), --real 100 and --repeats 1000,2000",
    )
    args = ap.parse_args()
    if args.quick:
        args.n, args.queries, args.brute_queries, args.sweep, args.data = 2000, 50, 20, [], "embedding-like"
        args.real = args.real or "100"
        args.repeats = "1000,2000" if args.repeats == ap.get_default("repeats") else args.repeats

    print(
        f"machine: {os.cpu_count()} CPUs, load average {_load()} · HNSW M={args.M}, "
        f"ef_construction={args.ef_construction}, ef={args.ef} · latency = CPU time per query "
        "(one thread each), wall time in brackets",
        flush=True,
    )
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items()}, "load_before": _load()}
    if not args.no_corpus:
        c = results["corpus"] = bench_corpus(args)
        print(f"\n== sample corpus {c['corpus']}: {c['chunks']} chunks from {c['files']} files ==")
        print(f"embedder load            {c['model_load_s']:.2f} s")
        print(
            f"embedding throughput     {c['embed_chunks_per_s']:.0f} chunks/s  ({c['embedded_texts']} chunks, batch 64)"
        )
        print(f"index build (cold)       {c['cold_build_s']:.2f} s  (read + chunk + embed + HNSW)")
        print(
            f"no-change re-index       {c['noop_reindex_median_s'] * 1e3:.1f} ms median, "
            f"{c['noop_reindex_max_s'] * 1e3:.1f} ms max of 5"
        )
        print(f"recall@10 vs exact       {c['recall']:.3f}  ({c['questions']} questions)")
        print(
            f"query latency  hnsw      p50 {c['hnsw_p50_ms']:.3f} ms   p99 {c['hnsw_p99_ms']:.3f} ms"
            f"   [wall p50 {c['hnsw_wall_p50_ms']:.3f} ms]"
        )
        print(
            f"query latency  brute     p50 {c['brute_p50_ms']:.3f} ms   p99 {c['brute_p99_ms']:.3f} ms"
            f"   [wall p50 {c['brute_wall_p50_ms']:.3f} ms]   (hnsw {c['speedup']:.1f}x: tiny corpora need no index)"
        )
    if args.repeats:
        sizes = [int(x) for x in args.repeats.split(",") if x.strip()]
        print(f"\n== chunk ids against repeats: one file of n identical paragraphs, cold (load average {_load()}) ==")
        print(
            f"{'repeats':>8} {'ids old ms':>10} {'ids new ms':>10} {'old/new':>9} {'chunk->id old':>12} "
            f"{'chunk->id new':>12} {'old/new':>9} {'new probes':>9}  same ids"
        )
        r = results["repeats"] = bench_repeats(sizes)
        if len(sizes) > 1:
            a, b = sizes[0], sizes[-1]
            grow = {k: r[b][k] / r[a][k] for k in ("ids_old_s", "ids_new_s", "step_old_s", "step_new_s")}
            print(
                f"{a:,} -> {b:,} repeats ({b / a:.0f}x): ids old {grow['ids_old_s']:.0f}x, new "
                f"{grow['ids_new_s']:.1f}x; chunk->id old {grow['step_old_s']:.1f}x, new {grow['step_new_s']:.1f}x "
                f"(linear is {b / a:.0f}x, quadratic {(b / a) ** 2:.0f}x)"
            )
    for kind in [d.strip() for d in args.data.split(",") if d.strip()]:
        s = results[kind] = bench_synthetic(kind, args)
        print(f"\n== {args.n:,} random {args.dim}-d vectors, {kind} (load average {_load()}) ==", flush=True)
        print(f"HNSW build               {s['build_s']:.1f} s wall  ({args.n / s['build_s']:.0f} vectors/s, all cores)")
        print(
            f"{'ef':>5} {'recall@10':>9} {'hnsw p50':>18} {'hnsw p99':>9} {'brute p50':>19} {'brute p99':>9} {'speed-up':>14}"
        )
        for ef, m in s["by_ef"].items():
            print(
                f"{ef:>5} {m['recall']:>9.3f} {m['hnsw_p50_ms']:>7.3f} [{m['hnsw_wall_p50_ms']:>6.3f}] ms "
                f"{m['hnsw_p99_ms']:>6.3f}ms {m['brute_p50_ms']:>7.2f} [{m['brute_wall_p50_ms']:>6.2f}] ms "
                f"{m['brute_p99_ms']:>6.2f}ms {m['speedup']:>5.1f}x [{m['speedup_wall']:>5.1f}x]"
                + ("  <- ef used" if ef == args.ef else "")
            )
    if args.real:
        sizes = [int(x) for x in args.real.split(",") if x.strip()]
        print(f"\n== real MiniLM embeddings of generated text, the lab's calibration (load average {_load()}) ==")
        print(
            f"{'vectors':>8} {'build':>9} {'ef':>5} {'recall@10':>9} {'held-out':>9} {'hnsw p50':>9} "
            f"{'exact p50':>9} {'speed-up':>8}   (ms: CPU time per query, one thread)"
        )
        r = results["real"] = bench_real(sizes, args)
        print(
            f"speed crossover: HNSW is faster than exact search from {r['crossover']:,} vectors on"
            if r["crossover"]
            else "speed crossover: exact search was faster at every size measured"
        )
        print(
            f"exact search under 0.1 ms per query up to {r['exact_cheap_up_to'] or 0:,} vectors "
            f"(the lab searches exactly below calibrate.EXACT_BELOW = {EXACT_BELOW:,})"
        )
    print(f"\n== targets (load average now {_load()}) ==")
    for kind in ("embedding-like", "uniform"):
        if kind in results:
            s = results[kind]
            ok = s["recall"] >= 0.98 and s["hnsw_p50_ms"] < 1 and s["speedup"] >= 50
            print(
                f"{kind:<15} recall@10 {s['recall']:.3f} (>= 0.98), p50 {s['hnsw_p50_ms']:.3f} ms (< 1), "
                f"{s['speedup']:.0f}x brute force (>= 50): {'MET' if ok else 'NOT MET'}"
            )
    if "corpus" in results:
        c = results["corpus"]
        print(
            f"no-change re-index of the sample corpus {c['noop_reindex_max_s'] * 1e3:.1f} ms (< 1000): "
            f"{'MET' if c['noop_reindex_max_s'] < 1 else 'NOT MET'}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
