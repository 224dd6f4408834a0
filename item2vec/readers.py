"""Readers of event and item files: CSV/TSV (gzipped or not) and Parquet, into Arrow.

CSV columns are read as strings, so ids keep their exact text; Parquet columns
keep their stored types. A file that cannot be read raises :class:`InputError`,
except an I/O failure that may pass on retry (:func:`is_transient`).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from item2vec.config import IngestConfig
from item2vec.encoding import is_text
from item2vec.errors import InputError
from item2vec.storage import ObjectPath, input_stream, read_parquet, read_parquet_schema

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_DELIMITERS = (",", "\t", ";", "|")
#: Block size of a second read, for files with a row longer than Arrow's 1 MB.
LONG_ROW = 64 << 20
# Only the empty field is null: "NA" or "None" may be real ids and are kept exactly.
NULL_VALUES = [""]

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


def is_parquet(path: Path | ObjectPath) -> bool:
    """Whether ``path`` is read as Parquet (by its suffix)."""
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def first_line(path: Path | ObjectPath) -> str:
    """First line of a text file, transparently gunzipped.

    Raises
    ------
    InputError
        If the file is not readable UTF-8 text.
    """
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        if isinstance(path, ObjectPath):
            with path.open("rb") as raw, gzip.open(raw) if opener is gzip.open else raw as data:
                line = data.readline()
            return line.decode("utf-8-sig")
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


def read_columns(path: Path | ObjectPath, config: IngestConfig | None = None) -> list[str]:
    """Column names of an events file, read without loading its rows.

    Raises
    ------
    InputError
        If the file is empty or cannot be read as CSV or Parquet.
    """
    if is_parquet(path):
        try:
            return list(read_parquet_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read {path} as Parquet: {exc}") from exc
    header = first_line(path)
    if not header.strip():
        raise InputError(f"events file {path} is empty; expected a header line with column names")
    if config is not None and not config.header:
        return list(config.columns or [])
    delimiter = (config.sep if config is not None else None) or detect_delimiter(header)
    return [name.strip().strip('"') for name in header.rstrip("\r\n").split(delimiter)]


def read_table(
    path: Path | ObjectPath, columns: list[str], config: IngestConfig | None = None
) -> pa.Table:
    """Read the given columns of one file, ids and times as they are (CSV: as strings).

    Parameters
    ----------
    path
        A CSV/TSV (optionally gzipped) or Parquet file.
    columns
        The columns to read; every one must exist.
    config
        Delimiter, header and id columns; without it, the delimiter is detected
        and the first line is the header.

    Raises
    ------
    InputError
        If the file cannot be read; a transient I/O error is raised as it is.
    """
    try:
        if is_parquet(path):
            # Text ids straight into dictionaries: millions of repeated strings are
            # never materialised, which saves most of the reading time and memory.
            schema = read_parquet_schema(path)
            ids = (config.user_col, config.item_col, config.event_col) if config else ()
            dictionary = [
                name for name in ids if name in columns and is_text(schema.field(name).type)
            ]
            # pre_buffer reads each column chunk whole into fresh memory before
            # decoding it; page by page, the first read of a 20M-row file took
            # 0.65-0.86 s instead of 0.92-1.16 s, at 80 MB less peak memory.
            return read_parquet(
                path, columns=columns, read_dictionary=dictionary or None, pre_buffer=False
            )
        header_line = first_line(path)
        delimiter = (config.sep if config else None) or detect_delimiter(header_line)
        if config is not None and not config.header:
            names, skip = list(config.columns or []), 0
        else:
            # The names as read_columns gives them (spaces around them stripped),
            # so that the columns checked are the columns read.
            names, skip = read_columns(path, config), 1
        options = {
            "parse_options": pacsv.ParseOptions(delimiter=delimiter),
            "convert_options": pacsv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        }
        try:
            read = pacsv.ReadOptions(column_names=names, skip_rows=skip)
            return pacsv.read_csv(_csv_source(path), read_options=read, **options)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
        # A row longer than Arrow's 1 MB block (a JSON payload column, say): read
        # again in large blocks, which only such rare files pay for.
        try:
            read = pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=LONG_ROW)
            return pacsv.read_csv(_csv_source(path), read_options=read, **options)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            raise InputError(
                f"a row of {path} is longer than {LONG_ROW >> 20} MB; drop or shorten the "
                "column that holds such long fields before reading it"
            ) from exc
    except (pa.ArrowException, OSError) as exc:
        if is_transient(exc):
            raise  # a flaky disk or network share: worth retrying, not the input's fault
        kind = "Parquet" if is_parquet(path) else "CSV"
        hint = f"; {TO_UTF8}" if "invalid UTF8" in str(exc) else ""
        raise InputError(f"cannot read {path} as {kind}: {exc}{hint}") from exc


def _csv_source(path: Path | ObjectPath) -> Path | pa.NativeFile:
    """A local CSV path as it is (Arrow gunzips by suffix), or a stream over an object."""
    return input_stream(path) if isinstance(path, ObjectPath) else path
