"""The item catalogue of a training set and the evaluation cases encoded against it.

Every scorer (model and baselines) ranks the same catalogue, the items seen in
training, so their metrics are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from item2vec.sequences import FlatSequences
from item2vec.split import Holdout


@dataclass
class Catalogue:
    """Sorted distinct training items and their training counts."""

    item_ids: np.ndarray
    counts: np.ndarray

    def natural_order(self) -> np.ndarray:
        """Rank of each item in natural id order: numeric ids by value first, then the rest.

        Used to break ties deterministically (for example between equally popular
        items) the way a person reads ids: "2" before "10".
        """
        numeric = pd.to_numeric(pd.Series(self.item_ids, dtype=object), errors="coerce")
        value = numeric.fillna(np.inf).to_numpy(dtype="float64")
        order = np.lexsort((self.item_ids.astype(str), value))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank

    def __len__(self) -> int:
        return len(self.item_ids)

    def codes(self, items: np.ndarray | pa.Array) -> np.ndarray:
        """Catalogue index of each item id (text), -1 for items not in the catalogue.

        ``items`` may be an Arrow string array, which is looked up as it is,
        with no Python objects made.
        """
        if not isinstance(items, pa.Array):
            items = pa.array(np.asarray(items, dtype=object), type=pa.string())
        if len(self.item_ids) == 0 or len(items) == 0:
            return np.full(len(items), -1, dtype=np.int64)
        # Arrow hashes the ids in C++: 1.2 s for 20M training events, against
        # 4-5 s for a pandas index lookup and 11 s for a binary search of
        # Python strings.
        found = pc.index_in(
            items.cast(pa.string()), value_set=pa.array(self.item_ids, type=pa.string())
        )
        return found.fill_null(-1).to_numpy().astype(np.int64)


def build_catalogue(train: list[list[str]] | FlatSequences) -> Catalogue:
    """Catalogue of the training sequences: sorted distinct items with counts.

    Flat sequences are counted in Arrow (no Python objects, GIL released);
    Python lists by hashing their strings.
    """
    if isinstance(train, FlatSequences):
        counted = pc.value_counts(train.items.cast(pa.string()))
        ids = counted.field("values").to_numpy(zero_copy_only=False).astype(object)
        counts = counted.field("counts").to_numpy().astype(np.int64)
        order = np.argsort(ids.astype(str), kind="stable")
        return Catalogue(item_ids=ids[order], counts=counts[order])
    flat = np.fromiter(chain.from_iterable(train), dtype=object)
    # Counted by hashing, then only the distinct ids are sorted (as np.unique would).
    counted = pd.Series(flat, dtype=object).value_counts(sort=False)
    ids = counted.index.to_numpy(dtype=object)
    order = np.argsort(ids.astype(str), kind="stable")
    return Catalogue(item_ids=ids[order], counts=counted.to_numpy(dtype=np.int64)[order])


def user_item_matrix(train: list[list[str]] | FlatSequences, catalogue: Catalogue) -> sp.csr_matrix:
    """Binary ``(training sequences, catalogue)`` matrix of who has which item."""
    if isinstance(train, FlatSequences):
        lengths, flat = train.lengths(), train.items
    else:
        lengths = np.fromiter((len(seq) for seq in train), dtype=np.int64, count=len(train))
        flat = np.fromiter(chain.from_iterable(train), dtype=object, count=lengths.sum())
    # Sequences are rows already: the row pointers are their running lengths.
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    matrix = sp.csr_matrix(
        (np.ones(len(flat), dtype=np.float32), catalogue.codes(flat), indptr),
        shape=(len(lengths), len(catalogue)),
    )
    matrix.sum_duplicates()  # also sorts each row's items
    matrix.data[:] = 1.0  # repeats were summed; the matrix is binary
    return matrix


@dataclass
class Cases:
    """Evaluation cases in catalogue codes.

    Attributes
    ----------
    seen
        ``(n, catalogue)`` binary matrix of each user's training history.
    query
        ``(n, catalogue)`` matrix with weight 1 on each of the last ``query_items``
        history items.
    targets
        Catalogue code of each held-out item, -1 if it never occurs in training.
    """

    seen: sp.csr_matrix
    query: sp.csr_matrix
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def encode_cases(holdout: Holdout, catalogue: Catalogue, query_items: int) -> Cases:
    """Encode held-out users against ``catalogue``: seen items, query items, targets.

    History items outside the catalogue are skipped: they are neither excluded
    nor part of the query, which is the last ``query_items`` known items.
    """
    offsets = holdout.history_offsets
    lengths = np.diff(offsets)
    rows = np.repeat(np.arange(len(holdout)), lengths)
    codes = catalogue.codes(holdout.history_items)
    shape = (len(holdout), len(catalogue))
    valid = codes >= 0
    seen = sp.csr_matrix(
        (np.ones(valid.sum(), dtype=np.float32), (rows[valid], codes[valid])), shape=shape
    )
    seen.data[:] = 1.0
    # Place of each item among its user's catalogue items, counted from the end
    # (1 = the latest), so the query is the last ``query_items`` items the
    # catalogue knows. In evaluation every history item is in the catalogue.
    before = np.concatenate(([0], np.cumsum(valid)))
    from_end = np.repeat(before[offsets[1:]], lengths) - before[:-1]
    in_query = valid & (from_end <= query_items)
    query = sp.csr_matrix(
        (np.ones(in_query.sum(), dtype=np.float32), (rows[in_query], codes[in_query])),
        shape=shape,
    )
    if holdout.targets is None:  # histories to recommend for, with nothing held out
        targets = np.full(len(holdout), -1, dtype=np.int64)
    else:
        targets = catalogue.codes(holdout.targets)
    return Cases(seen=seen, query=query, targets=targets)
