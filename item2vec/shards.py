"""Evaluation, recommendations and neighbours in shards that combine exactly.

A cluster spreads a stage over its workers by giving each one a shard: a
contiguous slice of the evaluation cases (users), of the users to recommend
for, or of the items whose neighbours are listed. Every shard reads the whole
training side (the catalogue, item-kNN's matrix and the model are global) and
ranks only its own rows, so the work that grows with users is divided while
each shard's answer stays that of the whole run for its rows.

The shards' answers combine exactly, not approximately:

* metrics are means over cases and shares of the catalogue, so each shard
  returns a :class:`item2vec.ranking.RankTally` (integer counts of hits by
  rank, the distinct items shown) and the tallies add up; the metrics of the
  merged tally are, bit for bit, those of one unsharded evaluation;
* recommendation and neighbour tables are concatenated in shard order.

These are plain functions: a Prefect task or a Dask worker calls them, and
nothing here imports either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from item2vec import stages
from item2vec.config import EvaluateConfig, PipelineConfig, PublishConfig
from item2vec.evaluate import evaluate_baselines, evaluate_model, knn_validation
from item2vec.fallback import fallback_from_tally, fallback_tally
from item2vec.metrics_record import CURVE_K, combine_metrics
from item2vec.neighbor_eval import NeighborTally
from item2vec.ranking import RankTally
from item2vec.split import Holdout, Split, evaluation_sample, select_rows
from item2vec.vectors import ItemVectors

__all__ = [
    "baseline_part",
    "combine_parts",
    "knn_validation_part",
    "model_part",
    "neighbors_part",
    "recommendations_part",
    "shard_rows",
]

#: What a part keeps of each scorer's result: never the per-case rankings.
_KEPT = ("tally", "settings")


def shard_rows(n: int, shard: int, shards: int) -> slice:
    """Rows of shard ``shard`` of ``shards`` over ``n`` rows: contiguous, sizes within one.

    Raises
    ------
    ValueError
        When ``shards`` < 1 or ``shard`` is not in ``0 .. shards - 1``.
    """
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: need shards >= 1 and 0 <= shard < shards")
    return slice(n * shard // shards, n * (shard + 1) // shards)


def _cases(holdout: Holdout, config: EvaluateConfig, shard: int, shards: int) -> Holdout:
    """The shard's slice of the fixed evaluation sample (sampled once, then sliced)."""
    sample = evaluation_sample(holdout, config.max_users)
    return select_rows(sample, shard_rows(len(sample), shard, shards))


def _unsampled(config: EvaluateConfig) -> EvaluateConfig:
    # The shard is already a slice of the sample: sampling it again would shrink it.
    return config.model_copy(update={"max_users": 0})


def knn_validation_part(
    validation: Split | None, config: EvaluateConfig, shard: int = 0, shards: int = 1
) -> dict[str, RankTally] | None:
    """Item-kNN's validation tallies per query length, on one shard of the validation cases.

    Combine the parts with :func:`item2vec.evaluate.knn_choice`.
    """
    if validation is None:
        return None
    n = len(evaluation_sample(validation.test, config.max_users))
    return knn_validation(validation, config, shard_rows(n, shard, shards))


def baseline_part(
    split: Split,
    config: EvaluateConfig,
    settings: dict[str, Any],
    categories: pa.Table | None = None,
    shard: int = 0,
    shards: int = 1,
) -> dict[str, Any] | None:
    """Popularity and item-kNN on one shard of the test cases, item-kNN's settings given.

    Returns
    -------
    dict or None
        :func:`item2vec.evaluate.evaluate_baselines`'s result for the shard's
        cases (item-kNN's per-case ranking included, for :func:`model_part`'s
        fallback); None for an empty shard.
    """
    holdout = _cases(split.test, config, shard, shards)
    if not len(holdout):
        return None
    return evaluate_baselines(
        split.training_sequences(),
        holdout,
        _unsampled(config),
        categories=categories,
        settings=settings,
    )


def model_part(
    vectors: ItemVectors,
    split: Split,
    config: EvaluateConfig,
    baselines: dict[str, Any] | None,
    neighbors_scoring: str | None = None,
    categories: pa.Table | None = None,
    shard: int = 0,
    shards: int = 1,
) -> dict[str, Any] | None:
    """The model, and the model with its fallback, on one shard of the test cases.

    Parameters
    ----------
    baselines
        :func:`baseline_part` of the same shard: its item-kNN ranking is the
        fallback, and its tallies are carried on.

    Returns
    -------
    dict or None
        Tallies only (no per-case rankings), small enough to send anywhere:
        ``cases``, ``of_all``, ``catalogue_size``, ``model``, ``popularity``,
        ``item_knn`` and ``fallback``; None for an empty shard.
    """
    holdout = _cases(split.test, config, shard, shards)
    if baselines is None or not len(holdout):
        return None
    train = split.training_sequences()
    model = evaluate_model(
        vectors, train, holdout, _unsampled(config), neighbors_scoring, categories
    )
    knn = baselines["item_knn"]
    return {
        "cases": len(holdout),
        "of_all": len(split.test),
        "catalogue_size": model["ranking"]["catalogue_size"],
        "model": _kept(model),
        "popularity": _kept(baselines["popularity"]),
        "item_knn": _kept(knn),
        "fallback": fallback_tally(model["ranking"], model["served"], knn["ranking"], config.k),
    }


def _kept(result: dict[str, Any]) -> dict[str, Any]:
    kept = {key: result[key] for key in _KEPT if key in result}
    neighbors = result.get("neighbors")
    if neighbors is not None:
        kept["neighbors"] = {"tally": neighbors["tally"], "scoring": neighbors.get("scoring")}
    return kept


def combine_parts(
    parts: list[dict[str, Any] | None], config: EvaluateConfig, category_col: str | None = None
) -> dict[str, Any]:
    """The run's metrics record from every shard's :func:`model_part`.

    The same record as :func:`item2vec.evaluate.combine_metrics` of one
    unsharded evaluation, exactly.

    Raises
    ------
    ValueError
        When no shard held a case.
    """
    parts = [part for part in parts if part is not None]
    if not parts:
        raise ValueError("no shard held an evaluation case; is the test split empty?")
    size = parts[0]["catalogue_size"]
    results = {name: _merged(name, parts, config, size) for name in _SCORERS}
    fallback = RankTally.merge([part["fallback"][0] for part in parts])
    unserved = sum(part["fallback"][1] for part in parts)
    results["model"]["with_fallback"] = fallback_from_tally((fallback, unserved), config.k, size)
    counts = (sum(part["cases"] for part in parts), parts[0]["of_all"])
    baselines = {name: results[name] for name in ("popularity", "item_knn")}
    return combine_metrics(results["model"], baselines, counts, config, category_col)


_SCORERS = ("model", "popularity", "item_knn")


def _merged(name: str, parts: list[dict], config: EvaluateConfig, size: int) -> dict[str, Any]:
    tally = RankTally.merge([part[name]["tally"] for part in parts])
    result: dict[str, Any] = {**tally.metrics(config.k, size), "curve": tally.curve(CURVE_K)}
    first = parts[0][name]
    if "settings" in first:
        result["settings"] = first["settings"]
    if "neighbors" in first:
        merged = NeighborTally.merge([part[name]["neighbors"]["tally"] for part in parts])
        result["neighbors"] = merged.metrics(config.k)
        if first["neighbors"]["scoring"] is not None:
            result["neighbors"] = {"scoring": first["neighbors"]["scoring"], **result["neighbors"]}
    return result


def recommendations_part(
    vectors: ItemVectors,
    sequences: pa.Table,
    config: PipelineConfig,
    fallback_knn: Mapping[str, Any] | None = None,
    shard: int = 0,
    shards: int = 1,
) -> pa.Table:
    """``user_recommendations.parquet`` rows of one shard of the users, in their order.

    Concatenated in shard order (``pyarrow.concat_tables``), the parts are the
    table of :func:`item2vec.stages.recommendations` over every user.
    """
    rows = shard_rows(sequences.num_rows, shard, shards)
    return stages.recommendations(vectors, sequences, config, fallback_knn, rows)


def neighbors_part(
    vectors: ItemVectors, config: PublishConfig, shard: int = 0, shards: int = 1
) -> pa.Table:
    """``item_neighbors.parquet`` rows of one block of items; blocks concatenate in order."""
    return stages.neighbors(vectors, config, shard_rows(len(vectors), shard, shards))
