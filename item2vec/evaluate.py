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
import pyarrow as pa
from sklearn.preprocessing import normalize

from item2vec.baselines import ItemKNNScorer, PopularityScorer
from item2vec.blend import BlendScorer, knn_scorer, model_cases
from item2vec.catalogue import Cases, Catalogue, build_catalogue, encode_cases, user_item_matrix
from item2vec.config import EvaluateConfig
from item2vec.errors import ConfigError
from item2vec.fallback import fallback_metrics
from item2vec.neighbor_eval import (
    item_categories,
    item_to_item_cases,
    model_neighbor_top,
    neighbor_metrics,
    scorer_neighbor_top,
)
from item2vec.ranking import hit_rate_curve, ranking_metrics, top_k
from item2vec.sequences import FlatSequences
from item2vec.split import Holdout, Split, evaluation_sample
from item2vec.vectors import ItemVectors

log = logging.getLogger(__name__)

#: Training sequences as lists (gensim's form) or flat Arrow items.
TrainingSequences = list[list[str]] | FlatSequences

#: HR@k is also reported for every k up to this, for the report's curve.
CURVE_K = 50

#: Query lengths item-kNN is tried with on the validation target; its best is
#: the one evaluated on the test target.
KNN_QUERY_ITEMS = (1, 2, 3, 5, 10)
#: The metric that chooses a baseline's settings on the validation target.
CHOICE_METRIC = "hr@10"
#: Keys of a scorer's result that serve the combined record, never the manifest.
WORKING_KEYS = ("ranking", "served", "neighbors", "settings")


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
    keep_ranking: bool = False,
) -> dict:
    """Metrics of one scorer on encoded cases (see :func:`item2vec.ranking.ranking_metrics`).

    With ``curve_k`` > 0 the result also holds ``curve``: HR@1 .. HR@curve_k.
    With ``keep_ranking`` it holds ``ranking``: each case's top ``max(ks)``,
    targets and unrankable flags, from which :func:`item2vec.fallback.fallback_metrics`
    combines two scorers.
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
    if keep_ranking:
        metrics["ranking"] = {
            "top": top[:, : max(ks)].copy(),
            "targets": targets,
            "unrankable": unrankable,
            "catalogue_size": catalogue_size,
        }
    return metrics


def evaluate_model(
    vectors: ItemVectors,
    train: TrainingSequences,
    holdout: Holdout,
    config: EvaluateConfig,
    neighbors_scoring: str | None = None,
    categories: pa.Table | None = None,
) -> dict[str, Any]:
    """Metrics of the model alone, with its HR curve under ``curve``.

    Parameters are those of :func:`evaluate`, and:

    neighbors_scoring
        When given, the model's neighbour table, scored this way, is evaluated
        item to item (:mod:`item2vec.neighbor_eval`), under ``neighbors``.
    categories
        ``item_id`` and ``category`` (:func:`item2vec.neighbor_eval.category_table`),
        for the table's category consistency.
    """
    holdout = evaluation_sample(holdout, config.max_users)
    catalogue = build_catalogue(train)
    cases = model_cases(holdout, catalogue, config)
    scorer: Scorer = EmbeddingScorer(vectors, catalogue, config.scoring)
    if config.knn_blend > 0:
        scorer = BlendScorer(scorer, knn_scorer(train, catalogue), config.knn_blend)
    result = _evaluate_named("model", scorer, cases, len(catalogue), config, keep_ranking=True)
    # A case the model cannot query (no history item with a vector) is one a
    # fallback serves.
    # Summed, not counted: multiply() may keep the masked entries as stored zeros.
    query = cases.query.multiply(scorer.rankable[None, :])
    result["served"] = np.asarray(query.sum(axis=1)).ravel() > 0
    if neighbors_scoring is not None:
        pairs = item_to_item_cases(holdout, catalogue)
        top, rankable = model_neighbor_top(
            vectors, catalogue, pairs.distinct, max(config.k), neighbors_scoring
        )
        result["neighbors"] = {
            "scoring": neighbors_scoring,
            **neighbor_metrics(
                top, pairs, rankable, config.k, item_categories(categories, catalogue)
            ),
        }
    return result


def evaluate_baselines(
    train: TrainingSequences,
    holdout: Holdout,
    config: EvaluateConfig,
    validation: Split | None = None,
    categories: pa.Table | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of the popularity and item-kNN baselines, each with its HR curve.

    They need no model, so they can run while the model trains.

    Parameters
    ----------
    train, holdout, config
        As for :func:`evaluate`.
    validation
        A split whose ``test`` holds the validation targets and whose training
        side excludes them (:func:`item2vec.split.validation_split`). Item-kNN's
        query length is then chosen on it, among :data:`KNN_QUERY_ITEMS` and the
        model's; without it item-kNN uses the model's ``query_items``.
    categories
        As for :func:`evaluate_model`.

    Returns
    -------
    dict
        ``popularity`` and ``item_knn`` metrics; item-kNN's also hold
        ``settings`` (its query length and how it was chosen) and
        ``neighbors`` (its own neighbour table, evaluated item to item).
    """
    holdout = evaluation_sample(holdout, config.max_users)
    catalogue = build_catalogue(train)
    popularity = PopularityScorer(catalogue)
    knn = ItemKNNScorer(user_item_matrix(train, catalogue), popularity=popularity.popularity)
    settings = knn_settings(validation, config)
    cases = encode_cases(holdout, catalogue, settings["query_items"])
    results = {
        "popularity": _evaluate_named("popularity", popularity, cases, len(catalogue), config),
        "item_knn": _evaluate_named(
            "item_knn", knn, cases, len(catalogue), config, keep_ranking=True
        ),
    }
    pairs = item_to_item_cases(holdout, catalogue)
    top = scorer_neighbor_top(knn, pairs.distinct, len(catalogue), max(config.k))
    results["item_knn"]["settings"] = settings
    results["item_knn"]["neighbors"] = neighbor_metrics(
        top, pairs, knn.rankable, config.k, item_categories(categories, catalogue)
    )
    return results


def knn_settings(validation: Split | None, config: EvaluateConfig) -> dict[str, Any]:
    """Item-kNN's query length: the best on the validation target, else the model's.

    Each length is scored on the same fixed sample of validation cases
    (``max_users``) by :data:`CHOICE_METRIC`; a tie goes to the shorter query.

    Returns
    -------
    dict
        ``query_items``, ``similarity``, ``chosen_on`` and, when chosen on
        validation, ``validation``: the metric per query length tried.
    """
    fixed = {"query_items": config.query_items, "similarity": "cosine"}
    if validation is None or not len(validation.test):
        return {**fixed, "chosen_on": "the model's query length"}
    train = validation.training_sequences()
    held_out = evaluation_sample(validation.test, config.max_users)
    catalogue = build_catalogue(train)
    popularity = PopularityScorer(catalogue).popularity
    scorer = ItemKNNScorer(user_item_matrix(train, catalogue), popularity=popularity)
    tried = {}
    for query_items in sorted({*KNN_QUERY_ITEMS, config.query_items}):
        cases = encode_cases(held_out, catalogue, query_items)
        metrics = evaluate_scorer(
            scorer,
            cases,
            [int(CHOICE_METRIC.split("@")[1])],
            len(catalogue),
            config.exclude_seen,
            name=f"item-kNN, {query_items} query items, on validation",
        )
        tried[str(query_items)] = metrics[CHOICE_METRIC]
    best = max(tried, key=lambda q: (tried[q], -int(q)))
    log.info(
        "item-kNN query length chosen on validation: %s (%s %.4f)", best, CHOICE_METRIC, tried[best]
    )
    return {
        "query_items": int(best),
        "similarity": "cosine",
        "chosen_on": f"validation {CHOICE_METRIC}, {len(held_out):,} cases",
        "validation": tried,
    }


def _evaluate_named(
    name: str,
    scorer: Scorer,
    cases: Cases,
    catalogue_size: int,
    config: EvaluateConfig,
    keep_ranking: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    result = evaluate_scorer(
        scorer, cases, config.k, catalogue_size, config.exclude_seen, CURVE_K, name, keep_ranking
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
    category_col: str | None = None,
) -> dict[str, Any]:
    """The metrics record of a run from the model's and the baselines' results.

    Returns
    -------
    dict
        ``{"k": [...], "model": {...}, "baselines": {"popularity": {...}, "item_knn": {...}},
        "users": n, "curve": {...}}``, as in the manifest. ``users`` counts the
        users evaluated; when they are a sample, ``sampled_from`` counts all.
        When the results hold them, also ``model_with_fallback`` (the model,
        with item-kNN then popularity for the cases it cannot query),
        ``baseline_settings`` and ``neighbors`` (the model's and item-kNN's
        neighbour tables, item to item; ``category`` names the category column).
    """
    results = {"model": dict(model), **{name: dict(r) for name, r in baselines.items()}}
    working = {name: {key: r.pop(key, None) for key in WORKING_KEYS} for name, r in results.items()}
    evaluated = len(evaluation_sample(holdout, config.max_users))
    sample = {"sampled_from": len(holdout)} if evaluated < len(holdout) else {}
    record = {
        "k": list(config.k),
        "scoring": config.scoring,
        "query_items": config.query_items,
        "query": config.query,
        "query_half_life": config.query_half_life,
        "knn_blend": config.knn_blend,
        "split": config.split,
        "exclude_seen": config.exclude_seen,
        "users": evaluated,
        **sample,
        "curve": {
            "k": list(range(1, CURVE_K + 1)),
            **{n: r.pop("curve") for n, r in results.items() if "curve" in r},
        },
        "model": results["model"],
        "baselines": {"popularity": results["popularity"], "item_knn": results["item_knn"]},
    }
    model_work, knn_work = working["model"], working.get("item_knn", {})
    if model_work["ranking"] is not None and knn_work.get("ranking") is not None:
        record["model_with_fallback"] = fallback_metrics(
            model_work["ranking"], model_work["served"], knn_work["ranking"], config.k
        )
    if knn_work.get("settings"):
        record["baseline_settings"] = {"item_knn": knn_work["settings"]}
    if model_work["neighbors"] is not None or knn_work.get("neighbors") is not None:
        model_neighbors = dict(model_work["neighbors"] or {})
        scoring = model_neighbors.pop("scoring", None)
        figures = [model_neighbors, knn_work.get("neighbors") or {}]
        has_category = any("category_items" in f for f in figures)
        record["neighbors"] = {
            "scoring": scoring,
            "query": "the last training item alone; only the item itself excluded",
            "category": f"first value of {category_col}" if has_category else None,
            "model": model_neighbors,
            "item_knn": dict(knn_work.get("neighbors") or {}),
        }
    return record


def evaluate(
    vectors: ItemVectors,
    train: TrainingSequences,
    holdout: Holdout,
    config: EvaluateConfig,
    *,
    validation: Split | None = None,
    neighbors_scoring: str | None = None,
    categories: pa.Table | None = None,
    category_col: str | None = None,
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
    validation, categories
        As for :func:`evaluate_baselines` (item-kNN's query length chosen on validation).
    neighbors_scoring
        As for :func:`evaluate_model` (the model's neighbour table, item to item).
    category_col
        The items file's category column, named in the record.

    Returns
    -------
    dict
        See :func:`combine_metrics`.
    """
    model = evaluate_model(vectors, train, holdout, config, neighbors_scoring, categories)
    baselines = evaluate_baselines(train, holdout, config, validation, categories)
    return combine_metrics(model, baselines, holdout, config, category_col)
