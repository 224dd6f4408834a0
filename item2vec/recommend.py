"""Top-N recommendations for every user, scored the way the evaluation scores them.

A user whose history has no item with a vector cannot be ranked by the model.
Such a user is served by item-kNN on their history (cosine over the binary
user-item matrix of every history), and where item-kNN finds no similar item,
by popularity. The ``source`` column says which served each row; the
evaluation measures the same combination (``model_with_fallback``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from item2vec.baselines import ItemKNNScorer, PopularityScorer, head_bytes_for
from item2vec.blend import BLEND_HEAD_BYTES, BlendScorer
from item2vec.catalogue import Cases, Catalogue, build_catalogue, encode_cases, user_item_matrix
from item2vec.chunks import single_array
from item2vec.evaluate import EmbeddingScorer
from item2vec.ranking import top_k
from item2vec.schemas import RECOMMENDATION_SCHEMA
from item2vec.sequences import FlatSequences, flat_arrow
from item2vec.split import Holdout, basket_starts, select_cases, select_rows
from item2vec.vectors import ItemVectors

#: What ``source`` says, by code: the model, or the fallbacks in their order.
SOURCES = ("model", "item_knn", "popularity")


def recommend_for_users(
    vectors: ItemVectors,
    sequences: pa.Table,
    n: int,
    scoring: str,
    query_items: int,
    exclude_seen: bool = True,
    fallback_knn: Mapping[str, Any] | None = None,
    rows: slice | None = None,
    *,
    half_life: float = 0.0,
    last_basket: bool | None = False,
    knn_blend: float = 0.0,
) -> pa.Table:
    """The ``n`` best items for each user, items the user already has excluded.

    Parameters
    ----------
    vectors
        The published model.
    sequences
        Each user's whole history (:func:`item2vec.sequences.build_sequences`).
    n
        Recommendations per user.
    scoring, query_items
        As in :class:`item2vec.config.EvaluateConfig`: the query is the mean of
        the user's last ``query_items`` items with a vector.
    exclude_seen
        Leave out items in the user's history.
    fallback_knn
        Item-kNN's settings (``query_items``, ``similarity``, as
        :func:`item2vec.evaluate.knn_settings` chose them): users the model
        cannot rank are served by item-kNN with them, then popularity. None
        leaves those users without rows.
    rows
        Recommend for these rows of ``sequences`` only (a shard); the fallback
        still learns from every history, so the shards' tables, concatenated
        in order, are the table of all users.
    half_life, last_basket, knn_blend
        The evaluation's ``query_half_life``, its ``query`` (True for
        ``basket``, None for ``auto``) and ``knn_blend`` (:mod:`item2vec.blend`),
        so that users are served as the model was measured.

    Returns
    -------
    pyarrow.Table
        Long format with :data:`RECOMMENDATION_SCHEMA`, ``rank`` from 1, rows
        in the users' order. ``score`` is the model's cosine, item-kNN's summed
        cosine, or the item's count of events for popularity: comparable within
        one ``source`` only.
    """
    order = np.argsort(vectors.item_ids.astype(str), kind="stable")
    catalogue = Catalogue(item_ids=vectors.item_ids[order], counts=vectors.counts[order])
    # Arrow throughout: 20M history items need no Python string each.
    values, offsets = flat_arrow(sequences)
    user_ids = single_array(sequences.column("user_id"))
    users = Holdout(
        user_ids=user_ids,
        history_items=values,
        history_offsets=offsets,
        targets=None,
        history_baskets=None if last_basket is False else basket_starts(sequences),
    )
    everyone = users
    if rows is not None:
        users = select_rows(users, rows)
        user_ids = users.user_ids
    cases = encode_cases(
        users, catalogue, query_items, half_life=half_life, last_basket=last_basket
    )
    scorer = EmbeddingScorer(vectors, catalogue, scoring)
    if knn_blend > 0:
        # Every user's items with a vector (all users, not only a shard's): the
        # user-item matrix of the blend, so shards blend with the same item-kNN.
        seen = cases.seen if rows is None else encode_cases(everyone, catalogue, 1).seen
        popularity = PopularityScorer(catalogue).popularity
        knn = ItemKNNScorer(seen, head_bytes=BLEND_HEAD_BYTES, popularity=popularity)
        scorer = BlendScorer(scorer, knn, knn_blend)
    top, scores = _rank(scorer, cases, len(catalogue), n, exclude_seen, "recommend")
    item_ids = pa.array(catalogue.item_ids, type=pa.string())
    source = np.zeros(top.shape, dtype=np.int8)
    unserved = top[:, 0] < 0 if n else np.zeros(len(cases), dtype=bool)
    if fallback_knn and unserved.any():
        fallback = _fallback(users, unserved, values, offsets, n, fallback_knn, exclude_seen)
        fallback_top, fallback_scores, fallback_source, fallback_ids = fallback
        # One id array for both catalogues: fallback codes follow the model's.
        top[unserved] = np.where(fallback_top >= 0, fallback_top + len(item_ids), -1)
        scores[unserved] = fallback_scores
        source[unserved] = fallback_source
        item_ids = pa.concat_arrays([item_ids, fallback_ids])
    valid = top >= 0
    rows, ranks = np.nonzero(valid)
    names = pa.array(SOURCES, type=pa.string())
    return pa.table(
        {
            "user_id": user_ids.take(pa.array(rows)).cast(pa.string()),
            "rank": pa.array(ranks + 1, type=pa.int32()),
            "item_id": item_ids.take(pa.array(top[valid])),
            "score": pa.array(scores[valid], type=pa.float32()),
            "source": names.take(pa.array(source[valid])),
        },
        schema=RECOMMENDATION_SCHEMA,
    )


def _rank(
    scorer: Any, cases: Cases, n_candidates: int, n: int, exclude_seen: bool, description: str
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``n`` of ``scorer`` for every case, the user's items left out if asked."""
    return top_k(
        lambda start, stop: scorer(cases, start, stop),
        n_rows=len(cases),
        n_candidates=n_candidates,
        k=n,
        exclude=cases.seen if exclude_seen else None,
        description=description,
        unit="users",
    )


def _fallback(
    users: Holdout,
    unserved: np.ndarray,
    values: pa.Array,
    offsets: np.ndarray,
    n: int,
    knn: Mapping[str, Any],
    exclude_seen: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
    """Item-kNN, then popularity, for the ``unserved`` users over every history.

    Returns codes into the catalogue of every item, scores, source codes and
    that catalogue's ids.
    """
    history = FlatSequences(values, offsets)
    catalogue = build_catalogue(history)
    popularity = PopularityScorer(catalogue)
    scorer = ItemKNNScorer(
        user_item_matrix(history, catalogue),
        popularity=popularity.popularity,
        similarity=knn.get("similarity", "cosine"),
        head_bytes=head_bytes_for(int(unserved.sum())),
    )
    cases = encode_cases(select_cases(users, unserved), catalogue, int(knn["query_items"]))
    top, scores = _rank(scorer, cases, len(catalogue), n, exclude_seen, "recommend (fallback)")
    # Positive: a similar item; the rest are popularity's order (negative fill).
    similar = scores > 0
    source = np.where(similar, 1, 2).astype(np.int8)
    counts = catalogue.counts[np.maximum(top, 0)].astype(np.float32)
    scores = np.where(similar, scores, counts).astype(np.float32)
    return top, scores, source, pa.array(catalogue.item_ids, type=pa.string())
