"""Publishing 1M items x 64-dim vectors plus a 10-per-item neighbour table: ours vs bare pyarrow.

"Ours" is :func:`item2vec.publish.publish_version`, everything included: table
construction from the numpy arrays, Parquet writes, fsyncs, SHA-256 of every
file, manifest, rename and LATEST. "pyarrow" is ``pyarrow.parquet.write_table``
of the same two tables, prebuilt, with the same compression settings (zstd,
byte-stream split on the vector column), into a plain directory: the floor any
publisher pays. The neighbours are random (real ones at 1M items take minutes
and would not change the write cost). Context vectors are left out unless
``BENCH_CONTEXT=1``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from item2vec.neighbors import NEIGHBOR_SCHEMA  # noqa: E402
from item2vec.publish import NEIGHBORS_FILE, VECTORS_FILE, publish_version  # noqa: E402
from item2vec.train import ItemVectors  # noqa: E402

ITEMS = int(os.environ.get("BENCH_ITEMS", 1_000_000))
DIM = 64
K = 10
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
CONTEXT = os.environ.get("BENCH_CONTEXT", "0") == "1"


def make_inputs(seed: int = 0) -> tuple[ItemVectors, pa.Table]:
    """Random vectors and a random neighbour table with :data:`NEIGHBOR_SCHEMA`."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:07d}" for i in range(ITEMS)], dtype=object)
    vectors = ItemVectors(
        item_ids=ids,
        vectors=rng.normal(size=(ITEMS, DIM)).astype(np.float32),
        context_vectors=rng.normal(size=(ITEMS, DIM)).astype(np.float32) if CONTEXT else None,
        counts=rng.integers(5, 10_000, size=ITEMS, dtype=np.int64),
    )
    # Arrow's take on one id array is far faster than converting 10M Python strings.
    id_array = pa.array(ids, type=pa.string())
    sources = np.repeat(np.arange(ITEMS), K)
    targets = rng.integers(0, ITEMS, size=ITEMS * K)
    scores = -np.sort(-rng.random((ITEMS, K), dtype=np.float32), axis=1).ravel()
    neighbors = pa.table(
        {
            "item_id": id_array.take(pa.array(sources)),
            "rank": pa.array(np.tile(np.arange(1, K + 1, dtype=np.int32), ITEMS)),
            "neighbor_id": id_array.take(pa.array(targets)),
            "score": pa.array(scores),
        },
        schema=NEIGHBOR_SCHEMA,
    )
    return vectors, neighbors


def bare_vectors_table(vectors: ItemVectors) -> pa.Table:
    """The item_vectors table built with plain pyarrow calls, outside any timing."""

    def fixed(matrix: np.ndarray) -> pa.FixedSizeListArray:
        return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), DIM)

    columns = {
        "item_id": pa.array(vectors.item_ids, type=pa.string()),
        "vector": fixed(vectors.vectors),
        "count": pa.array(vectors.counts),
    }
    if vectors.context_vectors is not None:
        columns["context_vector"] = fixed(vectors.context_vectors)
    return pa.table(columns)


def ours(root: Path, vectors: ItemVectors, neighbors: pa.Table) -> float:
    started = time.perf_counter()
    publish_version(root, "bench", vectors, neighbors, {"gate": {"passed": True}}, True)
    return time.perf_counter() - started


def bare_pyarrow(root: Path, vectors_table: pa.Table, neighbors: pa.Table) -> float:
    split = [
        f"{c}.list.element" for c in ("vector", "context_vector") if c in vectors_table.schema.names
    ]
    started = time.perf_counter()
    root.mkdir(parents=True)
    pq.write_table(
        vectors_table, root / VECTORS_FILE, compression="zstd", use_byte_stream_split=split
    )
    pq.write_table(
        neighbors, root / NEIGHBORS_FILE, compression="zstd", use_byte_stream_split=False
    )
    return time.perf_counter() - started


def main() -> None:
    print(
        f"publish: {ITEMS:,} items x dim {DIM}, {K} neighbours each"
        f"{', with context vectors' if CONTEXT else ''}",
        flush=True,
    )
    started = time.perf_counter()
    vectors, neighbors = make_inputs()
    vectors_table = bare_vectors_table(vectors)
    print(f"  inputs built in {time.perf_counter() - started:.1f}s", flush=True)
    timings: dict[str, list[float]] = {"ours": [], "pyarrow": []}
    scratch = Path(tempfile.mkdtemp(prefix="item2vec-bench-publish-", dir="/tmp"))
    try:
        for repeat in range(REPEATS):
            # Interleaved, and each output removed before the next write, so both
            # sides see the same page-cache and disk state.
            timings["ours"].append(ours(scratch / "ours", vectors, neighbors))
            shutil.rmtree(scratch / "ours")
            timings["pyarrow"].append(bare_pyarrow(scratch / "bare", vectors_table, neighbors))
            sizes = sum(p.stat().st_size for p in (scratch / "bare").iterdir())
            shutil.rmtree(scratch / "bare")
            print(
                f"  repeat {repeat + 1}: ours {timings['ours'][-1]:.2f}s, "
                f"pyarrow {timings['pyarrow'][-1]:.2f}s ({sizes / 2**20:.0f} MiB written)",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "bench": "publish",
        "items": ITEMS,
        "dim": DIM,
        "k": K,
        "context_vectors": CONTEXT,
        "ours_s": round(median["ours"], 3),
        "pyarrow_s": round(median["pyarrow"], 3),
        "vs_pyarrow": round(median["ours"] / median["pyarrow"], 3),
        "repeats": REPEATS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
