"""Exact cosine nearest neighbours of every item, self excluded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from item2vec.ranking import top_k
from item2vec.schemas import NEIGHBOR_SCHEMA
from item2vec.vectors import ItemVectors


def nearest_neighbors(vectors: ItemVectors, k: int) -> pa.Table:
    """Top-``k`` items by cosine of input vectors, for every item.

    Parameters
    ----------
    vectors
        Trained item vectors.
    k
        Neighbours per item (fewer when the vocabulary is smaller than ``k + 1``).

    Returns
    -------
    pyarrow.Table
        Long format with :data:`NEIGHBOR_SCHEMA`, ``rank`` from 1, best first.
    """
    unit = normalize(vectors.vectors).astype(np.float32)
    n = len(unit)
    top, scores = top_k(
        lambda start, stop: unit[start:stop] @ unit.T,
        n_rows=n,
        n_candidates=n,
        k=min(k, max(n - 1, 0)),
        exclude=sp.identity(n, dtype=np.float32, format="csr"),
        description="neighbours",
        unit="items",
    )
    valid = top >= 0
    rows, ranks = np.nonzero(valid)
    ids = vectors.item_ids.astype(object)
    return pa.table(
        {
            "item_id": pa.array(ids[rows], type=pa.string()),
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
