"""Sequences: one row per user (or per session), the items in time order.

Ordering is by (timestamp, input order), so equal timestamps keep the order in
which the events were read. Everything is vectorised: one stable sort, then the
sequences are cut out of the flat item column by offsets.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from item2vec.config import SequenceConfig, gap_seconds

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


def build_sequences(events: pd.DataFrame, config: SequenceConfig | None = None) -> pa.Table:
    """Group events into time-ordered item sequences: one per user, or one per session.

    Parameters
    ----------
    events
        Columns ``user_id``, ``item_id`` and ``ts`` in input order (see :mod:`item2vec.ingest`).
    config
        Sessions, repeat collapsing and length limits; defaults to one whole
        sequence per user.

    Returns
    -------
    pyarrow.Table
        With :data:`SEQUENCE_SCHEMA`: ``sequence_id``, ``user_id``, ``items``
        (list<string>), ``times`` (the event time of each item), ``start`` and
        ``end`` (first and last event time), ordered by user id then time. Events
        removed here are counted in the schema metadata ``item2vec.dropped``
        (JSON: ``repeat``, ``truncated``, ``short_sequence``).
    """
    config = config or SequenceConfig()
    # Sorting on integer codes, never on strings: factorize(sort=True) numbers
    # users in id order, so the codes sort like the ids themselves.
    user_codes, user_ids = pd.factorize(events["user_id"], sort=True)
    item_codes, _ = pd.factorize(events["item_id"])
    # pandas 3 keeps the resolution it parsed (s, ms, ...); the table stores ns.
    ts_ns = events["ts"].dt.as_unit("ns").to_numpy(dtype="int64")
    # lexsort is stable and its last key is the primary one: input order breaks time ties.
    order = np.lexsort((ts_ns, user_codes))
    users, ts, items = user_codes[order], ts_ns[order], item_codes[order]
    new_sequence = np.ones(len(order), dtype=bool)
    new_sequence[1:] = users[1:] != users[:-1]
    if config.session_gap is not None:
        gap = int(gap_seconds(config.session_gap) * 1e9)
        new_sequence[1:] |= np.diff(ts) > gap
    dropped = {"repeat": 0, "truncated": 0, "short_sequence": 0}
    keep = np.ones(len(order), dtype=bool)
    if config.collapse_repeats:
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = (items[1:] == items[:-1]) & ~new_sequence[1:]
        keep &= ~repeat
        dropped["repeat"] = int(repeat.sum())
    sequence = np.cumsum(new_sequence) - 1
    order, users, ts, sequence = order[keep], users[keep], ts[keep], sequence[keep]
    lengths = np.bincount(sequence, minlength=int(sequence.max(initial=-1)) + 1)
    # Position of each event counted from the end of its sequence (1 = the latest).
    from_end = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(sequence))
    keep = lengths[sequence] >= config.min_length
    dropped["short_sequence"] = int((~keep).sum())
    if config.max_length is not None:
        recent = from_end <= config.max_length
        dropped["truncated"] = int((keep & ~recent).sum())
        keep &= recent
    order, users, ts, sequence = order[keep], users[keep], ts[keep], sequence[keep]
    starts = (
        np.flatnonzero(np.r_[True, sequence[1:] != sequence[:-1]])
        if len(sequence)
        else (np.zeros(0, dtype=np.int64))
    )
    # One Arrow gather of the item strings, in final order.
    item_column = pa.array(events["item_id"], type=pa.string())
    if isinstance(item_column, pa.ChunkedArray):  # large Arrow-backed columns come chunked
        item_column = item_column.combine_chunks()
    items = item_column.take(pa.array(order))
    offsets = np.concatenate((starts, [len(sequence)])).astype(np.int32)
    stamp = pa.timestamp("ns", tz="UTC")
    table = pa.table(
        {
            "sequence_id": pa.array(np.arange(len(starts), dtype=np.int64)),
            "user_id": pa.array(
                np.asarray(user_ids, dtype=object)[users[starts]], type=pa.string()
            ),
            "items": pa.ListArray.from_arrays(pa.array(offsets), items),
            "times": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ts, type=stamp)),
            "start": pa.array(ts[starts], type=stamp),
            "end": pa.array(ts[offsets[1:] - 1], type=stamp),
        },
        schema=SEQUENCE_SCHEMA.with_metadata({"item2vec.dropped": json.dumps(dropped)}),
    )
    log.info("built %s sequences from %s events", f"{table.num_rows:,}", f"{len(events):,}")
    return table


def dropped_in_sequences(sequences: pa.Table) -> dict[str, int]:
    """Events :func:`build_sequences` removed, by reason."""
    metadata = sequences.schema.metadata or {}
    return json.loads(metadata.get(b"item2vec.dropped", b"{}"))


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
