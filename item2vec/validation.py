"""Validation of events: required columns, typed ids and times, and invalid rows counted.

Each file is checked on its own (:func:`validate_table`): a row with a null user
or item id, or a time that cannot be parsed, is marked with its reason, never
dropped silently. Over the whole run, :func:`check_bad_share` fails when the
invalid share is above ``max_bad_fraction``, and :func:`warn_bad_files` names a
single file that is far worse than the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from item2vec.config import IngestConfig
from item2vec.encoding import id_chunks, id_dictionary
from item2vec.errors import InputError
from item2vec.readers import read_columns
from item2vec.timestamps import event_times

log = logging.getLogger(__name__)

#: Why a row is invalid; a validated table stores 1 + the index here in ``_drop``.
DROP_REASONS = ("null_user", "null_item", "bad_timestamp")


def required_columns(config: IngestConfig) -> dict[str, str]:
    """Config field -> column name of every column the events must have."""
    mapping = {
        "user_col": config.user_col,
        "item_col": config.item_col,
        "time_col": config.time_col,
    }
    if config.event_col:
        mapping["event_col"] = config.event_col
    if config.weight_col:
        mapping["weight_col"] = config.weight_col
    return mapping


def check_columns(path: Path, required: dict[str, str], config: IngestConfig | None = None) -> None:
    """Raise a clear error if a required column is missing from ``path``.

    Parameters
    ----------
    path
        Events or items file; its header (or Parquet schema) is read, not its rows.
    required
        Config field -> column name, as for :func:`require_columns`.
    config
        Delimiter and header settings of an events file.
    """
    require_columns(read_columns(path, config), required, path.name)


def require_columns(
    available: list[str], required: dict[str, str], source: str, flags: bool = True
) -> None:
    """Raise a clear error naming the first required column not among ``available``.

    Files and tables held in memory share this check, so both say the same thing.

    Parameters
    ----------
    available
        The columns there are.
    required
        Mapping of config field (for example ``user_col``) to the column name expected.
    source
        What holds the columns, as the message names it: a file name, or
        ``the DataFrame``.
    flags
        Name the CLI flag beside the config field; off for input that only the
        Python API takes.

    Raises
    ------
    InputError
        Naming the missing column, the columns there are, and the setting to fix;
        or naming a required column that appears more than once.
    """
    for setting, column in required.items():
        if available.count(column) > 1:
            raise InputError(
                f"column {column!r} appears {available.count(column)} times in {source}, "
                f"so it is not clear which one to read; rename one of them"
            )
        if column not in available:
            fix = f"{setting} (--{setting.replace('_', '-')})" if flags else setting
            raise InputError(
                f"column {column!r} not found in {source}; available: "
                f"{', '.join(available) or 'none'}; set {fix}"
            )


def validate_table(table: pa.Table, config: IngestConfig, path: Path) -> tuple[pa.Table, list[str]]:
    """Typed columns of one file, the reason each row is invalid (``_drop``), and a
    few examples of unparseable times.

    Parameters
    ----------
    table
        The file's columns as read, named as ``config`` names them.
    config
        Column names and the unit of numeric times.
    path
        The file, named in messages.

    Returns
    -------
    table, examples
        The columns of a :class:`item2vec.ingest.Partition` table, and up to
        three raw time values that could not be parsed.

    Raises
    ------
    InputError
        On an id column that is neither text nor integers.
    """
    try:
        users = id_chunks(table.column(config.user_col))
        items = id_chunks(table.column(config.item_col))
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from exc
    times, unit, bad_time, units = event_times(table.column(config.time_col), config.time_unit)
    if units:
        _warn_mixed_units(path, config.time_col, units)
    # A small integer per row (0 = valid, else 1 + index in DROP_REASONS), not a
    # string column: at 20M rows strings cost seconds and a gigabyte. Later
    # assignments win, so a row counts once, under its first reason.
    reason = np.zeros(len(times), dtype=np.int8)
    if bad_time is not None:
        reason[bad_time] = 1 + DROP_REASONS.index("bad_timestamp")
    if items.null_count:
        reason[_nulls(items)] = 1 + DROP_REASONS.index("null_item")
    if users.null_count:
        reason[_nulls(users)] = 1 + DROP_REASONS.index("null_user")
    columns = {
        "user_id": users,
        "item_id": items,
        "ts": times.cast(pa.timestamp(unit, tz="UTC")),
    }
    if config.event_col:
        columns["event"] = id_dictionary(table.column(config.event_col).cast(pa.string()))
    if config.weight_col:
        weight = pd.to_numeric(table.column(config.weight_col).to_pandas(), errors="coerce")
        columns["weight"] = pa.array(weight.to_numpy(dtype="float64"), type=pa.float64())
    columns["_drop"] = pa.array(reason, type=pa.int8())
    examples = []
    if bad_time is not None:
        raw = table.column(config.time_col).take(pa.array(np.flatnonzero(bad_time)[:3]))
        examples = [str(value) for value in raw.to_pylist()]
    return pa.table(columns), examples


#: Unit names as the mixed-unit warning spells them.
UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _warn_mixed_units(path: Path, column: str, units: dict[str, int]) -> None:
    """Say that a time column mixes epoch units, and how many rows each one read."""
    read_as = ", ".join(f"{rows:,} as {UNIT_WORDS[unit]}" for unit, rows in units.items())
    log.warning(
        "%s: column %r mixes epoch units; each value was read in the unit its magnitude "
        "implies (%s); if that is wrong, set time_unit (--time-unit) to one unit",
        path,
        column,
        read_as,
    )


def _nulls(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def drop_counts(table: pa.Table) -> dict[str, int]:
    """Rows of a validated table per drop reason (every reason present, maybe 0)."""
    codes = table.column("_drop").to_numpy()
    if not np.count_nonzero(codes):  # the usual case, without a 20M-row mask
        return dict.fromkeys(DROP_REASONS, 0)
    # Only dropped rows are counted: a bincount of all rows would copy them to int64.
    per_code = np.bincount(codes[codes != 0], minlength=len(DROP_REASONS) + 1)
    return {reason: int(per_code[1 + n]) for n, reason in enumerate(DROP_REASONS)}


def check_bad_share(
    dropped: dict[str, int],
    read: int,
    config: IngestConfig,
    names: str,
    examples: dict[str, list[str]],
) -> None:
    """Fail when invalid rows exceed ``max_bad_fraction``, naming reason, column and flag.

    Parameters
    ----------
    dropped
        Invalid rows of the whole run per reason.
    read
        Rows read in all (not 0).
    config
        The tolerated share and the column names.
    names
        The files, as messages list them.
    examples
        Raw unparseable times per file (``str(path)``).

    Raises
    ------
    InputError
        If the share of invalid rows is above ``max_bad_fraction``.
    """
    if sum(dropped.values()) / read <= config.max_bad_fraction:
        return
    reason, rows = max(dropped.items(), key=lambda kv: kv[1])
    column, hint = _reason_column(reason, config)
    shown = (
        f" (examples: {next(iter(examples.values()))})"
        if examples and reason == "bad_timestamp"
        else ""
    )
    raise InputError(
        f"{rows / read:.1%} of rows in {names} were dropped as {reason} in column {column!r}"
        f"{shown}, above the allowed {config.max_bad_fraction:.1%}; {hint}, "
        f"or raise max_bad_fraction (--max-bad-fraction) to accept them"
    )


def _reason_column(reason: str, config: IngestConfig) -> tuple[str, str]:
    """The column a drop reason is about, and what to check."""
    return {
        "null_user": (config.user_col, "check user_col (--user-col)"),
        "null_item": (config.item_col, "check item_col (--item-col)"),
        "bad_timestamp": (
            config.time_col,
            "expected epoch seconds/milliseconds or ISO-8601 text between 1677-09-22 and "
            "2262-04-11; check time_col (--time-col)",
        ),
    }[reason]


def warn_bad_files(
    paths: list[Path],
    per_file: list[tuple[int, dict[str, int]]],
    config: IngestConfig,
    examples: dict[str, list[str]],
) -> None:
    """Warn about each file whose own share of invalid rows is above ``max_bad_fraction``.

    The run as a whole is within the limit (it was checked first), so it goes on;
    but one broken daily partition among many good ones would otherwise pass
    unnoticed, hidden in the run-wide count.
    """
    if len(paths) < 2:
        return  # one file: the run-wide check already said everything
    for path, (rows, counts) in zip(paths, per_file, strict=True):
        bad = sum(counts.values())
        if not rows or bad / rows <= config.max_bad_fraction:
            continue
        reason = max(counts, key=counts.__getitem__)
        column, hint = _reason_column(reason, config)
        shown = examples.get(str(path)) if reason == "bad_timestamp" else None
        log.warning(
            "%s: %s of its %s rows (%.1f%%) were dropped, mostly as %s in column %r%s; "
            "the run goes on because the whole input stays within max_bad_fraction "
            "(--max-bad-fraction); %s",
            path,
            f"{bad:,}",
            f"{rows:,}",
            100 * bad / rows,
            reason,
            column,
            f" (examples: {shown})" if shown else "",
            hint,
        )
