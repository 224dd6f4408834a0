"""The whole ``item2vec run`` on a LocalCluster: each worker's peak memory, one worker
against partitions of users for the sequences.

A log from ``item2vec synth`` is cut into ``BENCH_PARTS`` Parquet files
(:func:`bench_cluster.partitioned_log`). Each mode runs the whole pipeline in
its own interpreter, on a fresh LocalCluster of ``BENCH_WORKERS``
single-threaded worker processes (``memory_limit`` ``BENCH_MEMORY_LIMIT``, or
none), through ``run_pipeline`` with a ``DaskTaskRunner`` at its address:

* ``one-worker``: ``sequences.shuffle_partitions = 0``;
* ``partitioned``: ``sequences.shuffle_partitions = BENCH_SHUFFLE``.

Training runs ``BENCH_EPOCHS`` epochs (2: epochs change the time, not the
memory). Printed per mode: the wall time, or the error a killed worker ended
the run with; each worker's peak RSS (``VmHWM``) with the stages that ran on
it (the manifest's placement); and a JSON line. Environment: ``BENCH_EVENTS``
(12M), ``BENCH_USERS`` (100k), ``BENCH_ITEMS`` (20k), ``BENCH_PARTS`` (8),
``BENCH_SHUFFLE`` (4), ``BENCH_WORKERS`` (4), ``BENCH_MEMORY_LIMIT`` (none),
``BENCH_EPOCHS`` (2), ``BENCH_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import _env_int, child_process, partitioned_log  # noqa: E402
from bench_shuffle_sequences import _peak_rss_mb  # noqa: E402

EVENTS, USERS = _env_int("BENCH_EVENTS", 12_000_000), _env_int("BENCH_USERS", 100_000)
ITEMS, PARTS = _env_int("BENCH_ITEMS", 20_000), _env_int("BENCH_PARTS", 8)
SHUFFLE, WORKERS = _env_int("BENCH_SHUFFLE", 4), _env_int("BENCH_WORKERS", 4)
EPOCHS, MEMORY_LIMIT = _env_int("BENCH_EPOCHS", 2), os.environ.get("BENCH_MEMORY_LIMIT") or None
ROOT = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))
MODES = ("one-worker", "partitioned")


def child(mode: str, log: Path) -> None:
    """One whole run in this process; prints its result as the last line."""
    from distributed import Client, LocalCluster
    from prefect_dask import DaskTaskRunner

    import item2vec_flows  # noqa: F401  (quiet Prefect defaults first)
    from item2vec.config import build_config
    from item2vec_flows.pipeline import run_pipeline

    config = build_config(
        {
            "ingest": {"paths": [str(log)], "cache": False},
            "sequences": {"shuffle_partitions": SHUFFLE if mode == "partitioned" else 0},
            "train": {"epochs": EPOCHS},
            "publish": {
                "output": tempfile.mkdtemp(prefix=f"bench-cluster-memory-{mode}-"),
                "model_name": "bench",
                "report": False,
                "gate_margin": 0,
            },
        }
    )
    cluster = LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        dashboard_address=None,
        memory_limit=MEMORY_LIMIT or 0,
    )
    with cluster, Client(cluster) as client:
        started = time.perf_counter()
        outcome: dict = {"mode": mode}
        try:
            result = run_pipeline(
                config, task_runner=DaskTaskRunner(address=cluster.scheduler_address)
            )
            outcome["placement"] = result["placement"]["stages"]
            outcome["hr@10"] = result["metrics"]["model"]["hr@10"]
        except Exception as error:  # noqa: BLE001 - a killed worker is a result here
            outcome["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        outcome["wall_s"] = round(time.perf_counter() - started, 1)
        outcome["peak_rss_mb"] = client.run(_peak_rss_mb)
    print(json.dumps(outcome), flush=True)


def run_child(mode: str, log: Path) -> dict:
    process = child_process(__file__, mode, log)
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        sys.stderr.write(process.stderr[-4000:])
        raise SystemExit(f"{mode} run failed with exit code {process.returncode}")
    return json.loads(lines[-1])


def _print(result: dict) -> None:
    said = result.get("error") or f"hr@10 {result['hr@10']:.4f}"
    print(f"  {result['mode']}: {result['wall_s']} s, {said}", flush=True)
    stages_of: dict[str, list[str]] = {}
    for stage, where in (result.get("placement") or {}).items():
        for worker in where:
            stages_of.setdefault(worker, []).append(stage)
    for worker, peak in sorted(result["peak_rss_mb"].items(), key=lambda kv: kv[1]):
        print(f"    {peak:8,.0f} MB  {worker}  {', '.join(stages_of.get(worker, []))}")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
        return
    print(
        f"cluster_memory: {EVENTS:,} events, {USERS:,} users, {ITEMS:,} items, {PARTS} files, "
        f"{WORKERS} workers, memory limit {MEMORY_LIMIT or 'none'}, {EPOCHS} epochs",
        flush=True,
    )
    log = partitioned_log(ROOT, EVENTS, USERS, ITEMS, PARTS)
    results = [run_child(mode, log) for mode in MODES]
    for result in results:
        _print(result)
    summary = {"bench": "cluster_memory", "events": EVENTS, "workers": WORKERS}
    summary |= {"memory_limit": MEMORY_LIMIT, "epochs": EPOCHS, "partitions": SHUFFLE}
    for result in results:
        summary[result["mode"]] = {
            "wall_s": result["wall_s"],
            "error": result.get("error"),
            "max_peak_rss_mb": max(result["peak_rss_mb"].values()),
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
