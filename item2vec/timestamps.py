"""Event times as UTC epoch values, with every time that cannot be used marked.

:func:`event_times` takes a time column of any kind (native timestamps or
dates, integer or float epochs, numeric text, ISO-8601 text) and returns int64
epoch values, their unit, and a mask of invalid rows. A time is invalid when it
cannot be parsed or lies outside what a nanosecond timestamp holds
(1677-09-21 to 2262-04-11): warehouse sentinels such as ``9999-12-31`` or
epoch seconds ``32503680000`` are dropped and counted, never a crash.

Numeric epochs may be seconds, milliseconds, microseconds or nanoseconds.
``auto`` reads each value in the unit its magnitude implies (:func:`epoch_unit`),
so a column that mixes seconds and milliseconds still lands every row on its
real date; :attr:`EventTimes.units` reports such a mix. Every step is a
vectorised Arrow or numpy operation, and the common case (integer epochs in one
unit) is taken in Arrow's chunks without a copy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The type of the ``ts`` column of combined events.
TIMESTAMP = pa.timestamp("ns", tz="UTC")

#: Nanoseconds per unit of numeric epoch times.
UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

#: Units from the smallest magnitude up, and where the next one starts: epoch
#: seconds for any date before 5138 stay below 1e11, milliseconds above it.
UNITS = ("s", "ms", "us", "ns")
UNIT_STARTS = (100_000_000_000, 100_000_000_000_000, 100_000_000_000_000_000)

#: The largest absolute value of each unit that converts to int64 nanoseconds.
LIMIT = {unit: np.iinfo(np.int64).max // scale for unit, scale in UNIT_NS.items()}


class EventTimes(NamedTuple):
    """Times of one column as int64 epoch values, and which rows are invalid.

    Attributes
    ----------
    values
        Epoch values in ``unit``; 0 where ``bad`` is True.
    unit
        A key of :data:`UNIT_NS`.
    bad
        True for a row whose time cannot be parsed or is out of range; None when
        every time is valid.
    units
        For numeric epochs read per value from a mix of units: rows read in
        each unit (for example ``{"s": 600, "ms": 400}``); None otherwise.
    """

    values: pa.ChunkedArray
    unit: str
    bad: np.ndarray | None
    units: dict[str, int] | None = None


def epoch_unit(magnitude: float) -> str:
    """The epoch unit whose dates are plausible for an absolute value ``magnitude``."""
    return UNITS[int(np.searchsorted(UNIT_STARTS, magnitude, side="right"))]


def event_times(column: pa.ChunkedArray | pa.Array, unit: str = "auto") -> EventTimes:
    """Event times as int64 epoch values (UTC), their unit, and where they are invalid.

    Native timestamps and dates are taken as they are (naive ones as UTC);
    numbers and numeric text are epoch times in ``unit`` (``auto``: each value
    in the unit its magnitude implies); other text is parsed as ISO-8601.
    Integer epochs keep their unit, so that 20M rows are not multiplied into a
    new array here; every valid value converts to nanoseconds without overflow.

    Parameters
    ----------
    column
        The time column as read.
    unit
        ``auto`` or a key of :data:`UNIT_NS`, for numeric epochs.

    Returns
    -------
    EventTimes
    """
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    found = _epoch_values(column, unit)
    values = found.values
    if isinstance(values, np.ndarray):
        values = pa.chunked_array([pa.array(values, type=pa.int64())])
    bad = found.bad if found.bad is not None and found.bad.any() else None
    return EventTimes(values, found.unit, bad, found.units)


def _epoch_values(column: pa.ChunkedArray, unit: str) -> EventTimes:
    kind = column.type
    if pa.types.is_integer(kind) and not column.null_count and len(column):
        # The usual case, kept in Arrow's chunks: no 20M-row copy is made.
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        single = unit if unit != "auto" else _one_unit(low, high)
        if single is not None and -LIMIT[single] <= low and high <= LIMIT[single]:
            return EventTimes(column.cast(pa.int64()), single, None)
    if pa.types.is_date(kind):
        column = column.cast(pa.timestamp("s"))
        kind = column.type
    if pa.types.is_timestamp(kind):
        # Arrow's own cast to nanoseconds raises on year 9999; the stored integers
        # are checked against the range instead.
        raw = pc.cast(column, pa.int64())
        return _in_range(*_numpy_with_nulls(raw), kind.unit)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _scale_epochs(*_numpy_with_nulls(column), unit)
    values = column.to_pandas()
    numeric = pd.to_numeric(values, errors="coerce")
    present = values.notna()
    if present.any() and numeric[present].notna().mean() >= 0.5:
        bad = numeric.isna().to_numpy()
        filled = numeric.fillna(0).to_numpy()
        if filled.dtype.kind not in "if":  # unsigned or object: beyond int64
            filled = filled.astype(np.float64)
        return _scale_epochs(filled, bad, unit)
    parsed = pd.to_datetime(values.astype("string"), utc=True, format="ISO8601", errors="coerce")
    stamps = parsed.to_numpy(dtype=parsed.dtype.base)  # pandas picks s, ms, us or ns
    unit = np.datetime_data(stamps.dtype)[0]
    return _in_range(stamps.view(np.int64).copy(), np.isnat(stamps), unit)


def _one_unit(low: int, high: int) -> str | None:
    """The unit of every value in ``[low, high]`` when their magnitudes agree on one."""
    smallest = 0 if low <= 0 <= high else min(abs(low), abs(high))
    unit = epoch_unit(max(abs(low), abs(high)))
    return unit if epoch_unit(smallest) == unit else None


def _numpy_with_nulls(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The values (nulls as 0) and the null mask of a numeric column."""
    if column.null_count:
        bad = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        column = pc.fill_null(column, 0)
    else:
        bad = np.zeros(len(column), dtype=bool)
    return np.asarray(column.to_numpy()), bad


def _in_range(values: np.ndarray, bad: np.ndarray, unit: str) -> EventTimes:
    """Integer epochs in ``unit``, with those beyond int64 nanoseconds marked bad."""
    values = values.astype(np.int64, copy=False)
    bad = bad | (values < -LIMIT[unit]) | (values > LIMIT[unit])
    return EventTimes(np.where(bad, 0, values), unit, bad)


def _scale_epochs(values: np.ndarray, bad: np.ndarray, unit: str) -> EventTimes:
    """Numeric epochs to nanoseconds, each value in ``unit`` or (``auto``) its own."""
    if values.dtype.kind == "u":  # above int64's range no epoch is valid
        bad = bad | (values > np.iinfo(np.int64).max)
        values = np.where(bad, 0, values).astype(np.int64)
    if unit != "auto":
        if values.dtype.kind != "f":
            return _in_range(values, bad, unit)
        per_value = np.full(len(values), UNITS.index(unit), dtype=np.int8)
    else:
        # Three comparisons, not searchsorted: 0.24 s against 0.86 s at 20M values.
        magnitude = np.abs(values)
        per_value = (magnitude >= UNIT_STARTS[0]).astype(np.int8)
        for start in UNIT_STARTS[1:]:
            per_value += magnitude >= start
    scale = np.array([UNIT_NS[u] for u in UNITS], dtype=np.int64)[per_value]
    limit = np.array([LIMIT[u] for u in UNITS], dtype=np.float64)[per_value]
    numbers = values.astype(np.float64) if values.dtype.kind == "f" else values
    # Two comparisons, not abs(): the abs of int64's minimum is negative.
    bad = bad | (numbers < -limit) | (numbers > limit)
    if values.dtype.kind == "f":
        # float64 rounds the int64 limit up to 2**63: a value equal to it overflows.
        bad |= ~np.isfinite(numbers) | (np.abs(numbers) >= limit)
        ns = np.round(np.where(bad, 0, numbers) * scale).astype(np.int64)
    else:
        ns = np.where(bad, 0, numbers.astype(np.int64)) * scale
    units = None
    if unit == "auto":
        counts = np.bincount(per_value[~bad], minlength=len(UNITS))
        if np.count_nonzero(counts) > 1:
            units = {UNITS[n]: int(c) for n, c in enumerate(counts) if c}
    return EventTimes(ns, "ns", bad, units)
