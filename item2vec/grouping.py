"""Group event rows by user, then time, in input order on ties: a compiled counting sort.

Sequences need every user's events together and in time order. Sorting 20M rows
with numpy means an argsort, then one gather per column, each writing a fresh
20M-row array; at that size fresh memory, not arithmetic, is most of the cost.
A counting sort writes each output once: one pass counts the rows of each user,
a second writes every row straight to its slot. Rows go in position order, so
the result is stable. Logs are mostly written in time order, so most users'
runs come out already time-ordered; the few that do not are sorted on their own.

The loops are compiled with numba (``nogil``, so two threads run at once; cached
on disk, so only the first run after an install pays for compiling). The rows
arrive as chunks, each with its own small dictionaries of ids (as Parquet row
groups do), so the ids are never combined into one 20M-row array first.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from item2vec.pages import huge_page_array

#: Threads for the counting and writing passes (numba releases the GIL).
THREADS = 2


@dataclass
class CodedChunk:
    """A slice of event rows whose ids index the slice's own dictionaries.

    Attributes
    ----------
    users, items
        Per-row indices into the slice's user and item dictionaries (any integer type).
    user_codes, item_codes
        Per-dictionary-entry global code (int32): ``user_codes[users[i]]`` is row i's
        user. User codes must be ranks of the user ids, so that sorting codes sorts ids.
    ts
        Per-row int64 event time; the output holds ``ts * ts_scale``.
    drop
        Per-row int8: 0 keeps the row; anything else skips it (its ids are not read).
    """

    users: np.ndarray
    user_codes: np.ndarray
    items: np.ndarray
    item_codes: np.ndarray
    ts: np.ndarray
    drop: np.ndarray
    ts_scale: int = 1


@dataclass
class GroupedRows:
    """Kept rows sorted by user code, then time, then position.

    Attributes
    ----------
    counts
        Rows per user code (int64), so user ``u``'s rows are
        ``bounds[u]:bounds[u + 1]`` with ``bounds = [0, *cumsum(counts)]``.
    items, ts
        Item code and time of every kept row, in that order.
    position
        Each row's index in the input (chunks concatenated), in that order; None
        unless asked for.
    reordered_users
        Users whose rows were not already in time order and were sorted apart.
    """

    counts: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    position: np.ndarray | None
    reordered_users: int

    def users(self) -> np.ndarray:
        """The user code of every row (int32), in order."""
        return np.repeat(np.arange(len(self.counts), dtype=np.int32), self.counts)


@numba.njit(nogil=True, cache=True)
def _count_users(users, user_codes, drop, counts):  # pragma: no cover - compiled
    for row in range(users.shape[0]):
        if drop[row] == 0:
            counts[user_codes[users[row]]] += 1


@numba.njit(nogil=True, cache=True)
def _place_rows(  # pragma: no cover - compiled
    users,
    user_codes,
    items,
    item_codes,
    ts,
    scale,
    drop,
    first,
    next_slot,
    out_items,
    out_ts,
    out_pos,
):
    for row in range(users.shape[0]):
        if drop[row] == 0:
            user = user_codes[users[row]]
            slot = next_slot[user]
            next_slot[user] = slot + 1
            out_items[slot] = item_codes[items[row]]
            out_ts[slot] = ts[row] * scale
            if out_pos.shape[0]:
                out_pos[slot] = first + row


@numba.njit(nogil=True, cache=True)
def _time_order_runs(bounds, first_user, stop_user, ts, items, position):  # pragma: no cover
    reordered = 0
    for user in range(first_user, stop_user):
        start, stop = bounds[user], bounds[user + 1]
        ordered = True
        for slot in range(start + 1, stop):
            if ts[slot] < ts[slot - 1]:
                ordered = False
                break
        if ordered:
            continue
        # Mergesort is stable: equal times keep position order.
        order = np.argsort(ts[start:stop], kind="mergesort")
        ts[start:stop] = ts[start:stop][order]
        items[start:stop] = items[start:stop][order]
        if position.shape[0]:
            position[start:stop] = position[start:stop][order]
        reordered += 1
    return reordered


def group_rows(chunks: list[CodedChunk], n_users: int, positions: bool = True) -> GroupedRows:
    """Sort the kept rows of ``chunks`` by user code, then time, then position.

    Parameters
    ----------
    chunks
        The rows in input order.
    n_users
        Number of user codes (every code is below it).
    positions
        Also return each row's input position (a 20M-row array at 20M rows; only
        needed to carry further columns along).

    Returns
    -------
    GroupedRows
        Rows whose ``drop`` is 0, in sequence order.
    """
    firsts = np.cumsum([0] + [len(chunk.drop) for chunk in chunks])
    shares = _shares(firsts)
    with ThreadPoolExecutor(THREADS) as pool:

        def count(share: list[tuple[int, int, int]]) -> np.ndarray:
            counts = np.zeros(n_users, dtype=np.int64)
            for index, start, stop in share:
                chunk = chunks[index]
                rows = slice(start, stop)
                _count_users(chunk.users[rows], chunk.user_codes, chunk.drop[rows], counts)
            return counts

        per_share = list(pool.map(count, shares))
        counts = np.sum(per_share, axis=0) if per_share else np.zeros(n_users, dtype=np.int64)
        bounds = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=bounds[1:])
        kept = int(bounds[-1])
        # Written in random order: huge pages spare most TLB misses.
        items = huge_page_array(kept, np.int32)
        ts = huge_page_array(kept, np.int64)
        position = np.empty(
            kept if positions else 0, dtype=np.int32 if firsts[-1] < 2**31 else np.int64
        )
        # Each share writes its rows of a user after the earlier shares' rows of them.
        next_slots, below = [], np.zeros(n_users, dtype=np.int64)
        for share_counts in per_share:
            next_slots.append(bounds[:-1] + below)
            below = below + share_counts

        def place(number: int) -> None:
            for index, start, stop in shares[number]:
                chunk = chunks[index]
                rows = slice(start, stop)
                _place_rows(
                    chunk.users[rows],
                    chunk.user_codes,
                    chunk.items[rows],
                    chunk.item_codes,
                    chunk.ts[rows],
                    chunk.ts_scale,
                    chunk.drop[rows],
                    firsts[index] + start,
                    next_slots[number],
                    items,
                    ts,
                    position,
                )

        list(pool.map(place, range(len(shares))))
        users = np.linspace(0, n_users, THREADS + 1).astype(np.int64)
        reordered = sum(
            pool.map(
                lambda n: _time_order_runs(bounds, users[n], users[n + 1], ts, items, position),
                range(THREADS),
            )
        )
    return GroupedRows(counts, items, ts, position if positions else None, int(reordered))


def _shares(firsts: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """The rows cut into THREADS consecutive shares of equal size, as (chunk, start,
    stop) slices; ``firsts`` holds each chunk's first row and then the total."""
    cuts = np.linspace(0, firsts[-1], THREADS + 1).astype(np.int64)
    shares = []
    for low, high in zip(cuts[:-1], cuts[1:], strict=True):
        share = []
        for index in range(len(firsts) - 1):
            start, stop = max(low, firsts[index]), min(high, firsts[index + 1])
            if start < stop:
                share.append((index, int(start - firsts[index]), int(stop - firsts[index])))
        shares.append(share)
    return shares


@numba.njit(nogil=True, cache=True)
def _count_distinct(codes, seen):  # pragma: no cover - compiled
    distinct = 0
    for row in range(codes.shape[0]):
        code = codes[row]
        if not seen[code]:
            seen[code] = True
            distinct += 1
    return distinct


def count_distinct(codes: np.ndarray) -> int:
    """How many different values non-negative integer ``codes`` hold (one pass)."""
    if not len(codes):
        return 0
    return int(_count_distinct(codes, np.zeros(int(codes.max()) + 1, dtype=np.bool_)))


@numba.njit(nogil=True, cache=True)
def _tied_rows(users, ts, out):  # pragma: no cover - compiled
    found = 0
    for row in range(1, users.shape[0]):
        if users[row] == users[row - 1] and ts[row] == ts[row - 1]:
            if out.shape[0]:
                out[found] = row
            found += 1
    return found


def tied_rows(users: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Rows whose user and time equal the previous row's (int64 indices, ascending).

    Two passes (count, then fill) instead of comparing whole columns: at 20M rows
    each comparison would write a fresh 20 MB mask, and only the few tied rows
    are of interest.
    """
    if len(users) < 2:
        return np.zeros(0, dtype=np.int64)
    out = np.empty(_tied_rows(users, ts, np.empty(0, dtype=np.int64)), dtype=np.int64)
    _tied_rows(users, ts, out)
    return out
