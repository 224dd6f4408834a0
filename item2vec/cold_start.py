"""Cold start: vectors for items with too few events, from the items that share their category.

An item of the items file that training left without a vector (seen fewer
than ``min_count`` times, or never) gets the mean input and output vector of
the trained items of its category, as Airbnb (KDD 2018) does for new listings.
Such rows are flagged ``cold_start`` in the ``source`` column of
``item_vectors.parquet``; every other row is ``trained``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from item2vec.split import Split
from item2vec.vectors import ItemVectors

__all__ = ["COLD_START", "TRAINED", "cold_start", "with_cold_start"]

log = logging.getLogger(__name__)

TRAINED = "trained"
COLD_START = "cold_start"


def _category_means(matrix: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    sums = np.zeros((n, matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, matrix)
    return (sums / np.bincount(codes, minlength=n)[:, None]).astype(np.float32)


def with_cold_start(
    vectors: ItemVectors, categories: pa.Table | None, counts: pd.Series | None = None
) -> ItemVectors:
    """``vectors`` with a category-mean vector for every categorised item that has none.

    Parameters
    ----------
    vectors
        The trained vectors.
    categories
        ``item_id`` and ``category`` (null for none), as
        :func:`item2vec.stages.categories` reads them from the items file.
    counts
        Training occurrences by item id, for the new rows' ``count`` (0 when absent).

    Returns
    -------
    ItemVectors
        The trained rows first, unchanged, then one row per cold-start item, with
        ``source`` saying which is which. Items whose category has no trained
        item, and items without a category, stay without a vector.

    Raises
    ------
    ValueError
        Without ``categories``: cold start needs an items file with a category.
    """
    if categories is None:
        raise ValueError(
            "cold start needs the items' categories: set ingest.items_path (--items) "
            "and ingest.item_category_col (--item-category-col)"
        )
    table = categories.to_pandas().dropna(subset=["category"]).drop_duplicates("item_id")
    row = pd.Series(np.arange(len(vectors)), index=pd.Index(vectors.item_ids.astype(object)))
    trained = table[table["item_id"].isin(row.index)]
    labels = pd.Index(pd.unique(trained["category"]))
    code = labels.get_indexer(trained["category"])
    rows = row.loc[trained["item_id"]].to_numpy()
    cold = table[~table["item_id"].isin(row.index) & table["category"].isin(labels)]
    cold_code = labels.get_indexer(cold["category"])
    means = _category_means(vectors.vectors[rows], code, len(labels))
    context = vectors.context_vectors
    if context is not None:
        context = np.vstack([context, _category_means(context[rows], code, len(labels))[cold_code]])
    cold_ids = cold["item_id"].to_numpy(dtype=object)
    cold_counts = (
        np.zeros(len(cold), dtype=np.int64)
        if counts is None
        else counts.reindex(cold_ids).fillna(0).to_numpy(dtype=np.int64)
    )
    log.info(
        "cold start: %s items without enough events get their category's mean vector",
        f"{len(cold):,}",
    )
    history = dict(vectors.history)
    history["cold_start"] = {"items": len(cold), "categories": int(len(set(cold_code)))}
    return ItemVectors(
        item_ids=np.concatenate([vectors.item_ids.astype(object), cold_ids]),
        vectors=np.vstack([vectors.vectors, means[cold_code]]),
        context_vectors=context,
        counts=np.concatenate([vectors.counts, cold_counts]),
        history=history,
        source=np.array([TRAINED] * len(vectors) + [COLD_START] * len(cold), dtype=object),
    )


def cold_start(vectors: ItemVectors, split: Split, categories: pa.Table | None) -> ItemVectors:
    """:func:`with_cold_start`, counting on ``split``'s training side (``train.cold_start``)."""
    from item2vec.warm_start import training_counts

    return with_cold_start(vectors, categories, training_counts(split))
