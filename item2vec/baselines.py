"""Baselines ranked on the same catalogue, split and query as the model.

* Popularity: training counts, the same list for everyone (minus seen items).
* Item-kNN: cosine between items over the binary user-item matrix, summed over
  the query items. Computed block by block with sparse products, so the
  item-item similarity matrix is never materialised.
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


class ItemKNNScorer:
    """Sum of item-item cosine similarities to the query items.

    Parameters
    ----------
    user_items
        Binary ``(users, catalogue)`` training matrix.
    """

    def __init__(self, user_items: sp.csr_matrix) -> None:
        # Column-normalised, so that (X^T X)[i, j] is the cosine between items i and j.
        normalised = normalize(user_items.tocsc().astype(np.float32), norm="l2", axis=0)
        self.user_by_item = normalised.tocsr()
        self.item_by_user = normalised.T.tocsr()
        self.rankable = np.ones(user_items.shape[1], dtype=bool)

    def __call__(self, cases: Cases, start: int, stop: int) -> np.ndarray:
        """Scores of the cases ``start:stop``."""
        query = cases.query[start:stop]
        # (b x items) @ (items x users) -> (b x users), then @ (users x items).
        per_user = query @ self.item_by_user
        scores = per_user @ self.user_by_item
        return scores.toarray() if sp.issparse(scores) else np.asarray(scores)
