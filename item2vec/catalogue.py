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
from item2vec.split import Holdout, is_basket_log


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
        ``(n, catalogue)`` matrix with a weight on each query item: 1 on each
        of the last ``query_items`` history items, unless a recency half-life
        or the last-basket query says otherwise (:func:`encode_cases`).
    targets
        Catalogue code of each held-out item, -1 if it never occurs in training.
    """

    seen: sp.csr_matrix
    query: sp.csr_matrix
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def encode_cases(
    holdout: Holdout,
    catalogue: Catalogue,
    query_items: int,
    *,
    half_life: float = 0.0,
    last_basket: bool | None = False,
) -> Cases:
    """Encode held-out users against ``catalogue``: seen items, query items, targets.

    History items outside the catalogue are skipped: they are neither excluded
    nor part of the query, which is the last ``query_items`` known items.

    Parameters
    ----------
    holdout, catalogue, query_items
        The cases, the candidates, and how many of the latest known items query.
    half_life
        Recency weights: the item ``p`` places before the latest (0 for the
        latest) weighs ``0.5 ** (p / half_life)``; 0 weighs every query item 1.
    last_basket
        The query is also limited to the user's last basket (the items that
        share the latest history timestamp); needs ``holdout.history_baskets``.
        None decides from the histories: on when they are basket-shaped
        (:func:`item2vec.split.is_basket_log`).

    Raises
    ------
    ValueError
        If ``last_basket`` is asked of a holdout without basket boundaries.
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
    if last_basket is None:
        last_basket = is_basket_log(holdout.history_baskets)
    if last_basket:
        in_query &= _in_last_basket(holdout, lengths)
    weight = np.ones(in_query.sum(), dtype=np.float32)
    if half_life > 0:
        weight = np.power(0.5, (from_end[in_query] - 1) / half_life).astype(np.float32)
    query = sp.csr_matrix((weight, (rows[in_query], codes[in_query])), shape=shape)
    if holdout.targets is None:  # histories to recommend for, with nothing held out
        targets = np.full(len(holdout), -1, dtype=np.int64)
    else:
        targets = catalogue.codes(holdout.targets)
    return Cases(seen=seen, query=query, targets=targets)


def _in_last_basket(holdout: Holdout, lengths: np.ndarray) -> np.ndarray:
    """Boolean per history item: it belongs to its user's last basket."""
    if holdout.history_baskets is None:
        raise ValueError(
            "the last-basket query needs basket boundaries (event times in the sequences); "
            "use evaluate.query = 'items'"
        )
    basket = np.cumsum(holdout.history_baskets) - 1
    if not len(basket):
        return np.zeros(0, dtype=bool)
    ends = holdout.history_offsets[1:] - 1
    last = np.where(lengths > 0, basket[np.maximum(ends, 0)], -1)
    return basket == np.repeat(last, lengths)
