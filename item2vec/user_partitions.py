"""Sequences built in partitions of users, for logs too big for one worker.

The one-worker path (:func:`item2vec.cache.sequences_from_partitions`) combines
every validated file, applies the run-wide filters and builds the sequences in
one process. Here the same happens in ``n`` partitions, each holding whole users:

1. :func:`file_ids` per file and :func:`run_ids`: the run's dictionaries of
   user and item ids (sorted; built from each file's distinct ids, not its
   rows) and cuts of the user codes into ``n`` ranges of about equal events.
   :func:`user_frames`: the kept rows of every file as int32 codes, each with
   its input position (file, row), moved into those ranges with Dask
   DataFrame's own shuffle (``set_index`` with known divisions; p2p on a
   cluster). Codes are ranks, so partition ``j`` holds lower user ids than
   ``j + 1``.
2. :func:`user_rows`: per partition, the rows back in input order, sorted by
   user and time as one worker sorts them (:class:`item2vec.rows.EventRows`),
   and the filters that look at one user only (event type, weight, duplicates).
3. Minimum support, in rounds as :func:`item2vec.filters.apply_filters` runs
   it: item support is run-wide, so each round adds up the partitions' item
   counts (:func:`item_support`, :func:`combine_support`, a small table of
   items) before every partition drops rare items, then rare users
   (:func:`support_part`); the rounds stop when one drops nothing anywhere.
4. :func:`part_sequences` per partition, and :func:`combine_sequences`, which
   concatenates them in partition order (the one-worker order: user id, then
   time, with no global sort) and numbers them.

The result equals the one-worker path's, row for row and id for id, counts and
drops included (``tests/test_user_partitions.py``). The functions are plain:
a Prefect task or a Dask worker calls them (:mod:`item2vec_flows.partitioned`),
and :func:`sequences_in_partitions` runs them all in this process, on Dask's
local scheduler. Dask is imported inside the functions that need it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.config import IngestConfig, PipelineConfig, SequenceConfig
from item2vec.filters import FILTER_REASONS, local_filters, needs_support, support_round
from item2vec.ingest import Events, Partition, check_partitions, kept_counts
from item2vec.rows import EventRows
from item2vec.sequences import SEQUENCE_SCHEMA, build_sequences, dropped_in_sequences
from item2vec.timestamps import TIMESTAMP
from item2vec.user_ranges import FileIds, RunIds, file_ids, id_codes, run_ids
from item2vec.validation import drop_counts

__all__ = [
    "FileIds",
    "FileSummary",
    "PartSequences",
    "RunIds",
    "SupportRound",
    "UserPart",
    "check_files",
    "combine_sequences",
    "combine_support",
    "file_ids",
    "file_summary",
    "part_sequences",
    "run_ids",
    "sequences_in_partitions",
    "support_part",
    "user_frames",
    "user_rows",
]

#: Column of each row's input position: file index << FILE_BITS | row in the file.
POSITION = "_pos"
#: Bits of the row number in :data:`POSITION` (files of up to 2**40 rows).
FILE_BITS = 40


@dataclass
class FileSummary:
    """What the checks before the filters need of one validated file (no rows).

    Attributes
    ----------
    path
        The file.
    rows
        Rows read.
    drops
        Invalid rows per reason of :data:`item2vec.validation.DROP_REASONS`.
    examples
        A few unparseable time values.
    """

    path: Path
    rows: int
    drops: dict[str, int]
    examples: list[str]


def file_summary(partition: Partition) -> FileSummary:
    """The :class:`FileSummary` of one validated file."""
    table = partition.table
    return FileSummary(partition.path, table.num_rows, drop_counts(table), partition.examples)


def check_files(summaries: list[FileSummary], config: IngestConfig) -> tuple[int, dict[str, int]]:
    """Rows read and invalid rows per reason, after the checks one worker makes.

    Raises
    ------
    InputError
        When the files hold no rows, or invalid rows exceed ``max_bad_fraction``.
    """
    paths = [summary.path for summary in summaries]
    examples = {str(s.path): s.examples for s in summaries if s.examples}
    per_file = [(summary.rows, summary.drops) for summary in summaries]
    return check_partitions(config, paths, examples, per_file)


def _frame_schema(config: IngestConfig) -> pa.Schema:
    fields = [("user", pa.int32()), ("item", pa.int32()), ("ts", pa.int64())]
    if config.event_col:
        fields.append(("event", pa.string()))
    if config.weight_col:
        fields.append(("weight", pa.float64()))
    return pa.schema([*fields, (POSITION, pa.int64())])


def _frame(table: pa.Table) -> pd.DataFrame:
    # Integer columns become numpy (the shuffle moves them as plain buffers);
    # event types stay Arrow strings.
    return table.to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)


def partition_frame(
    partition: Partition, index: int, ids: RunIds, config: IngestConfig
) -> pd.DataFrame:
    """The valid rows of file number ``index`` as a DataFrame for the shuffle.

    Ids travel as int32 codes into ``ids`` (user codes are ranks, so ranges of
    codes are ranges of user ids), times as int64 nanoseconds, and
    :data:`POSITION` keeps each row's place in the input.
    """
    table = partition.table
    position = (np.int64(index) << FILE_BITS) + np.arange(table.num_rows, dtype=np.int64)
    keep = pc.equal(table.column("_drop"), 0)
    kept = table.filter(keep)
    columns = {
        "user": id_codes(kept.column("user_id"), ids.users),
        "item": id_codes(kept.column("item_id"), ids.items),
        "ts": kept.column("ts").cast(TIMESTAMP).cast(pa.int64()),
    }
    if config.event_col:
        columns["event"] = kept.column("event").cast(pa.string())
    if config.weight_col:
        columns["weight"] = kept.column("weight")
    columns[POSITION] = pa.array(position).filter(keep)
    return _frame(pa.table(columns, schema=_frame_schema(config)))


def user_frames(partitions: list[Any], ids: Any, divisions: list[int], config: IngestConfig) -> Any:
    """The valid rows of every file as a Dask DataFrame of partitions of users, in user order.

    Parameters
    ----------
    partitions
        Each file's :class:`item2vec.ingest.Partition`, in input order, or a
        Dask future or delayed value of one (the rows stay where they are).
    ids
        The :class:`RunIds`, or a Dask future of it.
    divisions
        Its ``divisions`` (a few integers; the flow process holds them, not ``ids``).
    config
        The ingest settings (which optional columns there are).

    Returns
    -------
    dask.dataframe.DataFrame
        Indexed by user code and shuffled by range of it with Dask's own
        shuffle (``set_index`` with known divisions: no quantiles computed), so
        partition ``j`` holds the users of ``ids.user_range(j)``; nothing is
        computed yet.
    """
    import dask.dataframe as dd
    from dask import delayed

    frames = [
        delayed(partition_frame)(part, index, ids, config) for index, part in enumerate(partitions)
    ]
    meta = _frame(_frame_schema(config).empty_table())
    return dd.from_delayed(frames, meta=meta, verify_meta=False).set_index(
        "user", divisions=divisions, sorted=False
    )


@dataclass
class UserPart:
    """The rows of one partition of users, as the run-wide filters leave them.

    Attributes
    ----------
    rows
        Kept rows, in sequence order (user, time, input position).
    dropped
        Rows dropped so far per reason of :data:`item2vec.filters.FILTER_REASONS`.
    changed
        Rows the last round of minimum support dropped; None before the first.
    """

    rows: EventRows
    dropped: dict[str, int]
    changed: int | None = None

    def summary(self) -> tuple[pa.Table, int | None]:
        """What a support round needs of this part: its item counts and ``changed``."""
        return item_support(self.rows), self.changed


def _empty_rows(config: IngestConfig) -> EventRows:
    none = np.zeros(0, dtype=np.int32)
    text = pa.array([], type=pa.string())
    return EventRows(
        none,
        none,
        np.zeros(0, dtype=np.int64),
        none if config.event_col else None,
        np.zeros(0) if config.weight_col else None,
        text,
        text,
        text if config.event_col else None,
    )


def user_rows(frame: pd.DataFrame, ids: RunIds, j: int, config: IngestConfig) -> UserPart:
    """Partition ``j`` of the shuffle, sorted as one worker sorts, through the per-user filters.

    Parameters
    ----------
    frame
        Partition ``j`` of :func:`user_frames`: the users of ``ids.user_range(j)``,
        indexed by user code, rows in any order.
    ids
        The run's dictionaries; this partition's users are one slice of ``ids.users``.
    j
        The partition's number.
    config
        The filters (event types, weight, duplicates).
    """
    if len(frame) == 0:
        rows = _empty_rows(config)
    else:
        order = np.argsort(frame[POSITION].to_numpy(), kind="stable")  # input order again
        start, stop = ids.user_range(j)
        users = frame.index.to_numpy()[order].astype(np.int32) - np.int32(start)
        columns = {
            "user_id": pa.DictionaryArray.from_arrays(
                pa.array(users), ids.users.slice(start, stop - start)
            ),
            "item_id": pa.DictionaryArray.from_arrays(
                pa.array(frame["item"].to_numpy()[order]), ids.items
            ),
            "ts": pa.array(frame["ts"].to_numpy()[order]).cast(TIMESTAMP),
        }
        if config.event_col:
            event = pa.array(frame["event"].array).take(pa.array(order))
            columns["event"] = pc.dictionary_encode(event)
        if config.weight_col:
            columns["weight"] = pa.array(frame["weight"].to_numpy()[order])
        rows = EventRows.of(pa.table(columns))
    rows, dropped = local_filters(rows, config)
    return UserPart(rows, dropped)


def item_support(rows: EventRows) -> pa.Table:
    """Events of each item in ``rows``: ``item_id`` string, ``count`` int64 (items present)."""
    counts = np.bincount(rows.items, minlength=len(rows.item_ids))
    present = np.flatnonzero(counts)
    return pa.table(
        {
            "item_id": rows.item_ids.take(pa.array(present, type=pa.int64())),
            "count": pa.array(counts[present], type=pa.int64()),
        }
    )


@dataclass
class SupportRound:
    """The run-wide item counts a round of minimum support filters by.

    Attributes
    ----------
    counts
        ``item_id`` and ``count`` over every partition.
    done
        The previous round dropped nothing in any partition: the filters hold.
    """

    counts: pa.Table
    done: bool


def combine_support(summaries: list[tuple[pa.Table, int | None]]) -> SupportRound:
    """Add up the partitions' :meth:`UserPart.summary` into one :class:`SupportRound`."""
    tables = [counts for counts, _ in summaries]
    schema = pa.schema([("item_id", pa.string()), ("count", pa.int64())])
    merged = pa.concat_tables(tables) if tables else schema.empty_table()
    summed = merged.group_by("item_id").aggregate([("count", "sum")])
    counts = pa.table(
        {"item_id": summed.column("item_id"), "count": summed.column("count_sum")}, schema=schema
    )
    done = all(changed == 0 for _, changed in summaries)
    return SupportRound(counts, done)


def support_part(part: UserPart, support: SupportRound, config: IngestConfig) -> UserPart:
    """One round of minimum support on one partition, by the run-wide item counts."""
    rows = part.rows
    index = pc.index_in(rows.item_ids, value_set=support.counts.column("item_id").combine_chunks())
    # An item of no partition's rows (index null) counts 0: the appended last entry.
    run_counts = np.append(support.counts.column("count").to_numpy(), 0)
    per_code = run_counts[pc.fill_null(index, -1).to_numpy()]
    rows, rare_items, rare_users = support_round(rows, per_code, config)
    dropped = dict(part.dropped)
    dropped["rare_item"] += rare_items
    dropped["rare_user"] += rare_users
    return UserPart(rows, dropped, rare_items + rare_users)


@dataclass
class PartSequences:
    """The sequences of one partition of users and what the run's counts need of it.

    Attributes
    ----------
    sequences
        :data:`item2vec.sequences.SEQUENCE_SCHEMA`, numbered within the partition.
    kept, users
        Events kept and distinct users.
    items
        The distinct item ids kept.
    dropped
        Rows the run-wide filters dropped, per reason.
    """

    sequences: pa.Table
    kept: int
    users: int
    items: pa.Array
    dropped: dict[str, int]


def part_sequences(part: UserPart, config: SequenceConfig) -> PartSequences:
    """The sequences of one filtered partition (:func:`item2vec.sequences.build_sequences`)."""
    rows = part.rows
    if rows.size:
        sequences = build_sequences(rows.table(), config)
    else:
        empty = {"repeat": 0, "truncated": 0, "short_sequence": 0}
        sequences = SEQUENCE_SCHEMA.with_metadata(
            {"item2vec.dropped": json.dumps(empty)}
        ).empty_table()
    items = item_support(rows).column("item_id").combine_chunks()
    return PartSequences(sequences, rows.size, rows.distinct(rows.users), items, part.dropped)


def combine_sequences(
    parts: list[PartSequences],
    checked: tuple[int, dict[str, int]],
    files: list[dict[str, Any]],
    paths: list[Path],
) -> tuple[Events, pa.Table]:
    """The partitions' sequences as one table in the one-worker order, and the run's counts.

    Parameters
    ----------
    parts
        :func:`part_sequences` of every partition, in partition order (users
        ascending, as :func:`user_frames` cuts them).
    checked
        :func:`check_files`: rows read and invalid rows per reason.
    files, paths
        The input fingerprints (for the manifest) and files (for messages).

    Returns
    -------
    events, sequences
        ``events`` holds the counts and fingerprints but no rows; ``sequences``
        are ordered by user id, then time, numbered from 0, as
        :func:`item2vec.sequences.build_sequences` numbers them over every event.

    Raises
    ------
    InputError
        When the filters left no event.
    """
    read, dropped = checked
    dropped = dict(dropped)
    for reason in FILTER_REASONS:
        dropped[reason] = sum(part.dropped[reason] for part in parts)
    items = pa.concat_arrays([part.items for part in parts]) if parts else pa.array([], pa.string())
    counts = kept_counts(
        read,
        sum(part.kept for part in parts),
        dropped,
        sum(part.users for part in parts),
        len(pc.unique(items)),
        paths,
    )
    in_sequences = {"repeat": 0, "truncated": 0, "short_sequence": 0}
    for part in parts:
        for reason, rows in dropped_in_sequences(part.sequences).items():
            in_sequences[reason] += rows
    # Partition j holds users of lower ids than partition j + 1, and each part is
    # in (user id, time) order: the concatenation is the one-worker order, no sort.
    merged = pa.concat_tables([part.sequences.replace_schema_metadata(None) for part in parts])
    merged = merged.combine_chunks()
    numbered = pa.array(np.arange(merged.num_rows, dtype=np.int64))
    merged = merged.set_column(0, "sequence_id", numbered)
    sequences = merged.replace_schema_metadata({"item2vec.dropped": json.dumps(in_sequences)})
    return Events(None, counts, files), sequences


def sequences_in_partitions(
    partitions: list[Partition], config: PipelineConfig, files: list[dict[str, Any]]
) -> tuple[Events, pa.Table]:
    """Every step above in this process, on Dask's local scheduler.

    The reference of the steps :mod:`item2vec_flows.partitioned` spreads over a
    cluster; it gives what :func:`item2vec.ingest.combine_partitions` and
    :func:`item2vec.sequences.build_sequences` give on one worker.

    Parameters
    ----------
    partitions
        The validated files, in input order.
    config
        Every setting; ``sequences.shuffle_partitions`` partitions (at least 1).
    files
        The input fingerprints.
    """
    import dask

    ingest = config.ingest
    checked = check_files([file_summary(part) for part in partitions], ingest)
    n = max(1, config.sequences.shuffle_partitions)
    ids = run_ids([file_ids(part) for part in partitions], n)
    frames = user_frames(partitions, ids, ids.divisions, ingest).to_delayed()
    computed = dask.compute(*frames, scheduler="sync")
    parts = [user_rows(frame, ids, j, ingest) for j, frame in enumerate(computed)]
    while needs_support(ingest):
        support = combine_support([part.summary() for part in parts])
        if support.done:
            break
        parts = [support_part(part, support, ingest) for part in parts]
    built = [part_sequences(part, config.sequences) for part in parts]
    return combine_sequences(built, checked, files, [part.path for part in partitions])
