"""How good is a neighbour table? Item-to-item hit rate and category consistency.

* **Item-to-item HR@k / NDCG@k.** Each evaluation case asks the table of its
  single last training item; the hit is the held-out next item among that
  item's top ``k`` neighbours. Only the query item itself is excluded, exactly
  as in the table (a carousel under an item does not know who is looking).
* **Category consistency@k** (Barkan & Koenigstein, 2016): for each queried
  item that has a category, the share of its top ``k`` neighbours with the same
  category. A multi-valued category (MovieLens ``genres``, ``|``-separated)
  counts by its first value, the primary genre.

The model's table is scored by :func:`item2vec.neighbors.neighbor_lists`, the
function that builds ``item_neighbors.parquet``; item-kNN's by its own
item-item cosine. Only the distinct query items are ranked (at most one per
case), so the cost is that of a table of that many items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from item2vec.catalogue import Cases, Catalogue
from item2vec.neighbors import neighbor_lists
from item2vec.ranking import RankTally, top_k
from item2vec.split import Holdout
from item2vec.vectors import ItemVectors

#: Separator of multi-valued categories (MovieLens ``genres``).
CATEGORY_SEPARATOR = "|"
#: Category values that mean "none" (MovieLens writes ``(no genres listed)``).
NO_CATEGORY = ("", "(no genres listed)")


@dataclass
class ItemToItemCases:
    """Evaluation cases as (query item, target item) in catalogue codes.

    Attributes
    ----------
    queries
        Code of each case's last training item (-1 when it has none).
    targets
        Code of each held-out item (-1 when it never occurs in training).
    distinct
        The distinct query codes, sorted: the items whose neighbours are ranked.
    where
        Index into ``distinct`` of each case's query (-1 when it has none).
    """

    queries: np.ndarray
    targets: np.ndarray
    distinct: np.ndarray
    where: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def item_to_item_cases(holdout: Holdout, catalogue: Catalogue) -> ItemToItemCases:
    """Each case's last training item and held-out target, in ``catalogue`` codes."""
    offsets = np.asarray(holdout.history_offsets)
    has_history = np.diff(offsets) > 0
    last = np.maximum(offsets[1:] - 1, 0)
    items = holdout.history_items
    last_items = items.take(pa.array(last)) if isinstance(items, pa.Array) else items[last]
    queries = np.where(has_history, catalogue.codes(last_items), -1)
    targets = catalogue.codes(holdout.targets)
    distinct, inverse = np.unique(queries[queries >= 0], return_inverse=True)
    where = np.full(len(queries), -1, dtype=np.int64)
    where[queries >= 0] = inverse
    return ItemToItemCases(queries=queries, targets=targets, distinct=distinct, where=where)


def model_neighbor_top(
    vectors: ItemVectors, catalogue: Catalogue, codes: np.ndarray, k: int, scoring: str
) -> tuple[np.ndarray, np.ndarray]:
    """The model's top ``k`` neighbours of the catalogue items ``codes``, as the table has them.

    Returns
    -------
    top, rankable
        ``(len(codes), k)`` catalogue codes (-1 for none; an item without a
        vector has none), and per catalogue item whether it has a vector.
    """
    position = catalogue.codes(vectors.item_ids)
    inside = position >= 0
    row_of = np.full(len(catalogue), -1, dtype=np.int64)
    row_of[position[inside]] = np.flatnonzero(inside)
    rows = row_of[codes]
    top = np.full((len(codes), k), -1, dtype=np.int64)
    known = rows >= 0
    if known.any():
        found, _ = neighbor_lists(vectors, k, scoring, rows[known])
        width = found.shape[1]
        top[known, :width] = np.where(found >= 0, position[np.maximum(found, 0)], -1)
    return top, row_of >= 0


def scorer_neighbor_top(scorer, codes: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """Top ``k`` of a catalogue scorer (item-kNN) queried with each item of ``codes`` alone."""
    one_hot = sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float32), (np.arange(len(codes)), codes)),
        shape=(len(codes), n_items),
    )
    cases = Cases(seen=one_hot, query=one_hot, targets=np.full(len(codes), -1))
    top, _ = top_k(
        lambda start, stop: scorer(cases, start, stop),
        n_rows=len(codes),
        n_candidates=n_items,
        k=k,
        exclude=one_hot,
        description="item-kNN neighbours",
        unit="items",
    )
    return top


def category_table(items: pa.Table | None, column: str | None) -> pa.Table | None:
    """``item_id`` and ``category`` (the first ``|``-separated value of ``column``, null
    for none) from the items table; None without an items table or a column."""
    if items is None or not column:
        return None
    values = pc.fill_null(pc.cast(items.column(column), pa.string()), "")
    first = pc.utf8_trim_whitespace(
        pc.list_element(pc.split_pattern(values, CATEGORY_SEPARATOR), 0)
    )
    labels = pc.if_else(pc.is_in(first, value_set=pa.array(NO_CATEGORY)), None, first)
    return pa.table({"item_id": items.column("item_id"), "category": labels})


def item_categories(categories: pa.Table | None, catalogue: Catalogue) -> np.ndarray | None:
    """Category code per catalogue item (-1 for none), from :func:`category_table`;
    None without categories."""
    if categories is None:
        return None
    encoded = pc.dictionary_encode(categories.column("category").combine_chunks())
    where = catalogue.codes(categories.column("item_id").combine_chunks())
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes = np.full(len(catalogue), -1, dtype=np.int64)
    inside = where >= 0
    codes[where[inside]] = indices[inside]
    return codes


def category_consistency(
    top: np.ndarray, items: np.ndarray, categories: np.ndarray, ks: list[int]
) -> dict[str, float]:
    """``category@k``: the mean share of an item's top ``k`` neighbours in its category.

    Over the queried ``items`` that have a category and at least one
    neighbour; ``category_items`` counts them. Neighbours without a category
    count as not sharing it.
    """
    counted, shares = category_shares(top, items, categories, ks)
    return _category_means(counted, shares, ks)


def category_shares(
    top: np.ndarray, items: np.ndarray, categories: np.ndarray, ks: list[int]
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The items :func:`category_consistency` counts, and each one's share at each k."""
    own = categories[items]
    counted = (own >= 0) & (top[:, 0] >= 0)
    shares = {}
    for k in ks:
        shown = top[counted, :k]
        same = (shown >= 0) & (categories[np.maximum(shown, 0)] == own[counted, None])
        shares[k] = same.sum(axis=1) / np.maximum((shown >= 0).sum(axis=1), 1)
    return np.asarray(items)[counted], shares


def _category_means(items: np.ndarray, shares: dict[int, np.ndarray], ks: list[int]) -> dict:
    result: dict[str, float] = {}
    for k in ks:
        result[f"category@{k}"] = float(shares[k].mean()) if len(shares[k]) else 0.0
    result["category_items"] = int(len(items))
    return result


@dataclass
class NeighborTally:
    """What :func:`neighbor_metrics` computes from; tallies of shards of the cases merge exactly.

    Attributes
    ----------
    ranked
        The item-to-item ranking of the cases.
    catalogue_size
        Items the table could hold.
    category_items, category_shares
        The distinct queried items with a category, sorted, and each one's share
        of same-category neighbours per k; None without categories. An item
        queried in several shards has the same neighbours, so a union keeps one.
    """

    ranked: RankTally
    catalogue_size: int
    category_items: np.ndarray | None = None
    category_shares: dict[int, np.ndarray] | None = None

    @classmethod
    def merge(cls, tallies: list[NeighborTally]) -> NeighborTally:
        """The tally of all the cases of ``tallies`` (disjoint shards of them)."""
        merged = cls(RankTally.merge([t.ranked for t in tallies]), tallies[0].catalogue_size)
        with_categories = [t for t in tallies if t.category_items is not None]
        if with_categories:
            items = np.concatenate([t.category_items for t in with_categories])
            merged.category_items, first = np.unique(items, return_index=True)
            merged.category_shares = {
                k: np.concatenate([t.category_shares[k] for t in with_categories])[first]
                for k in with_categories[0].category_shares
            }
        return merged

    def metrics(self, ks: list[int]) -> dict[str, float]:
        """``hr@k``, ``ndcg@k``, ``unrankable`` and, with categories, ``category@k``."""
        ranked = self.ranked.metrics(ks, self.catalogue_size)
        result = {name: ranked[name] for k in ks for name in (f"hr@{k}", f"ndcg@{k}")}
        result["unrankable"] = ranked["unrankable"]
        if self.category_items is not None:
            result.update(_category_means(self.category_items, self.category_shares, ks))
        return result


def neighbor_metrics(
    top: np.ndarray,
    cases: ItemToItemCases,
    rankable: np.ndarray,
    ks: list[int],
    categories: np.ndarray | None = None,
) -> dict[str, float]:
    """Item-to-item HR@k and NDCG@k of a neighbour table, with category consistency.

    Parameters
    ----------
    top
        ``(len(cases.distinct), >= max(ks))`` neighbours of each distinct query item.
    cases
        From :func:`item_to_item_cases`.
    rankable
        Per catalogue item: the table can hold it (has a vector).
    ks
        Cut-offs.
    categories
        Category code per catalogue item (:func:`item_categories`); None or all
        -1 leaves the category figures out.

    Returns
    -------
    dict
        ``hr@k``, ``ndcg@k`` for each k; ``unrankable``, the share of cases
        whose query or target item the table does not hold (counted as misses);
        and ``category@k`` with ``category_items`` when there are categories.
    """
    return neighbor_tally(top, cases, rankable, ks, categories).metrics(ks)


def neighbor_tally(
    top: np.ndarray,
    cases: ItemToItemCases,
    rankable: np.ndarray,
    ks: list[int],
    categories: np.ndarray | None = None,
) -> NeighborTally:
    """The :class:`NeighborTally` of :func:`neighbor_metrics` (same parameters)."""
    per_case = np.full((len(cases), top.shape[1]), -1, dtype=np.int64)
    asked = cases.where >= 0
    per_case[asked] = top[cases.where[asked]]
    query_ok = asked & rankable[np.maximum(cases.queries, 0)]
    target_ok = (cases.targets >= 0) & rankable[np.maximum(cases.targets, 0)]
    ranked = RankTally.of(per_case, cases.targets, ks, ~(query_ok & target_ok))
    tally = NeighborTally(ranked, len(rankable))
    if categories is not None and (categories >= 0).any():
        tally.category_items, tally.category_shares = category_shares(
            top, cases.distinct, categories, ks
        )
    return tally
