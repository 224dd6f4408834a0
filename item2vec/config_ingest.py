"""The ``[ingest]`` section: where the events are and which columns hold what."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from item2vec.config_section import _Section


class IngestConfig(_Section):
    """Where the events are and which columns hold what.

    Parameters
    ----------
    paths
        Event files (CSV, TSV or Parquet, optionally gzip-compressed CSV). Empty means
        the bundled MovieLens sample.
    user_col
        Column holding the user id, kept as an exact string (``00123`` stays
        ``00123``).
    item_col
        Column holding the item id, kept as an exact string.
    time_col
        Column holding the event time: epoch seconds, epoch milliseconds or ISO-8601
        text.
    items_path
        Optional item metadata file (CSV or Parquet) used for titles in summaries.
    item_id_col
        Column of the items file holding the item id.
    item_title_col
        Column of the items file holding a human-readable title.
    item_category_col
        Optional column of the items file holding a category, for the neighbour
        table's category consistency; a ``|``-separated list (MovieLens
        ``genres``) counts by its first value.
    max_bad_fraction
        Largest share of rows that may be dropped as invalid (null id, unparseable
        time) before the run fails. 0.05 catches a wrong column or a wrong time
        format while tolerating ordinary dirt.
    sep
        CSV delimiter; None detects comma, tab, semicolon or pipe from the first line.
    header
        Files start with a header line; header-less files need ``columns``.
    columns
        Column names of header-less files, in order.
    time_unit
        Unit of numeric times: ``auto`` picks seconds, milliseconds, microseconds
        or nanoseconds from their magnitude.
    event_col
        Optional event-type column.
    keep_events
        Event types to keep (e.g. view, cart); needs ``event_col``.
    weight_col
        Optional weight or rating column.
    min_weight
        Drop events with a smaller weight; needs ``weight_col``. For example 4 keeps
        ratings >= 4 as positive feedback.
    drop_duplicates
        Remove exact duplicate events (same user, item, time and event type).
    min_item_count
        Drop items with fewer events, in turn with ``min_user_count`` until both hold.
    min_user_count
        Drop users with fewer events, in turn with ``min_item_count`` until both hold.
    since
        Rolling window: read only daily partitions dated on or after this day
        (YYYY-MM-DD). A partition's date is read from its file name or a parent
        folder's; files without a date in their path are refused when a window is
        set. Give ``since`` or ``window_days``, not both.
    window_days
        Rolling window: read only the daily partitions of the last ``window_days``
        days, up to the newest partition's date. Dates are read as for ``since``.
    cache
        Reuse the validated events, and the sequences built from them, of unchanged
        input files. They are kept per input file under ``cache_dir``: a re-run over
        unchanged files reads nothing again, and a growing folder of partitions
        reads only the new ones.
    cache_dir
        Where the cache lives; None puts it under ``<output>/.cache``.
    always_hash
        Hash every input file's content on every run, instead of trusting the
        hash of a file whose size and modification time are unchanged. Turn it
        on where files are edited in place with their time restored (rsync
        --times, some sync tools); it costs reading each file once per run.
    """

    paths: list[str] = Field(default_factory=list)
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    items_path: str | None = None
    item_id_col: str = "item_id"
    item_title_col: str = "title"
    item_category_col: str | None = None
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)
    sep: str | None = None
    header: bool = True
    columns: list[str] | None = None
    time_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"
    event_col: str | None = None
    keep_events: list[str] | None = None
    weight_col: str | None = None
    min_weight: float | None = None
    drop_duplicates: bool = True
    min_item_count: int = Field(1, ge=1)
    min_user_count: int = Field(1, ge=1)
    since: date | None = None
    window_days: int | None = Field(None, ge=1)
    cache: bool = True
    cache_dir: str | None = None
    always_hash: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> IngestConfig:
        if self.since is not None and self.window_days is not None:
            raise ValueError("give since (--since) or window_days (--window-days), not both")
        if not self.header and not self.columns:
            raise ValueError("header=false needs columns, e.g. --columns user,item,ts")
        if self.keep_events and not self.event_col:
            raise ValueError("keep_events needs event_col (--event-col)")
        if self.min_weight is not None and not self.weight_col:
            raise ValueError("min_weight needs weight_col (--weight-col)")
        return self
