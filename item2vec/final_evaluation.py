"""The final evaluation: the winner and the starting configuration on the test target.

These are the only functions of a sweep that read the test target; they run once
the winner is chosen. Each configuration is trained :data:`FINAL_SEEDS` times on
the full training side and evaluated beside the baselines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from item2vec.config import EvaluateConfig, PipelineConfig
from item2vec.evaluate import evaluate_baselines, evaluate_model
from item2vec.metrics_record import combine_metrics
from item2vec.search_space import OBJECTIVE, flat_metrics
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
    result = evaluate_model(
        vectors,
        data.final.train,
        data.final.test,
        config.evaluate,
        neighbors_scoring=config.publish.neighbors_scoring,
    )
    # Flat neighbour figures survive the mean over seeds, which keeps only numbers.
    return {**result, **flat_metrics(result)}


def final_baselines(evaluate: EvaluateConfig, data: TuningData) -> dict[str, dict[str, Any]]:
    """Popularity and item-kNN on the test target; item-kNN's query length is its best
    on the trials' validation target, as a run chooses it."""
    results = evaluate_baselines(data.final.train, data.final.test, evaluate, data.tuning)
    return {name: {**metrics, **flat_metrics(metrics)} for name, metrics in results.items()}


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
    objective: str = OBJECTIVE,
) -> dict[str, Any]:
    """A metrics record (:func:`item2vec.evaluate.combine_metrics`) of the model's mean
    over seeds beside the baselines, with ``seeds``: the test ``objective`` per seed,
    and ``objective`` itself."""
    record = combine_metrics(
        mean_metrics(runs), {n: dict(m) for n, m in baselines.items()}, data.final.test, evaluate
    )
    record["seeds"] = [float(r[objective]) for r in runs]
    record["objective"] = objective
    return record
