"""Item metadata (the catalogue's titles and other columns), read and made Parquet-ready."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa

from item2vec.encoding import id_dictionary
from item2vec.errors import InputError
from item2vec.readers import is_parquet, read_columns, read_table
from item2vec.schemas import VERSION_COLUMN
from item2vec.storage import as_path, read_parquet_schema
from item2vec.validation import check_columns

log = logging.getLogger(__name__)


def item_columns(id_col: str, title_col: str, category_col: str | None = None) -> dict[str, str]:
    """The columns an items file must have, by config field (the category only when named)."""
    required = {"item_id_col": id_col, "item_title_col": title_col}
    if category_col:
        required["item_category_col"] = category_col
    return required


def read_items(
    path: str | Path, id_col: str, title_col: str, category_col: str | None = None
) -> pd.DataFrame:
    """Read item metadata: ``item_id`` (exact string), ``title`` and every other column.

    Raises
    ------
    InputError
        If the file is missing, unreadable or lacks the id, the title or the
        named category column.
    """
    path = as_path(path)
    if not path.is_file():
        raise InputError(f"items file {path} does not exist; check items_path (--items)")
    check_columns(path, item_columns(id_col, title_col, category_col))
    if is_parquet(path):
        table = read_table(path, read_parquet_schema(path).names)
    else:
        table = read_table(path, read_columns(path))
    frame = table.to_pandas()
    frame[id_col] = id_dictionary(table.column(id_col)).cast(pa.string()).to_pandas()
    frame = frame.rename(columns={id_col: "item_id", title_col: "title"})
    repeated = frame["item_id"].duplicated()
    if repeated.any():
        ids = frame["item_id"][repeated].drop_duplicates()
        shown = ", ".join(repr(value) for value in ids.head(5))
        log.warning(
            "%s: %s item ids appear more than once in column %r (%s%s); the first row of "
            "each is kept; check item_id_col (--item-id-col)",
            path,
            f"{len(ids):,}",
            id_col,
            shown,
            ", ..." if len(ids) > 5 else "",
        )
    return frame[~repeated].reset_index(drop=True)


def items_table(items: pd.DataFrame) -> pa.Table:
    """Item metadata as a Parquet-ready table: ``item_id`` and ``title`` first, all as text
    unless the source already had types (Parquet)."""
    if VERSION_COLUMN in items.columns:
        # The published tables' own ``version`` column names the version.
        renamed = f"items_{VERSION_COLUMN}"
        log.warning(
            "the items file's column %r is published as %r: %r holds the version id",
            VERSION_COLUMN,
            renamed,
            VERSION_COLUMN,
        )
        items = items.rename(columns={VERSION_COLUMN: renamed})
    ordered = ["item_id", "title", *[c for c in items.columns if c not in ("item_id", "title")]]
    return pa.Table.from_pandas(items[ordered], preserve_index=False)
