"""A basket-shaped synthetic log with a known answer: complements, substitutes, repeats.

The catalogue is a grid of *product groups* (a recipe, a kit: pasta, sauce,
cheese), each with ``roles`` complementary products, each offered in
``variants`` interchangeable brands. Item ``(group, role, variant)``:

* its **complements** are the other roles of its group (bought together, in
  one basket);
* its **substitutes** are the other variants of its role (bought *instead*:
  each customer keeps to one variant of a group, so substitutes rarely share a
  basket or a customer).

A customer places orders days apart. Each order (one timestamp, several rows)
completes one or two groups, drawn by Zipf popularity, mostly from the
customer's two preferred departments, in the customer's variant with
probability ``loyalty``. A staple item of the customer's comes back in many
orders (repeat purchases). Rows of one order are in random order, as invoice
lines are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from item2vec.atomicfile import replacing

__all__ = ["ITEMS_PER_GROUP", "basket_log", "complement_pairs", "write_basket_log"]

EPOCH_START = 1_704_067_200  # 2024-01-01T00:00:00Z
DAY_S = 86_400
#: Items per group with the default 3 roles in 3 variants.
ITEMS_PER_GROUP = 9


def basket_log(
    users: int = 1_000,
    groups: int = 60,
    roles: int = 3,
    variants: int = 3,
    orders: float = 8.0,
    *,
    departments: int = 6,
    loyalty: float = 0.85,
    second_group: float = 0.4,
    repeat_share: float = 0.3,
    zipf_exponent: float = 0.8,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders of several items at one timestamp, with planted complements and substitutes.

    Parameters
    ----------
    users
        Customers; each places at least two orders.
    groups, roles, variants
        The catalogue is ``groups * roles * variants`` items. ``roles`` (at
        least 2) complementary products per group, each in ``variants``
        substitutable brands (at least 1).
    orders
        Mean orders per customer (2 plus a Poisson share).
    departments
        Groups are dealt into this many departments; a customer prefers two of
        them, which gives customers' histories a topic as real ones have.
    loyalty
        Probability that an item is in the customer's variant of its group;
        otherwise the variant is drawn uniformly. Lower values blur the
        line between complements and substitutes.
    second_group
        Probability that an order completes a second group.
    repeat_share
        Probability that an order also holds the customer's staple item again.
    zipf_exponent
        Popularity of the group of rank r is proportional to ``r ** -zipf_exponent``.
    seed
        Seed of the generator; equal arguments give equal logs.

    Returns
    -------
    events, truth
        ``events``: ``user_id``, ``item_id``, ``order_id``, ``timestamp`` (epoch
        seconds; every row of an order shares it), in time order.
        ``truth``: ``item_id``, ``group``, ``role``, ``variant``, ``department``.

    Raises
    ------
    ValueError
        If a size or probability is out of range.
    """
    _check(users, groups, roles, variants, orders, departments, loyalty, second_group, repeat_share)
    rng = np.random.default_rng(seed)
    weight = (rng.permutation(groups) + 1.0) ** -zipf_exponent
    department = rng.permutation(groups) % departments
    first_choice = rng.integers(0, departments, size=users)
    other = (first_choice + 1 + rng.integers(0, max(departments - 1, 1), size=users)) % departments
    preferred = np.stack((first_choice, other), axis=1)
    # The customer's variant of every group, and their staple item.
    taste = rng.integers(0, variants, size=(users, groups), dtype=np.int16)
    n_items = groups * roles * variants
    staple = rng.integers(0, n_items, size=users)

    n_orders = 2 + rng.poisson(max(orders - 2.0, 0.0), size=users)
    order_user = np.repeat(np.arange(users), n_orders)
    n_total = len(order_user)
    # Group slots: one per order, a second for some.
    extra = rng.random(n_total) < second_group
    slot_order = np.concatenate((np.arange(n_total), np.flatnonzero(extra)))
    slot_user = order_user[slot_order]
    in_preferred = rng.random(len(slot_order)) < 0.8
    slot_department = np.where(
        in_preferred,
        preferred[slot_user, rng.integers(0, 2, size=len(slot_order))],
        rng.integers(0, departments, size=len(slot_order)),
    )
    slot_group = _draw_groups(rng, slot_department, department, weight, departments)
    # Each group slot buys a random subset of at least two of its roles.
    take = rng.integers(2, roles + 1, size=len(slot_order))
    role_rank = np.argsort(rng.random((len(slot_order), roles)), axis=1)
    chosen = np.arange(roles)[None, :] < take[:, None]
    row_slot, role_pos = np.nonzero(chosen)
    role = role_rank[row_slot, role_pos]
    group = slot_group[row_slot]
    user = slot_user[row_slot]
    loyal = rng.random(len(row_slot)) < loyalty
    variant = np.where(loyal, taste[user, group], rng.integers(0, variants, size=len(row_slot)))
    item = (group * roles + role) * variants + variant
    order = slot_order[row_slot]
    # Repeat purchases: the staple comes back in a share of the orders.
    repeats = np.flatnonzero(rng.random(n_total) < repeat_share)
    item = np.concatenate((item, staple[order_user[repeats]]))
    order = np.concatenate((order, repeats))
    # Order time: the customer's start plus gaps of 1 to 30 days.
    gaps = rng.integers(DAY_S, 30 * DAY_S, size=n_total)
    first = np.concatenate(([0], np.cumsum(n_orders)[:-1]))
    elapsed = np.cumsum(gaps)
    start = EPOCH_START + rng.integers(0, 60 * DAY_S, size=users)
    order_time = start[order_user] + elapsed - elapsed[first][order_user]
    # One row per item and order (a repeat of an item already in the order adds nothing);
    # rows of an order in random order, orders in time order.
    pairs = np.unique(order.astype(np.int64) * n_items + item)
    order, item = pairs // n_items, pairs % n_items
    rows = np.lexsort((rng.random(len(order)), order, order_time[order]))
    order, item = order[rows], item[rows]
    width_u, width_i, width_o = len(str(users - 1)), len(str(n_items - 1)), len(str(n_total - 1))
    user_text = np.char.add("c", np.char.zfill(order_user.astype(str), width_u))
    item_text = np.char.add("p", np.char.zfill(np.arange(n_items).astype(str), width_i))
    order_text = np.char.add("o", np.char.zfill(np.arange(n_total).astype(str), width_o))
    events = pd.DataFrame(
        {
            "user_id": user_text[order].astype(object),
            "item_id": item_text[item].astype(object),
            "order_id": order_text[order].astype(object),
            "timestamp": order_time[order].astype(np.int64),
        }
    )
    codes = np.arange(n_items)
    item_group = codes // (roles * variants)
    truth = pd.DataFrame(
        {
            "item_id": item_text.astype(object),
            "group": item_group,
            "role": (codes // variants) % roles,
            "variant": codes % variants,
            "department": department[item_group],
        }
    )
    return events, truth


def _draw_groups(
    rng: np.random.Generator,
    wanted: np.ndarray,
    department: np.ndarray,
    weight: np.ndarray,
    departments: int,
) -> np.ndarray:
    """A group per slot, from the slot's department, by popularity (inverse CDF)."""
    members = np.argsort(department, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(department, minlength=departments))))
    member_weight = weight[members]
    running = np.cumsum(member_weight)
    before = np.concatenate(([0.0], running))[bounds[:-1]]
    totals = np.concatenate(([0.0], running))[bounds[1:]] - before
    target = before[wanted] + rng.random(len(wanted)) * totals[wanted]
    place = np.searchsorted(running, target, side="right")
    place = np.clip(place, bounds[wanted], bounds[wanted + 1] - 1)
    return members[place]


def complement_pairs(truth: pd.DataFrame) -> pd.DataFrame:
    """Every (item, other) pair of the truth with its relation.

    Returns
    -------
    pandas.DataFrame
        ``item_id``, ``other_id`` and ``relation``: ``complement`` (same group,
        other role) or ``substitute`` (same group and role, other variant).
    """
    pairs = truth.merge(truth, on="group", suffixes=("", "_other"))
    pairs = pairs[pairs["item_id"] != pairs["item_id_other"]]
    relation = np.where(pairs["role"] == pairs["role_other"], "substitute", "complement")
    return pd.DataFrame(
        {
            "item_id": pairs["item_id"].to_numpy(),
            "other_id": pairs["item_id_other"].to_numpy(),
            "relation": relation,
        }
    )


def write_basket_log(path: str | Path, users: int, seed: int = 0, **sizes: Any) -> dict[str, Any]:
    """Write :func:`basket_log` as CSV, with its truth as ``<stem>.truth.csv`` beside it.

    Parameters
    ----------
    path
        Output file: Parquet for a name ending in ``.parquet`` or ``.pq``, CSV
        otherwise; written beside the target and renamed into place.
    users, seed, sizes
        As for :func:`basket_log` (``groups``, ``roles``, ``variants``, ``orders``...).

    Returns
    -------
    dict
        ``path``, ``truth_path``, ``events``, ``users``, ``orders``, ``items``,
        ``items_seen``, ``mean_basket`` (rows per order), ``repeat_rows`` (rows
        whose item the customer bought in an earlier order) and ``seed``.
    """
    events, truth = basket_log(users=users, seed=seed, **sizes)
    path = Path(path)
    truth_path = path.with_name(path.name.split(".")[0] + ".truth.csv")
    with replacing(path) as partial:
        if path.name.lower().endswith((".parquet", ".pq")):
            pq.write_table(pa.Table.from_pandas(events, preserve_index=False), partial)
        else:
            events.to_csv(partial, index=False)
    with replacing(truth_path) as partial:
        truth.to_csv(partial, index=False)
    first_time = events.duplicated(["user_id", "item_id"])
    orders = events["order_id"].nunique()
    return {
        "path": str(path),
        "truth_path": str(truth_path),
        "events": len(events),
        "users": int(events["user_id"].nunique()),
        "orders": int(orders),
        "items": len(truth),
        "items_seen": int(events["item_id"].nunique()),
        "mean_basket": round(len(events) / orders, 3),
        "repeat_rows": int(first_time.sum()),
        "seed": seed,
    }


def _check(users, groups, roles, variants, orders, departments, *shares) -> None:
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    if groups < 1 or roles < 2 or variants < 1:
        raise ValueError(
            f"need groups >= 1, roles >= 2 and variants >= 1; got {groups}, {roles}, {variants}"
        )
    if not 1 <= departments <= groups:
        raise ValueError(f"departments must be between 1 and groups ({groups}), got {departments}")
    if orders < 2:
        raise ValueError(f"orders (mean per customer) must be at least 2, got {orders}")
    names = ("loyalty", "second_group", "repeat_share")
    for name, value in zip(names, shares, strict=True):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
