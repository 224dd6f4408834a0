"""Queries over item vectors: nearest items and recommendations from a history.

Shared by a model fitted in this process (:class:`item2vec.model.Item2VecModel`)
and a published version read back (:class:`item2vec.reader.PublishedModel`), so
both answer exactly alike. Recommendations are scored as the evaluation and the
published ``user_recommendations.parquet`` score them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from item2vec.errors import ConfigError, InputError

__all__ = ["ItemQueries"]


class ItemQueries:
    """Mixin over ``item_ids``, ``vectors`` and ``context_vectors`` (may be None).

    The class using it defines those attributes and :meth:`label`; lookups and
    normalised vectors are built on first use and kept in ``_index`` and ``_unit``.
    """

    item_ids: np.ndarray
    vectors: np.ndarray
    context_vectors: np.ndarray | None

    def label(self) -> str:
        """What the vectors are called in messages."""
        return "this model"

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.item_ids)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_id in self._lookup()

    def vector(self, item_id: str) -> np.ndarray:
        """The input vector of one item.

        Parameters
        ----------
        item_id
            Exact item id, as text (``"00123"`` and ``"123"`` are different items).

        Returns
        -------
        numpy.ndarray
            A writable float32 copy of shape ``(dim,)``.

        Raises
        ------
        InputError
            If the item has no vector.
        """
        return self.vectors[self._row(item_id)].copy()

    def table_scoring(self) -> str:
        """The scoring of the neighbour table these vectors publish (``in-in`` here)."""
        return "in-in"

    def most_similar(
        self, positive: str | Iterable[str], topn: int = 10, scoring: str | None = None
    ) -> list[tuple[str, float]]:
        """Items closest by cosine, ranked as the neighbour table ranks them.

        The search is exact over every vector, not a lookup in the neighbour
        table, so ``topn`` is not limited to the published ``k``.

        Parameters
        ----------
        positive
            One item id, or several: their L2-normalised vectors are averaged and
            the mean is normalised again, as gensim does.
        topn
            How many items to return (fewer when there are fewer other items).
        scoring
            ``in-in`` (cosine of input vectors, gensim's ``most_similar``),
            ``in-out`` (the query's input vector against the candidates' output
            vectors) or ``symmetric`` (the mean of both directions). None, the
            default, is the scoring of the published neighbour table
            (:meth:`table_scoring`, ``publish.neighbors_scoring``), so both agree.

        Returns
        -------
        list of (str, float)
            ``(item_id, cosine)`` pairs, best first, ties to the item earlier in the
            table. The query items themselves are never returned.

        Raises
        ------
        InputError
            If an id has no vector, or no id is given.
        ConfigError
            For an unknown scoring, or one that needs output vectors the model lacks.
        ValueError
            If ``topn`` is not a positive integer.
        """
        scoring = scoring or self.table_scoring()
        items = [positive] if isinstance(positive, str) else list(positive)
        if not items:
            raise InputError(
                "most_similar needs at least one item id; got an empty list; "
                "pass an id such as most_similar('1')"
            )
        if isinstance(topn, bool) or not isinstance(topn, int | np.integer) or topn < 1:
            raise ValueError(f"topn must be a positive integer; got {topn!r}")
        rows = np.array([self._row(item) for item in items], dtype=np.int64)
        inputs = self._unit_vectors()
        if scoring == "in-in":
            scores = inputs @ _query(inputs, rows)
        else:
            outputs = self._unit_outputs(scoring)
            scores = outputs @ _query(inputs, rows)
            if scoring == "symmetric":
                scores = (scores + inputs @ _query(outputs, rows)) * np.float32(0.5)
        scores[rows] = -np.inf
        return _best(scores, self.item_ids, topn)

    def _unit_outputs(self, scoring: str) -> np.ndarray:
        if scoring not in ("in-out", "symmetric"):
            raise ConfigError(f"unknown scoring {scoring!r}; use 'in-in', 'in-out' or 'symmetric'")
        if self.context_vectors is None:
            raise ConfigError(
                f"scoring {scoring!r} needs output vectors, which {self.label()} does not "
                "have; use scoring='in-in'"
            )
        return self._unit_context()

    def _lookup(self) -> dict[str, int]:
        if getattr(self, "_index", None) is None:
            index = dict(zip(self.item_ids.tolist(), range(len(self.item_ids)), strict=True))
            if len(index) != len(self.item_ids):
                raise InputError(
                    f"the vectors of {self.label()} have duplicate item ids "
                    f"({len(self.item_ids) - len(index)} repeats); the file was not written by "
                    "item2vec or were edited; republish the version"
                )
            self._index = index
        return self._index

    def _row(self, item_id: str) -> int:
        row = self._lookup().get(item_id) if isinstance(item_id, str) else None
        if row is None:
            raise InputError(
                f"item {item_id!r} is not in the vectors of {self.label()} "
                f"({len(self)} items); it may be below min_count, or the id may be written "
                "differently (ids are exact text: '00123' is not '123')"
            )
        return row

    def _unit_vectors(self) -> np.ndarray:
        if getattr(self, "_unit", None) is None:
            self._unit = _unit_rows(self.vectors)
        return self._unit

    def recommend_from_history(
        self,
        history: Iterable[str],
        n: int = 10,
        scoring: str = "in-out",
        query_items: int = 5,
        exclude_seen: bool = True,
    ) -> list[tuple[str, float]]:
        """The ``n`` best items after a history of items, best first.

        Parameters
        ----------
        history
            Item ids in time order, oldest first. Ids without a vector are skipped.
        n
            Recommendations to return.
        scoring
            ``in-out`` scores candidates by cosine with the output vectors (what
            skip-gram optimises), ``in-in`` with the input vectors.
        query_items
            The query is the normalised sum of the input vectors of the last
            ``query_items`` history items that have one.
        exclude_seen
            Leave out the items of the history.

        Returns
        -------
        list of (str, float)
            ``(item_id, cosine)``, ties to the item earlier in the vocabulary;
            empty when no history item has a vector.

        Raises
        ------
        ConfigError
            For ``in-out`` scoring of vectors without output vectors, or an
            unknown scoring.
        ValueError
            If ``n`` or ``query_items`` is not a positive integer.
        """
        for name, value in (("n", n), ("query_items", query_items)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if scoring not in ("in-in", "in-out"):
            raise ConfigError(f"unknown scoring {scoring!r}; use 'in-out' or 'in-in'")
        if scoring == "in-out" and self.context_vectors is None:
            raise ConfigError(
                f"scoring 'in-out' needs output vectors, which {self.label()} does not have; "
                "use scoring='in-in'"
            )
        lookup = self._lookup()
        rows = [lookup[item] for item in history if isinstance(item, str) and item in lookup]
        if not rows:
            return []
        # As the evaluation: the raw input vectors of the query items summed, then
        # normalised, against normalised candidates.
        query = self.vectors[rows[-query_items:]].sum(axis=0, dtype=np.float64)
        norm = np.linalg.norm(query)
        if norm == 0:
            return []
        candidates = self._unit_vectors() if scoring == "in-in" else self._unit_context()
        scores = (candidates @ (query / norm).astype(np.float32)).astype(np.float32)
        if exclude_seen:
            scores[np.unique(rows)] = -np.inf
        return _best(scores, self.item_ids, n)

    def _unit_context(self) -> np.ndarray:
        if getattr(self, "_unit_out", None) is None:
            self._unit_out = _unit_rows(self.context_vectors)
        return self._unit_out


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    # einsum row norms, as scikit-learn's normalize() in the neighbour table
    # computes them: the same rounding, and ~4x faster than np.linalg.norm.
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
    # A zero vector stays zero (cosine 0 with everything) instead of NaN.
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


def _query(unit: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The normalised mean of the unit rows ``rows`` (one row: itself)."""
    if len(rows) == 1:
        # No renormalising a single unit vector: an extra rounding step would
        # only move its scores away from the neighbour table's.
        return unit[rows[0]]
    query = unit[rows].mean(axis=0)
    norm = np.linalg.norm(query)
    return query / norm if norm > 0 else query


def _best(scores: np.ndarray, item_ids: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` best finite scores, best first, ties to the lower row."""
    k = min(int(k), int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    # argpartition then a stable sort of the k survivors: O(n) instead of a full sort.
    candidates = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
    order = np.lexsort((candidates, -scores[candidates]))
    return [(str(item_ids[i]), float(scores[i])) for i in candidates[order]]
