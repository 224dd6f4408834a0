"""Event times as UTC: two parsers, one per kind of input.

:func:`event_times` is the ingest path: it keeps integer epochs in their unit
and in Arrow's chunks, so 20M rows are not copied, and reports invalid rows as a
mask. :func:`parse_timestamps` turns any time column into a pandas Series of UTC
timestamps, with NaT where a value cannot be parsed; :func:`event_times` uses it
for text. Numeric epochs may be seconds, milliseconds, microseconds or
nanoseconds; ``auto`` picks the unit from their magnitude.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The type of the ``ts`` column of combined events.
TIMESTAMP = pa.timestamp("ns", tz="UTC")

#: Nanoseconds per unit of numeric epoch times.
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
