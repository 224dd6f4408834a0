"""Warm-started nightly runs against training from scratch, night after night.

A folder of daily logs (:func:`item2vec.synth_daily.write_daily_folder`, new
items every day) grows by one file a night. Each night two chains run
``item2vec run`` on the same folder with the same config (temporal split,
``test_days`` 1: the held-out events are the newest day's): one with
``--warm-start``, one from scratch. Both are evaluated on the same holdout.

Prints, per night: the warm run's mode (``warm``/``full``), the cost ratio
warm/scratch of the training stage and of the whole run, HR@10 of both with
two standard errors, and each chain's neighbour stability with its previous
version (the gate's top-10 overlap). The last line is one JSON object with
every night and the medians over warm nights.

Environment: ``BENCH_DAYS`` (30), ``BENCH_EVENTS`` (90k), ``BENCH_USERS``
(3,000), ``BENCH_ITEMS`` (1,500), ``BENCH_CLUSTERS`` (15), ``BENCH_WARM_EPOCHS``,
``BENCH_WARM_DATA``, ``BENCH_WARM_ALPHA``, ``BENCH_FULL_EVERY`` (the config's
defaults), ``BENCH_SCRATCH`` (1; 0 runs the warm chain alone), ``BENCH_START`` (1: the
days already in the folder before the first night), ``BENCH_NIGHTS`` (all the
rest), ``BENCH_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from item2vec import synth_daily  # noqa: E402
from item2vec.config import build_config  # noqa: E402
from item2vec.errors import QualityGateError  # noqa: E402

DAYS = int(os.environ.get("BENCH_DAYS", 30))
EVENTS = int(os.environ.get("BENCH_EVENTS", 90_000))
USERS = int(os.environ.get("BENCH_USERS", 3_000))
ITEMS = int(os.environ.get("BENCH_ITEMS", 1_500))
CLUSTERS = int(os.environ.get("BENCH_CLUSTERS", 15))
SCRATCH = os.environ.get("BENCH_SCRATCH", "1") == "1"
START = int(os.environ.get("BENCH_START", 1))
NIGHTS = int(os.environ.get("BENCH_NIGHTS", DAYS))
ROOT = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))


def warm_settings() -> dict:
    """The warm-start keys the environment overrides (the config's defaults otherwise)."""
    names = {
        "BENCH_WARM_EPOCHS": ("warm_epochs", int),
        "BENCH_WARM_DATA": ("warm_data", str),
        "BENCH_FULL_EVERY": ("full_retrain_every", int),
        "BENCH_WARM_ALPHA": ("warm_alpha", float),
    }
    return {key: kind(os.environ[var]) for var, (key, kind) in names.items() if var in os.environ}


def daily_files() -> list[Path]:
    """The cached daily folder of this shape, generated first if missing."""
    source = hashlib.sha256(Path(synth_daily.__file__).read_bytes()).hexdigest()[:8]
    folder = ROOT / f"daily-d{DAYS}-e{EVENTS}-u{USERS}-i{ITEMS}-c{CLUSTERS}-{source}"
    if not folder.is_dir():
        print(f"  generating {folder} ...", flush=True)
        synth_daily.write_daily_folder(folder, DAYS, EVENTS, USERS, ITEMS, CLUSTERS)
    return sorted(folder.glob("events-*.csv"))


def config_for(live: Path, output: Path, warm: bool):
    return build_config(
        {
            "ingest": {"paths": [str(live)], "cache_dir": str(output / "cache")},
            "train": {"warm_start": warm, **warm_settings()},
            "evaluate": {"split": "temporal", "test_days": 1.0, "max_users": 0},
            "publish": {
                "output": str(output),
                "model_name": "nightly",
                "report": False,
                "recommendations_n": 0,
            },
        }
    )


def night(config) -> dict:
    """One ``item2vec run``: its result (also when the gate refused it) and its wall time."""
    from item2vec_flows.pipeline import run_pipeline

    started = time.perf_counter()
    try:
        result = run_pipeline(config)
    except QualityGateError as refused:
        result = refused.result
    seconds = time.perf_counter() - started
    manifest = json.loads((Path(result["version_dir"]) / "manifest.json").read_text())
    hr = result["metrics"]["model"]["hr@10"]
    n = result["counts"]["test_users"]
    return {
        "seconds": round(seconds, 2),
        "train_seconds": round(result["stage_seconds"]["train"], 2),
        "stage_seconds": {k: round(v, 2) for k, v in result["stage_seconds"].items()},
        "hr@10": round(hr, 4),
        "two_se": round(2 * math.sqrt(hr * (1 - hr) / max(n, 1)), 4),
        "test_users": n,
        "gate": result["gate"]["passed"],
        "stability": result["gate"].get("stability"),
        "mode": (manifest.get("warm_start") or {}).get("mode", "full"),
        "reason": (manifest.get("warm_start") or {}).get("reason"),
        "events_trained": (manifest.get("warm_start") or {}).get("events"),
        "vocabulary": result["counts"]["vocabulary"],
    }


def stage_medians(runs: list[dict]) -> dict[str, float]:
    """Each stage's median seconds over ``runs``, and the median whole-run wall time (``whole``)."""
    names = sorted({name for run in runs for name in run["stage_seconds"]})
    medians = {
        name: round(statistics.median(r["stage_seconds"].get(name, 0.0) for r in runs), 2)
        for name in names
    }
    return medians | {"whole": round(statistics.median(r["seconds"] for r in runs), 2)}


def main() -> None:
    files = daily_files()
    work = ROOT / f"warm-run-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    live = work / "logs"
    live.mkdir(parents=True)
    chains = {"warm": work / "out-warm", "scratch": work / "out-scratch"}
    if not SCRATCH:
        chains.pop("scratch")
    nights = []
    for path in files[:START]:  # the folder as it stands on the first benchmarked night
        shutil.copy(path, live / path.name)
    for day, path in enumerate(files[START : START + NIGHTS], start=START + 1):
        shutil.copy(path, live / path.name)  # tonight's file lands in the folder
        row = {"night": day}
        for name, output in chains.items():
            row[name] = night(config_for(live, output, warm=name == "warm"))
        nights.append(row)
        warm = row["warm"]
        line = f"night {day:2d}: warm[{warm['mode']}]"
        line += f" hr@10 {warm['hr@10']:.4f}±{warm['two_se']:.4f}"
        if SCRATCH:
            scratch = row["scratch"]
            row["train_ratio"] = round(warm["train_seconds"] / scratch["train_seconds"], 3)
            row["run_ratio"] = round(warm["seconds"] / scratch["seconds"], 3)
            row["hr_difference"] = round(warm["hr@10"] - scratch["hr@10"], 4)
            line += (
                f" scratch hr@10 {scratch['hr@10']:.4f}±{scratch['two_se']:.4f}"
                f" train {warm['train_seconds']:.2f}s/{scratch['train_seconds']:.2f}s"
                f" = {row['train_ratio']:.2f}x, run {row['run_ratio']:.2f}x,"
                f" stability {warm['stability']} / {scratch['stability']}"
            )
        print(line, flush=True)
    warm_nights = [r for r in nights if r["warm"]["mode"] == "warm"]
    summary = {
        "benchmark": "warm",
        "days": DAYS,
        "events": EVENTS,
        "users": USERS,
        "items": ITEMS,
        "settings": warm_settings(),
        "warm_nights": len(warm_nights),
        "nights": nights,
    }
    if SCRATCH and warm_nights:
        within = [
            abs(r["hr_difference"]) <= max(r["warm"]["two_se"], r["scratch"]["two_se"])
            for r in warm_nights
        ]
        summary |= {
            "median_train_ratio": statistics.median(r["train_ratio"] for r in warm_nights),
            "median_run_ratio": statistics.median(r["run_ratio"] for r in warm_nights),
            "median_hr_difference": statistics.median(r["hr_difference"] for r in warm_nights),
            "mean_hr_warm": round(statistics.mean(r["warm"]["hr@10"] for r in warm_nights), 4),
            "mean_hr_scratch": round(
                statistics.mean(r["scratch"]["hr@10"] for r in warm_nights), 4
            ),
            "nights_within_two_se": sum(within),
            "median_stage_seconds": {
                name: stage_medians([r[name] for r in warm_nights]) for name in chains
            },
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
