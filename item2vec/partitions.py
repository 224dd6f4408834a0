"""Rolling windows over daily partitions: pick the files of the days to train on.

A partition's day comes from its path, the way logs are usually laid out:
``events/2026-11-24.csv.gz``, ``events/20261124.parquet``,
``events/date=2026-11-24/part-0.parquet`` or ``events/year=2026/month=11/day=24/...``.
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from pathlib import Path

from item2vec.errors import InputError

log = logging.getLogger(__name__)

_ISO_DAY = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_COMPACT_DAY = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")
_HIVE_DAY = re.compile(r"year=(\d{4})[/\\]month=(\d{1,2})[/\\]day=(\d{1,2})(?!\d)")


def partition_day(path: Path | str) -> date | None:
    """The day a partition file holds, read from its path; None when the path has none.

    The last date in the path wins, so ``2026/2026-11-24/part.csv`` is 24 November.
    """
    text = str(path)
    for pattern in (_HIVE_DAY, _ISO_DAY, _COMPACT_DAY):
        found = None
        for match in pattern.finditer(text):
            try:
                found = date(*(int(part) for part in match.groups()))
            except ValueError:  # 20261399 is a number, not a day
                continue
        if found is not None:
            return found
    return None


def select_window(
    paths: list[Path], since: date | None = None, window_days: int | None = None
) -> list[Path]:
    """The partitions inside the window, in their original order.

    Parameters
    ----------
    paths
        Event files, e.g. from :func:`item2vec.discovery.resolve_paths`.
    since
        Keep partitions dated on or after this day.
    window_days
        Keep the last ``window_days`` days, counted back from the newest
        partition's day (so a late or missing night does not empty the window).

    Returns
    -------
    list of Path
        ``paths`` unchanged when no window is set.

    Raises
    ------
    InputError
        If a window is set and a file has no date in its path, or no file is left.
    """
    if since is None and window_days is None:
        return paths
    days = {}
    for path in paths:
        day = partition_day(path)
        if day is None:
            raise InputError(
                f"{path} has no date in its name or folder (expected e.g. 2026-11-24.csv or "
                "date=2026-11-24/); since and window_days (--since, --window-days) need "
                "daily partitions"
            )
        days[path] = day
    if window_days is not None:
        since = max(days.values()) - timedelta(days=window_days - 1)
    selected = [path for path in paths if days[path] >= since]
    if not selected:
        newest = max(days.values())
        raise InputError(
            f"no partition is dated on or after {since} (newest: {newest}); "
            "move since (--since) back or widen window_days (--window-days)"
        )
    log.info(
        "window from %s: %d of %d partitions (%s to %s)",
        since,
        len(selected),
        len(paths),
        min(days[p] for p in selected),
        max(days[p] for p in selected),
    )
    return selected
