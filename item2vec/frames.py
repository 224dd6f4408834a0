"""Events held in memory (a pandas DataFrame or an Arrow table), validated like files.

A DataFrame goes through the same checks, drops and counts as a file: a null
user or item id is dropped and counted, never given to another user or item;
an unparseable time is dropped as ``bad_timestamp``; a missing column gets one
message naming the columns there are and the parameter to set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from item2vec.config import IngestConfig
from item2vec.errors import InputError
from item2vec.ingest import Events, Partition, combine_partitions
from item2vec.validation import require_columns, required_columns, validate_table

#: What a table held in memory is called in messages and in the manifest.
IN_MEMORY = "DataFrame"


def as_arrow(data: pd.DataFrame | pa.Table) -> pa.Table:
    """An Arrow table of the data's columns (a DataFrame's index is not a column).

    Raises
    ------
    InputError
        If ``data`` is neither, or a column cannot be converted.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        names = [str(name) for name in data.columns]
        if len(set(names)) != len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise InputError(
                f"the {IN_MEMORY} has repeated column names ({', '.join(repeated)}); "
                "give each column one name"
            )
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InputError(f"cannot read the {IN_MEMORY}'s columns: {exc}") from exc
    raise InputError(
        f"events must be a pandas DataFrame, an Arrow table, or paths to event files; "
        f"got {type(data).__name__}"
    )


def read_table_events(data: pd.DataFrame | pa.Table, config: IngestConfig) -> Events:
    """Validate and count events held in memory, exactly as a file's rows would be.

    Parameters
    ----------
    data
        One row per event, with the columns ``config`` names (``user_col``,
        ``item_col``, ``time_col``, and optionally ``event_col`` and ``weight_col``).
    config
        Column names, filters and the tolerated share of invalid rows.

    Returns
    -------
    Events
        Kept events with drops counted by reason; ``files`` is empty.

    Raises
    ------
    InputError
        If a column is missing, ids are floats, invalid rows exceed
        ``max_bad_fraction``, or no event is left.
    """
    table = as_arrow(data)
    mapping = required_columns(config)
    require_columns(table.column_names, mapping, f"the {IN_MEMORY}", flags=False)
    table = table.select(list(dict.fromkeys(mapping.values())))
    name = Path(IN_MEMORY)
    validated, examples = validate_table(_as_text_ids(table, config), config, name)
    files: list[dict[str, Any]] = []
    return combine_partitions([Partition(name, validated, examples)], config, files)


def _as_text_ids(table: pa.Table, config: IngestConfig) -> pa.Table:
    """pandas' object columns of strings arrive as Arrow strings already; a column of
    mixed Python objects is turned into text, as a CSV reader would read it."""
    for column in (config.user_col, config.item_col):
        kind = table.schema.field(column).type
        if pa.types.is_null(kind):
            index = table.schema.get_field_index(column)
            table = table.set_column(index, column, table.column(column).cast(pa.string()))
    return table
