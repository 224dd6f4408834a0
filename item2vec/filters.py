"""The run-wide filters: event type, weight, duplicates and minimum support, each drop counted.

They run on the combined, sorted :class:`item2vec.rows.EventRows`, after the
per-file validation, because support counts only mean something over the run.
"""

from __future__ import annotations

import numpy as np

from item2vec.config import IngestConfig
from item2vec.grouping import tied_rows
from item2vec.rows import EventRows


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
