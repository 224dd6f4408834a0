"""What a report reads from a published version: its tables, popular items, categories.

Only the files :mod:`item2vec.publish` wrote are read; a missing or unreadable
table raises :class:`~item2vec.errors.InputError` naming the file and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.errors import InputError
from item2vec.publish import ITEMS_FILE
from item2vec.storage import ObjectPath
from item2vec.storage import read_parquet as read_table

log = logging.getLogger(__name__)

#: Items-table columns tried for a category, in order. A value may hold several
#: categories separated by "|" (MovieLens ``genres``); the first one is used.
CATEGORY_COLUMNS = ("genres", "genre", "categories", "category")


def read_parquet(
    path: Path | ObjectPath, columns: list[str] | None = None, **kwargs: Any
) -> pa.Table:
    """Read one table of a published version.

    Parameters
    ----------
    path
        The Parquet file, e.g. ``<version_dir>/item_vectors.parquet``.
    columns
        Columns to read; None reads them all.
    **kwargs
        Passed to :func:`pyarrow.parquet.read_table`, e.g. ``filters``.

    Raises
    ------
    InputError
        If the file is missing or cannot be read with those columns.
    """
    if not path.is_file():
        raise InputError(
            f"{path.name} missing from {path.parent}; the version is incomplete; "
            "republish it or choose another version"
        )
    try:
        table = read_table(path, columns=columns, **kwargs)
    except (OSError, pa.ArrowException) as error:
        raise InputError(
            f"{path} cannot be read as Parquet with columns {columns} ({error}); "
            "republish the version"
        ) from error
    return table


def most_frequent_rows(counts: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` largest counts, most frequent first, ties in table order.

    The same order as the CLI's summary, so the report's popular items start
    with the ones the run printed.
    """
    order = np.argsort(-counts, kind="stable")
    return order[:n]


def category_column(items: pd.DataFrame) -> str | None:
    """The items-table column that holds a category, or None."""
    lowered = {str(name).lower(): name for name in items.columns}
    for candidate in CATEGORY_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    return None


def item_categories(items: pd.DataFrame | None, item_ids: Sequence[str]) -> list[str | None] | None:
    """One category per item: the first "|"-separated value of the category column.

    Parameters
    ----------
    items
        The version's items table (``item_id`` plus any columns), or None.
    item_ids
        Items to look up.

    Returns
    -------
    list or None
        A category (or None when the item has none) per item, or None when the
        items table is missing or has no column named like ``genres``,
        ``genre``, ``categories`` or ``category``.
    """
    if items is None or "item_id" not in items.columns:
        return None
    column = category_column(items)
    if column is None:
        return None
    raw = items.drop_duplicates("item_id").set_index("item_id")[column]
    first = raw.astype("string").str.split("|", n=1).str[0].str.strip()
    lookup = first.reindex(pd.Index(list(item_ids), dtype=object))
    return [value if isinstance(value, str) and value else None for value in lookup.tolist()]


def load_items(version_dir: Path | ObjectPath, wanted: set[str]) -> pd.DataFrame | None:
    """The rows of ``items.parquet`` for ``wanted`` ids, or None without the file."""
    path = version_dir / ITEMS_FILE
    if not path.is_file():
        return None
    table = read_parquet(path)
    if "item_id" not in table.column_names:
        log.warning("%s has no item_id column; showing ids instead of titles", path)
        return None
    ids = pc.cast(table.column("item_id"), pa.string())
    table = table.set_column(table.schema.get_field_index("item_id"), "item_id", ids)
    table = table.filter(pc.is_in(ids, value_set=pa.array(sorted(wanted), pa.string())))
    return table.to_pandas()
