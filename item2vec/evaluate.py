"""Evaluate: full-ranking metrics for the model and the baselines on the same split.

The query of a user is the L2-normalised mean of the input vectors of their last
``query_items`` training items. ``in-in`` scores candidates by cosine with their
input vectors; ``in-out`` by cosine with gensim's output vectors (``syn1neg``).
Items in the user's training history are excluded. A target the model cannot
rank (absent from training or below ``min_count``) counts as a miss.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import numpy as np
from sklearn.preprocessing import normalize

from item2vec.baselines import ItemKNNScorer, PopularityScorer
from item2vec.catalogue import Cases, Catalogue, build_catalogue, encode_cases, user_item_matrix
from item2vec.config import EvaluateConfig
from item2vec.errors import ConfigError
from item2vec.ranking import hit_rate_curve, ranking_metrics, top_k
from item2vec.sequences import FlatSequences
from item2vec.split import Holdout, evaluation_sample
from item2vec.vectors import ItemVectors

log = logging.getLogger(__name__)

#: Training sequences as lists (gensim's form) or flat Arrow items.
TrainingSequences = list[list[str]] | FlatSequences

#: HR@k is also reported for every k up to this, for the report's curve.
CURVE_K = 50


class Scorer(Protocol):
    """Scores of a block of cases against every catalogue item."""

    rankable: np.ndarray

    def __call__(self, cases: Cases, start: int, stop: int) -> np.ndarray: ...


class EmbeddingScorer:
    """Cosine between a user's query vector and every candidate vector.

    Parameters
    ----------
    vectors
        The trained model.
    catalogue
        Candidates; items without a vector cannot be ranked.
    scoring
        ``in-in`` or ``in-out`` (see module docstring).
    """

    def __init__(self, vectors: ItemVectors, catalogue: Catalogue, scoring: str) -> None:
        if scoring == "in-out" and vectors.context_vectors is None:
            raise ConfigError(
                "scoring 'in-out' needs output vectors; train with negative >= 1 or use in-in"
            )
        position = catalogue.codes(vectors.item_ids)
        inside = position >= 0
        dim = vectors.dim
        self.rankable = np.zeros(len(catalogue), dtype=bool)
        self.rankable[position[inside]] = True
        self.inputs = np.zeros((len(catalogue), dim), dtype=np.float32)
        self.inputs[position[inside]] = vectors.vectors[inside]
        source = vectors.vectors if scoring == "in-in" else vectors.context_vectors
        self.candidates = np.zeros((len(catalogue), dim), dtype=np.float32)
        self.candidates[position[inside]] = normalize(source[inside])

    def __call__(self, cases: Cases, start: int, stop: int) -> np.ndarray:
        """Scores of the cases ``start:stop``; users with no usable query item get none."""
        query = cases.query[start:stop].multiply(self.rankable[None, :]).tocsr()
        has_query = np.asarray(query.sum(axis=1)).ravel() > 0
        query_vectors = normalize(np.asarray(query @ self.inputs, dtype=np.float32))
        scores = query_vectors @ self.candidates.T
        scores[:, ~self.rankable] = -np.inf
        scores[~has_query] = -np.inf
        return scores


def evaluate_scorer(
    scorer: Scorer,
    cases: Cases,
    ks: list[int],
    catalogue_size: int,
    exclude_seen: bool = True,
    curve_k: int = 0,
    name: str = "scorer",
) -> dict:
    """Metrics of one scorer on encoded cases (see :func:`item2vec.ranking.ranking_metrics`).

    With ``curve_k`` > 0 the result also holds ``curve``: HR@1 .. HR@curve_k.
    """
    k = max(*ks, curve_k)
    exclude = cases.seen if exclude_seen else None
    columns = None
    shortlist = getattr(scorer, "shortlist", None)
    if shortlist is None:
        n_candidates = catalogue_size

        def score_rows(start: int, stop: int) -> np.ndarray:
            return scorer(cases, start, stop)

    else:
        # One ranking for everyone (popularity): only its head can reach a top-k.
        most_seen = int(np.diff(exclude.indptr).max(initial=0)) if exclude is not None else 0
        columns, head_scores = shortlist(k + most_seen)
        n_candidates = len(columns)
        exclude = exclude[:, columns] if exclude is not None else None

        def score_rows(start: int, stop: int) -> np.ndarray:
            return np.broadcast_to(head_scores, (stop - start, len(columns))).copy()

    top, _ = top_k(
        score_rows,
        n_rows=len(cases),
        n_candidates=n_candidates,
        k=k,
        exclude=exclude,
        description=f"evaluate {name}",
        unit="users",
    )
    if columns is not None:
        top = np.where(top >= 0, columns[np.maximum(top, 0)], -1)
    targets = cases.targets
    unrankable = (targets < 0) | ~scorer.rankable[np.maximum(targets, 0)]
    metrics = ranking_metrics(top, targets, ks, catalogue_size, unrankable)
    if curve_k:
        metrics["curve"] = hit_rate_curve(top, targets, curve_k)
    return metrics


def evaluate_model(
    vectors: ItemVectors, train: TrainingSequences, holdout: Holdout, config: EvaluateConfig
) -> dict[str, Any]:
    """Metrics of the model alone, with its HR curve under ``curve``.

    Parameters are those of :func:`evaluate`.
    """
    holdout = evaluation_sample(holdout, config.max_users)
    catalogue = build_catalogue(train)
    cases = encode_cases(holdout, catalogue, config.query_items)
    scorer = EmbeddingScorer(vectors, catalogue, config.scoring)
    return _evaluate_named("model", scorer, cases, len(catalogue), config)


def evaluate_baselines(
    train: TrainingSequences, holdout: Holdout, config: EvaluateConfig
) -> dict[str, dict[str, Any]]:
    """Metrics of the popularity and item-kNN baselines, each with its HR curve.

    They need no model, so they can run while the model trains.
    """
    holdout = evaluation_sample(holdout, config.max_users)
    catalogue = build_catalogue(train)
    cases = encode_cases(holdout, catalogue, config.query_items)
    scorers: dict[str, Scorer] = {
        "popularity": PopularityScorer(catalogue),
        "item_knn": ItemKNNScorer(user_item_matrix(train, catalogue)),
    }
    return {
        name: _evaluate_named(name, scorer, cases, len(catalogue), config)
        for name, scorer in scorers.items()
    }


def _evaluate_named(
    name: str, scorer: Scorer, cases: Cases, catalogue_size: int, config: EvaluateConfig
) -> dict[str, Any]:
    started = time.perf_counter()
    result = evaluate_scorer(
        scorer, cases, config.k, catalogue_size, config.exclude_seen, CURVE_K, name
    )
    log.info(
        "evaluated %s on %s users in %.2fs: hr@%d %.4f",
        name,
        f"{len(cases):,}",
        time.perf_counter() - started,
        config.k[0],
        result[f"hr@{config.k[0]}"],
    )
    return result


def combine_metrics(
    model: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    holdout: Holdout,
    config: EvaluateConfig,
) -> dict[str, Any]:
    """The metrics record of a run from the model's and the baselines' results.

    Returns
    -------
    dict
        ``{"k": [...], "model": {...}, "baselines": {"popularity": {...}, "item_knn": {...}},
        "users": n, "curve": {...}}``, as in the manifest. ``users`` counts the
        users evaluated; when they are a sample, ``sampled_from`` counts all.
    """
    results = {"model": dict(model), **{name: dict(r) for name, r in baselines.items()}}
    evaluated = len(evaluation_sample(holdout, config.max_users))
    sample = {"sampled_from": len(holdout)} if evaluated < len(holdout) else {}
    return {
        "k": list(config.k),
        "scoring": config.scoring,
        "query_items": config.query_items,
        "split": config.split,
        "exclude_seen": config.exclude_seen,
        "users": evaluated,
        **sample,
        "curve": {
            "k": list(range(1, CURVE_K + 1)),
            **{n: r.pop("curve") for n, r in results.items()},
        },
        "model": results["model"],
        "baselines": {"popularity": results["popularity"], "item_knn": results["item_knn"]},
    }


def evaluate(
    vectors: ItemVectors,
    train: TrainingSequences,
    holdout: Holdout,
    config: EvaluateConfig,
) -> dict[str, Any]:
    """Metrics of the model and of the popularity and item-kNN baselines.

    Parameters
    ----------
    vectors
        Model trained on ``train``.
    train
        Training sequences (they define the catalogue and the baselines):
        Python lists, or :class:`item2vec.sequences.FlatSequences`
        (``Split.training_sequences()``), which are counted without the GIL.
    holdout
        Users with their training history and held-out target (test or validation).
    config
        Cut-offs, query length and scoring mode.

    Returns
    -------
    dict
        See :func:`combine_metrics`.
    """
    model = evaluate_model(vectors, train, holdout, config)
    return combine_metrics(model, evaluate_baselines(train, holdout, config), holdout, config)
