"""Does publishing the evaluated model lose anything against a from-scratch refit?

The pipeline evaluates a model trained without each user's last event (the test
target). Publishing it as it is saves a second full training; a refit trains again
on every event. This benchmark measures what the refit buys on events neither
model has seen: the next event after the log the pipeline would see.

For each log:

1. Each user's last event is cut off as the future (users with at least 3
   events, as leave-last-out). The rest is the log a nightly run sees. Each such
   user is a case: the query is the end of their whole past history, the target
   their next event, and their past items are excluded, as in
   ``user_recommendations.parquet``.
2. On the past, the evaluated model trains on leave-last-out's training side (what
   ``--no-refit`` publishes) and the refit model on every past event.
3. Both are scored on the same future cases and the same catalogue (every past
   item), with the run's config, for ``BENCH_SEEDS`` seeds.

Logs: the bundled MovieLens sample (all ratings) and a synthetic log
(``BENCH_EVENTS``, ``BENCH_USERS``, ``BENCH_ITEMS``; 2M / 100k / 10k by default),
each with its run's config (the sample's tuned preset, the general defaults).
Prints one JSON line: per log, HR@10 of each model per seed, the mean difference
and its standard error (paired over seeds and users).
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

import numpy as np  # noqa: E402
from common import synthetic_log  # noqa: E402

from item2vec.config import build_config  # noqa: E402
from item2vec.evaluate import evaluate_model  # noqa: E402
from item2vec.ingest import read_events  # noqa: E402
from item2vec.presets import bundled_sample  # noqa: E402
from item2vec.sequences import build_sequences  # noqa: E402
from item2vec.split import leave_last_out, without_test_targets  # noqa: E402
from item2vec.train import train_word2vec  # noqa: E402

SEEDS = int(os.environ.get("BENCH_SEEDS", 3))
EVENTS = int(os.environ.get("BENCH_EVENTS", 2_000_000))
USERS = int(os.environ.get("BENCH_USERS", 100_000))
ITEMS = int(os.environ.get("BENCH_ITEMS", 10_000))
CACHE = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))


def compare(name: str, layers: list[dict]) -> dict:
    config = build_config(*layers)
    sequences = build_sequences(read_events(config.ingest).table, config.sequences)
    future = leave_last_out(sequences)  # train = every past event, test = the next one
    past = without_test_targets(sequences)
    evaluated_train = leave_last_out(past).train
    print(
        f"{name}: {len(future.test):,} future cases; refit trains on "
        f"{sum(map(len, future.train)):,} events, the evaluated model on "
        f"{sum(map(len, evaluated_train)):,}",
        flush=True,
    )
    k = config.evaluate.k[0]
    rows = []
    for seed in range(1, SEEDS + 1):
        train = config.train.model_copy(update={"seed": seed})
        hits = {}
        for model, corpus in (("evaluated", evaluated_train), ("refit", future.train)):
            started = time.perf_counter()
            vectors = train_word2vec(corpus, train)
            metrics = evaluate_model(vectors, future.train, future.test, config.evaluate)
            hits[model] = metrics[f"hr@{k}"]
            print(
                f"  seed {seed} {model}: hr@{k} {hits[model]:.4f} "
                f"({time.perf_counter() - started:.1f}s)",
                flush=True,
            )
        rows.append(hits)
    differences = [row["refit"] - row["evaluated"] for row in rows]
    cases = min(len(future.test), config.evaluate.max_users or len(future.test))
    hr = statistics.mean(row["refit"] for row in rows)
    # Noise of one difference of two hit rates on these cases (two standard errors).
    noise = 2 * np.sqrt(2 * hr * (1 - hr) / cases) if cases else None
    return {
        "log": name,
        "cases": cases,
        f"evaluated_hr@{k}": [round(r["evaluated"], 4) for r in rows],
        f"refit_hr@{k}": [round(r["refit"], 4) for r in rows],
        "mean_gain_of_refit": round(statistics.mean(differences), 4),
        "two_standard_errors_one_pair": round(float(noise), 4) if noise is not None else None,
    }


def main() -> None:
    results = []
    results.append(compare("movielens-sample", [bundled_sample()]))
    log = synthetic_log(CACHE, EVENTS, USERS, ITEMS, clusters=50)
    columns = {"paths": [str(log)]}
    results.append(compare("synthetic", [{"ingest": columns}]))
    print(json.dumps({"bench": "refit", "seeds": SEEDS, "logs": results}))


if __name__ == "__main__":
    main()
