"""Sequences: one row per user (or per session), the items in time order.

Ordering is by (timestamp, input order), so equal timestamps keep the order in
which the events were read. Ingest already delivers events in that order; the
sequences are cut out of the flat item codes by offsets, and the item strings
are materialised once, by one dictionary gather.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.chunks import single_array
from item2vec.config import SequenceConfig, gap_seconds
from item2vec.encoding import id_dictionary, is_text
from item2vec.gcpause import collector_paused
from item2vec.rows import SORTED_KEY, EventRows
from item2vec.timestamps import TIMESTAMP

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


def build_sequences(
    events: pa.Table | pd.DataFrame, config: SequenceConfig | None = None
) -> pa.Table:
    """Group events into time-ordered item sequences: one per user, or one per session.

    Parameters
    ----------
    events
        ``Events.table`` from :mod:`item2vec.ingest` (already in sequence order),
        or any table or DataFrame with ``user_id``, ``item_id`` and ``ts`` in input
        order.
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
    users, items, ts, user_ids, item_ids = _sorted_codes(events)
    new_sequence = np.ones(len(users), dtype=bool)
    new_sequence[1:] = users[1:] != users[:-1]
    if config.session_gap is not None:
        gap = int(gap_seconds(config.session_gap) * 1e9)
        new_sequence[1:] |= np.diff(ts) > gap
    dropped = {"repeat": 0, "truncated": 0, "short_sequence": 0}
    keep = np.ones(len(users), dtype=bool)
    if config.collapse_repeats:
        repeat = np.zeros(len(users), dtype=bool)
        repeat[1:] = (items[1:] == items[:-1]) & ~new_sequence[1:]
        keep &= ~repeat
        dropped["repeat"] = int(repeat.sum())
    if not keep.all():
        users, items, ts, new_sequence = users[keep], items[keep], ts[keep], new_sequence[keep]
    # Per-sequence work from here: events are only touched when some are dropped.
    starts = np.flatnonzero(new_sequence)
    lengths = np.diff(np.r_[starts, len(users)])
    kept_lengths = np.where(lengths >= config.min_length, lengths, 0)
    dropped["short_sequence"] = int((lengths - kept_lengths).sum())
    if config.max_length is not None:
        shorter = np.minimum(kept_lengths, config.max_length)
        dropped["truncated"] = int((kept_lengths - shorter).sum())
        kept_lengths = shorter
    if not np.array_equal(kept_lengths, lengths):
        # Each sequence keeps its last kept_lengths events: the most recent ones.
        from_end = np.repeat(starts + lengths, lengths) - np.arange(len(users))
        keep = from_end <= np.repeat(kept_lengths, lengths)
        users, items, ts = users[keep], items[keep], ts[keep]
        lengths = kept_lengths[kept_lengths > 0]
        starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64) if len(lengths) else lengths
    # One Arrow gather of the item strings, in final order.
    item_column = item_ids.take(pa.array(items))
    offsets = pa.array(np.concatenate((starts, [len(users)])).astype(np.int32))
    stamp = pa.timestamp("ns", tz="UTC")
    table = pa.table(
        {
            "sequence_id": pa.array(np.arange(len(starts), dtype=np.int64)),
            "user_id": user_ids.take(pa.array(users[starts])),
            "items": pa.ListArray.from_arrays(offsets, item_column),
            "times": pa.ListArray.from_arrays(offsets, pa.array(ts, type=pa.int64()).cast(stamp)),
            "start": pa.array(ts[starts], type=pa.int64()).cast(stamp),
            "end": pa.array(ts[offsets.to_numpy()[1:] - 1], type=pa.int64()).cast(stamp),
        },
        schema=SEQUENCE_SCHEMA.with_metadata({"item2vec.dropped": json.dumps(dropped)}),
    )
    log.info("built %s sequences from %s events", f"{table.num_rows:,}", f"{len(users):,}")
    return table


def _sorted_codes(
    events: pa.Table | pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array, pa.Array]:
    """User codes, item codes and int64 times in sequence order, and the id of each code.

    An :class:`item2vec.ingest.Events` table is already in that order; anything
    else (a DataFrame with ``user_id``, ``item_id``, ``ts``) is encoded and sorted
    the same way first.
    """
    if not isinstance(events, pa.Table) or SORTED_KEY not in (events.schema.metadata or {}):
        if isinstance(events, pa.Table):
            events = events.to_pandas()
        ts = pd.to_datetime(events["ts"], utc=True).dt.as_unit("ns")
        table = pa.table(
            {
                "user_id": id_dictionary(pa.array(events["user_id"], type=pa.string())),
                "item_id": id_dictionary(pa.array(events["item_id"], type=pa.string())),
                "ts": pa.array(ts.to_numpy(dtype="datetime64[ns]").view(np.int64)).cast(TIMESTAMP),
            }
        )
        events = EventRows.of(table).table()
    users = single_array(events.column("user_id"))
    items = single_array(events.column("item_id"))
    ts = single_array(events.column("ts")).cast(pa.int64()).to_numpy()
    return (
        users.indices.to_numpy(),
        items.indices.to_numpy(),
        ts,
        users.dictionary,
        items.dictionary,
    )


def dropped_in_sequences(sequences: pa.Table) -> dict[str, int]:
    """Events :func:`build_sequences` removed, by reason."""
    metadata = sequences.schema.metadata or {}
    return json.loads(metadata.get(b"item2vec.dropped", b"{}"))


@dataclass
class FlatSequences:
    """Sequences as one flat Arrow array of items and the offsets of each sequence.

    Attributes
    ----------
    items
        Every item, sequence after sequence (Arrow strings).
    offsets
        int64, from 0: sequence ``s`` is ``items[offsets[s]:offsets[s + 1]]``.
    """

    items: pa.Array
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Items per sequence."""
        return np.diff(self.offsets)


def flat_arrow(sequences: pa.Table, column_name: str = "items") -> tuple[pa.Array, np.ndarray]:
    """The flat Arrow values and the int64 offsets (from 0) of a list column.

    Nothing is converted to Python objects, so what follows can stay in Arrow's
    compiled kernels, which release the GIL (training may run beside them).
    """
    column = single_array(sequences.column(column_name))
    offsets = column.offsets.to_numpy().astype(np.int64)
    # Sliced list arrays keep their parent's values; rebase on the first offset.
    values = column.values.slice(offsets[0], offsets[-1] - offsets[0])
    return values, offsets - offsets[0]


def flat_items(sequences: pa.Table, column_name: str = "items") -> tuple[np.ndarray, np.ndarray]:
    """The flat values and the int64 offsets of a list column (``items`` or ``times``)."""
    values, offsets = flat_arrow(sequences, column_name)
    if is_text(values.type):
        return shared_strings(values), offsets
    return values.to_numpy(zero_copy_only=False), offsets


def shared_strings(values: pa.Array) -> np.ndarray:
    """Text values as an object array holding one Python string per distinct value.

    Every occurrence of an id points at the same string object. At 20M events
    and 50k items that is 50k strings instead of 20M (about 1 GB less), and
    Python caches each string's hash, so the lookups that follow (catalogue
    codes, gensim's vocabulary) hash each id once.
    """
    encoded = pc.dictionary_encode(values)
    if encoded.indices.null_count:
        return values.to_numpy(zero_copy_only=False)
    return encoded.dictionary.to_numpy(zero_copy_only=False)[encoded.indices.to_numpy()]


def sequence_lists(sequences: pa.Table) -> list[list[str]]:
    """Every non-empty sequence as a Python list of item ids, the form gensim trains on.

    Built from one shared string per distinct id (:func:`shared_strings`), with
    the garbage collector paused (:mod:`item2vec.gcpause`).
    """
    return as_lists(*flat_items(sequences))


def as_lists(values: np.ndarray, offsets: np.ndarray) -> list[list[str]]:
    """Non-empty sequences as Python lists, the form gensim trains on.

    Parameters
    ----------
    values, offsets
        Flat items and the offsets of each sequence into them.
    """
    with collector_paused():
        flat = values.tolist()
        ends = offsets.tolist()
        pairs = zip(ends[:-1], ends[1:], strict=True)
        return [flat[start:stop] for start, stop in pairs if stop > start]
