"""Ingest: read event files into validated events, counting every dropped row by reason.

The output is a :class:`Events` holding a DataFrame with ``user_id`` and ``item_id``
(exact strings, never numbers) and ``ts`` (UTC), in input order: file order, then
row order. That order breaks ties between equal timestamps later on.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from item2vec.config import IngestConfig
from item2vec.errors import InputError
from item2vec.partitions import select_window
from item2vec.progress import Progress

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_DELIMITERS = (",", "\t", ";", "|")
# Only the empty field is null: "NA" or "None" may be real ids and are kept exactly.
NULL_VALUES = [""]
DROP_REASONS = ("null_user", "null_item", "bad_timestamp")


@dataclass
class Events:
    """Validated events and how they were obtained.

    Attributes
    ----------
    frame
        Columns ``user_id`` (str), ``item_id`` (str), ``ts`` (datetime64[ns, UTC]),
        in input order; None when the run's sequences came from the cache.
    counts
        ``events_read``, ``events_kept``, ``dropped`` (a dict of reason -> rows),
        and the distinct ``users`` and ``items`` kept.
    files
        Fingerprint of the inputs: path, bytes and SHA-256 of each file.
    """

    frame: pd.DataFrame | None
    counts: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)


#: errno values of I/O failures that may pass on their own (network shares, busy disks).
TRANSIENT_ERRNOS = frozenset(
    {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.ECONNRESET, errno.EINTR}
)


def is_transient(exc: BaseException) -> bool:
    """Whether a read failure may succeed on retry (an I/O error, not bad input)."""
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, InputError)
        and getattr(exc, "errno", None) in TRANSIENT_ERRNOS
    )


def resolve_paths(paths: list[str]) -> list[Path]:
    """Expand folders and glob patterns into event files, and check that they exist.

    A folder contributes every CSV/TSV/Parquet file inside it (recursively,
    hidden files skipped), sorted by path, so daily partitions are read in order.

    Raises
    ------
    InputError
        Naming the first path that does not exist or matches nothing.
    """
    if not paths:
        raise InputError("no event files given; pass EVENTS paths or set ingest.paths")
    resolved: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if any(ch in raw for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"pattern {raw} matches no file; check the path")
            resolved.extend(matches)
        elif path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and is_event_file(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise InputError(
                    f"folder {raw} holds no CSV, TSV or Parquet file; pass the files themselves"
                )
            resolved.extend(files)
        elif path.is_file():
            resolved.append(path)
        else:
            raise InputError(f"events file {raw} does not exist; check the path")
    return resolved


EVENT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz", *(".parquet", ".pq"))


def is_event_file(path: Path) -> bool:
    """Whether a file inside an events folder is read (by its suffix)."""
    return path.name.lower().endswith(EVENT_SUFFIXES)


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is read as Parquet (by its suffix)."""
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def _open_text(path: Path) -> str:
    """First line of a text file, transparently gunzipped."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            return handle.readline()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(
            f"{path} is not a readable UTF-8 text (CSV) file ({exc}); "
            "pass a CSV, TSV or Parquet file"
        ) from exc


def detect_delimiter(header_line: str) -> str:
    """The delimiter among comma, tab, semicolon and pipe that splits the header most."""
    return max(CSV_DELIMITERS, key=header_line.count)


def read_columns(path: Path, config: IngestConfig | None = None) -> list[str]:
    """Column names of an events file, read without loading its rows.

    Raises
    ------
    InputError
        If the file is empty or cannot be read as CSV or Parquet.
    """
    if is_parquet(path):
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read {path} as Parquet: {exc}") from exc
    header = _open_text(path)
    if not header.strip():
        raise InputError(f"events file {path} is empty; expected a header line with column names")
    if config is not None and not config.header:
        return list(config.columns or [])
    delimiter = (config.sep if config is not None else None) or detect_delimiter(header)
    return [name.strip().strip('"') for name in header.rstrip("\r\n").split(delimiter)]


def check_columns(path: Path, required: dict[str, str], config: IngestConfig | None = None) -> None:
    """Raise a clear error if a required column is missing from ``path``.

    Parameters
    ----------
    path
        Events or items file.
    required
        Mapping of config field (for example ``user_col``) to the column name expected.
    """
    available = read_columns(path, config)
    for setting, column in required.items():
        if column not in available:
            flag = "--" + setting.replace("_", "-")
            raise InputError(
                f"column {column!r} not found in {path.name}; available: "
                f"{', '.join(available)}; set {setting} ({flag})"
            )


def _read_table(path: Path, columns: list[str], config: IngestConfig | None = None) -> pa.Table:
    """Read the given columns of one file, ids and times as they are (CSV: as strings)."""
    try:
        if is_parquet(path):
            return pq.read_table(path, columns=columns)
        header_line = _open_text(path)
        delimiter = (config.sep if config else None) or detect_delimiter(header_line)
        read_options = pacsv.ReadOptions()
        if config is not None and not config.header:
            read_options = pacsv.ReadOptions(column_names=list(config.columns or []))
        return pacsv.read_csv(
            path,
            read_options=read_options,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        if is_transient(exc):
            raise  # a flaky disk or network share: worth retrying, not the input's fault
        kind = "Parquet" if is_parquet(path) else "CSV"
        raise InputError(f"cannot read {path} as {kind}: {exc}") from exc


def ids_as_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cast an id column to strings without changing how the ids are written.

    Integers become their decimal text. Floating-point ids are refused because
    their text is ambiguous ("17850.0" vs "17850").
    """
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_dictionary(kind):
        return column.cast(pa.string())
    if pa.types.is_integer(kind):
        return column.cast(pa.string())
    raise InputError(
        f"id column has type {kind}; expected strings or integers. Store ids as text "
        "so that values such as '00123' keep their exact form"
    )


def parse_timestamps(column: pa.ChunkedArray | pa.Array, unit: str = "auto") -> pd.Series:
    """Parse a time column to UTC timestamps; unparseable values become NaT.

    Accepts native timestamp columns, epoch seconds or milliseconds (numbers or
    numeric text; the unit is chosen by magnitude), and ISO-8601 text with or
    without a zone (naive times are taken as UTC).
    """
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        series = column.to_pandas()
        series = pd.to_datetime(series, utc=True)
        return series.astype("datetime64[ns, UTC]")
    values = column.to_pandas()
    numeric = pd.to_numeric(values, errors="coerce")
    present = values.notna()
    if present.any() and numeric[present].notna().mean() >= 0.5:
        return epoch_to_utc(numeric, unit)
    text = values.astype("string")
    return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").astype(
        "datetime64[ns, UTC]"
    )


def epoch_to_utc(numbers: pd.Series, unit: str = "auto") -> pd.Series:
    """Epoch numbers to UTC timestamps; ``auto`` detects the unit from their magnitude."""
    magnitude = (
        float(np.nanmedian(np.abs(numbers.to_numpy(dtype="float64")))) if len(numbers) else 0
    )
    # Epoch seconds for any date before 5138 stay below 1e11; milliseconds above it.
    if unit != "auto":
        pass  # forced by --time-unit
    elif magnitude >= 1e17:
        unit = "ns"
    elif magnitude >= 1e14:
        unit = "us"
    elif magnitude >= 1e11:
        unit = "ms"
    else:
        unit = "s"
    return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce").astype(
        "datetime64[ns, UTC]"
    )


def fingerprint(paths: list[Path]) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of each input file, for the manifest."""
    entries = []
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        entries.append(
            {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
        )
    return entries


@dataclass
class Partition:
    """The validated rows of one input file, before the run-wide filters.

    Attributes
    ----------
    path
        The file read.
    table
        Columns ``user_id``, ``item_id`` (strings), ``ts`` (timestamp[ns, UTC]),
        optional ``event`` and ``weight``, and ``_drop``: 0 for a valid row, else
        1 + the index of its reason in :data:`DROP_REASONS`. Rows in file order.
        It round-trips through Parquet unchanged, which is how it is cached.
    examples
        A few raw time values that could not be parsed, for the error message.
    """

    path: Path
    table: pa.Table
    examples: list[str] = field(default_factory=list)


def input_files(config: IngestConfig) -> list[Path]:
    """The event files a run reads: paths, folders and globs resolved, then windowed.

    Raises
    ------
    InputError
        On a path that matches nothing, or a window that selects no partition.
    """
    return select_window(resolve_paths(config.paths), config.since, config.window_days)


def read_partition(path: Path, config: IngestConfig) -> Partition:
    """Read and validate one event file.

    Raises
    ------
    InputError
        If a required column is missing, or the file cannot be read as CSV or Parquet.
    """
    mapping = required_columns(config)
    check_columns(path, mapping, config)
    table = _read_table(path, list(dict.fromkeys(mapping.values())), config)
    log.info("read %s rows from %s", f"{table.num_rows:,}", path)
    frame, examples = _validate(table, config, path)
    return Partition(path, pa.Table.from_pandas(frame, preserve_index=False), examples)


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
    frames = [part.table.to_pandas() for part in partitions]
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    examples = {part.path.name: part.examples for part in partitions if part.examples}
    events = _finish(combined, config, paths, examples)
    events.files = files if files is not None else fingerprint(paths)
    return events


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
    with Progress("ingest", total=len(paths), unit="files") as progress:
        for path in paths:
            partitions.append(read_partition(path, config))
            progress.advance()
    return combine_partitions(partitions, config)


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


def _validate(table: pa.Table, config: IngestConfig, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Typed columns of one file, the reason each row is invalid ("" = valid), and a
    few examples of unparseable times."""
    try:
        users = ids_as_strings(table.column(config.user_col))
        items = ids_as_strings(table.column(config.item_col))
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from exc
    times = parse_timestamps(table.column(config.time_col), config.time_unit)
    frame = pd.DataFrame(
        {
            "user_id": users.to_pandas(),
            "item_id": items.to_pandas(),
            "ts": times.reset_index(drop=True),
        }
    )
    if config.event_col:
        frame["event"] = table.column(config.event_col).cast(pa.string()).to_pandas()
    if config.weight_col:
        frame["weight"] = pd.to_numeric(
            table.column(config.weight_col).to_pandas(), errors="coerce"
        )
    # A small integer per row (0 = valid, else 1 + index in DROP_REASONS), not a
    # string column: at 20M rows strings cost seconds and a gigabyte.
    reason = np.zeros(len(frame), dtype=np.int8)
    # Later assignments win, so assign in reverse priority: a row counts once,
    # under its first reason.
    reason[frame["ts"].isna().to_numpy()] = 1 + DROP_REASONS.index("bad_timestamp")
    reason[frame["item_id"].isna().to_numpy()] = 1 + DROP_REASONS.index("null_item")
    reason[frame["user_id"].isna().to_numpy()] = 1 + DROP_REASONS.index("null_user")
    frame["_drop"] = reason
    bad_ts = reason == 1 + DROP_REASONS.index("bad_timestamp")
    examples = []
    if bad_ts.any():
        raw = table.column(config.time_col).to_pandas()[bad_ts]
        examples = [str(v) for v in raw.head(3)]
    return frame, examples


def _finish(
    frame: pd.DataFrame, config: IngestConfig, paths: list[Path], examples: dict[str, list[str]]
) -> Events:
    read = len(frame)
    per_code = np.bincount(frame["_drop"].to_numpy(), minlength=len(DROP_REASONS) + 1)
    dropped = {reason: int(per_code[1 + n]) for n, reason in enumerate(DROP_REASONS)}
    total_dropped = sum(dropped.values())
    names = ", ".join(p.name for p in paths[:3]) + (
        f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    )
    if read == 0:
        raise InputError(f"{names} holds no events (header only?); nothing to train on")
    if total_dropped / read > config.max_bad_fraction:
        reason, rows = max(dropped.items(), key=lambda kv: kv[1])
        column = {
            "null_user": config.user_col,
            "null_item": config.item_col,
            "bad_timestamp": config.time_col,
        }[reason]
        share = rows / read
        hint = {
            "bad_timestamp": "expected epoch seconds/milliseconds or ISO-8601 text; "
            "check --time-col",
            "null_user": "check --user-col",
            "null_item": "check --item-col",
        }[reason]
        shown = (
            f" (examples: {next(iter(examples.values()))})"
            if examples and reason == "bad_timestamp"
            else ""
        )
        raise InputError(
            f"{share:.1%} of rows in {names} were dropped as {reason} in column {column!r}"
            f"{shown}, above the allowed {config.max_bad_fraction:.1%}; {hint}, "
            f"or raise --max-bad-fraction to accept them"
        )
    kept = frame.loc[frame["_drop"].to_numpy() == 0].drop(columns="_drop").reset_index(drop=True)
    kept, filtered = apply_filters(kept, config)
    dropped.update(filtered)
    if kept.empty:
        reasons = ", ".join(f"{k} {v:,}" for k, v in dropped.items() if v)
        raise InputError(
            f"no usable events left in {names} after dropping rows ({reasons}); "
            "relax the filters (--keep-events, --min-weight, --min-item-count, --min-user-count)"
        )
    counts = {
        "events_read": read,
        "events_kept": len(kept),
        "dropped": dropped,
        "users": int(kept["user_id"].nunique()),
        "items": int(kept["item_id"].nunique()),
    }
    log.info("kept %s of %s events; dropped %s", f"{len(kept):,}", f"{read:,}", dropped)
    return Events(frame=kept[["user_id", "item_id", "ts"]], counts=counts)


def apply_filters(frame: pd.DataFrame, config: IngestConfig) -> tuple[pd.DataFrame, dict]:
    """Event-type, weight, duplicate and minimum-support filters, each drop counted.

    Returns
    -------
    frame, dropped
        The kept rows in input order, and rows dropped per reason: ``event_type``,
        ``low_weight``, ``duplicate``, ``rare_item``, ``rare_user``.
    """
    dropped = dict.fromkeys(("event_type", "low_weight", "duplicate", "rare_item", "rare_user"), 0)

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal frame
        dropped[reason] += int(mask.sum())
        frame = frame.loc[~mask]

    if config.keep_events:
        drop(~frame["event"].isin(config.keep_events).to_numpy(), "event_type")
    if config.min_weight is not None:
        drop(~(frame["weight"] >= config.min_weight).to_numpy(), "low_weight")
    if config.drop_duplicates:
        key = ["user_id", "item_id", "ts"] + (["event"] if config.event_col else [])
        drop(frame.duplicated(key, keep="first").to_numpy(), "duplicate")
    # Dropping rare users can make items rare and back: repeat until both hold.
    while config.min_item_count > 1 or config.min_user_count > 1:
        items = frame["item_id"].map(frame["item_id"].value_counts()).to_numpy()
        rare_items = items < config.min_item_count
        drop(rare_items, "rare_item")
        users = frame["user_id"].map(frame["user_id"].value_counts()).to_numpy()
        rare_users = users < config.min_user_count
        drop(rare_users, "rare_user")
        if not rare_items.any() and not rare_users.any():
            break
    return frame.reset_index(drop=True), dropped


def read_items(path: str | Path, id_col: str, title_col: str) -> pd.DataFrame:
    """Read item metadata: ``item_id`` (exact string), ``title`` and every other column.

    Raises
    ------
    InputError
        If the file is missing, unreadable or lacks one of the two columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"items file {path} does not exist; check --items")
    check_columns(path, {"item_id_col": id_col, "item_title_col": title_col})
    if is_parquet(path):
        table = _read_table(path, pq.read_schema(path).names)
    else:
        table = _read_table(path, read_columns(path))
    frame = table.to_pandas()
    frame[id_col] = ids_as_strings(table.column(id_col)).to_pandas()
    frame = frame.rename(columns={id_col: "item_id", title_col: "title"})
    return frame.drop_duplicates("item_id").reset_index(drop=True)


def items_table(items: pd.DataFrame) -> pa.Table:
    """Item metadata as a Parquet-ready table: ``item_id`` and ``title`` first, all as text
    unless the source already had types (Parquet)."""
    ordered = ["item_id", "title", *[c for c in items.columns if c not in ("item_id", "title")]]
    return pa.Table.from_pandas(items[ordered], preserve_index=False)
