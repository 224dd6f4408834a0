"""The whole default ``item2vec run`` on a 20M-event log, against one bare gensim training.

DESIGN §4: a stage benchmark does not stand in for the whole run (a pipeline fast
stage by stage once stalled on a step quadratic in users). This one runs the
command a user would, ``item2vec run LOG --output DIR --model-name bench`` with
every other setting at its default, and compares its wall time with a single
``Word2Vec(sentences=corpus, **params)`` of the same configuration on the same
training sequences: the one step nothing in the pipeline can make cheaper.
Goals: the whole run at most 1.5x that training, peak RSS at most 6 GB.

The log comes from :func:`item2vec.synth.write_synthetic_log` (1M users, 100k
items, 200 clusters, Zipf popularity, sessions) and is cached under
``/tmp/item2vec-bench/``, keyed by its parameters and the generator's source, so
only the first run pays for it (the sequences benchmark shares the cache).

Each measurement runs in its own child process and is reaped with ``os.wait4``,
so its peak RSS (``ru_maxrss``) is its own; for the run that is the largest of
the CLI process and the children it reaped (Prefect's embedded server), not
their sum. The run's wall time is the parent's clock around the whole command:
interpreter start, imports, Prefect's embedded server (5-30 s), every stage and
the summary. Exit code 3 (the quality gate refused the model, which was still
published) counts as completed. Per-stage wall times come from the version's
``manifest.json`` (``timings.seconds``) and its ``cost`` when the run records them.

The bare training child builds the training side of the split with the library
(ingest, sequences, leave-last-out) under the run's default config, then times
only the ``Word2Vec`` call; besides the child's peak it reports the peak of the
training alone (``VmHWM`` reset through ``/proc/self/clear_refs`` just before).

Environment: ``BENCH_SIZE`` (``quick``: 2M events, 100k users, 10k items, 50
clusters), ``BENCH_EVENTS`` (20M), ``BENCH_USERS`` (1M), ``BENCH_ITEMS`` (100k),
``BENCH_CLUSTERS`` (200), ``BENCH_REPEATS`` (1; medians when more),
``BENCH_KEEP_OUTPUT`` (1 keeps the run's output directories), ``BENCH_DIR``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Every child starts from the caller's environment, as a user's `item2vec run`
# would; the command sets its own process defaults.
CHILD_ENV = dict(os.environ)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import json_child, peak_rss_mb, reap, synthetic_log  # noqa: E402

SIZES = {
    "full": {"events": 20_000_000, "users": 1_000_000, "items": 100_000, "clusters": 200},
    "quick": {"events": 2_000_000, "users": 100_000, "items": 10_000, "clusters": 50},
}
SIZE = os.environ.get("BENCH_SIZE", "full")
if SIZE not in SIZES:
    raise SystemExit(f"BENCH_SIZE={SIZE!r}: use one of {', '.join(SIZES)}")
EVENTS = int(os.environ.get("BENCH_EVENTS", SIZES[SIZE]["events"]))
USERS = int(os.environ.get("BENCH_USERS", SIZES[SIZE]["users"]))
ITEMS = int(os.environ.get("BENCH_ITEMS", SIZES[SIZE]["items"]))
CLUSTERS = int(os.environ.get("BENCH_CLUSTERS", SIZES[SIZE]["clusters"]))
SEED = 0
# One: a run at the reference size takes many minutes. With more, medians.
REPEATS = int(os.environ.get("BENCH_REPEATS", 1))
KEEP_OUTPUT = os.environ.get("BENCH_KEEP_OUTPUT", "0") == "1"
CACHE = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))
MODEL_NAME = "bench"
# Exit codes of `item2vec run` that mean the run completed (cli.EXIT_OK, EXIT_GATE).
COMPLETED = {0: "ok", 3: "gate refused"}
GOALS = {"vs_bare_train": 1.5, "peak_rss_gb": 6}


def item2vec_command() -> list[str]:
    """The ``item2vec`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "item2vec"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "item2vec_flows.cli"]


def newest_manifest(output: Path) -> dict[str, Any] | None:
    """The manifest of the newest version under ``output/bench``.

    Not LATEST's: a version the gate refused is published without moving it.
    """
    manifests = [
        path
        for path in (output / MODEL_NAME).glob("*/manifest.json")
        if not path.parent.name.startswith(".")
    ]
    if not manifests:
        return None
    newest = max(manifests, key=lambda path: path.stat().st_mtime_ns)
    return json.loads(newest.read_text())


def run_pipeline(path: Path, repeat: int) -> dict[str, Any]:
    """One default ``item2vec run`` in a fresh output directory (so a cold input cache)."""
    output = Path(tempfile.mkdtemp(prefix="pipeline-run-", dir=CACHE))
    command = [*item2vec_command(), "run", str(path), "--output", str(output)]
    command += ["--model-name", MODEL_NAME]
    print(f"  run {repeat}: {' '.join(command)}", flush=True)
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=CHILD_ENV,
        )
        tail: list[str] = []
        reported = None
        for line in process.stdout:
            print(f"    | {line}", end="", flush=True)
            tail = [*tail[-19:], line]
            found = re.match(r"Done in ([0-9.]+)s\.", line.strip())
            if found:
                reported = float(found.group(1))
        code, peak = reap(process)
        seconds = time.perf_counter() - started
        if code not in COMPLETED:
            raise SystemExit(
                f"`item2vec run` failed with exit code {code}; its last lines:\n" + "".join(tail)
            )
        manifest = newest_manifest(output)
    finally:
        if KEEP_OUTPUT:
            print(f"    output kept in {output}", flush=True)
        else:
            shutil.rmtree(output, ignore_errors=True)
    if manifest is None:
        raise SystemExit(f"`item2vec run` exited {code} but published no manifest under {output}")
    stages = (manifest.get("timings") or {}).get("seconds")
    print(
        f"    run {repeat}: {seconds:.1f}s ({COMPLETED[code]}), peak RSS {peak:,.0f} MB"
        + (f"; the CLI reported {reported:.1f}s" if reported is not None else ""),
        flush=True,
    )
    if stages:
        for stage, value in sorted(stages.items(), key=lambda item: -item[1]):
            print(f"      {stage:<24} {value:8.2f}s  {100 * value / seconds:5.1f}%", flush=True)
    else:
        print("      no stage timings in manifest", flush=True)
    if manifest.get("cost") is not None:
        print(f"      cost: {json.dumps(manifest['cost'])}", flush=True)
    return {
        "seconds": seconds,
        "cli_reported_s": reported,
        "peak_rss_mb": peak,
        "exit_code": code,
        "stages": stages or {},
        "cost": manifest.get("cost"),
        "refit": (manifest.get("config") or {}).get("publish", {}).get("refit"),
        "counts": manifest.get("counts", {}),
    }


def child_bare(path: Path) -> dict[str, Any]:
    """Build the run's training sequences with the library, then time one bare Word2Vec."""
    import gc

    from gensim.models import Word2Vec

    from item2vec.config import build_config
    from item2vec.ingest import read_events
    from item2vec.sequences import build_sequences
    from item2vec.split import split_sequences
    from item2vec.train import OWN_FIELDS, training_corpus

    # The run's default config for this log: the CLI's flag layer is just the path
    # (the synthetic log's columns are the defaults: user_id, item_id, timestamp).
    config = build_config({"ingest": {"paths": [str(path)]}})
    started = time.perf_counter()
    events = read_events(config.ingest)
    sequences = build_sequences(events.table, config.sequences)
    split = split_sequences(sequences, config.evaluate.split, config.evaluate.test_days)
    # The sentences train_word2vec hands gensim (in window mode only histories
    # over gensim's 10,000-token limit are cut).
    corpus = training_corpus(split.train, config.train)
    del events, sequences, split
    gc.collect()
    prepared = time.perf_counter() - started
    params = config.train.model_dump(exclude=OWN_FIELDS)
    words = sum(map(len, corpus))
    print(
        f"    prepared {len(corpus):,} training sequences, {words:,} items, in {prepared:.1f}s; "
        f"training (epochs={params['epochs']}, workers={params['workers']}) ...",
        flush=True,
    )
    rss_before = _status_mb("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    Word2Vec(sentences=corpus, **params)
    seconds = time.perf_counter() - started
    return {
        "train_s": seconds,
        "prepare_s": prepared,
        "words": words * params["epochs"],
        "words_per_s": round(words * params["epochs"] / seconds),
        "rss_before_train_mb": rss_before,
        "train_peak_rss_mb": _status_mb("VmHWM") if reset else None,
    }


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (kB) in MB, None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_bare(path: Path, repeat: int) -> dict[str, Any]:
    """The bare training in a fresh interpreter: echo its progress, return its JSON."""
    print(f"  bare gensim {repeat}:", flush=True)
    result, code, peak = json_child(__file__, "bare", path, CHILD_ENV)
    if code != 0 or not result:
        raise SystemExit(f"bare training child failed with exit code {code}")
    result["peak_rss_mb"] = peak
    train_peak = result["train_peak_rss_mb"]
    print(
        f"    bare train {repeat}: {result['train_s']:.1f}s, {result['words_per_s']:,} words/s; "
        f"peak RSS {peak:,.0f} MB"
        + (f" (training alone {train_peak:,.0f} MB)" if train_peak is not None else ""),
        flush=True,
    )
    return result


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_stages(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds of each stage over the runs that recorded it."""
    names = dict.fromkeys(name for run in runs for name in run["stages"])
    return {
        name: round(statistics.median(r["stages"][name] for r in runs if name in r["stages"]), 3)
        for name in names
    }


def main() -> None:
    print(
        f"pipeline: {EVENTS:,} events, {USERS:,} users, {ITEMS:,} items ({CLUSTERS} clusters), "
        f"Parquet; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    path = synthetic_log(CACHE, EVENTS, USERS, ITEMS, CLUSTERS, SEED)
    runs, bares = [], []
    for repeat in range(1, REPEATS + 1):
        runs.append(run_pipeline(path, repeat))
        bares.append(run_bare(path, repeat))
    run_s = statistics.median(r["seconds"] for r in runs)
    bare_s = statistics.median(b["train_s"] for b in bares)
    peak = statistics.median(r["peak_rss_mb"] for r in runs)
    ratio = run_s / bare_s
    peak_ok = peak <= GOALS["peak_rss_gb"] * 1024
    ratio_ok = ratio <= GOALS["vs_bare_train"]
    print(
        f"  whole run {run_s:.1f}s / bare training {bare_s:.1f}s = {ratio:.2f}x "
        f"(goal <= {GOALS['vs_bare_train']}: {'met' if ratio_ok else 'NOT met'})",
        flush=True,
    )
    print(
        f"  run peak RSS {peak:,.0f} MB (goal <= {GOALS['peak_rss_gb']} GB: "
        f"{'met' if peak_ok else 'NOT met'})",
        flush=True,
    )
    if runs[0]["refit"]:
        print("  note: the default run trains twice (train, then refit on all events)", flush=True)
    result = {
        "bench": "pipeline",
        "events": EVENTS,
        "users": USERS,
        "items": ITEMS,
        "clusters": CLUSTERS,
        "run_s": round(run_s, 3),
        "bare_train_s": round(bare_s, 3),
        "vs_bare_train": round(ratio, 3),
        "peak_rss_mb": peak,
        "bare_peak_rss_mb": statistics.median(b["peak_rss_mb"] for b in bares),
        "bare_train_peak_rss_mb": median([b["train_peak_rss_mb"] for b in bares]),
        "stages": median_stages(runs),
        "cost": runs[-1]["cost"],
        "exit_code": runs[-1]["exit_code"],
        "cli_reported_s": median([r["cli_reported_s"] for r in runs]),
        "bare_words_per_s": round(statistics.median(b["words_per_s"] for b in bares)),
        "refit": runs[-1]["refit"],
        "run_range_s": [
            round(min(r["seconds"] for r in runs), 3),
            round(max(r["seconds"] for r in runs), 3),
        ],
        "repeats": REPEATS,
        "cpus": os.cpu_count(),
        "goals": GOALS,
        "goals_met": {"vs_bare_train": ratio_ok, "peak_rss_gb": peak_ok},
        "log": str(path),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        outcome = {"bare": child_bare}[sys.argv[2]](Path(sys.argv[3]))
        outcome["child_peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(outcome), flush=True)
    else:
        main()
