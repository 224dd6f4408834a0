"""Baselines ranked on the same catalogue, split and query as the model.

* Popularity: training counts, the same list for everyone (minus seen items).
* Item-kNN: cosine between items over the binary user-item matrix, summed over
  the query items. Computed block by block with sparse products, so the
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


class ItemKNNScorer:
    """Sum of item-item cosine similarities to the query items.

    Parameters
    ----------
    user_items
        Binary ``(users, catalogue)`` training matrix.
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
    ) -> None:
        # Column-normalised, so that (X^T X)[i, j] is the cosine between items i and j.
        normalised = normalize(user_items.tocsc().astype(np.float32), norm="l2", axis=0)
        self.user_by_item = normalised.tocsr()
        self.item_by_user = normalised.T.tocsr()
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
