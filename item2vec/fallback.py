"""The model with its fallback: item-kNN (then popularity) where the model cannot rank.

A user whose history has no item with a vector gets nothing from the model.
``user_recommendations.parquet`` serves such a user from item-kNN on their
history, whose candidates without any similarity follow in popularity order
(:class:`item2vec.baselines.ItemKNNScorer`). This module measures that
combination on the evaluation cases, from the rankings the model and item-kNN
already made, so it costs no further scoring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from item2vec.ranking import ranking_metrics


def fallback_metrics(
    model: dict[str, Any], served: np.ndarray, fallback: dict[str, Any], ks: list[int]
) -> dict[str, float]:
    """Metrics of the model's ranking where it ``served``, the fallback's elsewhere.

    Parameters
    ----------
    model, fallback
        ``ranking`` records of :func:`item2vec.evaluate.evaluate_scorer` on the
        same cases, in the same order: ``top``, ``targets``, ``unrankable`` and
        ``catalogue_size``.
    served
        Per case: the model had a query item with a vector.
    ks
        Cut-offs.

    Returns
    -------
    dict
        HR, NDCG, MRR and coverage at each k and ``unrankable``, as for the
        model alone, plus ``fallback_share``: the share of cases the fallback served.
    """
    width = min(model["top"].shape[1], fallback["top"].shape[1])
    top = np.where(served[:, None], model["top"][:, :width], fallback["top"][:, :width])
    unrankable = np.where(served, model["unrankable"], fallback["unrankable"])
    metrics = ranking_metrics(top, model["targets"], ks, model["catalogue_size"], unrankable)
    metrics["fallback_share"] = float((~served).mean()) if len(served) else 0.0
    return metrics
