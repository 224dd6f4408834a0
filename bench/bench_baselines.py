"""Item-kNN at its own best: what each similarity scores, and what the choice costs.

For the bundled sample (all ratings, its run's config) and a synthetic log
(``BENCH_EVENTS``, ``BENCH_USERS``, ``BENCH_ITEMS``; 2M / 100k / 10k by default,
the general defaults), item-kNN's settings are chosen on the validation target as
a run chooses them (:func:`item2vec.evaluate.knn_settings`). Prints validation
HR@10 per query length and per similarity, and the choice's wall time with every
similarity against the cosine alone, measured in the same process (median of
``BENCH_REPEATS``, 3 by default), as one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import synthetic_log  # noqa: E402

import item2vec.evaluate as evaluation  # noqa: E402
from item2vec.config import build_config  # noqa: E402
from item2vec.ingest import read_events  # noqa: E402
from item2vec.presets import bundled_sample  # noqa: E402
from item2vec.sequences import build_sequences  # noqa: E402
from item2vec.stages import baseline_validation  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
EVENTS = int(os.environ.get("BENCH_EVENTS", 2_000_000))
USERS = int(os.environ.get("BENCH_USERS", 100_000))
ITEMS = int(os.environ.get("BENCH_ITEMS", 10_000))
CACHE = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))


def measure(name: str, layers: list[dict]) -> dict:
    config = build_config(*layers)
    sequences = build_sequences(read_events(config.ingest).table, config.sequences)
    validation = baseline_validation(sequences, config.evaluate)
    every, cosine = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        settings = evaluation.knn_settings(validation, config.evaluate)
        every.append(time.perf_counter() - started)
        chosen = evaluation.KNN_SIMILARITIES
        evaluation.KNN_SIMILARITIES = ("cosine",)
        try:
            started = time.perf_counter()
            evaluation.knn_settings(validation, config.evaluate)
            cosine.append(time.perf_counter() - started)
        finally:
            evaluation.KNN_SIMILARITIES = chosen
    result = {
        "log": name,
        "chosen": {"query_items": settings["query_items"], "similarity": settings["similarity"]},
        "validation_by_query_length": settings["validation"],
        "validation_by_similarity": settings["validation_similarity"],
        "seconds_every_similarity": round(statistics.median(every), 2),
        "seconds_cosine_only": round(statistics.median(cosine), 2),
    }
    result["ratio"] = round(result["seconds_every_similarity"] / result["seconds_cosine_only"], 2)
    print(f"  {name}: {result}", flush=True)
    return result


def main() -> None:
    sample = bundled_sample()
    log = synthetic_log(CACHE, EVENTS, USERS, ITEMS, clusters=20)
    results = [
        measure("bundled sample", [sample]),
        measure(f"synthetic {EVENTS:,} events", [{"ingest": {"paths": [str(log)]}}]),
    ]
    print(json.dumps({"benchmark": "baselines", "results": results}))


if __name__ == "__main__":
    main()
