"""Exact full-ranking top-k and the ranking metrics computed from it.

Scores are produced one block of query rows at a time, so memory stays bounded
by ``block_rows x n_candidates`` floats whatever the number of queries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from item2vec.progress import Progress
from item2vec.selection import select_top_k

#: Rows per block: small enough that a block of scores stays in cache-friendly sizes.
BLOCK_ROWS = 512


def top_k(
    score_rows: Callable[[int, int], np.ndarray],
    n_rows: int,
    n_candidates: int,
    k: int,
    exclude: sp.csr_matrix | None = None,
    threads: int | None = None,
    description: str = "rank",
    unit: str = "rows",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k candidates for every query row.

    Blocks of :data:`BLOCK_ROWS` query rows are scored and selected in parallel
    threads, with BLAS pinned to one thread per block. The selection is a
    compiled one-pass kernel (:func:`item2vec.selection.select_top_k`) that
    releases the GIL.

    Parameters
    ----------
    score_rows
        ``score_rows(start, stop)`` returns the dense ``(stop - start, n_candidates)``
        scores of those query rows. ``-inf`` marks a candidate that cannot be ranked.
        It is called from several threads at once.
    n_rows, n_candidates
        Shape of the full score matrix (never materialised).
    k
        Candidates to keep per row.
    exclude
        Optional ``(n_rows, n_candidates)`` sparse matrix; its stored entries are
        removed from the ranking (items already seen, or the item itself).
    threads
        Worker threads; defaults to the number of CPUs.
    description, unit
        Name of the work and of a query row in progress lines, e.g.
        ``"evaluate model"`` and ``"users"``.

    Returns
    -------
    indices, scores
        ``(n_rows, k)`` arrays, best first; ties within the selected set go to the
        lower candidate index. Where fewer than ``k`` candidates can be ranked the
        index is -1.
    """
    k_eff = min(k, n_candidates)
    indices = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    if k_eff == 0 or n_rows == 0:
        return indices, scores

    def work(start: int) -> None:
        stop = min(start + BLOCK_ROWS, n_rows)
        block = np.ascontiguousarray(score_rows(start, stop), dtype=np.float32)
        if exclude is not None:
            part = exclude[start:stop].tocoo()
            block[part.row, part.col] = -np.inf
        indices[start:stop, :k_eff], scores[start:stop, :k_eff] = select_top_k(block, k_eff)

    starts = range(0, n_rows, BLOCK_ROWS)
    workers = threads or os.cpu_count() or 1
    with Progress(description, total=n_rows, unit=unit) as progress:
        if workers == 1 or len(starts) == 1:
            for start in starts:
                work(start)
                progress.advance(min(BLOCK_ROWS, n_rows - start))
            return indices, scores
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            # Progress advances here, in the one thread that waits, never in the workers.
            futures = {pool.submit(work, start): start for start in starts}
            for future in as_completed(futures):
                future.result()
                progress.advance(min(BLOCK_ROWS, n_rows - futures[future]))
    return indices, scores


@dataclass(eq=False)
class RankTally:
    """What every ranking metric is computed from, for any set of cases; tallies add up.

    Each metric is a mean over cases or a share of the catalogue, so the tallies
    of disjoint shards of the cases, added with :meth:`merge`, give exactly the
    metrics of all the cases at once: integer counts add without rounding, and
    the catalogue items shown are a union.

    Attributes
    ----------
    cases
        Cases counted (misses and unrankable targets included).
    unrankable
        Cases whose target the scorer cannot rank.
    hits
        ``hits[r]``: cases whose target was found at rank ``r`` (1-based;
        ``hits[0]`` is always 0), up to the deepest rank tallied.
    shown
        Per cut-off ``k``: the sorted distinct candidates in anyone's top ``k``.
    """

    cases: int
    unrankable: int
    hits: np.ndarray
    shown: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(
        cls, top: np.ndarray, targets: np.ndarray, ks: list[int], unrankable: np.ndarray
    ) -> RankTally:
        """Tally a ranking: ``top`` ``(n, depth)`` candidates best first (-1 for none),
        each case's ``targets`` (-1 when not in the catalogue), ``unrankable`` per case;
        ``shown`` is kept for each k of ``ks``."""
        depth = top.shape[1]
        hit = (top == targets[:, None]) & (targets[:, None] >= 0)
        found = hit.any(axis=1)
        rank = hit.argmax(axis=1)[found] + 1
        shown = {}
        for k in ks:
            head = top[:, :k]
            shown[k] = np.unique(head[head >= 0])
        return cls(
            cases=len(targets),
            unrankable=int(np.count_nonzero(unrankable)),
            hits=np.bincount(rank, minlength=depth + 1).astype(np.int64),
            shown=shown,
        )

    @classmethod
    def merge(cls, tallies: list[RankTally]) -> RankTally:
        """The tally of all the cases of ``tallies`` (disjoint shards of them)."""
        depth = max(len(t.hits) for t in tallies)
        hits = np.zeros(depth, dtype=np.int64)
        for t in tallies:
            hits[: len(t.hits)] += t.hits
        ks = set.intersection(*(set(t.shown) for t in tallies))
        shown = {k: _union([t.shown[k] for t in tallies]) for k in sorted(ks)}
        return cls(
            cases=sum(t.cases for t in tallies),
            unrankable=sum(t.unrankable for t in tallies),
            hits=hits,
            shown=shown,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RankTally):
            return NotImplemented
        return (
            (self.cases, self.unrankable) == (other.cases, other.unrankable)
            and np.array_equal(self.hits, other.hits)
            and self.shown.keys() == other.shown.keys()
            and all(np.array_equal(self.shown[k], other.shown[k]) for k in self.shown)
        )

    def metrics(self, ks: list[int], catalogue_size: int) -> dict[str, float]:
        """``hr@k``, ``ndcg@k``, ``mrr@k``, ``coverage@k`` for each k, and ``unrankable``."""
        n = self.cases
        hits = self.hits[1:]
        ranks = np.arange(1, len(hits) + 1, dtype=np.float64)
        # One running sum per metric, read at each k: a sum over each prefix on its
        # own rounds differently by length, so @k could exceed @(k+1) in the last bit.
        running = {
            "hr": np.cumsum(hits),
            "ndcg": np.cumsum(hits / np.log2(ranks + 1)),
            "mrr": np.cumsum(hits / ranks),
        }
        result: dict[str, float] = {}
        for k in ks:
            depth = min(k, len(hits))
            for name, total in running.items():
                result[f"{name}@{k}"] = float(total[depth - 1] / n) if n and depth else 0.0
            covered = self.shown[k].size if k in self.shown else 0
            result[f"coverage@{k}"] = float(covered / catalogue_size) if catalogue_size else 0.0
        result["unrankable"] = float(self.unrankable / n) if n else 0.0
        return result

    def curve(self, max_k: int) -> list[float]:
        """HR@k for every k from 1 to ``max_k``."""
        if self.cases == 0:
            return [0.0] * max_k
        per_rank = np.zeros(max_k, dtype=np.int64)
        depth = min(max_k, len(self.hits) - 1)
        per_rank[:depth] = self.hits[1 : depth + 1]
        return [float(v) for v in np.cumsum(per_rank) / self.cases]


def _union(arrays: list[np.ndarray]) -> np.ndarray:
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)


def ranking_metrics(
    top: np.ndarray,
    targets: np.ndarray,
    ks: list[int],
    catalogue_size: int,
    unrankable: np.ndarray,
) -> dict[str, float]:
    """HR, NDCG, MRR and coverage at each k, and the unrankable share.

    Parameters
    ----------
    top
        ``(n, >= max(ks))`` candidate indices, best first, -1 for none.
    targets
        The held-out candidate index of each row (-1 if not in the catalogue).
    ks
        Cut-offs.
    catalogue_size
        Number of candidates, the denominator of coverage.
    unrankable
        Boolean per row: the scorer cannot rank the target. Such rows count as
        misses (they stay in the denominator).

    Returns
    -------
    dict
        ``hr@k``, ``ndcg@k``, ``mrr@k``, ``coverage@k`` for each k, and ``unrankable``,
        computed from :class:`RankTally`, as sharded evaluations are.
    """
    return RankTally.of(top, targets, ks, unrankable).metrics(ks, catalogue_size)


def hit_rate_curve(top: np.ndarray, targets: np.ndarray, max_k: int) -> list[float]:
    """HR@k for every k from 1 to ``max_k`` (``top`` must hold at least ``max_k`` columns)."""
    unrankable = np.zeros(len(targets), dtype=bool)
    return RankTally.of(top[:, :max_k], targets, [], unrankable).curve(max_k)
