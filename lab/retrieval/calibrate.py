"""An index that tunes itself: exact search for small corpora, a calibrated HNSW beam for big ones.

Fixed HNSW settings are wrong at both ends: at a sample corpus's 78 chunks exact search (one
matrix product) costs microseconds and never misses, and at 100,000 chunks the beam (`ef`) that
reaches the recall we want depends on the data. So every build measures instead of guessing:

    below EXACT_BELOW live chunks   exact search over the unit vectors (recall 1.0; costs < 0.1 ms)
    otherwise                       HNSW, with the smallest `ef` on EF_LADDER whose recall@10,
                                    over probe queries between sampled chunks against their
                                    exact top 10, reaches the target (0.98 by default)

The manifest records the choice, its reason, the recall reached and both latencies; `lab index`
prints them. The numbers here were measured with `scripts/bench_retrieval.py --real`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

# Measured with `scripts/bench_retrieval.py --real 1000,10000` (real MiniLM vectors, one query on
# one thread, CPU time): there is no speed crossover worth having; HNSW at the calibrated ef is
# 2x faster than exact search even at 50 vectors, but both cost microseconds. Exact search stays
# under 0.1 ms up to ~2,000 vectors (0.08 ms there; 0.19 ms at 4,000), under 1% of embedding the
# question, and it never misses, where HNSW's held-out recall@10 there is 0.975-0.99. So below
# 2,000 chunks the lab buys perfect recall for a few hundredths of a millisecond.
EXACT_BELOW = 2_000
RECALL_TARGET = 0.98
EF_LADDER = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
SAMPLE_QUERIES = 200
K = 10


@dataclass
class Calibration:
    mode: str  # "exact" or "hnsw"
    reason: str
    ef: int | None  # the HNSW beam used (None for exact)
    recall_at_10: float  # on probe queries between sampled chunks (1.0 for exact)
    target: float
    queries: int
    p50_ms: float  # query latency of the chosen mode
    exact_p50_ms: float  # exact search latency, for the comparison

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.mode == "exact":
            return f"search: exact ({self.reason}); p50 {self.p50_ms:.2f} ms"
        return (
            f"search: HNSW ef={self.ef}, recall@10 {self.recall_at_10:.3f} on {self.queries} probe "
            f"queries (target {self.target:.2f}); p50 {self.p50_ms:.2f} ms vs exact "
            f"{self.exact_p50_ms:.2f} ms ({self.reason})"
        )


def exact_topk(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the k largest inner products per query (unit vectors: cosine), best first."""
    scores = queries @ matrix.T
    k = min(k, matrix.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def _p50_ms(fn, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def probe_queries(vectors: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Points halfway between two random chunks, as unit vectors. A chunk used as its own query
    is too easy (it sits in the graph, next to its neighbours): on 4,000 real MiniLM vectors it gave
    recall 0.99 at ef=10 where held-out texts got 0.93; midpoints track held-out texts (0.89 / 0.96 /
    0.985 at ef 10 / 16 / 24 against 0.93 / 0.97 / 0.986), a little on the safe side."""
    rng = np.random.default_rng(seed)
    n = len(vectors)
    a = rng.integers(0, n, size=count)
    b = (a + rng.integers(1, max(n, 2), size=count)) % n  # another chunk (when there is one)
    q = vectors[a] + vectors[b]
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(norms > 1e-6, q / np.maximum(norms, 1e-12), vectors[a]).astype(np.float32)


def recall_at(index, labels: np.ndarray, truth: np.ndarray, queries: np.ndarray, ef: int, k: int) -> float:
    """Mean share of each query's exact top k (as labels) that the index returns at beam `ef`."""
    index.set_ef(max(ef, k))
    found, _ = index.knn_query(queries, k=k)
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def calibrate(
    index,
    labels: np.ndarray,
    vectors: np.ndarray,
    *,
    target: float = RECALL_TARGET,
    ef: int | None = None,
    exact_below: int | None = None,
    queries: int = SAMPLE_QUERIES,
    seed: int = 0,
) -> Calibration:
    """Choose exact or HNSW for an hnswlib `index` holding `vectors` (unit rows) under `labels`.
    `ef` given: use it and only measure its recall; otherwise raise it along EF_LADDER until the
    recall reaches `target` (the largest rung if none does, said in the reason)."""
    exact_below = EXACT_BELOW if exact_below is None else exact_below
    labels = np.asarray(labels)
    n = len(labels)
    k = min(K, n)
    probes = probe_queries(vectors, queries, seed) if n else vectors[:0]
    exact_ms = _p50_ms(lambda q: exact_topk(vectors, q[None, :], k), probes[:50]) if n else 0.0
    if (n < exact_below and ef is None) or k < 1:
        return Calibration(
            "exact",
            f"{n:,} chunks < {exact_below:,}: below that size exact search costs under 0.1 ms and never misses",
            None,
            1.0,
            target,
            len(probes),
            exact_ms,
            exact_ms,
        )
    truth = labels[exact_topk(vectors, probes, k)]
    if ef is not None:
        recall, why = recall_at(index, labels, truth, probes, ef, k), f"ef={ef} given"
    else:
        for ef in EF_LADDER:
            recall = recall_at(index, labels, truth, probes, ef, k)
            if recall >= target:
                why = f"the smallest ef reaching recall@10 {target:.2f}"
                break
        else:
            why = f"no ef up to {EF_LADDER[-1]} reached recall@10 {target:.2f}"
    index.set_ef(max(ef, k))
    hnsw_ms = _p50_ms(lambda q: index.knn_query(q[None, :], k=k), probes[:50])
    return Calibration("hnsw", f"{n:,} chunks; {why}", ef, recall, target, len(probes), hnsw_ms, exact_ms)
