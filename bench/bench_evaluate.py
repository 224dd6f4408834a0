"""Full-ranking top-20 for 100k users x 50k items, dim 64: ours vs bare numpy vs scikit-learn.

All three rank the same random unit vectors in the same run. The scikit-learn
timing is measured on a subset of queries and scaled linearly (labelled so).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from item2vec.catalogue import Cases, Catalogue  # noqa: E402
from item2vec.evaluate import EmbeddingScorer, evaluate_scorer  # noqa: E402
from item2vec.vectors import ItemVectors  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", 100_000))
ITEMS = int(os.environ.get("BENCH_ITEMS", 50_000))
DIM = 64
K = 20
HISTORY = 20
SKLEARN_SUBSET = 5_000
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))


def make_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:06d}" for i in range(ITEMS)], dtype=object)
    vectors = ItemVectors(
        item_ids=ids,
        vectors=rng.normal(size=(ITEMS, DIM)).astype(np.float32),
        context_vectors=rng.normal(size=(ITEMS, DIM)).astype(np.float32),
        counts=np.ones(ITEMS, dtype=np.int64),
    )
    catalogue = Catalogue(item_ids=ids, counts=np.ones(ITEMS, dtype=np.int64))
    rows = np.repeat(np.arange(USERS), HISTORY)
    cols = rng.integers(0, ITEMS, size=USERS * HISTORY)
    seen = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(USERS, ITEMS))
    seen.data[:] = 1
    query = sp.csr_matrix(
        (
            np.ones(USERS * 5, np.float32),
            (np.repeat(np.arange(USERS), 5), cols.reshape(USERS, HISTORY)[:, -5:].ravel()),
        ),
        shape=(USERS, ITEMS),
    )
    cases = Cases(seen=seen, query=query, targets=rng.integers(0, ITEMS, size=USERS))
    return vectors, catalogue, cases


def ours(vectors, catalogue, cases) -> float:
    scorer = EmbeddingScorer(vectors, catalogue, "in-out")
    started = time.perf_counter()
    evaluate_scorer(scorer, cases, [10, 20], len(catalogue))
    return time.perf_counter() - started


def bare_numpy(queries: np.ndarray, candidates: np.ndarray, seen: sp.csr_matrix) -> float:
    started = time.perf_counter()
    for start in range(0, len(queries), 1024):
        block = queries[start : start + 1024] @ candidates.T
        part = seen[start : start + 1024].tocoo()
        block[part.row, part.col] = -np.inf
        top = np.argpartition(-block, K - 1, axis=1)[:, :K]
        values = np.take_along_axis(block, top, axis=1)
        np.take_along_axis(top, np.argsort(-values, axis=1), axis=1)
    return time.perf_counter() - started


def sklearn_scaled(queries: np.ndarray, candidates: np.ndarray) -> float:
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=K + HISTORY, metric="cosine", algorithm="brute")
    index.fit(candidates)
    started = time.perf_counter()
    index.kneighbors(queries[:SKLEARN_SUBSET])
    return (time.perf_counter() - started) * len(queries) / SKLEARN_SUBSET


def main() -> None:
    print(f"evaluate: {USERS:,} users x {ITEMS:,} items, dim {DIM}, top-{K}", flush=True)
    vectors, catalogue, cases = make_inputs()
    scorer = EmbeddingScorer(vectors, catalogue, "in-out")
    query_vectors = np.asarray(cases.query @ scorer.inputs, dtype=np.float32)
    query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
    timings = {"ours": [], "numpy": [], "sklearn_scaled": []}
    for repeat in range(REPEATS):
        timings["ours"].append(ours(vectors, catalogue, cases))
        timings["numpy"].append(bare_numpy(query_vectors, scorer.candidates, cases.seen))
        print(
            f"  repeat {repeat + 1}: ours {timings['ours'][-1]:.2f}s, "
            f"numpy {timings['numpy'][-1]:.2f}s",
            flush=True,
        )
    timings["sklearn_scaled"].append(sklearn_scaled(query_vectors, scorer.candidates))
    median = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "bench": "evaluate",
        "users": USERS,
        "items": ITEMS,
        "dim": DIM,
        "k": K,
        "ours_s": round(median["ours"], 3),
        "numpy_s": round(median["numpy"], 3),
        "sklearn_s_scaled": round(median["sklearn_scaled"], 3),
        "sklearn_subset": SKLEARN_SUBSET,
        "vs_numpy": round(median["ours"] / median["numpy"], 3),
        "vs_sklearn": round(median["sklearn_scaled"] / median["ours"], 3),
        "repeats": REPEATS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
