"""Cold start measured: how well category-mean vectors rank items with too few events.

On the daily folder of ``bench/run warm`` (new items every day), for a few
nights: the temporal split holds out the newest day (``test_days`` 1), the
default config trains on the rest, and the cases whose target has fewer than
``min_count`` training events (so no trained vector) are the cold cases. Each
is scored with cold start (the target's category mean,
:func:`item2vec.cold_start.with_cold_start`) and without it (left out of the
table: the target cannot be ranked, a miss). HR@10 and MRR@10 on the cold
cases and on every case, with two standard errors, per night and seed.

Environment: the sizes of ``bench/run warm``, ``BENCH_NIGHTS`` (every second
night from the 4th to the 30th), ``BENCH_SEEDS`` (1). The last line pools the
cold cases of every night: hits and HR@10 with two standard errors.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from bench_warm import daily_files  # noqa: E402

from item2vec import stages  # noqa: E402
from item2vec.cold_start import with_cold_start  # noqa: E402
from item2vec.config import build_config  # noqa: E402
from item2vec.sequences import build_sequences  # noqa: E402
from item2vec.split import select_cases  # noqa: E402
from item2vec.warm_start import training_counts  # noqa: E402

NIGHTS = [
    int(n) for n in os.environ.get("BENCH_NIGHTS", ",".join(map(str, range(4, 31, 2)))).split(",")
]
SEEDS = int(os.environ.get("BENCH_SEEDS", 1))


def _scores(vectors, split, config) -> dict:
    metrics = stages.model_metrics(vectors, split, config.evaluate)
    hr, n = float(metrics["hr@10"]), len(split.test)
    return {
        "hr@10": round(hr, 4),
        "two_se": round(2 * math.sqrt(hr * (1 - hr) / max(n, 1)), 4),
        "mrr@10": round(float(metrics["mrr@10"]), 4),
        "cases": n,
    }


def main() -> None:
    files = daily_files()
    items_path = next(files[0].parent.parent.glob(f"{files[0].parent.name}-items.csv"))
    items = pd.read_csv(items_path, dtype=str)
    rows = []
    for night in NIGHTS:
        # The items file of that night: the items that exist by its last day.
        listed = items[items["first_day"] <= files[night - 1].stem.removeprefix("events-")]
        categories = pa.table({"item_id": listed["item_id"], "category": listed["category"]})
        log = pd.concat(
            [pd.read_csv(p, dtype={"user_id": str, "item_id": str}) for p in files[:night]]
        )
        log["ts"] = pd.to_datetime(log["timestamp"], unit="s", utc=True)
        sequences = build_sequences(log[["user_id", "item_id", "ts"]])
        for seed in range(SEEDS):
            config = build_config(
                {
                    "train": {"seed": seed},
                    "evaluate": {"split": "temporal", "test_days": 1.0, "max_users": 0},
                }
            )
            split = stages.split(sequences, config.evaluate)
            counts = training_counts(split)
            trained = stages.train(split, config.train)
            cold = with_cold_start(trained, categories, counts)
            seen = counts.reindex(np.asarray(split.test.targets, dtype=object)).fillna(0)
            rare = ((seen > 0) & (seen < config.train.min_count)).to_numpy()
            cold_split = dataclasses.replace(split, test=select_cases(split.test, rare))
            row = {
                "night": night,
                "seed": seed,
                "cold_items": cold.history["cold_start"]["items"],
                "cold_cases": int(rare.sum()),
                "unseen_target_cases": int((seen == 0).sum()),
                "cold_cases_with_cold_start": _scores(cold, cold_split, config),
                "cold_cases_left_out": _scores(trained, cold_split, config),
                "all_cases_with_cold_start": _scores(cold, split, config),
                "all_cases_left_out": _scores(trained, split, config),
                "catalogue_chance_hr@10": round(10 / max(len(counts), 1), 4),
            }
            rows.append(row)
            print(
                f"night {night} seed {seed}: {row['cold_cases']} cold cases, HR@10 "
                f"{row['cold_cases_with_cold_start']['hr@10']:.3f} with cold start vs "
                f"{row['cold_cases_left_out']['hr@10']:.3f} left out; all cases "
                f"{row['all_cases_with_cold_start']['hr@10']:.4f} vs "
                f"{row['all_cases_left_out']['hr@10']:.4f}",
                flush=True,
            )
    pooled = {}
    for name in ("cold_cases_with_cold_start", "cold_cases_left_out"):
        hits = sum(r[name]["hr@10"] * r[name]["cases"] for r in rows)
        cases = sum(r[name]["cases"] for r in rows)
        hr = hits / max(cases, 1)
        pooled[name] = {
            "hits": round(hits),
            "cases": cases,
            "hr@10": round(hr, 4),
            "two_se": round(2 * math.sqrt(hr * (1 - hr) / max(cases, 1)), 4),
        }
    pooled["unseen_target_cases"] = sum(r["unseen_target_cases"] for r in rows)
    pooled["all_cases"] = sum(r["all_cases_left_out"]["cases"] for r in rows)
    print(json.dumps({"benchmark": "cold", "pooled": pooled, "nights": rows}))


if __name__ == "__main__":
    main()
