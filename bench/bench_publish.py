"""Publishing 1M items x 64-dim vectors plus a 10-per-item neighbour table: ours vs bare pyarrow.

"Ours" is :func:`item2vec.publish.publish_version`, everything included: table
construction from the numpy arrays, Parquet writes, fsyncs, SHA-256 of every
file, manifest, rename and LATEST. "pyarrow" is ``pyarrow.parquet.write_table``
of the same two tables, prebuilt, with the same compression settings (zstd,
byte-stream split on the vector column), into a plain directory: the floor any
publisher pays. The neighbours are random (real ones at 1M items take minutes
and would not change the write cost). Context vectors are left out unless
``BENCH_CONTEXT=1``. ``vs_pyarrow`` compares median wall times (the goal is
<= 1.2); ``vs_pyarrow_cpu`` compares process CPU time, which stays steady when
other jobs share the machine but does not count the time spent waiting in fsync.
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
from item2vec.vectors import ItemVectors  # noqa: E402

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


def ours(root: Path, vectors: ItemVectors, neighbors: pa.Table) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    publish_version(root, "bench", vectors, neighbors, {"gate": {"passed": True}}, True)
    return time.perf_counter() - started, time.process_time() - cpu


def bare_pyarrow(root: Path, vectors_table: pa.Table, neighbors: pa.Table) -> tuple[float, float]:
    split = [
        f"{c}.list.element" for c in ("vector", "context_vector") if c in vectors_table.schema.names
    ]
    started, cpu = time.perf_counter(), time.process_time()
    root.mkdir(parents=True)
    pq.write_table(
        vectors_table, root / VECTORS_FILE, compression="zstd", use_byte_stream_split=split
    )
    pq.write_table(
        neighbors, root / NEIGHBORS_FILE, compression="zstd", use_byte_stream_split=False
    )
    return time.perf_counter() - started, time.process_time() - cpu


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
    # CPU seconds too: on a shared machine wall time swings by +-30% between
    # repeats, while process CPU time barely moves (it misses fsync waits).
    cpu: dict[str, list[float]] = {"ours": [], "pyarrow": []}
    scratch = Path(tempfile.mkdtemp(prefix="item2vec-bench-publish-", dir="/tmp"))
    try:
        for repeat in range(REPEATS):
            # Each output is removed before the next write, and the side that goes
            # first alternates, so neither always meets the other's leftover
            # writeback or a colder page cache.
            sides = ["ours", "pyarrow"] if repeat % 2 == 0 else ["pyarrow", "ours"]
            for side in sides:
                if side == "ours":
                    wall, used = ours(scratch / "ours", vectors, neighbors)
                    shutil.rmtree(scratch / "ours")
                else:
                    bare = scratch / "bare"
                    wall, used = bare_pyarrow(bare, vectors_table, neighbors)
                    written = sum(p.stat().st_size for p in bare.iterdir())
                    shutil.rmtree(bare)
                timings[side].append(wall)
                cpu[side].append(used)
            print(
                f"  repeat {repeat + 1}: ours {timings['ours'][-1]:.2f}s, "
                f"pyarrow {timings['pyarrow'][-1]:.2f}s (CPU {cpu['ours'][-1]:.2f}s vs "
                f"{cpu['pyarrow'][-1]:.2f}s; {written / 2**20:.0f} MiB written)",
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
        "ours_cpu_s": round(statistics.median(cpu["ours"]), 3),
        "pyarrow_cpu_s": round(statistics.median(cpu["pyarrow"]), 3),
        "vs_pyarrow_cpu": round(
            statistics.median(cpu["ours"]) / statistics.median(cpu["pyarrow"]), 3
        ),
        "repeats": REPEATS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
