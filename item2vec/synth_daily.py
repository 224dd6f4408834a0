"""A growing folder of daily logs with planted clusters and items that appear over time.

What a nightly pipeline sees: one file per day (``events-YYYY-MM-DD.csv``),
each night one more. Half of the catalogue exists on the first day; the rest
appears at an even rate, one batch of new items a day. Users browse in
sessions inside a preferred cluster (planted structure), items are drawn by a
Zipf-like popularity, and a new item is popular for its first days (a
newness boost), so that new items matter to the next day's events. An
``items.csv`` gives each item's ``category`` (its cluster) and the day it
appears, for cold start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from item2vec.atomicfile import replacing

__all__ = ["daily_log", "write_daily_folder"]

#: The first day of every generated folder.
FIRST_DAY = date(2026, 11, 1)


def _check(days: int, events: int, users: int, items: int, clusters: int) -> None:
    problems = []
    if days < 2:
        problems.append(f"days must be at least 2, got {days}")
    if users < 1 or events < users:
        problems.append(f"events ({events}) must be at least users ({users}), and users >= 1")
    if clusters < 1 or items < 2 * clusters:
        problems.append(f"items ({items}) must be at least twice clusters ({clusters})")
    if problems:
        raise ValueError("; ".join(problems))


def daily_log(
    days: int = 30,
    events: int = 90_000,
    users: int = 3_000,
    items: int = 1_500,
    clusters: int = 15,
    seed: int = 0,
    *,
    preferred_share: float = 0.85,
    session_events: float = 6.0,
    newness_days: float = 5.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A log of ``days`` days, the same number of events each day.

    Parameters
    ----------
    days
        Days of the log, from 1 November 2026 (UTC).
    events, users, items
        Total events, users and final catalogue size; half of the items exist on
        day 0, the rest appear evenly over the later days.
    clusters
        Planted clusters (item categories).
    seed
        Generator seed; equal arguments give equal logs.
    preferred_share
        Probability that a session stays in its user's preferred cluster.
    session_events
        Mean events per session (geometric lengths).
    newness_days
        An item's popularity is boosted by ``1 + 4 exp(-age / newness_days)``.

    Returns
    -------
    events, items
        ``events``: ``user_id``, ``item_id``, ``timestamp`` (epoch seconds), in time
        order. ``items``: ``item_id``, ``title``, ``category``, ``first_day`` (ISO day).
    """
    _check(days, events, users, items, clusters)
    rng = np.random.default_rng(seed)
    initial = items // 2
    first = np.zeros(items, dtype=np.int64)
    first[initial:] = 1 + (np.arange(items - initial) * (days - 1)) // max(items - initial, 1)
    category = rng.integers(0, clusters, size=items)
    zipf = 1.0 / (1.0 + rng.permutation(items)) ** 0.9
    preferred = rng.integers(0, clusters, size=users)
    activity = rng.lognormal(0.0, 1.0, size=users)
    activity /= activity.sum()
    start = int(datetime.combine(FIRST_DAY, datetime.min.time(), UTC).timestamp())
    frames = []
    per_day = np.full(days, events // days)
    per_day[: events - per_day.sum()] += 1
    for day in range(days):
        n_sessions = max(1, int(per_day[day] / session_events))
        lengths = rng.geometric(1.0 / session_events, size=n_sessions)
        lengths = np.maximum(1, np.round(lengths * per_day[day] / lengths.sum())).astype(int)
        lengths[-1] += per_day[day] - lengths.sum()
        if lengths[-1] < 1:  # rounding overshot: trim from the longest sessions
            lengths[-1] = 1
            while lengths.sum() > per_day[day]:
                lengths[np.argmax(lengths)] -= 1
        who = rng.choice(users, size=n_sessions, p=activity)
        stay = rng.random(n_sessions) < preferred_share
        cluster = np.where(stay, preferred[who], rng.integers(0, clusters, size=n_sessions))
        alive = first <= day
        weight = zipf * (1 + 4 * np.exp(-(day - first) / newness_days)) * alive
        owner = np.repeat(np.arange(n_sessions), lengths)
        picked = np.empty(len(owner), dtype=np.int64)
        for c in range(clusters):
            members = np.flatnonzero((category == c) & alive)
            slots = np.flatnonzero(cluster[owner] == c)
            if not len(slots):
                continue
            if not len(members):  # a cluster with no item yet: any living item
                members = np.flatnonzero(alive)
            p = weight[members] / weight[members].sum()
            picked[slots] = rng.choice(members, size=len(slots), p=p)
        session_start = start + day * 86_400 + rng.integers(0, 80_000, size=n_sessions)
        gaps = rng.integers(10, 300, size=len(owner))
        elapsed = np.cumsum(gaps)
        before = elapsed[np.cumsum(lengths) - lengths] - gaps[np.cumsum(lengths) - lengths]
        stamps = session_start[owner] + elapsed - np.repeat(before, lengths)
        frames.append(
            pd.DataFrame(
                {
                    "user_id": [f"u{u:06d}" for u in who[owner]],
                    "item_id": [f"i{i:05d}" for i in picked],
                    "timestamp": np.minimum(stamps, start + (day + 1) * 86_400 - 1),
                }
            )
        )
    log = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
    table = pd.DataFrame(
        {
            "item_id": [f"i{i:05d}" for i in range(items)],
            "title": [f"item {i} of category c{c:02d}" for i, c in enumerate(category)],
            "category": [f"c{c:02d}" for c in category],
            "first_day": [(FIRST_DAY + timedelta(days=int(d))).isoformat() for d in first],
        }
    )
    return log.reset_index(drop=True), table


def write_daily_folder(
    folder: str | Path,
    days: int = 30,
    events: int = 90_000,
    users: int = 3_000,
    items: int = 1_500,
    clusters: int = 15,
    seed: int = 0,
) -> dict[str, Any]:
    """Write :func:`daily_log` as ``events-YYYY-MM-DD.csv`` files and ``items.csv``.

    Parameters
    ----------
    folder
        Created if missing; each file is written beside its target and renamed
        into place.
    days, events, users, items, clusters, seed
        As for :func:`daily_log`.

    Returns
    -------
    dict
        ``folder``, ``files`` (the daily files, oldest first), ``items_path``,
        ``events``, ``users``, ``items``, ``new_items_per_day``, ``days``, ``seed``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log, table = daily_log(days, events, users, items, clusters, seed)
    day = pd.to_datetime(log["timestamp"], unit="s", utc=True).dt.date
    files = []
    for when, part in log.groupby(day, sort=True):
        path = folder / f"events-{when.isoformat()}.csv"
        with replacing(path) as temporary:
            part.to_csv(temporary, index=False)
        files.append(str(path))
    items_path = folder.parent / f"{folder.name}-items.csv"
    with replacing(items_path) as temporary:
        table.to_csv(temporary, index=False)
    return {
        "folder": str(folder),
        "files": files,
        "items_path": str(items_path),
        "events": len(log),
        "users": int(log["user_id"].nunique()),
        "items": int(log["item_id"].nunique()),
        "new_items_per_day": round((items - items // 2) / (days - 1), 2),
        "days": days,
        "seed": seed,
    }
