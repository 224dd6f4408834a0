"""The ``sequences`` stage on a LocalCluster: one worker against partitions of users.

A log from ``item2vec synth`` is cut into ``BENCH_PARTS`` Parquet files
(:func:`bench_cluster.partitioned_log`). Each mode runs in a fresh
LocalCluster of ``BENCH_WORKERS`` single-threaded worker processes, through a plain
``distributed.Client`` (the library steps the flow's tasks call, without
Prefect's per-task cost):

* ``one-worker``: every file read on the workers, then combined, filtered and
  turned into sequences by one task (``sequences.shuffle_partitions = 0``);
* ``partitioned``: the same files' rows, as int32 codes of a run-wide
  dictionary, shuffled into ``BENCH_SHUFFLE`` ranges of user ids (Dask
  DataFrame's ``set_index`` with known divisions, p2p), filtered and built per
  partition, concatenated in order on one worker (:mod:`item2vec.user_partitions`).

With ``BENCH_MEMORY_LIMIT`` (e.g. ``1.4GB``) every worker gets that
``memory_limit``, and Dask's own memory management applies as on a user's
cluster (spill, pause, and the nanny restarting a worker past 95%); a mode
whose task was killed too often (``KilledWorker``) is reported as killed, not
as an error: the point is which path lets the log through.

Printed: the wall time of each (the cluster's start excluded), each worker's
peak RSS (``VmHWM`` of the worker process; ``ru_maxrss`` would carry the
parent's peak across ``exec``), their medians, the ratio of the medians, and
whether the SHA-256 of every run's table is the same. Environment:
``BENCH_EVENTS`` (3M), ``BENCH_USERS`` (100k), ``BENCH_ITEMS`` (20k),
``BENCH_PARTS`` (8), ``BENCH_SHUFFLE`` (4), ``BENCH_WORKERS`` (2),
``BENCH_MEMORY_LIMIT`` (none), ``BENCH_REPEATS`` (3: each mode that many
times, in turns; medians printed), ``BENCH_DIR``.
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
WORKERS, MEMORY_LIMIT = _env_int("BENCH_WORKERS", 2), os.environ.get("BENCH_MEMORY_LIMIT") or None
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
    """This process's peak resident memory since it started (``exec`` included)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def _one_worker(partitions, config):
    from item2vec.ingest import combine_partitions
    from item2vec.sequences import build_sequences

    events = combine_partitions(partitions, config.ingest, [])
    return build_sequences(events.table, config.sequences)


class _HashingFile:
    """A write-only file that keeps only the SHA-256 of what is written to it."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.closed = False

    def write(self, data) -> int:
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _digest(table) -> str:
    """The SHA-256 of ``table`` as Parquet, streamed: no second copy in memory."""
    import pyarrow.parquet as pq

    sink = _HashingFile()
    pq.write_table(table.replace_schema_metadata(None), sink, row_group_size=262_144)
    return sink.hash.hexdigest()[:16]


def run(mode: str, folder: Path) -> dict:
    from distributed import Client, KilledWorker, LocalCluster

    from item2vec import user_partitions as up
    from item2vec.filters import needs_support
    from item2vec.ingest import read_partition

    config = _config(folder, SHUFFLE if mode == "partitioned" else 0)
    ingest = config.ingest
    files = sorted(folder.glob("part-*.parquet"))
    cluster = LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit=MEMORY_LIMIT or 0,
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
        try:
            rows = client.submit(lambda t: t.num_rows, result).result()
        except KilledWorker as killed:
            return {"killed": str(killed)[:200], "wall_s": round(time.perf_counter() - started, 2)}
        wall = time.perf_counter() - started
        peaks = client.run(_peak_rss_mb)  # before the digest, which is the bench's own work
        digest = client.submit(_digest, result).result()
    finally:
        client.close()
        cluster.close()
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": sorted(peaks.values()),
        "sequences": rows,
        "digest": digest,
    }


def _medians(runs: list[dict]) -> dict:
    """Median wall time and median peak of each worker (lowest first) over the runs
    that finished; ``killed``: how many did not."""
    import statistics

    done = [d for d in runs if "killed" not in d]
    if not done:
        return {"killed": len(runs), "wall_s": None, "peak_rss_mb": None, "digest": None}
    peaks = [statistics.median(d["peak_rss_mb"][k] for d in done) for k in range(WORKERS)]
    return {
        "killed": len(runs) - len(done),
        "wall_s": round(statistics.median(d["wall_s"] for d in done), 2),
        "peak_rss_mb": peaks,
        "sequences": done[0]["sequences"],
        "digest": done[0]["digest"],
        "walls_s": [d["wall_s"] for d in done],
    }


def main() -> None:
    print(
        f"shuffle_sequences: {EVENTS:,} events, {USERS:,} users, {ITEMS:,} items, "
        f"{PARTS} files, {SHUFFLE} partitions of users, {WORKERS} workers, memory limit "
        f"{MEMORY_LIMIT or 'none'}",
        flush=True,
    )
    folder = partitioned_log(CACHE, EVENTS, USERS, ITEMS, PARTS)
    runs: dict[str, list[dict]] = {"one-worker": [], "partitioned": []}
    for _ in range(REPEATS):
        for mode in runs:
            runs[mode].append(run(mode, folder))
            print(f"  {mode}: {runs[mode][-1]}", flush=True)
    results = {mode: _medians(done) for mode, done in runs.items()}
    digests = {done["digest"] for mode in runs for done in runs[mode] if "digest" in done}
    equal = len(digests) == 1
    walls = [results[mode]["wall_s"] for mode in runs]
    ratio = walls[1] / walls[0] if None not in walls else None
    said = []
    for mode, result in results.items():
        if result["wall_s"] is None:
            said.append(f"{mode}: killed in all {REPEATS} runs")
        else:
            killed = f", killed in {result['killed']}" if result["killed"] else ""
            said.append(f"{mode} {result['wall_s']} s, peak {result['peak_rss_mb']} MB{killed}")
    times = f"{ratio:.2f}x the time" if ratio is not None else "no ratio"
    print(f"  medians of {REPEATS}: {'; '.join(said)}; {times}; sha256 equal: {equal}", flush=True)
    print(
        json.dumps(
            {
                "bench": "shuffle_sequences",
                "events": EVENTS,
                "users": USERS,
                "items": ITEMS,
                "files": PARTS,
                "partitions": SHUFFLE,
                "workers": WORKERS,
                "memory_limit": MEMORY_LIMIT,
                "repeats": REPEATS,
                "ratio": None if ratio is None else round(ratio, 2),
                "equal": equal,
                **results,
            }
        )
    )


if __name__ == "__main__":
    main()
