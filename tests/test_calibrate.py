"""lab/retrieval/calibrate.py: exact search for small corpora, the smallest HNSW beam that reaches the
recall target for big ones. Real hnswlib indexes over generated embedding-like vectors."""

from __future__ import annotations

import hnswlib
import numpy as np
import pytest

from lab.retrieval.calibrate import EF_LADDER, calibrate, exact_topk, probe_queries, recall_at


def clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors near a low-dimensional subspace (as sentence embeddings are): hard enough that
    a small beam misses neighbours."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((32, dim), dtype=np.float32)  # first: the same subspace for every n
    X = rng.standard_normal((n, 32), dtype=np.float32) @ basis
    X += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def index_of(X: np.ndarray, M: int = 8) -> hnswlib.Index:
    index = hnswlib.Index(space="ip", dim=X.shape[1])
    index.init_index(max_elements=len(X), M=M, ef_construction=40, random_seed=100)
    index.add_items(X, np.arange(len(X)), num_threads=1)
    return index


def test_probe_queries_are_unit_vectors_between_chunks():
    X = clustered(50)
    P = probe_queries(X, 30)
    assert P.shape == (30, 64) and np.allclose(np.linalg.norm(P, axis=1), 1, atol=1e-5)
    assert not any(np.allclose(p, x, atol=1e-4) for p in P for x in X)  # never a chunk itself


def test_exact_topk_matches_a_full_sort():
    X = clustered(300)
    Q = clustered(7, seed=1)
    got = exact_topk(X, Q, 10)
    want = np.argsort(-(Q @ X.T), axis=1)[:, :10]
    assert (got == want).all()
    assert exact_topk(X[:3], Q, 10).shape == (7, 3)  # k capped at the corpus size


def test_small_corpus_is_searched_exactly():
    X = clustered(120)
    cal = calibrate(index_of(X), np.arange(120), X, exact_below=500)
    assert cal.mode == "exact" and cal.ef is None and cal.recall_at_10 == 1.0
    assert "120 chunks < 500" in cal.reason


def test_calibration_reaches_the_target_with_the_smallest_beam():
    X, unseen = np.split(clustered(4100), [4000])  # unseen: held-out points of the same distribution
    labels = np.arange(4000) + 1000  # labels need not be row numbers
    index = hnswlib.Index(space="ip", dim=X.shape[1])
    index.init_index(max_elements=6000, M=8, ef_construction=40, random_seed=100)
    index.add_items(X, labels, num_threads=1)
    cal = calibrate(index, labels, X, target=0.98, exact_below=0, queries=150)
    assert cal.mode == "hnsw" and cal.ef in EF_LADDER and cal.recall_at_10 >= 0.98
    # Recomputed independently on the same sampled queries: the recall is real...
    probes = probe_queries(X, 150)
    truth = labels[exact_topk(X, probes, 10)]
    assert recall_at(index, labels, truth, probes, cal.ef, 10) == pytest.approx(cal.recall_at_10)
    # ...and it holds for queries the calibration never saw (fresh probes and fresh points).
    fresh = np.concatenate([probe_queries(X, 100, seed=7), unseen])
    assert recall_at(index, labels, labels[exact_topk(X, fresh, 10)], fresh, cal.ef, 10) >= 0.95
    # ...and the rung below misses the target (this data is hard enough that it is not the first rung).
    below = EF_LADDER[EF_LADDER.index(cal.ef) - 1]
    assert cal.ef > EF_LADDER[0] and recall_at(index, labels, truth, probes, below, 10) < 0.98


def test_a_given_ef_is_kept_and_its_recall_measured():
    X = clustered(1500)
    cal = calibrate(index_of(X), np.arange(1500), X, ef=10, exact_below=0)
    assert cal.mode == "hnsw" and cal.ef == 10 and "ef=10 given" in cal.reason
    assert 0 < cal.recall_at_10 <= 1


def test_an_unreachable_target_says_so():
    X = clustered(800)
    cal = calibrate(index_of(X, M=2), np.arange(800), X, target=1.0, exact_below=0, queries=100)
    if cal.recall_at_10 < 1.0:  # M=2 graphs rarely reach a perfect recall
        assert cal.ef == EF_LADDER[-1] and "no ef up to" in cal.reason
