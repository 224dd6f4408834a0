"""The model's score blended with item-kNN's, and the query options of the evaluation.

The blend of a case is ``(1 - w) * cosine + w * knn / max(knn)``: the model's
cosine lies in [-1, 1] and item-kNN's summed cosines are scaled by the case's
largest, so ``w`` means the same whatever the query length. Item-kNN counts
co-occurrence exactly where the data has it; the model generalises where it is
thin. The weight is an evaluate setting, chosen by the sweep on the validation
target.
"""

from __future__ import annotations

import numpy as np

from item2vec.baselines import ItemKNNScorer, PopularityScorer
from item2vec.catalogue import Cases, Catalogue, encode_cases, user_item_matrix
from item2vec.config_evaluate import EvaluateConfig
from item2vec.split import Holdout

__all__ = ["LAST_BASKET", "BlendScorer", "knn_scorer", "model_cases"]

#: Memory for item-kNN's dense rows of popular items inside a blend (bytes):
#: less than the baseline's, as a sweep builds one per training set.
BLEND_HEAD_BYTES = 64 * 2**20

#: ``encode_cases``'s ``last_basket`` for each ``evaluate.query``: ``auto`` decides
#: from the histories.
LAST_BASKET: dict[str, bool | None] = {"items": False, "basket": True, "auto": None}

#: The item-kNN scorer of the last training set blended, kept with that set:
#: trials of a sweep share their training set, so it is built once.
_CACHE: dict[str, tuple[object, Catalogue, ItemKNNScorer]] = {}


def model_cases(holdout: Holdout, catalogue: Catalogue, config: EvaluateConfig) -> Cases:
    """The cases the model is scored on: query length, last basket and recency weights."""
    return encode_cases(
        holdout,
        catalogue,
        config.query_items,
        half_life=config.query_half_life,
        last_basket=LAST_BASKET[config.query],
    )


def knn_scorer(train: object, catalogue: Catalogue) -> ItemKNNScorer:
    """Item-kNN over ``train`` (training sequences), reused while ``train`` is the same object."""
    cached = _CACHE.get("last")
    if cached is not None and cached[0] is train and len(cached[1]) == len(catalogue):
        return cached[2]
    popularity = PopularityScorer(catalogue).popularity
    scorer = ItemKNNScorer(
        user_item_matrix(train, catalogue), head_bytes=BLEND_HEAD_BYTES, popularity=popularity
    )
    _CACHE["last"] = (train, catalogue, scorer)
    return scorer


class BlendScorer:
    """``(1 - weight) * model + weight * knn / max(knn)``, case by case.

    Parameters
    ----------
    model
        The embedding scorer (cosine, ``-inf`` where it cannot rank).
    knn
        Item-kNN on the same catalogue and cases.
    weight
        Item-kNN's share, in [0, 1].

    Raises
    ------
    ValueError
        If ``weight`` is outside [0, 1].
    """

    def __init__(self, model, knn: ItemKNNScorer, weight: float) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"knn_blend must be between 0 and 1, got {weight}")
        self.model = model
        self.knn = knn
        self.weight = float(weight)
        self.rankable = model.rankable

    def __call__(self, cases: Cases, start: int, stop: int) -> np.ndarray:
        """Scores of the cases ``start:stop``; ``-inf`` where the model cannot rank."""
        model = self.model(cases, start, stop)
        knn = self.knn(cases, start, stop)
        # Only positive similarities count; the popularity fill stays below them.
        top = np.maximum(knn.max(axis=1, keepdims=True), np.float32(1e-12))
        scaled = np.where(knn > 0, knn / top, knn / (1 + top))
        blended = (1.0 - self.weight) * model + self.weight * scaled
        return np.where(np.isneginf(model), -np.inf, blended).astype(np.float32)
