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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from item2vec.chunks import single_array
from item2vec.config import IngestConfig
from item2vec.errors import InputError
from item2vec.grouping import CodedChunk, count_distinct, group_rows, tied_rows
from item2vec.pages import small_pages
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
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            return handle.readline()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(
            f"{path} is not a readable UTF-8 text (CSV) file ({exc}); pass a CSV, TSV or "
            f"Parquet file, {TO_UTF8}"
        ) from exc


#: The fix for text in another encoding (the usual one is Latin-1 / Windows-1252).
TO_UTF8 = (
    "converting other encodings to UTF-8 first, e.g. iconv -f latin1 -t utf-8 in.csv > out.csv"
)


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
            # Text ids straight into dictionaries: millions of repeated strings are
            # never materialised, which saves most of the reading time and memory.
            schema = pq.read_schema(path)
            ids = (config.user_col, config.item_col, config.event_col) if config else ()
            dictionary = [
                name for name in ids if name in columns and is_text(schema.field(name).type)
            ]
            # pre_buffer reads each column chunk whole into fresh memory before
            # decoding it; page by page, the first read of a 20M-row file took
            # 0.65-0.86 s instead of 0.92-1.16 s, at 80 MB less peak memory.
            return pq.read_table(
                path, columns=columns, read_dictionary=dictionary or None, pre_buffer=False
            )
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
        hint = f"; {TO_UTF8}" if "invalid UTF8" in str(exc) else ""
        raise InputError(f"cannot read {path} as {kind}: {exc}{hint}") from exc


def id_dictionary(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """An id column as one dictionary array of exact strings, nulls kept.

    Integers become their decimal text (only the distinct values are converted).
    Floating-point ids are refused because their text is ambiguous ("17850.0" vs
    "17850").

    Raises
    ------
    InputError
        On an id column that is neither text nor integers.
    """
    kind = column.type
    if isinstance(column, pa.ChunkedArray):
        if pa.types.is_dictionary(kind):
            column = column.unify_dictionaries()
        column = single_array(column)
    if pa.types.is_dictionary(kind):
        values = kind.value_type
        if not (is_text(values) or pa.types.is_integer(values)):
            raise _bad_id_type(values)
        encoded = column
    elif is_text(kind) or pa.types.is_integer(kind):
        encoded = pc.dictionary_encode(column)
    else:
        raise _bad_id_type(kind)
    if not pa.types.is_string(encoded.dictionary.type):
        encoded = pa.DictionaryArray.from_arrays(
            encoded.indices, encoded.dictionary.cast(pa.string())
        )
    return encoded


def id_chunks(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """An id column as dictionary chunks of exact strings, nulls kept.

    Text dictionaries (Parquet read with ``read_dictionary``) stay as they are,
    one small dictionary per row group: unifying them would rewrite every row's
    index, which :func:`item2vec.grouping.group_rows` does not need. Anything
    else goes through :func:`id_dictionary`.
    """
    kind = column.type
    if pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type):
        return column
    return pa.chunked_array([id_dictionary(column)])


def is_text(kind: pa.DataType) -> bool:
    """Whether ``kind`` is Arrow text (string or large_string)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _bad_id_type(kind: pa.DataType) -> InputError:
    return InputError(
        f"id column has type {kind}; expected strings or integers. Store ids as text "
        "so that values such as '00123' keep their exact form"
    )


#: Nanoseconds per unit of numeric epoch times.
UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def epoch_unit(magnitude: float) -> str:
    """The epoch unit whose dates are plausible for a median ``magnitude``."""
    # Epoch seconds for any date before 5138 stay below 1e11; milliseconds above it.
    if magnitude >= 1e17:
        return "ns"
    if magnitude >= 1e14:
        return "us"
    if magnitude >= 1e11:
        return "ms"
    return "s"


def event_times(
    column: pa.ChunkedArray | pa.Array, unit: str = "auto"
) -> tuple[pa.ChunkedArray, str, np.ndarray | None]:
    """Event times as int64 epoch values (UTC), their unit, and where they are invalid.

    Native timestamps and dates are taken as they are (naive ones as UTC); numbers
    are epoch times in ``unit`` (``auto``: chosen by magnitude); text goes through
    :func:`parse_timestamps`. Integer epochs keep their unit, so that 20M rows are
    not multiplied into a new array here; every value converts to nanoseconds
    without overflow.

    Returns
    -------
    values, unit, bad
        int64 ``values`` hold 0 where ``bad`` is True; ``unit`` is a key of
        :data:`UNIT_NS`; ``bad`` is None when every time is valid.
    """
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    values, unit, bad = _epoch_values(column, unit)
    if isinstance(values, np.ndarray):
        values = pa.chunked_array([pa.array(values, type=pa.int64())])
    return values, unit, (bad if bad is not None and bad.any() else None)


def _epoch_values(
    column: pa.ChunkedArray, unit: str
) -> tuple[np.ndarray | pa.ChunkedArray, str, np.ndarray | None]:
    kind = column.type
    if pa.types.is_integer(kind) and not column.null_count and len(column):
        # The usual case, kept in Arrow's chunks: no 20M-row copy is made.
        unit = unit if unit != "auto" else _sampled_unit(column)
        limit = np.iinfo(np.int64).max // UNIT_NS[unit]  # beyond it, nanoseconds overflow
        bounds = pc.min_max(column)
        if -limit <= bounds["min"].as_py() and bounds["max"].as_py() <= limit:
            return column.cast(pa.int64()), unit, None
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_date(kind):
            column = column.cast(pa.timestamp("s"))
        stamps = column.cast(pa.timestamp("ns", tz=getattr(column.type, "tz", None)))
        bad = np.asarray(stamps.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        ns = pc.fill_null(stamps.cast(pa.int64()), 0).to_numpy()
        return np.ascontiguousarray(ns, dtype=np.int64), "ns", bad
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        numbers = column.cast(pa.float64()) if pa.types.is_floating(kind) else column
        if numbers.null_count:
            bad = np.asarray(numbers.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            numbers = pc.fill_null(numbers, 0)
        else:
            bad = np.zeros(len(numbers), dtype=bool)
        return _scale_epochs(np.asarray(numbers.to_numpy()), bad, unit)
    parsed = parse_timestamps(column, unit)
    bad = parsed.isna().to_numpy()
    ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    ns[bad] = 0
    return ns, "ns", bad


def _scale_epochs(
    values: np.ndarray, bad: np.ndarray, unit: str
) -> tuple[np.ndarray, str, np.ndarray]:
    if unit == "auto":
        # The median of a strided sample: the unit is the same for every row.
        stride = max(1, len(values) // SAMPLED_TIMES)
        sample = values[::stride][~bad[::stride]]
        unit = epoch_unit(float(np.median(np.abs(sample)))) if len(sample) else "s"
    scale = UNIT_NS[unit]
    limit = np.iinfo(np.int64).max // scale  # beyond it, nanoseconds overflow
    if values.dtype.kind == "f":
        bad = bad | ~np.isfinite(values) | (np.abs(values) > limit)
        ns = np.where(bad, 0, np.round(np.where(bad, 0, values) * scale)).astype(np.int64)
        return ns, "ns", bad
    values = values.astype(np.int64, copy=False)
    if not bad.any() and len(values) and -limit <= values.min() and values.max() <= limit:
        return values, unit, bad  # the common case: taken as they are
    bad = bad | (np.abs(values) > limit)
    return np.where(bad, 0, values), unit, bad


#: Rows whose median decides the unit of numeric epoch times.
SAMPLED_TIMES = 100_000


def _sampled_unit(column: pa.ChunkedArray) -> str:
    """The epoch unit of a null-free integer column, from a strided sample."""
    stride = max(1, len(column) // SAMPLED_TIMES)
    # Strided views of each chunk: a take on the chunked column would combine it.
    sample = np.concatenate([chunk.to_numpy()[::stride] for chunk in column.chunks])
    return epoch_unit(float(np.median(np.abs(sample))))


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
    if unit == "auto":
        values = numbers.to_numpy(dtype="float64")
        unit = epoch_unit(float(np.nanmedian(np.abs(values)))) if len(values) else "s"
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
        Columns ``user_id``, ``item_id`` (strings), ``ts`` (timestamp, UTC, any unit),
        optional ``event`` and ``weight``, and ``_drop``: 0 for a valid row, else
        1 + the index of its reason in :data:`DROP_REASONS`. Rows in file order.
        It round-trips through Parquet unchanged, which is how it is cached.
    examples
        A few raw time values that could not be parsed, for the error message.
    """

    path: Path
    table: pa.Table
    examples: list[str] = field(default_factory=list)


def input_files(config: IngestConfig, warn_skipped: bool = True) -> list[Path]:
    """The event files a run reads: paths, folders and globs resolved, windowed, blanks skipped.

    ``warn_skipped=False`` checks without logging the skipped files, for a check
    that runs before the read that reports them.

    Raises
    ------
    InputError
        On a path that matches nothing, a window that selects no partition, or
        when every file is empty.
    """
    files = select_window(resolve_paths(config.paths), config.since, config.window_days)
    return skip_blank(files, warn=warn_skipped)


def is_blank(path: Path) -> bool:
    """Whether ``path`` is a text file without a single line (0 bytes, or gzip of nothing).

    Parquet files always carry a schema, so they are never blank.
    """
    return not is_parquet(path) and not _open_text(path).strip()


def skip_blank(paths: list[Path], warn: bool = True) -> list[Path]:
    """``paths`` without blank files, each skipped with a warning.

    Writers such as Spark leave an empty part file for an empty partition, so
    in a folder of parts a blank file holds no events rather than being an
    error; a header-only file is read and counts as zero events.

    Raises
    ------
    InputError
        If every file is blank.
    """
    blank = [path for path in paths if is_blank(path)]
    if paths and len(blank) == len(paths):
        names = first_few([str(path) for path in paths])
        which = f"events file {names} is" if len(paths) == 1 else f"all events files ({names}) are"
        raise InputError(f"{which} empty (not a single line); check the export that wrote them")
    for path in blank if warn else []:
        log.warning("skipped %s: the file is empty (no header, no rows)", path)
    skipped = set(blank)
    return [path for path in paths if path not in skipped]


def first_few(labels: list[str], shown: int = 3) -> str:
    """``a, b, c and 4 more``: a list of files short enough for one message."""
    rest = len(labels) - shown
    return ", ".join(labels[:shown]) + (f" and {rest} more" if rest > 0 else "")


@small_pages()
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
    validated, examples = _validate(table, config, path)
    return Partition(path, validated, examples)


@small_pages()
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
    examples = {part.path.name: part.examples for part in partitions if part.examples}
    per_file = [(part.table.num_rows, _drop_counts(part.table)) for part in partitions]
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


def _validate(table: pa.Table, config: IngestConfig, path: Path) -> tuple[pa.Table, list[str]]:
    """Typed columns of one file, the reason each row is invalid (``_drop``), and a
    few examples of unparseable times."""
    try:
        users = id_chunks(table.column(config.user_col))
        items = id_chunks(table.column(config.item_col))
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from exc
    times, unit, bad_time = event_times(table.column(config.time_col), config.time_unit)
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


TIMESTAMP = pa.timestamp("ns", tz="UTC")


def _nulls(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _drop_counts(table: pa.Table) -> dict[str, int]:
    """Rows of a validated table per drop reason (every reason present, maybe 0)."""
    codes = table.column("_drop").to_numpy()
    if not np.count_nonzero(codes):  # the usual case, without a 20M-row mask
        return dict.fromkeys(DROP_REASONS, 0)
    # Only dropped rows are counted: a bincount of all rows would copy them to int64.
    per_code = np.bincount(codes[codes != 0], minlength=len(DROP_REASONS) + 1)
    return {reason: int(per_code[1 + n]) for n, reason in enumerate(DROP_REASONS)}


def _finish(
    table: pa.Table,
    config: IngestConfig,
    paths: list[Path],
    examples: dict[str, list[str]],
    per_file: list[tuple[int, dict[str, int]]],
) -> Events:
    read = table.num_rows
    dropped = {reason: sum(counts[reason] for _, counts in per_file) for reason in DROP_REASONS}
    names = first_few([path.name for path in paths])
    if read == 0:
        raise InputError(f"{names} holds no events (header only?); nothing to train on")
    _check_bad_share(dropped, read, config, names, examples)
    _warn_bad_files(paths, per_file, config, examples)
    rows = EventRows.of(table)
    rows, filtered = apply_filters(rows, config)
    dropped.update(filtered)
    if rows.size == 0:
        reasons = ", ".join(f"{k} {v:,}" for k, v in dropped.items() if v)
        raise InputError(
            f"no usable events left in {names} after dropping rows ({reasons}); "
            "relax the filters (--keep-events, --min-weight, --min-item-count, --min-user-count)"
        )
    counts = {
        "events_read": read,
        "events_kept": rows.size,
        "dropped": dropped,
        "users": rows.distinct(rows.users),
        "items": rows.distinct(rows.items),
    }
    log.info("kept %s of %s events; dropped %s", f"{rows.size:,}", f"{read:,}", dropped)
    return Events(table=rows.table(), counts=counts)


def _check_bad_share(
    dropped: dict[str, int],
    read: int,
    config: IngestConfig,
    names: str,
    examples: dict[str, list[str]],
) -> None:
    """Fail when invalid rows exceed ``max_bad_fraction``, naming reason, column and flag."""
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
        f"or raise --max-bad-fraction to accept them"
    )


def _reason_column(reason: str, config: IngestConfig) -> tuple[str, str]:
    """The column a drop reason is about, and what to check."""
    return {
        "null_user": (config.user_col, "check --user-col"),
        "null_item": (config.item_col, "check --item-col"),
        "bad_timestamp": (
            config.time_col,
            "expected epoch seconds/milliseconds or ISO-8601 text; check --time-col",
        ),
    }[reason]


def _warn_bad_files(
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
        shown = examples.get(path.name) if reason == "bad_timestamp" else None
        log.warning(
            "%s: %s of its %s rows (%.1f%%) were dropped, mostly as %s in column %r%s; "
            "the run goes on because the whole input stays within --max-bad-fraction; %s",
            path,
            f"{bad:,}",
            f"{rows:,}",
            100 * bad / rows,
            reason,
            column,
            f" (examples: {shown})" if shown else "",
            hint,
        )


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


def run_codes(
    columns: list[pa.DictionaryArray], kind: pa.DataType, ranked: bool = False
) -> tuple[pa.Array, list[np.ndarray]]:
    """One dictionary for the whole run, and each column's map into it.

    Parameters
    ----------
    columns
        Dictionary chunks of one id column; chunks of one Parquet row group share
        their dictionary, which is then encoded once.
    kind
        The column's type, for an empty list of chunks.
    ranked
        Order the run's dictionary by id, so that sorting codes sorts ids.

    Returns
    -------
    ids, codes
        The distinct ids, and per chunk an int32 array mapping its dictionary
        indices to positions in ``ids``.
    """
    distinct: dict[tuple, int] = {}
    which = []
    for column in columns:
        dictionary = column.dictionary
        # The same buffers, offset and length hold the same values.
        key = (*(b.address if b else 0 for b in dictionary.buffers()), dictionary.offset)
        key = (*key, len(dictionary))
        which.append(distinct.setdefault(key, len(distinct)))
    dictionaries = [columns[which.index(n)].dictionary for n in range(len(distinct))]
    if not dictionaries:
        return pa.array([], type=kind.value_type), []
    encoded = pc.dictionary_encode(pa.concat_arrays(dictionaries))
    ids, codes = encoded.dictionary, encoded.indices.to_numpy().astype(np.int32)
    if ranked:
        ranked_ids = pc.sort_indices(ids).to_numpy()
        rank = np.empty(len(ranked_ids), dtype=np.int32)
        rank[ranked_ids] = np.arange(len(ranked_ids), dtype=np.int32)
        ids, codes = ids.take(pa.array(ranked_ids)), rank[codes]
    starts = np.cumsum([0] + [len(d) for d in dictionaries])
    per_dictionary = [codes[starts[n] : starts[n + 1]] for n in range(len(dictionaries))]
    return ids, [per_dictionary[n] for n in which]


#: Schema metadata of an :class:`Events` table already in sequence order.
SORTED_KEY = b"item2vec.sorted"


def apply_filters(rows: EventRows, config: IngestConfig) -> tuple[EventRows, dict[str, int]]:
    """Event-type, weight, duplicate and minimum-support filters, each drop counted.

    Returns
    -------
    rows, dropped
        The kept rows in the same order, and rows dropped per reason:
        ``event_type``, ``low_weight``, ``duplicate``, ``rare_item``, ``rare_user``.
    """
    dropped = dict.fromkeys(("event_type", "low_weight", "duplicate", "rare_item", "rare_user"), 0)

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal rows
        count = int(mask.sum())
        dropped[reason] += count
        if count:  # copying 20M rows to drop none costs half a second
            rows = rows.keep(~mask)

    if config.keep_events:
        wanted = np.flatnonzero(
            np.isin(rows.event_ids.to_numpy(zero_copy_only=False), config.keep_events)
        )
        drop(~np.isin(rows.events, wanted), "event_type")
    if config.min_weight is not None:
        with np.errstate(invalid="ignore"):
            drop(~(rows.weights >= config.min_weight), "low_weight")
    if config.drop_duplicates:
        drop(_duplicates(rows), "duplicate")
    # Dropping rare users can make items rare and back: repeat until both hold.
    while config.min_item_count > 1 or config.min_user_count > 1:
        rare_items = np.bincount(rows.items)[rows.items] < config.min_item_count
        drop(rare_items, "rare_item")
        rare_users = (
            np.bincount(rows.users)[rows.users] < config.min_user_count
            if rows.size
            else np.zeros(0, dtype=bool)
        )
        drop(rare_users, "rare_user")
        if not rare_items.any() and not rare_users.any():
            break
    return rows, dropped


def _duplicates(rows: EventRows) -> np.ndarray:
    """Rows repeating an earlier row's user, item, time (and event type).

    Rows are sorted by user and time, so duplicates sit in the same run of equal
    (user, time); only rows in runs longer than one are compared.
    """
    flag = np.zeros(rows.size, dtype=bool)
    tied = tied_rows(rows.users, rows.ts)
    if not len(tied):
        return flag
    members = np.unique(np.concatenate((tied - 1, tied)))
    boundary = (
        (np.diff(members) > 1)
        | (np.diff(rows.users[members]) != 0)
        | (np.diff(rows.ts[members]) != 0)
    )
    run = np.cumsum(np.r_[True, boundary])
    events = rows.events[members] if rows.events is not None else np.zeros(len(members))
    # Within a run, equal items (and events) become adjacent, earliest first: rows
    # of a run are in input order, so their index orders them as input position.
    order = np.lexsort((members, events, rows.items[members], run))
    ordered = members[order]
    repeat = (
        (run[order][1:] == run[order][:-1])
        & (rows.items[ordered][1:] == rows.items[ordered][:-1])
        & (events[order][1:] == events[order][:-1])
    )
    flag[ordered[1:][repeat]] = True
    return flag


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
    frame[id_col] = id_dictionary(table.column(id_col)).cast(pa.string()).to_pandas()
    frame = frame.rename(columns={id_col: "item_id", title_col: "title"})
    return frame.drop_duplicates("item_id").reset_index(drop=True)


def items_table(items: pd.DataFrame) -> pa.Table:
    """Item metadata as a Parquet-ready table: ``item_id`` and ``title`` first, all as text
    unless the source already had types (Parquet)."""
    ordered = ["item_id", "title", *[c for c in items.columns if c not in ("item_id", "title")]]
    return pa.Table.from_pandas(items[ordered], preserve_index=False)
