"""Sequences: one row per user, the user's items in time order.

Ordering is by (timestamp, input order), so equal timestamps keep the order in
which the events were read. Everything is vectorised: one stable sort, then the
sequences are cut out of the flat item column by offsets.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)

SEQUENCE_SCHEMA = pa.schema(
    [
        ("sequence_id", pa.int64()),
        ("user_id", pa.string()),
        ("items", pa.list_(pa.string())),
        ("times", pa.list_(pa.timestamp("ns", tz="UTC"))),
        ("start", pa.timestamp("ns", tz="UTC")),
        ("end", pa.timestamp("ns", tz="UTC")),
    ]
)


def build_sequences(events: pd.DataFrame) -> pa.Table:
    """Group events into one time-ordered item sequence per user.

    Parameters
    ----------
    events
        Columns ``user_id``, ``item_id`` and ``ts`` in input order (see :mod:`item2vec.ingest`).

    Returns
    -------
    pyarrow.Table
        With :data:`SEQUENCE_SCHEMA`: ``sequence_id``, ``user_id``, ``items``
        (list<string>), ``times`` (the event time of each item), ``start`` and
        ``end`` (first and last event time). Users are in sorted id order.
    """
    users = events["user_id"].to_numpy(dtype=object)
    # pandas 3 keeps the resolution it parsed (s, ms, ...); the table stores ns.
    ts_ns = events["ts"].dt.as_unit("ns").to_numpy(dtype="int64")
    # lexsort's last key is the primary one; it is stable, so input order breaks the remaining ties.
    order = np.lexsort((np.arange(len(events)), ts_ns, users))
    sorted_users = users[order]
    boundaries = np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1
    starts = np.concatenate(([0], boundaries)).astype(np.int64)
    offsets = np.concatenate((starts, [len(order)])).astype(np.int32)
    items = pa.array(events["item_id"].to_numpy(dtype=object)[order], type=pa.string())
    ts = ts_ns[order]
    table = pa.table(
        {
            "sequence_id": pa.array(np.arange(len(starts), dtype=np.int64)),
            "user_id": pa.array(sorted_users[starts], type=pa.string()),
            "items": pa.ListArray.from_arrays(pa.array(offsets), items),
            "times": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(ts, type=pa.timestamp("ns", tz="UTC"))
            ),
            "start": pa.array(ts[starts], type=pa.timestamp("ns", tz="UTC")),
            "end": pa.array(ts[offsets[1:] - 1], type=pa.timestamp("ns", tz="UTC")),
        },
        schema=SEQUENCE_SCHEMA,
    )
    log.info("built %s sequences from %s events", f"{table.num_rows:,}", f"{len(events):,}")
    return table


def flat_items(sequences: pa.Table, column_name: str = "items") -> tuple[np.ndarray, np.ndarray]:
    """The flat values and the int64 offsets of a list column (``items`` or ``times``)."""
    column = sequences.column(column_name).combine_chunks()
    offsets = column.offsets.to_numpy().astype(np.int64)
    values = column.values.to_numpy(zero_copy_only=False)
    # Sliced list arrays keep their parent's values; rebase on the first offset.
    values = values[offsets[0] : offsets[-1]]
    return values, offsets - offsets[0]


def sequence_lists(sequences: pa.Table) -> list[list[str]]:
    """Every sequence as a Python list of item ids, the form gensim trains on."""
    return sequences.column("items").to_pylist()
