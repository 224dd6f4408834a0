"""Events to per-user sequences on a 20M-event Parquet log: ours vs bare DuckDB vs pandas.

The log comes from :func:`item2vec.synth.write_synthetic_log` (200k users, 50k items,
Zipf popularity, sessions) and is cached under ``/tmp/item2vec-bench/``, keyed by its
parameters and the generator's source, so only the first run pays for it.

Each contender runs in its own child process, so that every peak RSS
(``ru_maxrss``) is that contender's alone and no allocator state leaks between
them. The pandas timing is measured on the first 2M events (whole users) and
scaled linearly to the full log (labelled so); it excludes reading the file.
``peak_rss_mb`` is our stage's peak, the one the 2.5 GB goal is about.

Environment: ``BENCH_EVENTS``, ``BENCH_USERS``, ``BENCH_ITEMS``, ``BENCH_CLUSTERS``,
``BENCH_REPEATS`` (5), ``BENCH_BUDGET_S`` (stop repeating a contender once its runs
took this long; 300), ``BENCH_PANDAS_EVENTS`` (2M), ``BENCH_DIR``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

# Each contender starts from the caller's environment: DuckDB and pandas with their
# own defaults, ours with the process defaults the item2vec command sets.
CONTENDER_ENV = dict(os.environ)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import json_child, peak_rss_mb, synthetic_log  # noqa: E402

EVENTS = int(os.environ.get("BENCH_EVENTS", 20_000_000))
USERS = int(os.environ.get("BENCH_USERS", 200_000))
ITEMS = int(os.environ.get("BENCH_ITEMS", 50_000))
CLUSTERS = int(os.environ.get("BENCH_CLUSTERS", 20))
SEED = 0
# Five, not three: on this kind of machine the first touch of fresh memory (pages
# the hypervisor took back after an earlier free) makes the first run in a process
# 1.5-2x slower than the rest, and a later one now and then.
REPEATS = int(os.environ.get("BENCH_REPEATS", 5))
BUDGET_S = float(os.environ.get("BENCH_BUDGET_S", 300))
PANDAS_EVENTS = int(os.environ.get("BENCH_PANDAS_EVENTS", 2_000_000))
CACHE = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))


def repeat(run) -> list[dict[str, float]]:
    """Up to REPEATS timings of ``run()``, fewer once BUDGET_S is spent."""
    results: list[dict[str, float]] = []
    spent = 0.0
    while len(results) < REPEATS and (not results or spent < BUDGET_S):
        timing = run()
        results.append(timing)
        spent += timing["total"]
        shown = ", ".join(f"{key} {value:.2f}s" for key, value in timing.items())
        print(f"    run {len(results)}: {shown}", flush=True)
    return results


def spread(runs: list[dict[str, float]]) -> list[float]:
    """Fastest and slowest total of the runs, to read the median against."""
    totals = [r["total"] for r in runs]
    return [round(min(totals), 3), round(max(totals), 3)]


def child_ours(path: Path) -> dict:
    from item2vec.config import IngestConfig
    from item2vec.ingest import read_events
    from item2vec.sequences import build_sequences

    config = IngestConfig(
        paths=[str(path)], user_col="user_id", item_col="item_id", time_col="timestamp"
    )

    def run() -> dict[str, float]:
        started = time.perf_counter()
        events = read_events(config)
        read = time.perf_counter()
        table = build_sequences(events.table)
        done = time.perf_counter()
        assert table.num_rows == USERS, table.num_rows
        return {"ingest": read - started, "sequences": done - read, "total": done - started}

    runs = repeat(run)
    return {
        "ingest_s": statistics.median(r["ingest"] for r in runs),
        "sequences_s": statistics.median(r["sequences"] for r in runs),
        "total_s": statistics.median(r["total"] for r in runs),
        "range_s": spread(runs),
        "repeats": len(runs),
    }


def child_duckdb(path: Path) -> dict:
    import duckdb

    literal = str(path).replace("'", "''")
    query = (
        "SELECT user_id, list(item_id ORDER BY timestamp) AS items "
        f"FROM read_parquet('{literal}') GROUP BY user_id"
    )

    def run() -> dict[str, float]:
        connection = duckdb.connect()
        started = time.perf_counter()
        table = connection.sql(query).to_arrow_table()
        done = time.perf_counter()
        assert table.num_rows == USERS, table.num_rows
        connection.close()
        return {"total": done - started}

    runs = repeat(run)
    return {
        "total_s": statistics.median(r["total"] for r in runs),
        "range_s": spread(runs),
        "repeats": len(runs),
    }


def child_pandas(path: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    groups, rows = [], 0
    # Whole row groups hold whole users, so the subset is complete histories.
    for index in range(source.num_row_groups):
        if rows >= PANDAS_EVENTS:
            break
        groups.append(index)
        rows += source.metadata.row_group(index).num_rows
    subset = pa.concat_tables([source.read_row_group(i) for i in groups]).slice(0, PANDAS_EVENTS)
    frame = subset.to_pandas()

    def run() -> dict[str, float]:
        started = time.perf_counter()
        frame.sort_values(["user_id", "timestamp"]).groupby("user_id")["item_id"].apply(list)
        return {"total": time.perf_counter() - started}

    runs = repeat(run)
    measured = statistics.median(r["total"] for r in runs)
    return {
        "subset_s": measured,
        "subset_events": len(frame),
        "total_s": measured * EVENTS / len(frame),
        "repeats": len(runs),
    }


CHILDREN = {"ours": child_ours, "duckdb": child_duckdb, "pandas": child_pandas}


def _environment(name: str) -> dict[str, str]:
    """The contender's environment: ours runs as the ``item2vec`` command would."""
    if name != "ours":
        return CONTENDER_ENV
    from item2vec_flows.cli import PROCESS_DEFAULTS

    return {**PROCESS_DEFAULTS, **CONTENDER_ENV}


def run_child(name: str, path: Path) -> dict:
    """Run one contender in a fresh interpreter, echo its progress, return its JSON."""
    print(f"  {name}:", flush=True)
    result, code, _ = json_child(__file__, name, path, _environment(name))
    if code != 0:
        raise SystemExit(f"bench child {name!r} failed with exit code {code}")
    print(f"    peak RSS {result['peak_rss_mb']:,.0f} MB", flush=True)
    return result


def main() -> None:
    print(
        f"sequences: {EVENTS:,} events, {USERS:,} users, {ITEMS:,} items "
        f"({CLUSTERS} clusters), Parquet",
        flush=True,
    )
    path = synthetic_log(CACHE, EVENTS, USERS, ITEMS, CLUSTERS, SEED)
    results = {name: run_child(name, path) for name in CHILDREN}
    ours, duck, pandas = results["ours"], results["duckdb"], results["pandas"]
    result = {
        "bench": "sequences",
        "events": EVENTS,
        "users": USERS,
        "items": ITEMS,
        "ours_s": round(ours["total_s"], 3),
        "ours_range_s": ours["range_s"],
        "ingest_s": round(ours["ingest_s"], 3),
        "sequences_s": round(ours["sequences_s"], 3),
        "duckdb_s": round(duck["total_s"], 3),
        "duckdb_range_s": duck["range_s"],
        "pandas_s_scaled": round(pandas["total_s"], 3),
        "pandas_subset_events": pandas["subset_events"],
        "pandas_subset_s": round(pandas["subset_s"], 3),
        "vs_duckdb": round(ours["total_s"] / duck["total_s"], 3),
        "vs_pandas": round(pandas["total_s"] / ours["total_s"], 3),
        "peak_rss_mb": ours["peak_rss_mb"],
        "peak_rss_mb_duckdb": duck["peak_rss_mb"],
        "peak_rss_mb_pandas": pandas["peak_rss_mb"],
        "repeats": {name: value["repeats"] for name, value in results.items()},
        "cpus": os.cpu_count(),
        "log": str(path),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        outcome = CHILDREN[sys.argv[2]](Path(sys.argv[3]))
        outcome["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(outcome), flush=True)
    else:
        main()
