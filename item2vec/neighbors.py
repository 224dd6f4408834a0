"""Exact nearest neighbours of every item, self excluded, under one of three scorings.

* ``in-in``: cosine between input vectors, the classic item2vec similarity;
* ``in-out``: cosine between the item's input vector and the candidate's output
  vector (gensim's ``syn1neg``), what skip-gram with negative sampling fits to
  "seen after";
* ``symmetric``: the mean of ``in-out`` both ways, ``(in_i . out_j + out_i . in_j) / 2``,
  so that the score of ``i`` with ``j`` is that of ``j`` with ``i``.

Each is one matrix product ``queries @ candidates.T`` (:func:`neighbor_factors`),
which the table and its evaluation (:mod:`item2vec.neighbor_eval`) share, so
the evaluation scores exactly what the table publishes.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from item2vec.errors import ConfigError
from item2vec.ranking import top_k
from item2vec.schemas import NEIGHBOR_SCHEMA
from item2vec.vectors import ItemVectors

#: The neighbour table's scorings, as ``publish.neighbors_scoring`` names them.
NEIGHBOR_SCORINGS = ("in-in", "in-out", "symmetric")


def neighbor_factors(vectors: ItemVectors, scoring: str) -> tuple[np.ndarray, np.ndarray]:
    """``(queries, candidates)``: the score of item ``i`` with item ``j`` is
    ``queries[i] @ candidates[j]``, under ``scoring`` (see the module docstring).

    Raises
    ------
    ConfigError
        For an unknown scoring, or ``in-out``/``symmetric`` on vectors without
        output vectors (a model trained with ``negative=0``).
    """
    if scoring not in NEIGHBOR_SCORINGS:
        raise ConfigError(
            f"unknown neighbour scoring {scoring!r}; use one of {', '.join(NEIGHBOR_SCORINGS)}"
        )
    inputs = normalize(vectors.vectors).astype(np.float32)
    if scoring == "in-in":
        return inputs, inputs
    if vectors.context_vectors is None:
        raise ConfigError(
            f"neighbour scoring {scoring!r} needs output vectors, which a model trained "
            "with negative=0 lacks; set publish.neighbors_scoring (--neighbors-scoring) to in-in"
        )
    outputs = normalize(vectors.context_vectors).astype(np.float32)
    if scoring == "in-out":
        return inputs, outputs
    # [in_i, out_i] . [out_j, in_j] / 2 is the mean of the two directions.
    return np.hstack([inputs, outputs]), np.hstack([outputs, inputs]) * np.float32(0.5)


def neighbor_lists(
    vectors: ItemVectors, k: int, scoring: str = "in-in", rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best other items (vocabulary rows) of each queried row, best first.

    Parameters
    ----------
    vectors
        Trained item vectors.
    k
        Neighbours per item.
    scoring
        One of :data:`NEIGHBOR_SCORINGS`.
    rows
        Vocabulary rows to query; None queries every item.

    Returns
    -------
    top, scores
        ``(len(rows), k)`` vocabulary rows and scores, -1 and ``-inf`` where
        fewer than ``k`` other items exist.
    """
    queries, candidates = neighbor_factors(vectors, scoring)
    n = len(candidates)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    selves = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (np.arange(len(rows)), rows)), shape=(len(rows), n)
    )
    return top_k(
        lambda start, stop: queries[rows[start:stop]] @ candidates.T,
        n_rows=len(rows),
        n_candidates=n,
        k=min(k, max(n - 1, 0)),
        exclude=selves,
        description="neighbours",
        unit="items",
    )


def nearest_neighbors(
    vectors: ItemVectors, k: int, scoring: str = "in-in", rows: slice | None = None
) -> pa.Table:
    """Top-``k`` items of every item under ``scoring``: ``item_neighbors.parquet``.

    Parameters
    ----------
    vectors
        Trained item vectors.
    k
        Neighbours per item (fewer when the vocabulary is smaller than ``k + 1``).
    scoring
        One of :data:`NEIGHBOR_SCORINGS`.
    rows
        List these vocabulary rows only (a block of items); the blocks' tables,
        concatenated in order, are the table of every item.

    Returns
    -------
    pyarrow.Table
        Long format with :data:`NEIGHBOR_SCHEMA`, ``rank`` from 1, best first.
    """
    queried = None if rows is None else np.arange(len(vectors))[rows]
    top, scores = neighbor_lists(vectors, k, scoring, queried)
    valid = top >= 0
    at, ranks = np.nonzero(valid)
    rows_of = at if queried is None else queried[at]
    ids = vectors.item_ids.astype(object)
    return pa.table(
        {
            "item_id": pa.array(ids[rows_of], type=pa.string()),
            "rank": pa.array(ranks + 1, type=pa.int32()),
            "neighbor_id": pa.array(ids[top[valid]], type=pa.string()),
            "score": pa.array(scores[valid], type=pa.float32()),
        },
        schema=NEIGHBOR_SCHEMA,
    )


def neighbor_overlap(current: pa.Table, previous: pa.Table, k: int = 10) -> float | None:
    """Mean share of each item's top-``k`` neighbours that ``previous`` also had.

    Only items present in both tables count. Returns None when none is shared.
    """
    columns = ["item_id", "neighbor_id"]
    now = current.filter(pc.less_equal(current["rank"], k)).select(columns).to_pandas()
    before = previous.filter(pc.less_equal(previous["rank"], k)).select(columns).to_pandas()
    shared_items = set(now["item_id"]) & set(before["item_id"])
    if not shared_items:
        return None
    now = now[now["item_id"].isin(shared_items)]
    common = now.merge(before, on=columns, how="inner")
    per_item = common.groupby("item_id").size().reindex(sorted(shared_items), fill_value=0)
    return float((per_item / k).mean())
