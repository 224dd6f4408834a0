"""The pipeline on a 2-worker Dask ``LocalCluster`` against Prefect's thread pool.

A log from ``item2vec synth`` is cut into ``BENCH_PARTS`` Parquet files (many
partitions, one ingest task each), and the whole default run is timed three
ways, each in its own interpreter so that none inherits another's warm imports
or servers:

* ``threads``: Prefect's thread pool, every task in the flow process;
* ``dask``: a LocalCluster of 2 single-threaded worker processes, started and
  stopped with the run, whose workers report to the flow's own temporary
  Prefect server (what ``item2vec run --task-runner dask`` does);
* ``dask-own-servers``: the same, but the run is not pointed at the flow's
  server first, so each worker starts a temporary Prefect server of its own,
  as before this was fixed: the cost of what the docs tell a user of a remote
  cluster to avoid by setting ``PREFECT_API_URL``.

Printed: each wall time (the child's clock around ``run_pipeline``, the
cluster's start and stop included; not the interpreter's start), the stage
times of the manifest, where each stage ran, how many temporary Prefect
servers started, and a JSON line. On 2 cores the cluster does not win: the
point is that every heavy stage runs on the workers and what that costs.

Environment: ``BENCH_EVENTS`` (100k), ``BENCH_USERS`` (5k), ``BENCH_ITEMS``
(1k), ``BENCH_PARTS`` (8), ``BENCH_REPEATS`` (1; medians when more),
``BENCH_DIR`` (``/tmp/item2vec-bench``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("threads", "dask", "dask-own-servers")
SERVER_LINE = "Starting temporary server"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def partitioned_log(root: Path, events: int, users: int, items: int, parts: int) -> Path:
    """A folder of ``parts`` Parquet files cut from one ``item2vec synth`` log (cached)."""
    import pyarrow.parquet as pq

    folder = root / f"cluster-e{events}-u{users}-i{items}-p{parts}"
    if folder.is_dir() and len(list(folder.glob("part-*.parquet"))) == parts:
        print(f"  using cached {folder}", flush=True)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    whole = root / f"cluster-e{events}-u{users}-i{items}.parquet"
    item2vec = Path(sys.executable).with_name("item2vec")
    command = [str(item2vec), "synth", "--events", str(events), "--users", str(users)]
    command += ["--items", str(items), "--out", str(whole)]
    subprocess.run(command, check=True)
    table = pq.read_table(whole)
    for part in range(parts):
        start, stop = table.num_rows * part // parts, table.num_rows * (part + 1) // parts
        pq.write_table(table.slice(start, stop - start), folder / f"part-{part:03d}.parquet")
    return folder


def child(mode: str, log: Path) -> None:
    """One run in this process; prints its result as the last line."""
    import item2vec_flows  # noqa: F401  (quiet Prefect defaults first)
    from item2vec.config import build_config
    from item2vec_flows.pipeline import item2vec_run, run_pipeline
    from item2vec_flows.runners import build_task_runner

    output = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{mode}-"))
    config = build_config(
        {
            "ingest": {"paths": [str(log)], "cache": False},
            "publish": {"output": str(output), "model_name": "bench", "report": False},
        }
    )
    runner = None if mode == "threads" else build_task_runner("dask", dask_workers=2)
    started = time.perf_counter()
    if mode == "dask-own-servers":
        result = item2vec_run.with_options(task_runner=runner)(config)
    else:
        result = run_pipeline(config, task_runner=runner)
    wall = time.perf_counter() - started
    manifest = json.loads((Path(result["version_dir"]) / "manifest.json").read_text())
    print(
        json.dumps(
            {
                "mode": mode,
                "wall_s": round(wall, 2),
                "stages_s": result["stage_seconds"],
                "placement": manifest["placement"],
                "hr@10": result["metrics"]["model"]["hr@10"],
            }
        ),
        flush=True,
    )


def child_process(script: str, mode: str, log: Path) -> subprocess.CompletedProcess:
    """``script --child mode log`` in an interpreter of its own, warnings off."""
    return subprocess.run(
        [sys.executable, script, "--child", mode, str(log)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def run_child(mode: str, log: Path) -> dict:
    process = child_process(__file__, mode, log)
    if process.returncode != 0:
        sys.stderr.write(process.stderr[-4000:])
        raise SystemExit(f"{mode} run failed with exit code {process.returncode}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    result["temporary_servers"] = (process.stdout + process.stderr).count(SERVER_LINE)
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
        return
    events = _env_int("BENCH_EVENTS", 100_000)
    users = _env_int("BENCH_USERS", 5_000)
    items = _env_int("BENCH_ITEMS", 1_000)
    parts = _env_int("BENCH_PARTS", 8)
    repeats = _env_int("BENCH_REPEATS", 1)
    root = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))
    print(f"cluster: {events:,} events, {users:,} users, {items:,} items, {parts} files")
    log = partitioned_log(root, events, users, items, parts)
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for mode in MODES:
            runs[mode].append(run_child(mode, log))
            last = runs[mode][-1]
            print(
                f"  {mode:17s} {last['wall_s']:7.1f} s, {last['temporary_servers']} temporary "
                f"Prefect server(s), hr@10 {last['hr@10']:.4f}",
                flush=True,
            )
    summary = {"events": events, "users": users, "items": items, "files": parts}
    for mode, results in runs.items():
        summary[f"{mode}_wall_s"] = statistics.median(r["wall_s"] for r in results)
        summary[f"{mode}_temporary_servers"] = results[-1]["temporary_servers"]
    last = runs["dask"][-1]
    print("\nstage seconds (median)        threads     dask  dask-own-servers")
    for stage in last["stages_s"]:
        row = [statistics.median(r["stages_s"].get(stage, 0.0) for r in runs[m]) for m in MODES]
        print(f"  {stage:26s} {row[0]:8.2f} {row[1]:8.2f} {row[2]:8.2f}")
        summary[f"stage_{stage}_s"] = dict(zip(MODES, row, strict=True))
    print(f"\nwhere each stage ran on dask (cluster {last['placement']['cluster']}):")
    for stage, where in last["placement"]["stages"].items():
        print(f"  {stage:26s} {', '.join(where)}")
    summary["dask_placement"] = last["placement"]["stages"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
