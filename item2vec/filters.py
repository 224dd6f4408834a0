"""The run-wide filters: event type, weight, duplicates and minimum support, each drop counted.

They run on the combined, sorted :class:`item2vec.rows.EventRows`, after the
per-file validation, because support counts only mean something over the run.
"""

from __future__ import annotations

import numpy as np

from item2vec.config import IngestConfig
from item2vec.grouping import tied_rows
from item2vec.rows import EventRows

#: Every reason a run-wide filter drops a row, in the order the filters run.
FILTER_REASONS = ("event_type", "low_weight", "duplicate", "rare_item", "rare_user")


def apply_filters(rows: EventRows, config: IngestConfig) -> tuple[EventRows, dict[str, int]]:
    """Event-type, weight, duplicate and minimum-support filters, each drop counted.

    Returns
    -------
    rows, dropped
        The kept rows in the same order, and rows dropped per reason:
        ``event_type``, ``low_weight``, ``duplicate``, ``rare_item``, ``rare_user``.
    """
    rows, dropped = local_filters(rows, config)
    # Dropping rare users can make items rare and back: repeat until both hold.
    while needs_support(config):
        rows, rare_items, rare_users = support_round(rows, np.bincount(rows.items), config)
        dropped["rare_item"] += rare_items
        dropped["rare_user"] += rare_users
        if not rare_items and not rare_users:
            break
    return rows, dropped


def needs_support(config: IngestConfig) -> bool:
    """Whether the minimum-support filters drop anything ever (a count above 1 is set)."""
    return config.min_item_count > 1 or config.min_user_count > 1


def local_filters(rows: EventRows, config: IngestConfig) -> tuple[EventRows, dict[str, int]]:
    """The filters that look at one user's rows only: event type, weight and duplicates.

    Returns
    -------
    rows, dropped
        The kept rows in order, and the drops of every reason of
        :data:`FILTER_REASONS` (the support reasons at 0).
    """
    dropped = dict.fromkeys(FILTER_REASONS, 0)
    if config.keep_events:
        wanted = np.flatnonzero(
            np.isin(rows.event_ids.to_numpy(zero_copy_only=False), config.keep_events)
        )
        rows = _drop(rows, ~np.isin(rows.events, wanted), dropped, "event_type")
    if config.min_weight is not None:
        with np.errstate(invalid="ignore"):
            rows = _drop(rows, ~(rows.weights >= config.min_weight), dropped, "low_weight")
    if config.drop_duplicates:
        rows = _drop(rows, _duplicates(rows), dropped, "duplicate")
    return rows, dropped


def support_round(
    rows: EventRows, item_counts: np.ndarray, config: IngestConfig
) -> tuple[EventRows, int, int]:
    """One round of the minimum-support filters: rare items, then rare users.

    Parameters
    ----------
    rows
        The rows to filter.
    item_counts
        The run-wide count of each item code of ``rows`` (indexed by code): over
        these rows alone (``np.bincount(rows.items)``), or over every partition
        of the run when ``rows`` hold only some users.
    config
        ``min_item_count`` and ``min_user_count``.

    Returns
    -------
    rows, rare_items, rare_users
        The kept rows in order, and the rows dropped for each reason.
    """
    dropped = {"rare_item": 0, "rare_user": 0}
    rare_items = item_counts[rows.items] < config.min_item_count
    rows = _drop(rows, rare_items, dropped, "rare_item")
    rare_users = (
        np.bincount(rows.users)[rows.users] < config.min_user_count
        if rows.size
        else np.zeros(0, dtype=bool)
    )
    rows = _drop(rows, rare_users, dropped, "rare_user")
    return rows, dropped["rare_item"], dropped["rare_user"]


def _drop(rows: EventRows, mask: np.ndarray, dropped: dict[str, int], reason: str) -> EventRows:
    count = int(mask.sum())
    dropped[reason] += count
    # Copying 20M rows to drop none costs half a second.
    return rows.keep(~mask) if count else rows


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
