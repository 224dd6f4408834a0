"""Exact cosine nearest neighbours of every item, self excluded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from item2vec.ranking import top_k
from item2vec.train import ItemVectors

NEIGHBOR_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rank", pa.int32()),
        ("neighbor_id", pa.string()),
        ("score", pa.float32()),
    ]
)


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
