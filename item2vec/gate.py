"""The quality gate: may this model become LATEST?

Three checks, each recorded with its reason:

* **baseline**: the model beats popularity on the primary metric by ``margin``;
* **regression**: it is not more than ``max_regression`` below LATEST's figure
  (or the evaluation's noise, when that is larger), when LATEST was evaluated
  comparably (same inputs and evaluation protocol);
* **stability** (optional): the mean overlap of each item's top-10 neighbours
  with LATEST's is at least ``min_stability``.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from item2vec.config import PipelineConfig
from item2vec.errors import ConfigError

#: Evaluation settings that must match for two runs' metrics to be comparable.
PROTOCOL_FIELDS = ("split", "test_days", "query_items", "exclude_seen", "k")


def comparable(config: PipelineConfig, previous: dict[str, Any]) -> bool:
    """Whether LATEST's metrics were measured on the same inputs under the same protocol.

    The same input paths are required (their content may have grown, as a
    nightly log does), and the same split, query and exclusion settings.
    """
    previous_config = previous.get("config", {})
    previous_eval = previous_config.get("evaluate", {})
    current_eval = config.evaluate.model_dump(mode="json")
    same_protocol = all(previous_eval.get(f) == current_eval[f] for f in PROTOCOL_FIELDS)
    same_inputs = previous_config.get("ingest", {}).get("paths") == config.ingest.paths
    return same_protocol and same_inputs


def allowed_drop(before: float, max_regression: float, users: int) -> tuple[float, str]:
    """How far below LATEST's figure a model may fall, and why.

    The larger of ``max_regression`` of LATEST's figure and the evaluation's own
    noise: two standard errors of the difference of two hit rates measured on
    ``users`` users. With 610 users and HR@10 near 0.11 that noise is about 0.036
    (a third of the figure), and two trainings on the same data differ by up to
    0.018, so a plain 10% rule would refuse models that are no worse.
    """
    relative = before * max_regression
    if users <= 0 or not 0.0 < before < 1.0:
        return relative, f"{max_regression:.0%}"
    noise = 2.0 * math.sqrt(2.0 * before * (1.0 - before) / users)
    if noise > relative:
        return noise, f"2 standard errors on {users:,} users"
    return relative, f"{max_regression:.0%}"


def check_primary_metric(config: PipelineConfig) -> None:
    """Refuse, before any training, a primary metric whose cut-off is not evaluated.

    Raises
    ------
    ConfigError
        Naming the metric, the cut-offs there are, and the two settings.
    """
    metric = config.publish.primary_metric
    cutoff = int(metric.partition("@")[2])
    if cutoff not in config.evaluate.k:
        cutoffs = ", ".join(str(k) for k in config.evaluate.k)
        raise ConfigError(
            f"primary_metric {metric!r} is never computed: evaluate.k (--k) is {cutoffs}; "
            f"add {cutoff} to evaluate.k or choose a metric at {cutoffs}"
        )


def quality_gate(
    metrics: dict[str, Any],
    config: PipelineConfig,
    previous: dict[str, Any] | None = None,
    stability: float | None = None,
) -> dict[str, Any]:
    """Decide whether a model may become LATEST.

    Parameters
    ----------
    metrics
        Output of :func:`item2vec.evaluate.evaluate`.
    config
        The run's config; ``publish`` holds ``primary_metric``, ``gate_margin``,
        ``max_regression`` and ``min_stability``.
    previous
        LATEST's manifest, or None when there is no LATEST yet.
    stability
        Mean top-10 neighbour overlap with LATEST (None without LATEST).

    Returns
    -------
    dict
        ``passed``, ``reason`` (every failed check, or every passed one),
        ``metric``, ``value`` and ``checks`` (one entry per check).

    Raises
    ------
    ConfigError
        If the primary metric was not computed.
    """
    settings = config.publish
    primary = settings.primary_metric
    if primary not in metrics["model"]:
        known = ", ".join(sorted(metrics["model"]))
        raise ConfigError(f"primary metric {primary!r} was not computed; choose one of: {known}")
    value = metrics["model"][primary]
    popularity = metrics["baselines"]["popularity"][primary]
    factor = f" x {settings.gate_margin:g}" if settings.gate_margin != 1.0 else ""
    beats = value > popularity * settings.gate_margin
    checks = [
        {
            "check": "baseline",
            "passed": bool(beats),
            "reason": f"{primary} {value:.4f} {'>' if beats else '<='} "
            f"popularity {popularity:.4f}{factor}{_knn_beside(metrics, primary)}",
        }
    ]
    if previous is not None:
        before = previous.get("metrics", {}).get("model", {}).get(primary)
        # LATEST scored on this run's own holdout (warm start: item2vec.warm_start), when
        # it never trained on it, compares like with like; its manifest's figure is
        # from another day's holdout under the temporal split.
        rescored = metrics.get("latest_on_holdout") or {}
        same_cases = rescored.get("version") == previous.get("version") and primary in rescored
        if same_cases:
            before = rescored[primary]
        if before is None or not (same_cases or comparable(config, previous)):
            checks.append(
                {
                    "check": "regression",
                    "passed": True,
                    "reason": f"LATEST {previous.get('version')} not comparable; "
                    "regression not checked",
                }
            )
        else:
            users = int(metrics.get("users") or 0)
            allowed, why = allowed_drop(before, settings.max_regression, users)
            floor = before - allowed
            held = value >= floor
            checks.append(
                {
                    "check": "regression",
                    "passed": bool(held),
                    "reason": f"{primary} {value:.4f} {'>=' if held else '<'} "
                    f"{floor:.4f} (LATEST {before:.4f}"
                    f"{' on this holdout' if same_cases else ''} - {why})",
                }
            )
    if stability is not None:
        passed = settings.min_stability is None or stability >= settings.min_stability
        limit = "" if settings.min_stability is None else f" (minimum {settings.min_stability:.2f})"
        checks.append(
            {
                "check": "stability",
                "passed": bool(passed),
                "reason": f"top-10 neighbour overlap with LATEST {stability:.2f}{limit}",
            }
        )
    failed = [c for c in checks if not c["passed"]]
    return {
        "passed": not failed,
        "metric": primary,
        "value": value,
        "reason": "; ".join(c["reason"] for c in (failed or checks)),
        "checks": checks,
        "stability": stability,
    }


def _knn_beside(metrics: dict[str, Any], primary: str) -> str:
    """Item-kNN's figure at its own validated settings, shown beside the check (not gated)."""
    knn = metrics["baselines"].get("item_knn", {}).get(primary)
    settings = (metrics.get("baseline_settings") or {}).get("item_knn") or {}
    if knn is None or "query_items" not in settings:
        return ""
    similarity = f", {settings['similarity']}" if settings.get("similarity") else ""
    return (
        f" (item-kNN {knn:.4f} at its validated best: {settings['query_items']} query items"
        f"{similarity})"
    )


def decide_gate(
    metrics: dict[str, Any], neighbors: pa.Table, config: PipelineConfig
) -> dict[str, Any]:
    """Run :func:`quality_gate` against the model's current LATEST, if any.

    Reads LATEST's manifest and neighbour table (Parquet and JSON only) to
    measure regression and neighbour stability.
    """
    from item2vec.layout import NEIGHBORS_FILE, latest_manifest
    from item2vec.neighbors import neighbor_overlap
    from item2vec.storage import as_path, read_parquet

    previous = latest_manifest(config.publish.output, config.publish.model_name)
    stability = None
    if previous is not None:
        path = as_path(config.publish.output) / config.publish.model_name / previous["version"]
        if (path / NEIGHBORS_FILE).is_file():
            stability = neighbor_overlap(neighbors, read_parquet(path / NEIGHBORS_FILE))
    return quality_gate(metrics, config, previous, stability)
