"""Trained item embeddings, as every stage after training sees them.

Kept apart from :mod:`item2vec.train` so that reading, ranking and publishing
vectors never imports gensim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ItemVectors"]


@dataclass
class ItemVectors:
    """Trained item embeddings.

    Attributes
    ----------
    item_ids
        Vocabulary, as exact item id strings.
    vectors
        Input vectors, float32, one row per item.
    context_vectors
        gensim's output vectors (``syn1neg``) when negative sampling was used, else None.
    counts
        Training occurrences of each item.
    history
        ``loss`` per epoch (when computed) and training ``seconds``.
    source
        How each item got its vector, ``trained`` or ``cold_start``
        (:mod:`item2vec.cold_start`); None when every vector was trained.
    """

    item_ids: np.ndarray
    vectors: np.ndarray
    context_vectors: np.ndarray | None
    counts: np.ndarray
    history: dict = field(default_factory=dict)
    source: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.item_ids)
