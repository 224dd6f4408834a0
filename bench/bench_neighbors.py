"""Which scoring should the neighbour table use? Item to item, on validation and test.

For each log, and for ``BENCH_SEEDS`` seeds:

1. On the **validation** target (:func:`item2vec.split.validation_split`: the
   training side holds no validation or test target), the model is trained and
   its neighbour table measured item to item under each scoring (``in-in``,
   ``in-out``, ``symmetric``): the query is a user's last training item, the
   hit their next item among its top k. This is what chooses the default.
2. On the **test** target, as ``item2vec run`` measures the published table.

Item-kNN's own neighbour table is measured beside them (it has no seed). The
model with and without its fallback (item-kNN, then popularity, for users the
model cannot query) is measured on the test target of the sample kept to ratings
>= 4, where the model cannot query the most users.

Logs: the bundled MovieLens sample with its tuned preset (genres as the
category), and a synthetic log (``BENCH_EVENTS``, ``BENCH_USERS``,
``BENCH_ITEMS``; 500k / 25k / 5k by default) with the general defaults.
Prints one JSON line: per log and target, HR@10 per scoring per seed and its mean.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import synthetic_log  # noqa: E402

from item2vec import stages  # noqa: E402
from item2vec.baselines import ItemKNNScorer, PopularityScorer  # noqa: E402
from item2vec.catalogue import build_catalogue, user_item_matrix  # noqa: E402
from item2vec.config import build_config  # noqa: E402
from item2vec.ingest import read_events  # noqa: E402
from item2vec.neighbor_eval import (  # noqa: E402
    item_categories,
    item_to_item_cases,
    model_neighbor_top,
    neighbor_metrics,
    scorer_neighbor_top,
)
from item2vec.neighbors import NEIGHBOR_SCORINGS  # noqa: E402
from item2vec.presets import bundled_sample  # noqa: E402
from item2vec.sequences import build_sequences  # noqa: E402
from item2vec.split import evaluation_sample, split_sequences, validation_split  # noqa: E402
from item2vec.train import train_word2vec  # noqa: E402

SEEDS = int(os.environ.get("BENCH_SEEDS", 3))
EVENTS = int(os.environ.get("BENCH_EVENTS", 500_000))
USERS = int(os.environ.get("BENCH_USERS", 25_000))
ITEMS = int(os.environ.get("BENCH_ITEMS", 5_000))
CACHE = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))
K = 10


def measure(name: str, layers: list[dict]) -> dict:
    config = build_config(*layers)
    sequences = build_sequences(read_events(config.ingest).table, config.sequences)
    categories = stages.categories(stages.items(config.ingest), config.ingest)
    targets = {
        "validation": validation_split(sequences, config.evaluate.split),
        "test": split_sequences(sequences, config.evaluate.split),
    }
    result = {"log": name}
    for target, split in targets.items():
        train = split.training_sequences()
        catalogue = build_catalogue(train)
        holdout = evaluation_sample(split.test, config.evaluate.max_users)
        cases = item_to_item_cases(holdout, catalogue)
        codes = item_categories(categories, catalogue)
        knn = ItemKNNScorer(
            user_item_matrix(train, catalogue), popularity=PopularityScorer(catalogue).popularity
        )
        knn_top = scorer_neighbor_top(knn, cases.distinct, len(catalogue), K)
        figures = {"item_knn": [neighbor_metrics(knn_top, cases, knn.rankable, [K], codes)]}
        for seed in range(1, SEEDS + 1):
            vectors = train_word2vec(split.train, config.train.model_copy(update={"seed": seed}))
            for scoring in NEIGHBOR_SCORINGS:
                top, rankable = model_neighbor_top(vectors, catalogue, cases.distinct, K, scoring)
                metrics = neighbor_metrics(top, cases, rankable, [K], codes)
                figures.setdefault(scoring, []).append(metrics)
                print(f"{name} {target} seed {seed} {scoring}: hr@{K} {metrics[f'hr@{K}']:.4f}")
        result[target] = {
            "cases": len(cases),
            **{
                method: {
                    f"hr@{K}": [round(m[f"hr@{K}"], 4) for m in runs],
                    f"mean_hr@{K}": round(statistics.mean(m[f"hr@{K}"] for m in runs), 4),
                    **(
                        {
                            f"mean_category@{K}": round(
                                statistics.mean(m[f"category@{K}"] for m in runs), 4
                            )
                        }
                        if f"category@{K}" in runs[0]
                        else {}
                    ),
                }
                for method, runs in figures.items()
            },
        }
    return result


def fallback(name: str, layers: list[dict]) -> dict:
    """The model alone and with its fallback on the test target, as a run reports them."""
    config = build_config(*layers)
    sequences = build_sequences(read_events(config.ingest).table, config.sequences)
    split = stages.split(sequences, config.evaluate)
    runs = []
    for seed in range(1, SEEDS + 1):
        vectors = stages.train(split, config.train.model_copy(update={"seed": seed}))
        record = stages.metrics(
            stages.model_metrics(vectors, split, config.evaluate),
            stages.baseline_metrics(split, config.evaluate, sequences),
            split,
            config.evaluate,
        )
        runs.append(record)
        print(
            f"{name} seed {seed}: model hr@{K} {record['model'][f'hr@{K}']:.4f}, with fallback "
            f"{record['model_with_fallback'][f'hr@{K}']:.4f}",
            flush=True,
        )
    return {
        "log": name,
        f"model_hr@{K}": [round(r["model"][f"hr@{K}"], 4) for r in runs],
        f"with_fallback_hr@{K}": [round(r["model_with_fallback"][f"hr@{K}"], 4) for r in runs],
        "fallback_share": round(runs[0]["model_with_fallback"]["fallback_share"], 4),
        "model_unrankable": round(runs[0]["model"]["unrankable"], 4),
        f"item_knn_hr@{K}": round(runs[0]["baselines"]["item_knn"][f"hr@{K}"], 4),
    }


def main() -> None:
    results = [measure("movielens-sample", [bundled_sample()])]
    log = synthetic_log(CACHE, EVENTS, USERS, ITEMS, clusters=50)
    results.append(measure("synthetic", [{"ingest": {"paths": [str(log)]}}]))
    positives = [bundled_sample(), {"ingest": {"weight_col": "rating", "min_weight": 4}}]
    fallbacks = [fallback("movielens-sample, ratings >= 4", positives)]
    print(
        json.dumps({"bench": "neighbors", "seeds": SEEDS, "logs": results, "fallback": fallbacks})
    )


if __name__ == "__main__":
    main()
