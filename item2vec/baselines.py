"""Baselines ranked on the same catalogue, split and query as the model.

* Popularity: training counts, the same list for everyone (minus seen items).
* Item-kNN: a similarity between items over the user-item matrix (cosine by
  default; BM25-weighted or asymmetric cosine as options), summed over the
  query items. Computed block by block with sparse products, so the
  item-item similarity matrix is never materialised. Given the popularity
  ranking, candidates with no similarity at all (nobody had them with a query
  item) follow the similar ones in popularity order, so a user whose items
  co-occur with nothing still gets the popular items rather than the first ids.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from item2vec.catalogue import Cases, Catalogue


class PopularityScorer:
    """Ranks every candidate by its training count; ties go to the lower id (natural order).

    The score is the item's place in that ordering rather than the raw count, so
    the ranking has no ties and does not depend on how a top-k selection breaks them.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        order = np.lexsort((catalogue.natural_order(), -catalogue.counts))
        self.popularity = np.empty(len(catalogue), dtype=np.float32)
        self.popularity[order] = np.arange(len(catalogue), 0, -1, dtype=np.float32)
        self.rankable = np.ones(len(catalogue), dtype=bool)

    def __call__(self, cases: Cases, start: int, stop: int) -> np.ndarray:
        """Scores of the cases ``start:stop``."""
        return np.broadcast_to(self.popularity, (stop - start, len(self.popularity))).copy()

    def shortlist(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue codes and scores of the ``size`` most popular items, best first.

        Everyone's ranking is this one list minus their own items, so the top
        ``k`` of a user who has ``s`` items lies within its first ``k + s``
        entries: ranking those alone is exact, and costs ``k + s`` scores per
        user instead of the whole catalogue.
        """
        size = min(size, len(self.popularity))
        head = np.argsort(-self.popularity, kind="stable")[:size]
        return head, self.popularity[head]


#: Memory for the dense similarity rows of the most popular items (bytes).
HEAD_BYTES = 256 * 2**20
#: Cases at and above which the whole :data:`HEAD_BYTES` pays for itself.
HEAD_FULL_CASES = 20_000


def head_bytes_for(cases: int) -> int:
    """Memory for item-kNN's dense head when it will score ``cases`` queries.

    The head costs one sparse product per head item to build, whatever the
    number of queries, and saves sparse products per query. On 610 queries (the
    bundled sample) the full head took 6.2 s to build and its queries 2.3 s,
    against 1.1 s for the queries without one; so it shrinks in proportion to
    the queries below :data:`HEAD_FULL_CASES`.
    """
    return int(HEAD_BYTES * min(1.0, max(cases, 0) / HEAD_FULL_CASES))


#: Item-kNN's similarities: the one named ``cosine`` is the default.
KNN_SIMILARITIES = ("cosine", "bm25", "asymmetric")
#: Asymmetric cosine's exponent on the query item's user count; the candidate's
#: gets ``1 - alpha``. 0.5 is the cosine; below it, popular candidates weigh less
#: (Aiolli, 2013, found about 0.15-0.25 best on implicit feedback).
ASYMMETRIC_ALPHA = 0.2
#: BM25's saturation and length normalisation: the defaults of implicit's
#: ``BM25Recommender`` (its ``bm25_weight`` function defaults to 100 and 0.8, which
#: gave HR@10 0.038 against these 0.100 on the sample's validation target).
BM25_K1, BM25_B = 1.2, 0.75


def similarity_factors(
    user_items: sp.csr_matrix, similarity: str
) -> tuple[sp.csc_matrix, sp.csc_matrix]:
    """The query-side and candidate-side ``(users, items)`` factors of a similarity.

    Item-kNN's score of candidate ``j`` for query item ``i`` is
    ``(left[:, i] . right[:, j])``:

    * ``cosine``: both are the binary matrix with unit-norm columns;
    * ``asymmetric``: ``|U_i & U_j| / (|U_i|^alpha |U_j|^(1 - alpha))`` with
      :data:`ASYMMETRIC_ALPHA`, so the factors scale columns by ``n^-alpha`` and
      ``n^-(1 - alpha)``;
    * ``bm25``: both are the BM25-weighted matrix (an item is a document, its
      users the terms: users with many items weigh less, long columns are
      length-normalised), compared by dot product as implicit's BM25 does.

    Raises
    ------
    ValueError
        For a similarity not in :data:`KNN_SIMILARITIES`.
    """
    binary = user_items.tocsc().astype(np.float32)
    binary.data[:] = 1.0
    users_per_item = np.diff(binary.indptr).astype(np.float64)
    if similarity == "cosine":
        normalised = normalize(binary, norm="l2", axis=0)
        return normalised, normalised
    if similarity == "asymmetric":
        safe = np.maximum(users_per_item, 1.0)
        left = binary @ sp.diags((safe**-ASYMMETRIC_ALPHA).astype(np.float32))
        right = binary @ sp.diags((safe ** -(1 - ASYMMETRIC_ALPHA)).astype(np.float32))
        return left.tocsc(), right.tocsc()
    if similarity == "bm25":
        items_per_user = np.asarray(binary.sum(axis=1)).ravel()
        idf = np.maximum(np.log(binary.shape[1]) - np.log1p(items_per_user), 0.0)
        length = (1 - BM25_B) + BM25_B * users_per_item / max(users_per_item.mean(), 1.0)
        weighted = binary.copy()
        columns = np.repeat(np.arange(binary.shape[1]), np.diff(binary.indptr))
        weighted.data = (
            (BM25_K1 + 1) / (BM25_K1 * length[columns] + 1) * idf[binary.indices]
        ).astype(np.float32)
        weighted.eliminate_zeros()
        return weighted, weighted
    raise ValueError(
        f"item-kNN similarity {similarity!r} is not one of {', '.join(KNN_SIMILARITIES)}"
    )


class ItemKNNScorer:
    """Sum of item-item similarities to the query items.

    Parameters
    ----------
    user_items
        Binary ``(users, catalogue)`` training matrix.
    similarity
        One of :data:`KNN_SIMILARITIES` (:func:`similarity_factors`).
    head_bytes
        Memory for the similarity rows of the most popular items, computed once.
    popularity
        Optional score per item (higher is more popular, as
        :attr:`PopularityScorer.popularity`): candidates whose similarity is 0
        are ranked by it, below every candidate with a positive similarity.

    Notes
    -----
    The cost of a query item through the user-item matrix is the number of
    items its users have, which under a popularity skew is dominated by the few
    most popular items, and those are in nearly every user's query. So the
    similarity rows of the items with the most users (as many as fit in
    ``head_bytes``) are computed once, densely; a query item among them adds its
    row, the others go through the sparse products. Both give the same sums.
    """

    def __init__(
        self,
        user_items: sp.csr_matrix,
        head_bytes: int = HEAD_BYTES,
        popularity: np.ndarray | None = None,
        similarity: str = "cosine",
    ) -> None:
        # (left^T right)[i, j] is the similarity of candidate j to query item i.
        left, right = similarity_factors(user_items, similarity)
        self.similarity = similarity
        self.user_by_item = right.tocsr()
        self.item_by_user = left.T.tocsr()
        n_items = user_items.shape[1]
        self.rankable = np.ones(n_items, dtype=bool)
        users_per_item = np.diff(self.item_by_user.indptr)
        size = min(n_items, head_bytes // max(4 * n_items, 1))
        self.head = np.sort(np.argsort(-users_per_item, kind="stable")[:size])
        self.in_head = np.zeros(n_items, dtype=bool)
        self.in_head[self.head] = True
        head_rows = self.item_by_user[self.head] @ self.user_by_item
        self.head_similarity = np.asarray(head_rows.toarray(), dtype=np.float32)
        # Scatter matrix that keeps only the tail columns of a query.
        self.keep_tail = sp.diags((~self.in_head).astype(np.float32), format="csr")
        self.fill = None
        if popularity is not None:
            # In (-1, 0): below any positive similarity, in popularity order.
            order = np.argsort(np.argsort(-popularity, kind="stable"), kind="stable")
            self.fill = (-(order + 1) / (n_items + 1)).astype(np.float32)

    def __call__(self, cases: Cases, start: int, stop: int) -> np.ndarray:
        """Scores of the cases ``start:stop``."""
        query = cases.query[start:stop].tocsr()
        scores = np.asarray(query[:, self.head] @ self.head_similarity, dtype=np.float32)
        tail = query @ self.keep_tail
        tail.eliminate_zeros()
        if tail.nnz:
            # (b x items) @ (items x users) -> (b x users), then @ (users x items).
            per_user = tail @ self.item_by_user
            scores += (per_user @ self.user_by_item).toarray()
        if self.fill is not None:
            scores = np.where(scores > 0, scores, self.fill[None, :])
        return scores
