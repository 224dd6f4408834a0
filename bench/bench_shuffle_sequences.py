"""The ``sequences`` stage on a 2-worker LocalCluster: one worker against partitions of users.

A log from ``item2vec synth`` is cut into ``BENCH_PARTS`` Parquet files
(:func:`bench_cluster.partitioned_log`). Each mode runs in a fresh
LocalCluster of 2 single-threaded worker processes, through a plain
``distributed.Client`` (the library steps the flow's tasks call, without
Prefect's per-task cost):

* ``one-worker``: every file read on the workers, then combined, filtered and
  turned into sequences by one task (``sequences.shuffle_partitions = 0``);
* ``partitioned``: the same files' rows, as int32 codes of a run-wide
  dictionary, shuffled into ``BENCH_SHUFFLE`` ranges of user ids (Dask
  DataFrame's ``set_index`` with known divisions, p2p), filtered and built per
  partition, concatenated in order on one worker (:mod:`item2vec.user_partitions`).

Printed: the wall time of each (the cluster's start excluded), each worker's
peak RSS, their medians, the ratio of the medians, and whether the SHA-256 of
every run's table is the same. Environment: ``BENCH_EVENTS``
(3M), ``BENCH_USERS`` (100k), ``BENCH_ITEMS`` (20k), ``BENCH_PARTS`` (8),
``BENCH_SHUFFLE`` (4), ``BENCH_REPEATS`` (3: each mode that many times, in
turns; medians printed), ``BENCH_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import _env_int, partitioned_log  # noqa: E402

EVENTS, USERS = _env_int("BENCH_EVENTS", 3_000_000), _env_int("BENCH_USERS", 100_000)
ITEMS, PARTS = _env_int("BENCH_ITEMS", 20_000), _env_int("BENCH_PARTS", 8)
SHUFFLE, REPEATS = _env_int("BENCH_SHUFFLE", 4), _env_int("BENCH_REPEATS", 3)
CACHE = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))


def _config(folder: Path, shuffle: int):
    from item2vec.config import build_config

    return build_config(
        {
            "ingest": {
                "paths": [str(folder)],
                "user_col": "user_id",
                "item_col": "item_id",
                "time_col": "timestamp",
                "min_item_count": 5,
                "min_user_count": 3,
                "cache": False,
            },
            "sequences": {"session_gap": "30m", "shuffle_partitions": shuffle},
        }
    )


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _one_worker(partitions, config):
    from item2vec.ingest import combine_partitions
    from item2vec.sequences import build_sequences

    events = combine_partitions(partitions, config.ingest, [])
    return build_sequences(events.table, config.sequences)


def _digest(table) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(None), sink)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


def run(mode: str, folder: Path) -> dict:
    from distributed import Client, LocalCluster

    from item2vec import user_partitions as up
    from item2vec.filters import needs_support
    from item2vec.ingest import read_partition

    config = _config(folder, SHUFFLE if mode == "partitioned" else 0)
    ingest = config.ingest
    files = sorted(folder.glob("part-*.parquet"))
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    try:
        started = time.perf_counter()
        partitions = client.map(read_partition, files, config=ingest)
        if mode == "one-worker":
            result = client.submit(_one_worker, partitions, config)
        else:
            summaries = client.map(up.file_summary, partitions)
            checked = client.submit(up.check_files, summaries, ingest)
            ids = client.submit(up.run_ids, client.map(up.file_ids, partitions), SHUFFLE)
            divisions = client.submit(lambda i: i.divisions, ids).result()
            frames = up.user_frames(partitions, ids, divisions, ingest).to_delayed()
            frames = client.compute(frames)
            parts = [
                client.submit(up.user_rows, frame, ids, j, config=ingest)
                for j, frame in enumerate(frames)
            ]
            while needs_support(ingest):
                support = client.submit(
                    up.combine_support, client.map(lambda p: p.summary(), parts)
                )
                if client.submit(lambda s: s.done, support).result():
                    break
                parts = client.map(up.support_part, parts, support=support, config=ingest)
            built = client.map(up.part_sequences, parts, config=config.sequences)
            result = client.submit(
                lambda b, c: up.combine_sequences(b, c, [], files)[1], built, checked
            )
        digest = client.submit(_digest, result).result()
        rows = client.submit(lambda t: t.num_rows, result).result()
        wall = time.perf_counter() - started
        peaks = client.run(_peak_rss_mb)
    finally:
        client.close()
        cluster.close()
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": sorted(peaks.values()),
        "sequences": rows,
        "digest": digest,
    }


def _medians(done: list[dict]) -> dict:
    """Median wall time and median peak of each worker (lower, higher) over the runs."""
    import statistics

    peaks = [statistics.median(d["peak_rss_mb"][k] for d in done) for k in range(2)]
    return {
        "wall_s": round(statistics.median(d["wall_s"] for d in done), 2),
        "peak_rss_mb": peaks,
        "sequences": done[0]["sequences"],
        "digest": done[0]["digest"],
        "walls_s": [d["wall_s"] for d in done],
    }


def main() -> None:
    print(
        f"shuffle_sequences: {EVENTS:,} events, {USERS:,} users, {ITEMS:,} items, "
        f"{PARTS} files, {SHUFFLE} partitions of users",
        flush=True,
    )
    folder = partitioned_log(CACHE, EVENTS, USERS, ITEMS, PARTS)
    runs: dict[str, list[dict]] = {"one-worker": [], "partitioned": []}
    for _ in range(REPEATS):
        for mode in runs:
            runs[mode].append(run(mode, folder))
            print(f"  {mode}: {runs[mode][-1]}", flush=True)
    results = {mode: _medians(done) for mode, done in runs.items()}
    digests = {done["digest"] for mode in runs for done in runs[mode]}
    equal = len(digests) == 1
    ratio = results["partitioned"]["wall_s"] / results["one-worker"]["wall_s"]
    print(
        f"  medians of {REPEATS}: one worker {results['one-worker']['wall_s']} s, peak "
        f"{results['one-worker']['peak_rss_mb']} MB; partitioned "
        f"{results['partitioned']['wall_s']} s, peak {results['partitioned']['peak_rss_mb']} MB; "
        f"{ratio:.2f}x the time; sha256 equal: {equal}",
        flush=True,
    )
    print(
        json.dumps(
            {
                "bench": "shuffle_sequences",
                "events": EVENTS,
                "users": USERS,
                "items": ITEMS,
                "files": PARTS,
                "partitions": SHUFFLE,
                "repeats": REPEATS,
                "ratio": round(ratio, 2),
                "equal": equal,
                **results,
            }
        )
    )


if __name__ == "__main__":
    main()
