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

from item2vec.ranking import RankTally


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
    return fallback_from_tally(
        fallback_tally(model, served, fallback, ks), ks, model["catalogue_size"]
    )


def fallback_tally(
    model: dict[str, Any], served: np.ndarray, fallback: dict[str, Any], ks: list[int]
) -> tuple[RankTally, int]:
    """The combined ranking's tally and the cases the fallback served (see
    :func:`fallback_metrics`); the tallies of shards of the cases add up."""
    width = min(model["top"].shape[1], fallback["top"].shape[1])
    top = np.where(served[:, None], model["top"][:, :width], fallback["top"][:, :width])
    unrankable = np.where(served, model["unrankable"], fallback["unrankable"])
    return RankTally.of(top, model["targets"], ks, unrankable), int(np.count_nonzero(~served))


def fallback_from_tally(
    tally: tuple[RankTally, int], ks: list[int], catalogue_size: int
) -> dict[str, float]:
    """The metrics of :func:`fallback_metrics` from a (merged) :func:`fallback_tally`."""
    ranked, unserved = tally
    metrics = ranked.metrics(ks, catalogue_size)
    metrics["fallback_share"] = float(unserved / ranked.cases) if ranked.cases else 0.0
    return metrics
