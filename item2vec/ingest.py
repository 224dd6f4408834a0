"""Ingest: read event files into validated events, counting every dropped row by reason.

The output is a :class:`Events` holding a DataFrame with ``user_id`` and ``item_id``
(exact strings, never numbers) and ``ts`` (UTC), in input order: file order, then
row order. That order breaks ties between equal timestamps later on.

The stage is put together here from its parts: finding the files
(:mod:`item2vec.discovery`), reading them (:mod:`item2vec.readers`), checking
each one's rows (:mod:`item2vec.validation`), then sorting the combined rows
(:mod:`item2vec.rows`) and applying the run-wide filters (:mod:`item2vec.filters`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from item2vec.config import IngestConfig
from item2vec.discovery import fingerprint, first_few, input_files
from item2vec.errors import InputError
from item2vec.filters import apply_filters
from item2vec.progress import Progress
from item2vec.readers import read_table
from item2vec.rows import EventRows
from item2vec.timestamps import TIMESTAMP
from item2vec.validation import (
    DROP_REASONS,
    check_bad_share,
    check_columns,
    drop_counts,
    required_columns,
    validate_table,
    warn_bad_files,
)

log = logging.getLogger(__name__)


@dataclass
class Events:
    """Validated events and how they were obtained.

    Attributes
    ----------
    table
        Columns ``user_id`` and ``item_id`` (dictionary-encoded exact strings) and
        ``ts`` (timestamp[ns, UTC]), sorted by user id, then time, then input order
        (file order, then row order), which is the order sequences keep. None when
        the run's sequences came from the cache.
    counts
        ``events_read``, ``events_kept``, ``dropped`` (a dict of reason -> rows),
        and the distinct ``users`` and ``items`` kept.
    files
        Fingerprint of the inputs: path, bytes and SHA-256 of each file.
    """

    table: pa.Table | None
    counts: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The events as a pandas DataFrame of plain strings (for small data and tests)."""
        if self.table is None:
            raise ValueError("these events came from the cache and hold no rows")
        return pd.DataFrame(
            {
                "user_id": self.table.column("user_id").cast(pa.string()).to_pandas(),
                "item_id": self.table.column("item_id").cast(pa.string()).to_pandas(),
                "ts": self.table.column("ts").to_pandas(),
            }
        )


@dataclass
class Partition:
    """The validated rows of one input file, before the run-wide filters.

    Attributes
    ----------
    path
        The file read.
    table
        Columns ``user_id``, ``item_id`` (strings), ``ts`` (timestamp, UTC, any unit),
        optional ``event`` and ``weight``, and ``_drop``: 0 for a valid row, else
        1 + the index of its reason in :data:`item2vec.validation.DROP_REASONS`.
        Rows in file order.
        It round-trips through Parquet unchanged, which is how it is cached.
    examples
        A few raw time values that could not be parsed, for the error message.
    """

    path: Path
    table: pa.Table
    examples: list[str] = field(default_factory=list)


def read_partition(path: Path, config: IngestConfig) -> Partition:
    """Read and validate one event file.

    Raises
    ------
    InputError
        If a required column is missing, or the file cannot be read as CSV or Parquet.
    """
    mapping = required_columns(config)
    check_columns(path, mapping, config)
    table = read_table(path, list(dict.fromkeys(mapping.values())), config)
    log.info("read %s rows from %s", f"{table.num_rows:,}", path)
    validated, examples = validate_table(table, config, path)
    return Partition(path, validated, examples)


def combine_partitions(
    partitions: list[Partition], config: IngestConfig, files: list[dict[str, Any]] | None = None
) -> Events:
    """Validated partitions, in order, into one set of events with every drop counted.

    Parameters
    ----------
    partitions
        From :func:`read_partition`, in input order.
    config
        Filters and the tolerated share of invalid rows.
    files
        Fingerprints of the partitions' files; computed when not given.

    Raises
    ------
    InputError
        If invalid rows exceed ``max_bad_fraction``, or no event is left.
    """
    paths = [part.path for part in partitions]
    tables = [part.table for part in partitions]
    if len({table.schema.field("ts").type for table in tables}) > 1:
        tables = [_ts_in_ns(table) for table in tables]  # files in different units
    # Chunks and their dictionaries are kept as they are: EventRows.of maps each
    # chunk's dictionary to run-wide codes without touching the rows.
    table = pa.concat_tables(tables)
    examples = {str(part.path): part.examples for part in partitions if part.examples}
    per_file = [(part.table.num_rows, drop_counts(part.table)) for part in partitions]
    events = _finish(table, config, paths, examples, per_file)
    events.files = files if files is not None else fingerprint(paths)
    return events


def _ts_in_ns(table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("ts")
    return table.set_column(index, "ts", table.column("ts").cast(TIMESTAMP))


def read_events(config: IngestConfig) -> Events:
    """Read, validate and count the events named by ``config``.

    Parameters
    ----------
    config
        Paths and column names.

    Returns
    -------
    Events
        Kept events in input order, counts by reason, and the input fingerprint.

    Raises
    ------
    InputError
        On a missing file or column, an unreadable file, a share of bad rows above
        ``max_bad_fraction``, or when no event is left.
    """
    paths = input_files(config)
    partitions = []
    # Hashing the files (for the manifest) releases the GIL: it runs beside the
    # reading instead of after it. One task per file, so that a bad file stops
    # the hashing of the files after it instead of waiting for all of them.
    with ThreadPoolExecutor(1) as pool:
        hashed = [pool.submit(fingerprint, [path]) for path in paths]
        try:
            with Progress("ingest", total=len(paths), unit="files") as progress:
                for path in paths:
                    partitions.append(read_partition(path, config))
                    progress.advance()
        except BaseException:
            for pending in hashed:
                pending.cancel()
            raise
        files = [entry for done in hashed for entry in done.result()]
    return combine_partitions(partitions, config, files)


def _finish(
    table: pa.Table,
    config: IngestConfig,
    paths: list[Path],
    examples: dict[str, list[str]],
    per_file: list[tuple[int, dict[str, int]]],
) -> Events:
    read, dropped = check_partitions(config, paths, examples, per_file)
    rows = EventRows.of(table)
    rows, filtered = apply_filters(rows, config)
    dropped.update(filtered)
    counts = kept_counts(
        read, rows.size, dropped, rows.distinct(rows.users), rows.distinct(rows.items), paths
    )
    return Events(table=rows.table(), counts=counts)


def check_partitions(
    config: IngestConfig,
    paths: list[Path],
    examples: dict[str, list[str]],
    per_file: list[tuple[int, dict[str, int]]],
) -> tuple[int, dict[str, int]]:
    """The checks of the validated files before the run-wide filters.

    Parameters
    ----------
    config
        ``max_bad_fraction``.
    paths, examples, per_file
        Each file, a few unparseable time values per file (keyed by ``str(path)``:
        daily folders often hold files of the same name), and each file's
        rows and invalid rows per reason.

    Returns
    -------
    read, dropped
        Rows read, and invalid rows per reason of every file together.

    Raises
    ------
    InputError
        When the files hold no rows, or invalid rows exceed ``max_bad_fraction``.
    """
    read = sum(rows for rows, _ in per_file)
    dropped = {reason: sum(counts[reason] for _, counts in per_file) for reason in DROP_REASONS}
    names = first_few([path.name for path in paths])
    if read == 0:
        raise InputError(f"{names} holds no events (header only?); nothing to train on")
    check_bad_share(dropped, read, config, names, examples)
    warn_bad_files(paths, per_file, config, examples)
    return read, dropped


def kept_counts(
    read: int, kept: int, dropped: dict[str, int], users: int, items: int, paths: list[Path]
) -> dict[str, Any]:
    """The run's ``counts`` once every filter ran.

    Raises
    ------
    InputError
        When no event is left, naming the filters to relax.
    """
    if kept == 0:
        reasons = ", ".join(f"{k} {v:,}" for k, v in dropped.items() if v)
        raise InputError(
            f"no usable events left in {first_few([path.name for path in paths])} after "
            f"dropping rows ({reasons}); relax the filters keep_events, min_weight, "
            "min_item_count, min_user_count "
            "(--keep-events, --min-weight, --min-item-count, --min-user-count)"
        )
    log.info("kept %s of %s events; dropped %s", f"{kept:,}", f"{read:,}", dropped)
    return {
        "events_read": read,
        "events_kept": kept,
        "dropped": dropped,
        "users": users,
        "items": items,
    }
