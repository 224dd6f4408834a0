"""What the benchmarks share: peak memory and the cached synthetic logs."""

from __future__ import annotations

import hashlib
import resource
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def synthetic_log(
    cache: Path, events: int, users: int, items: int, clusters: int, seed: int = 0
) -> Path:
    """The cached synthetic log of this shape, generated first if missing."""
    from item2vec import synth
    from item2vec.synth import write_synthetic_log

    # A change to the generator must not silently reuse an old log.
    source = hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest()[:8]
    name = f"log-e{events}-u{users}-i{items}-c{clusters}-s{seed}-{source}.parquet"
    path = cache / name
    if path.is_file():
        print(f"  using cached {path}", flush=True)
        return path
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  generating {path} ...", flush=True)
    started = time.perf_counter()
    info = write_synthetic_log(path, events, users, items, clusters=clusters, seed=seed)
    print(
        f"  generated {info['events']:,} events, {info['sessions']:,} sessions in "
        f"{time.perf_counter() - started:.1f}s ({path.stat().st_size / 1e6:.0f} MB)",
        flush=True,
    )
    return path


def json_child(script: str, name: str, path: Path, env: dict[str, str]) -> tuple[dict, int, float]:
    """Run ``script --child NAME PATH`` in a fresh interpreter, echoing its progress.

    Returns its last line parsed as JSON, its exit code (the caller decides what
    a failure means) and its own peak RSS in MB (reaped with ``os.wait4``).
    """
    import json
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, script, "--child", name, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if not line.startswith("{"):
            print(line, end="", flush=True)
    code, peak = reap(process)
    return (json.loads(lines[-1]) if code == 0 and lines else {}), code, peak


def reap(process) -> tuple[int, float]:
    """Wait for ``process`` with ``os.wait4``: its exit code and its own peak RSS in MB."""
    import os

    if process.stdout is not None:
        process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    return process.returncode, round(usage.ru_maxrss / 1024, 1)
