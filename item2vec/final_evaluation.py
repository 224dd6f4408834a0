"""The final evaluation: the winner and the starting configuration on the test target.

These are the only functions of a sweep that read the test target; they run once
the winner is chosen. Each configuration is trained :data:`FINAL_SEEDS` times on
the full training side and evaluated beside the baselines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from item2vec.config import EvaluateConfig, PipelineConfig
from item2vec.evaluate import combine_metrics, evaluate_baselines, evaluate_model
from item2vec.search_space import OBJECTIVE
from item2vec.train import train_word2vec
from item2vec.tuning_split import TuningData

#: Seeds the winner and the starting configuration are tested with.
FINAL_SEEDS = 3


def final_run(config: PipelineConfig, data: TuningData, offset: int) -> dict[str, Any]:
    """Train ``config`` with seed + ``offset`` on the full training side; its test metrics.

    This, and :func:`final_baselines`, are the only functions that read the
    test target; they run once the winner is chosen.
    """
    train = config.train.model_copy(update={"seed": config.train.seed + offset})
    vectors = train_word2vec(data.final.train, train, baskets=data.final.train_baskets)
    return evaluate_model(vectors, data.final.train, data.final.test, config.evaluate)


def final_baselines(evaluate: EvaluateConfig, data: TuningData) -> dict[str, dict[str, Any]]:
    """Popularity and item-kNN on the test target; item-kNN's query length is its best
    on the trials' validation target, as a run chooses it."""
    return evaluate_baselines(data.final.train, data.final.test, evaluate, data.tuning)


def mean_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics averaged over runs (seeds), the HR curve element-wise."""
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if key == "curve":
            merged[key] = [float(v) for v in np.mean([r[key] for r in runs], axis=0)]
        elif isinstance(value, int | float):
            merged[key] = float(np.mean([r[key] for r in runs]))
    return merged


def combine_final(
    runs: list[dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
    data: TuningData,
    evaluate: EvaluateConfig,
) -> dict[str, Any]:
    """A metrics record (:func:`item2vec.evaluate.combine_metrics`) of the model's mean
    over seeds beside the baselines, with ``seeds``: the test :data:`OBJECTIVE` per seed."""
    record = combine_metrics(
        mean_metrics(runs), {n: dict(m) for n, m in baselines.items()}, data.final.test, evaluate
    )
    record["seeds"] = [float(r[OBJECTIVE]) for r in runs]
    return record
