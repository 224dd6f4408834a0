"""Synthetic behaviour logs with planted structure and a known answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from item2vec.atomicfile import replacing


def planted_clusters(
    n_users: int = 200,
    n_items: int = 60,
    n_clusters: int = 2,
    events_per_user: int = 20,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users who each browse only one cluster of items.

    Items are split into ``n_clusters`` disjoint clusters; every user is assigned
    one cluster and draws all their events from it (uniformly). A good embedding
    therefore puts every item's nearest neighbours in the item's own cluster.

    Parameters
    ----------
    n_users, n_items, n_clusters, events_per_user
        Sizes of the log.
    seed
        Seed of the generator; equal seeds give equal logs.

    Returns
    -------
    events, truth
        ``events`` has ``user_id``, ``item_id`` (strings such as ``"u0007"``,
        ``"i0031"``) and ``timestamp`` (epoch seconds, increasing per user);
        ``truth`` maps ``item_id`` to ``cluster``.
    """
    if n_items < n_clusters:
        raise ValueError(f"n_items ({n_items}) must be at least n_clusters ({n_clusters})")
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % n_clusters
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    user_cluster = np.arange(n_users) % n_clusters
    width = min(len(m) for m in members)
    picks = rng.integers(0, width, size=(n_users, events_per_user))
    member_matrix = np.stack([m[:width] for m in members])
    items = member_matrix[user_cluster[:, None], picks]
    base = 1_600_000_000 + rng.integers(0, 10_000_000, size=n_users)
    times = base[:, None] + np.cumsum(
        rng.integers(30, 600, size=(n_users, events_per_user)), axis=1
    )
    width_u = len(str(n_users))
    width_i = len(str(n_items))
    events = pd.DataFrame(
        {
            "user_id": np.repeat([f"u{u:0{width_u}d}" for u in range(n_users)], events_per_user),
            "item_id": [f"i{i:0{width_i}d}" for i in items.ravel()],
            "timestamp": times.ravel(),
        }
    )
    truth = pd.DataFrame(
        {"item_id": [f"i{i:0{width_i}d}" for i in range(n_items)], "cluster": item_cluster}
    )
    return events, truth


# --- Realistic logs at scale ----------------------------------------------------------------

# Users are generated in fixed blocks, each with its own child seed, so the events
# do not depend on how many blocks are batched into one write (``chunk_events``).
BLOCK_USERS = 1024
EPOCH_START = 1_704_067_200  # 2024-01-01T00:00:00Z
START_SPREAD_S = 90 * 86_400  # users join over three months
ACTIVITY_SPAN_S = 180 * 86_400  # a typical user's history spans about half a year
WITHIN_GAP_S = (10.0, 600.0)
BETWEEN_GAP_S = (3_600.0, 14 * 86_400.0)
EVENT_TYPES = ("view", "cart", "purchase")
EVENT_TYPE_SHARES = (0.95, 0.04, 0.01)
# Heavy-tailed activity: a lognormal with sigma 1.2 puts the busiest of 200k users
# at a few hundred times the median, as in real shop logs.
ACTIVITY_SIGMA = 1.2
# Generated ids and types never contain a delimiter or a quote, so nothing needs quoting.
UNQUOTED = pacsv.WriteOptions(quoting_style="none")
LOG_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("timestamp", pa.int64()),
        ("event_type", pa.string()),
    ]
)


@dataclass
class _World:
    """Everything shared by all users: item popularity and clusters, user activity."""

    n_clusters: int
    item_cluster: np.ndarray  # cluster of each item index
    members: np.ndarray  # item indices grouped by cluster
    bounds: np.ndarray  # members[bounds[c]:bounds[c + 1]] are cluster c
    keys: np.ndarray  # cluster + within-cluster CDF, increasing over ``members``
    item_ids: pa.Array
    user_number: np.ndarray  # id number of each generated user (a permutation)
    user_width: int
    user_events: np.ndarray


def _format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded decimal numbers, formatted in Arrow rather than in Python."""
    text = pc.cast(pa.array(numbers, type=pa.int64()), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(text, width=width, padding="0"), "")


def _make_world(
    rng: np.random.Generator,
    events: int,
    users: int,
    items: int,
    clusters: int,
    zipf_exponent: float,
) -> _World:
    # Popularity follows item rank, and ranks are shuffled over ids so that id order
    # says nothing about popularity or cluster.
    rank = rng.permutation(items)
    weight = (rank + 1.0) ** -zipf_exponent
    item_cluster = rng.permutation(items) % clusters
    members = np.argsort(item_cluster, kind="stable")
    sizes = np.bincount(item_cluster, minlength=clusters)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    member_cluster = item_cluster[members]
    member_weight = weight[members]
    running = np.cumsum(member_weight)
    before = running[bounds[:-1]] - member_weight[bounds[:-1]]
    totals = np.bincount(member_cluster, weights=member_weight, minlength=clusters)
    keys = member_cluster + (running - before[member_cluster]) / totals[member_cluster]
    # Rounding must not leave a gap at the top of a cluster: pin each cluster's end.
    keys[bounds[1:] - 1] = np.arange(1, clusters + 1)
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, size=users)
    # Everyone has at least one event; the rest are shared out by activity, exactly.
    user_events = 1 + rng.multinomial(events - users, activity / activity.sum())
    return _World(
        n_clusters=clusters,
        item_cluster=item_cluster,
        members=members,
        bounds=bounds,
        keys=keys,
        item_ids=_format_ids("i", np.arange(items), max(6, len(str(items - 1)))),
        user_number=rng.permutation(users),
        user_width=max(7, len(str(users - 1))),
        user_events=user_events,
    )


def _log_uniform(rng: np.random.Generator, low: np.ndarray | float, high, size: int) -> np.ndarray:
    return np.exp(np.log(low) + rng.random(size) * (np.log(high) - np.log(low)))


def _generate_block(
    world: _World,
    first: int,
    stop: int,
    seed: np.random.SeedSequence,
    preferred_share: float,
    session_events: float,
) -> dict[str, np.ndarray]:
    """Events of users ``first``..``stop - 1``, grouped by user and in time order."""
    rng = np.random.default_rng(seed)
    counts = world.user_events[first:stop]
    n_users = len(counts)
    n = int(counts.sum())
    user = np.repeat(np.arange(n_users), counts)
    first_pos = np.concatenate(([0], np.cumsum(counts)[:-1]))
    is_first = np.zeros(n, dtype=bool)
    is_first[first_pos] = True

    # Geometric session lengths: each later event opens a new session with 1/mean chance.
    new_session = is_first | (rng.random(n) < 1.0 / session_events)
    session = np.cumsum(new_session) - 1
    n_sessions = int(session[-1]) + 1
    preferred = rng.integers(0, world.n_clusters, size=n_users)
    stays = rng.random(n_sessions) < preferred_share
    wanders = rng.integers(0, world.n_clusters, size=n_sessions)
    session_cluster = np.where(stays, preferred[user[new_session]], wanders)
    cluster = session_cluster[session]

    # Inverse-CDF draw inside the session's cluster; clamp in case c + u rounds up to c + 1.
    draw = np.searchsorted(world.keys, cluster + rng.random(n), side="right")
    item = world.members[np.minimum(draw, world.bounds[cluster + 1] - 1)]
    kind = np.searchsorted(np.cumsum(EVENT_TYPE_SHARES[:-1]), rng.random(n), side="right")
    # A session opens with a view; carts and purchases act on the item viewed last,
    # which never reaches back into another session.
    kind[new_session] = 0
    last_view = np.maximum.accumulate(np.where(kind == 0, np.arange(n), 0))
    item = item[last_view]

    start = EPOCH_START + rng.integers(0, START_SPREAD_S, size=n_users)
    # Busy users come back more often, so their histories still span months, not years.
    busiest_gap = np.clip(
        ACTIVITY_SPAN_S * session_events / counts, 3 * BETWEEN_GAP_S[0], BETWEEN_GAP_S[1]
    )
    within = _log_uniform(rng, WITHIN_GAP_S[0], WITHIN_GAP_S[1], n)
    between = _log_uniform(rng, BETWEEN_GAP_S[0], busiest_gap[user], n)
    gap = np.rint(np.where(new_session, between, within)).astype(np.int64)
    gap[is_first] = 0
    elapsed = np.cumsum(gap)
    timestamp = start[user] + elapsed - elapsed[first_pos][user]
    return {
        "user": world.user_number[first + user],
        "item": item,
        "timestamp": timestamp,
        "kind": kind,
        "sessions": np.array(n_sessions),
    }


def _chunk_table(world: _World, blocks: list[dict[str, np.ndarray]]) -> pa.Table:
    """One written chunk: the blocks' events interleaved in time order, like a real log."""
    parts = {key: np.concatenate([b[key] for b in blocks]) for key in ("user", "item", "kind")}
    timestamp = np.concatenate([b["timestamp"] for b in blocks])
    # Stable, so events of equal time keep their generation order: deterministic.
    order = np.argsort(timestamp, kind="stable")
    numbers, local = np.unique(parts["user"][order], return_inverse=True)
    users = _format_ids("u", numbers, world.user_width).take(pa.array(local))
    return pa.table(
        {
            "user_id": users,
            "item_id": world.item_ids.take(pa.array(parts["item"][order])),
            "timestamp": pa.array(timestamp[order], type=pa.int64()),
            "event_type": pa.array(EVENT_TYPES).take(pa.array(parts["kind"][order])),
        },
        schema=LOG_SCHEMA,
    )


def _log_stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def write_synthetic_log(
    path: str | Path,
    events: int,
    users: int,
    items: int,
    clusters: int = 20,
    seed: int = 0,
    chunk_events: int = 1_000_000,
    *,
    zipf_exponent: float = 1.0,
    preferred_share: float = 0.85,
    session_events: float = 8.0,
) -> dict[str, Any]:
    """Write a realistic behaviour log with planted item clusters, streaming in chunks.

    Items have Zipf-like popularity over a shuffled rank and each belongs to one
    of ``clusters`` planted clusters. Users browse in sessions: a session picks a
    cluster (the user's preferred one with probability ``preferred_share``) and
    draws items from it by popularity, 10 s to 10 min apart; sessions are hours
    to days apart. Activity per user is heavy-tailed. Most events are views; a
    few are carts and purchases of the item just viewed. Memory stays bounded by
    ``chunk_events`` whatever ``events`` is, so 20 million events fit easily.

    Parameters
    ----------
    path
        Output file. A name ending in ``.parquet`` or ``.pq`` is written as Parquet
        (zstd), anything else as CSV (``.gz`` compresses it). The file is written
        beside the target and renamed into place, so a killed run leaves no partial log.
    events
        Exact number of events (rows). Must be at least ``users``.
    users
        Number of users; each has at least one event. Ids look like ``"u0000123"``.
    items
        Catalogue size. Ids look like ``"i000045"``; rare items may never occur.
    clusters
        Planted clusters, between 1 and ``items``. Fewer, larger clusters make the
        structure easier to recover; about ``items / 2500`` resembles a shop's categories.
    seed
        Seed of the generator. Equal arguments give identical files. The events of
        every user do not depend on ``chunk_events``; only how users' events
        interleave in the file does, because each chunk is written in time order.
    chunk_events
        Events generated and written at a time (whole blocks of 1,024 users are
        added until this is reached). About 100 bytes of memory per event; the
        default of one million keeps the generator near 150 MB.
    zipf_exponent
        Popularity of the item of rank r is proportional to ``r ** -zipf_exponent``.
        1.0 is typical of e-commerce; 0 gives uniform popularity.
    preferred_share
        Probability that a session stays in the user's preferred cluster; the rest
        pick a cluster uniformly. Lower values blur the planted structure.
    session_events
        Mean events per session (lengths are geometric).

    Returns
    -------
    dict
        ``path``, ``clusters_path`` (the ground truth ``<stem>.clusters.csv`` with
        ``item_id`` and ``cluster``), ``format``, ``events``, ``users``, ``items``,
        ``items_seen``, ``clusters``, ``sessions``, ``event_types`` (counts by type),
        ``chunks`` and ``seed``.

    Raises
    ------
    ValueError
        If a size is out of range.
    """
    _check_sizes(events, users, items, clusters, chunk_events, preferred_share, session_events)
    path = Path(path)
    parquet = path.name.lower().endswith((".parquet", ".pq"))
    global_seed, block_seed = np.random.SeedSequence(seed).spawn(2)
    world = _make_world(
        np.random.default_rng(global_seed), events, users, items, clusters, zipf_exponent
    )
    starts = np.arange(0, users, BLOCK_USERS)
    block_seeds = block_seed.spawn(len(starts))
    block_events = np.add.reduceat(world.user_events, starts)

    clusters_path = path.with_name(_log_stem(path) + ".clusters.csv")
    item_hits = np.zeros(items, dtype=np.int64)
    type_counts = np.zeros(len(EVENT_TYPES), dtype=np.int64)
    sessions = chunks = 0
    with replacing(path) as partial:
        if parquet:
            writer = pq.ParquetWriter(partial, LOG_SCHEMA, compression="zstd")
        else:
            sink = pa.output_stream(partial, compression="gzip" if path.suffix == ".gz" else None)
            writer = pacsv.CSVWriter(sink, LOG_SCHEMA, write_options=UNQUOTED)
        with writer:
            pending: list[dict[str, np.ndarray]] = []
            pending_events = 0
            # Loop over blocks of users (never over single users or events).
            for number, first in enumerate(starts):
                stop = min(first + BLOCK_USERS, users)
                block = _generate_block(
                    world, first, stop, block_seeds[number], preferred_share, session_events
                )
                pending.append(block)
                pending_events += int(block_events[number])
                sessions += int(block["sessions"])
                item_hits += np.bincount(block["item"], minlength=items)
                type_counts += np.bincount(block["kind"], minlength=len(EVENT_TYPES))
                if pending_events >= chunk_events or stop == users:
                    writer.write_table(_chunk_table(world, pending))
                    pending, pending_events = [], 0
                    chunks += 1
        if not parquet:
            sink.close()
    truth = pa.table(
        {"item_id": world.item_ids, "cluster": pa.array(world.item_cluster, type=pa.int32())}
    )
    pacsv.write_csv(truth, clusters_path, write_options=UNQUOTED)
    return {
        "path": str(path),
        "clusters_path": str(clusters_path),
        "format": "parquet" if parquet else "csv",
        "events": int(events),
        "users": int(users),
        "items": int(items),
        "items_seen": int(np.count_nonzero(item_hits)),
        "clusters": int(clusters),
        "sessions": sessions,
        "event_types": dict(zip(EVENT_TYPES, type_counts.tolist(), strict=True)),
        "chunks": chunks,
        "seed": seed,
    }


def _check_sizes(
    events: int,
    users: int,
    items: int,
    clusters: int,
    chunk_events: int,
    preferred_share: float,
    session_events: float,
) -> None:
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    if events < users:
        raise ValueError(f"events ({events}) must be at least users ({users}): every user has one")
    if not 1 <= clusters <= items:
        raise ValueError(f"clusters must be between 1 and items ({items}), got {clusters}")
    if chunk_events < 1:
        raise ValueError(f"chunk_events must be at least 1, got {chunk_events}")
    if not 0.0 <= preferred_share <= 1.0:
        raise ValueError(f"preferred_share must be between 0 and 1, got {preferred_share}")
    if session_events < 1.0:
        raise ValueError(f"session_events must be at least 1, got {session_events}")
