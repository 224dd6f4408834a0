"""Synthetic behaviour logs with planted structure and a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
