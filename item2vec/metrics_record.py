"""The metrics record of a run: the model's and the baselines' results combined.

What the manifest's ``metrics`` holds, built from the scorers' results of
:mod:`item2vec.evaluate` (or of its shards, :mod:`item2vec.shards`): their
working parts (rankings, tallies, settings) are taken out, the model with its
fallback and the neighbour tables are put beside each other.
"""

from __future__ import annotations

from typing import Any

from item2vec.config import EvaluateConfig
from item2vec.fallback import fallback_metrics
from item2vec.split import Holdout, evaluation_sample

__all__ = ["CURVE_K", "WORKING_KEYS", "combine_metrics"]

#: HR@k is also reported for every k up to this, for the report's curve.
CURVE_K = 50
#: Keys of a scorer's result that serve the combined record, never the manifest.
WORKING_KEYS = ("ranking", "served", "neighbors", "settings", "tally", "with_fallback")


def combine_metrics(
    model: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    holdout: Holdout | tuple[int, int],
    config: EvaluateConfig,
    category_col: str | None = None,
) -> dict[str, Any]:
    """The metrics record of a run from the model's and the baselines' results.

    ``holdout`` is the test cases, or ``(evaluated, of_all)`` case counts (a
    sharded evaluation, :mod:`item2vec.shards`, whose ``model`` then holds
    ``with_fallback``).

    Returns
    -------
    dict
        ``{"k": [...], "model": {...}, "baselines": {"popularity": {...}, "item_knn": {...}},
        "users": n, "curve": {...}}``, as in the manifest. ``users`` counts the
        users evaluated; when they are a sample, ``sampled_from`` counts all.
        When the results hold them, also ``model_with_fallback`` (the model,
        with item-kNN then popularity for the cases it cannot query),
        ``baseline_settings`` and ``neighbors`` (the model's and item-kNN's
        neighbour tables, item to item; ``category`` names the category column).
    """
    results = {"model": dict(model), **{name: dict(r) for name, r in baselines.items()}}
    working = {name: {key: r.pop(key, None) for key in WORKING_KEYS} for name, r in results.items()}
    if isinstance(holdout, tuple):
        evaluated, total = holdout
    else:
        evaluated, total = len(evaluation_sample(holdout, config.max_users)), len(holdout)
    sample = {"sampled_from": total} if evaluated < total else {}
    record = {
        "k": list(config.k),
        "scoring": config.scoring,
        "query_items": config.query_items,
        "query": config.query,
        "query_half_life": config.query_half_life,
        "knn_blend": config.knn_blend,
        "split": config.split,
        "exclude_seen": config.exclude_seen,
        "users": evaluated,
        **sample,
        "curve": {
            "k": list(range(1, CURVE_K + 1)),
            **{n: r.pop("curve") for n, r in results.items() if "curve" in r},
        },
        "model": results["model"],
        "baselines": {"popularity": results["popularity"], "item_knn": results["item_knn"]},
    }
    model_work, knn_work = working["model"], working.get("item_knn", {})
    if model_work["with_fallback"] is not None:
        record["model_with_fallback"] = model_work["with_fallback"]
    elif model_work["ranking"] is not None and knn_work.get("ranking") is not None:
        record["model_with_fallback"] = fallback_metrics(
            model_work["ranking"], model_work["served"], knn_work["ranking"], config.k
        )
    if knn_work.get("settings"):
        record["baseline_settings"] = {"item_knn": knn_work["settings"]}
    if model_work["neighbors"] is not None or knn_work.get("neighbors") is not None:
        model_neighbors = dict(model_work["neighbors"] or {})
        knn_neighbors = dict(knn_work.get("neighbors") or {})
        scoring = model_neighbors.pop("scoring", None)
        model_neighbors.pop("tally", None)
        knn_neighbors.pop("tally", None)
        figures = [model_neighbors, knn_neighbors]
        has_category = any("category_items" in f for f in figures)
        record["neighbors"] = {
            "scoring": scoring,
            "query": "the last training item alone; only the item itself excluded",
            "category": f"first value of {category_col}" if has_category else None,
            "model": model_neighbors,
            "item_knn": knn_neighbors,
        }
    return record
