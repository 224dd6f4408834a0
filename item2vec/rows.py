"""Kept events as integer arrays, sorted in the order sequences need them.

:class:`EventRows` is what the combined partitions become before the run-wide
filters: user and item codes into one dictionary per run, times in nanoseconds,
sorted by user id, then time, then input position.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.chunks import single_array
from item2vec.encoding import run_codes
from item2vec.grouping import CodedChunk, count_distinct, group_rows
from item2vec.timestamps import TIMESTAMP, UNIT_NS

#: Schema metadata of an :class:`item2vec.ingest.Events` table already in sequence order.
SORTED_KEY = b"item2vec.sorted"


@dataclass
class EventRows:
    """Kept events as integer arrays, in the order sequences need them.

    The arrays are sorted by user id, then time, then input position (file
    order, then row order). User codes are ranks of the user ids in sorted
    order, so sorting codes sorts the ids.
    """

    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    events: np.ndarray | None
    weights: np.ndarray | None
    user_ids: pa.Array
    item_ids: pa.Array
    event_ids: pa.Array | None

    @property
    def size(self) -> int:
        return len(self.items)

    @classmethod
    def of(cls, table: pa.Table) -> EventRows:
        """The rows of a validated table (those whose ``_drop`` is 0, if it has one), sorted."""
        batches = table.to_batches()
        users = [batch.column("user_id") for batch in batches]
        items = [batch.column("item_id") for batch in batches]
        # Two threads: Arrow hashes and sorts the ids without holding the GIL.
        with ThreadPoolExecutor(2) as pool:
            user_run = pool.submit(run_codes, users, table.schema.field("user_id").type, True)
            item_ids, item_codes = run_codes(items, table.schema.field("item_id").type)
            user_ids, user_codes = user_run.result()
        chunks = [
            CodedChunk(
                users=_indices(users[n]),
                user_codes=user_codes[n],
                items=_indices(items[n]),
                item_codes=item_codes[n],
                ts=batch.column("ts").cast(pa.int64()).to_numpy(),
                ts_scale=UNIT_NS[batch.schema.field("ts").type.unit],
                drop=(
                    batch.column("_drop").to_numpy()
                    if "_drop" in table.column_names
                    else np.zeros(batch.num_rows, dtype=np.int8)
                ),
            )
            for n, batch in enumerate(batches)
        ]
        # Input positions are only needed to carry event types and weights along.
        carried = "event" in table.column_names or "weight" in table.column_names
        grouped = group_rows(chunks, len(user_ids), positions=carried)
        source = grouped.position
        events = event_ids = weights = None
        if "event" in table.column_names:
            event_column = single_array(table.column("event").unify_dictionaries())
            events = _codes(event_column)[source]
            event_ids = event_column.dictionary
        if "weight" in table.column_names:
            weights = table.column("weight").to_numpy()[source]
        return cls(
            grouped.users(),
            grouped.items,
            grouped.ts,
            events,
            weights,
            user_ids,
            item_ids,
            event_ids,
        )

    def keep(self, mask: np.ndarray) -> EventRows:
        """The rows where ``mask`` holds, order unchanged."""
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return EventRows(
            self.users[mask],
            self.items[mask],
            self.ts[mask],
            pick(self.events),
            pick(self.weights),
            self.user_ids,
            self.item_ids,
            self.event_ids,
        )

    def distinct(self, codes: np.ndarray) -> int:
        """How many different codes occur."""
        return count_distinct(codes)

    def table(self) -> pa.Table:
        """The rows as an Arrow table with dictionary-encoded ids, in sorted order."""
        # The codes index their dictionaries by construction (run_codes), so the
        # bounds check of every row (about 0.01 s per 20M) is skipped.
        return pa.table(
            {
                "user_id": pa.DictionaryArray.from_arrays(
                    pa.array(self.users.astype(np.int32, copy=False)), self.user_ids, safe=False
                ),
                "item_id": pa.DictionaryArray.from_arrays(
                    pa.array(self.items.astype(np.int32, copy=False)), self.item_ids, safe=False
                ),
                "ts": pa.array(self.ts, type=pa.int64()).cast(TIMESTAMP),
            }
        ).replace_schema_metadata({SORTED_KEY: b"user_id,ts,input"})


def _codes(column: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as int32, with -1 for nulls."""
    indices = column.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    return indices.to_numpy().astype(np.int32, copy=False)


def _indices(column: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as numpy, without a copy; null rows (dropped) read as 0."""
    indices = column.indices
    return (pc.fill_null(indices, 0) if indices.null_count else indices).to_numpy()
