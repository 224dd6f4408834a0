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

from item2vec.baselines import (
    KNN_SIMILARITIES,
    ItemKNNScorer,
    PopularityScorer,
    head_bytes_for,
)
from item2vec.blend import BlendScorer, knn_scorer, model_cases
from item2vec.catalogue import Cases, Catalogue, build_catalogue, encode_cases, user_item_matrix
from item2vec.config import EvaluateConfig
from item2vec.errors import ConfigError
from item2vec.metrics_record import CURVE_K, combine_metrics
from item2vec.neighbor_eval import (
    item_categories,
    item_to_item_cases,
    model_neighbor_top,
    neighbor_tally,
    scorer_neighbor_top,
)
from item2vec.ranking import RankTally, top_k
from item2vec.sequences import FlatSequences
from item2vec.split import Holdout, Split, evaluation_sample, select_rows
from item2vec.vectors import ItemVectors

log = logging.getLogger(__name__)

#: Training sequences as lists (gensim's form) or flat Arrow items.
TrainingSequences = list[list[str]] | FlatSequences


#: Query lengths item-kNN is tried with on the validation target; its best is
#: the one evaluated on the test target.
KNN_QUERY_ITEMS = (1, 2, 3, 5, 10)
#: The metric that chooses a baseline's settings on the validation target.
CHOICE_METRIC = "hr@10"


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
    combines two scorers. ``tally`` (:class:`item2vec.ranking.RankTally`) is what
    the metrics were computed from: shards of the cases add up to it exactly.
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
    tally = RankTally.of(top, targets, ks, unrankable)
    metrics: dict[str, Any] = tally.metrics(ks, catalogue_size)
    if curve_k:
        metrics["curve"] = tally.curve(curve_k)
    metrics["tally"] = tally
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
        tally = neighbor_tally(
            top, pairs, rankable, config.k, item_categories(categories, catalogue)
        )
        result["neighbors"] = {"scoring": neighbors_scoring, **tally.metrics(config.k)}
        result["neighbors"]["tally"] = tally
    return result


def evaluate_baselines(
    train: TrainingSequences,
    holdout: Holdout,
    config: EvaluateConfig,
    validation: Split | None = None,
    categories: pa.Table | None = None,
    settings: dict[str, Any] | None = None,
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
    settings
        Item-kNN's settings when already chosen (:func:`knn_settings`, or
        :func:`knn_choice` over shards); ``validation`` is then not used.

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
    settings = settings or knn_settings(validation, config)
    knn = ItemKNNScorer(
        user_item_matrix(train, catalogue),
        popularity=popularity.popularity,
        similarity=settings.get("similarity", "cosine"),
        head_bytes=head_bytes_for(len(holdout)),
    )
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
    tally = neighbor_tally(
        top, pairs, knn.rankable, config.k, item_categories(categories, catalogue)
    )
    results["item_knn"]["neighbors"] = {**tally.metrics(config.k), "tally": tally}
    return results


def knn_settings(validation: Split | None, config: EvaluateConfig) -> dict[str, Any]:
    """Item-kNN's own best settings on the validation target, else the model's query length.

    Every pair of a query length (:data:`KNN_QUERY_ITEMS` and the model's) and a
    similarity (:data:`~item2vec.baselines.KNN_SIMILARITIES`) is scored on the
    same fixed sample of validation cases (``max_users``) by
    :data:`CHOICE_METRIC`; the best pair wins, a tie going to the shorter query
    and then to the earlier similarity (the cosine first).

    Returns
    -------
    dict
        ``query_items``, ``similarity``, ``chosen_on`` and, when chosen on
        validation, ``validation`` (the metric per query length, with the cosine)
        and ``validation_similarity`` (per similarity, at the chosen length).
    """
    return knn_choice([knn_validation(validation, config)], config)


def _grid_key(similarity: str, query_items: int) -> str:
    return f"{similarity}:{query_items}"


def knn_validation(
    validation: Split | None, config: EvaluateConfig, shard: slice | None = None
) -> dict[str, RankTally] | None:
    """Item-kNN's tally on the validation target for each similarity and query length.

    Keys are ``"similarity:query_items"``. ``shard`` selects a slice of the fixed
    validation sample; the tallies of disjoint slices add up (:func:`knn_choice`)
    to those of the whole sample. None without validation cases.
    """
    if validation is None or not len(validation.test):
        return None
    started = time.perf_counter()
    train = validation.training_sequences()
    held_out = evaluation_sample(validation.test, config.max_users)
    if shard is not None:
        held_out = select_rows(held_out, shard)
    catalogue = build_catalogue(train)
    popularity = PopularityScorer(catalogue).popularity
    matrix = user_item_matrix(train, catalogue)
    head = head_bytes_for(len(held_out))
    cutoff = [int(CHOICE_METRIC.split("@")[1])]
    lengths = sorted({*KNN_QUERY_ITEMS, config.query_items})
    cases = {q: encode_cases(held_out, catalogue, q) for q in lengths}
    tried: dict[str, RankTally] = {}
    for similarity in KNN_SIMILARITIES:
        scorer = ItemKNNScorer(
            matrix, popularity=popularity, similarity=similarity, head_bytes=head
        )
        for query_items in lengths:
            metrics = evaluate_scorer(
                scorer,
                cases[query_items],
                cutoff,
                len(catalogue),
                config.exclude_seen,
                name=f"item-kNN ({similarity}, {query_items} query items) on validation",
            )
            tried[_grid_key(similarity, query_items)] = metrics["tally"]
    log.info(
        "item-kNN validation: %d settings on %s cases in %.2fs",
        len(tried),
        f"{len(held_out):,}",
        time.perf_counter() - started,
    )
    return tried


def knn_choice(parts: list[dict[str, RankTally] | None], config: EvaluateConfig) -> dict[str, Any]:
    """Item-kNN's settings from the validation tallies of every shard (see :func:`knn_settings`)."""
    fixed = {"query_items": config.query_items, "similarity": "cosine"}
    parts = [part for part in parts if part is not None]
    if not parts:
        return {**fixed, "chosen_on": "the model's query length"}
    k = int(CHOICE_METRIC.split("@")[1])
    merged = {key: RankTally.merge([part[key] for part in parts]) for key in parts[0]}
    scores = {key: tally.metrics([k], 1)[CHOICE_METRIC] for key, tally in merged.items()}
    order = {name: place for place, name in enumerate(KNN_SIMILARITIES)}

    def rank(key: str) -> tuple[float, int, int]:
        similarity, query_items = key.split(":")
        return scores[key], -int(query_items), -order[similarity]

    best = max(scores, key=rank)
    similarity, query_items = best.split(":")[0], int(best.split(":")[1])
    log.info(
        "item-kNN settings chosen on validation: %d query items, %s similarity (%s %.4f)",
        query_items,
        similarity,
        CHOICE_METRIC,
        scores[best],
    )
    lengths = sorted({int(key.split(":")[1]) for key in scores})
    return {
        "query_items": query_items,
        "similarity": similarity,
        "chosen_on": f"validation {CHOICE_METRIC}, {merged[best].cases:,} cases",
        "validation": {str(q): scores[_grid_key("cosine", q)] for q in lengths},
        "validation_similarity": {
            name: scores[_grid_key(name, query_items)] for name in KNN_SIMILARITIES
        },
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
