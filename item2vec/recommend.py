"""Top-N recommendations for every user, scored the way the evaluation scores them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from item2vec.catalogue import Catalogue, encode_cases
from item2vec.chunks import single_array
from item2vec.evaluate import EmbeddingScorer
from item2vec.ranking import top_k
from item2vec.schemas import RECOMMENDATION_SCHEMA
from item2vec.sequences import flat_arrow
from item2vec.split import Holdout
from item2vec.vectors import ItemVectors


def recommend_for_users(
    vectors: ItemVectors,
    sequences: pa.Table,
    n: int,
    scoring: str,
    query_items: int,
    exclude_seen: bool = True,
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

    Returns
    -------
    pyarrow.Table
        Long format with :data:`RECOMMENDATION_SCHEMA`, ``rank`` from 1. Users
        whose history has no item with a vector get no rows.
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
    )
    cases = encode_cases(users, catalogue, query_items)
    scorer = EmbeddingScorer(vectors, catalogue, scoring)
    top, scores = top_k(
        lambda start, stop: scorer(cases, start, stop),
        n_rows=len(cases),
        n_candidates=len(catalogue),
        k=n,
        exclude=cases.seen if exclude_seen else None,
        description="recommend",
        unit="users",
    )
    valid = top >= 0
    rows, ranks = np.nonzero(valid)
    item_ids = pa.array(catalogue.item_ids, type=pa.string())
    return pa.table(
        {
            "user_id": user_ids.take(pa.array(rows)).cast(pa.string()),
            "rank": pa.array(ranks + 1, type=pa.int32()),
            "item_id": item_ids.take(pa.array(top[valid])),
            "score": pa.array(scores[valid], type=pa.float32()),
        },
        schema=RECOMMENDATION_SCHEMA,
    )
