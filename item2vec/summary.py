"""Plain-text summaries of a run: the metrics table and example neighbours by title."""

from __future__ import annotations

from typing import Any

import pandas as pd

METHODS = (("model", "item2vec"), ("popularity", "popularity"), ("item_knn", "item-kNN"))


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per method (model first, then baselines) with plain-float metric values."""
    rows = []
    for key, label in METHODS:
        values = metrics["model"] if key == "model" else metrics["baselines"][key]
        rows.append({"method": label, **{name: float(value) for name, value in values.items()}})
    return rows


def metrics_table(metrics: dict[str, Any]) -> str:
    """Fixed-width table of HR, NDCG, MRR and coverage per k, model beside the baselines."""
    names = [f"{m}@{k}" for k in metrics["k"] for m in ("hr", "ndcg", "mrr", "coverage")]
    names.append("unrankable")
    rows = metrics_rows(metrics)
    width = max(len(n) for n in names) + 1
    header = "method".ljust(12) + "".join(n.rjust(width) for n in names)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(row["method"].ljust(12) + "".join(f"{row[n]:.4f}".rjust(width) for n in names))
    return "\n".join(lines)


def example_neighbors(
    neighbors: pd.DataFrame,
    counts: pd.Series,
    titles: pd.Series | None,
    n_items: int = 3,
    k: int = 5,
) -> str:
    """The ``n_items`` most frequent items and their ``k`` nearest neighbours.

    Parameters
    ----------
    neighbors
        The published neighbour table (item_id, rank, neighbor_id, score).
    counts
        Training count per item id, to pick well-known items.
    titles
        Title per item id; ids are shown when it is None or lacks an item.
    """

    def name(item: str) -> str:
        if titles is not None and item in titles.index:
            return f"{titles[item]} [{item}]"
        return str(item)

    lines = []
    for item in counts.sort_values(ascending=False, kind="stable").index[:n_items]:
        lines.append(name(item))
        near = neighbors[(neighbors["item_id"] == item) & (neighbors["rank"] <= k)]
        for row in near.sort_values("rank").itertuples():
            lines.append(f"  {row.rank}. {name(row.neighbor_id)}  ({row.score:.3f})")
    return "\n".join(lines)
