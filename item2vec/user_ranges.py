"""The run's dictionaries of user and item ids, and the ranges of users a shuffle cuts.

The partitioned sequences path (:mod:`item2vec.user_partitions`) moves ids as
int32 codes. Each file reports its distinct ids (:func:`file_ids`, one small
table per file); :func:`run_ids` turns them into sorted run-wide dictionaries,
so that a user's code is its rank in the one-worker order, and cuts the codes
into ranges of about equal events; :func:`id_codes` encodes a file's ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.encoding import distinct_codes
from item2vec.ingest import Partition

__all__ = ["FileIds", "RunIds", "file_ids", "id_codes", "run_ids"]


@dataclass
class FileIds:
    """The distinct kept ids of one validated file: what the run's dictionaries need of it.

    Attributes
    ----------
    users, events
        Each distinct user id (string) and its kept rows in the file.
    items
        Each distinct item id (string).
    """

    users: pa.Array
    events: np.ndarray
    items: pa.Array


def _kept_ids(partition: Partition, column: str) -> pa.ChunkedArray:
    table = partition.table
    return table.column(column).filter(pc.equal(table.column("_drop"), 0))


def _as_text(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    return ids.cast(pa.string())


def file_ids(partition: Partition) -> FileIds:
    """The :class:`FileIds` of one validated file (kept rows only)."""
    counts = pc.value_counts(_kept_ids(partition, "user_id"))
    users = _as_text(counts.field("values"))
    items = _as_text(pc.unique(_kept_ids(partition, "item_id")))
    return FileIds(users, counts.field("counts").to_numpy().astype(np.int64), items)


@dataclass
class RunIds:
    """The run's user and item dictionaries, and the ranges of users the shuffle cuts.

    Attributes
    ----------
    users
        Every kept user id, sorted as Arrow sorts strings (the one-worker order),
        so that a user's code is its rank.
    items
        Every kept item id, sorted.
    divisions
        Boundaries of the partitions in user codes: partition ``j`` holds codes
        ``divisions[j]`` up to ``divisions[j + 1]`` (the last one included), so
        that partitions in order hold users in order.
    """

    users: pa.Array
    items: pa.Array
    divisions: list[int]

    def user_range(self, j: int) -> tuple[int, int]:
        """The codes ``[start, stop)`` of partition ``j``."""
        last = j == len(self.divisions) - 2
        return self.divisions[j], self.divisions[j + 1] + (1 if last else 0)


def run_ids(summaries: list[FileIds], n: int) -> RunIds:
    """The :class:`RunIds` of every file's :func:`file_ids`, for ``n`` partitions of users.

    Parameters
    ----------
    summaries
        Each file's distinct ids (one table per file, not per row).
    n
        Partitions wanted. The cuts fall at equal shares of the kept rows, not
        of the users, so that partitions hold about as many events; with fewer
        users than ``n``, there are as many partitions as users.

    Raises
    ------
    ValueError
        When ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"shuffle_partitions {n}: need at least 1 partition of users")
    text = pa.array([], type=pa.string())
    users, codes = distinct_codes(pa.concat_arrays([text, *(s.users for s in summaries)]))
    events = np.concatenate([np.zeros(0, np.int64), *(s.events for s in summaries)])
    per_user = np.bincount(codes, weights=events, minlength=len(users)).astype(np.int64)
    items, _ = distinct_codes(pa.concat_arrays([text, *(s.items for s in summaries)]))
    # Partition j starts at the first user after a j/n share of the kept rows.
    ends = np.cumsum(per_user)
    last = max(len(ends) - 1, 0)
    shares = np.arange(1, n) * (int(ends[-1]) if len(ends) else 0) / n
    starts = np.clip(np.searchsorted(ends, shares, side="left") + 1, 1, max(last, 1))
    divisions = sorted({0, last, *(int(c) for c in starts if c < last)})
    divisions = divisions if len(divisions) > 1 else [0, 0]
    return RunIds(users, items, divisions)


def id_codes(ids: pa.ChunkedArray, dictionary: pa.Array) -> pa.Array:
    """Each id's position in ``dictionary`` (int32), the code it travels as.

    A file's ids may be dictionary-encoded chunks; each chunk's own dictionary is
    looked up once, then its indices taken."""
    # Each chunk's own dictionary is looked up once, then its indices taken.
    chunks = []
    for chunk in ids.chunks:
        if pa.types.is_dictionary(chunk.type):
            where = pc.index_in(chunk.dictionary.cast(pa.string()), value_set=dictionary)
            chunks.append(where.take(chunk.indices))
        else:
            chunks.append(pc.index_in(chunk.cast(pa.string()), value_set=dictionary))
    joined = (
        pa.chunked_array(chunks, type=pa.int32()) if chunks else pa.chunked_array([], pa.int32())
    )
    return joined.combine_chunks()
