"""Publishing a model fitted in Python, through the same stages as ``item2vec run``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from item2vec import stages
from item2vec.config import PipelineConfig
from item2vec.gate import decide_gate
from item2vec.ingest import Events
from item2vec.manifest import build_manifest
from item2vec.publish import check_name
from item2vec.split import Split
from item2vec.vectors import ItemVectors

__all__ = ["FitRun", "save_fitted"]


@dataclass
class FitRun:
    """What a fit built on the way, kept so that the model can be saved as a run is."""

    events: Events
    sequences: pa.Table
    split: Split
    vectors: ItemVectors
    items: pa.Table | None = None  # the items table, read once for the fit's categories


def save_fitted(
    run: FitRun,
    config: PipelineConfig,
    metrics: dict[str, Any],
    output: Path,
    model_name: str | None,
) -> Path:
    """Write a fitted model as a new version under ``output/model_name``.

    The stages after evaluation are the flow's: neighbours, the quality gate,
    recommendations, the items table, the manifest and an atomic publish.
    See ``Item2VecModel.save``.
    """
    name = check_name(model_name or config.publish.model_name, "model_name")
    publish = config.publish.model_copy(update={"output": str(output), "model_name": name})
    config = config.model_copy(update={"publish": publish})
    neighbors = stages.neighbors(run.vectors, publish)
    gate = decide_gate(metrics, neighbors, config)
    recommendations = None
    if publish.recommendations_n:
        fallback = metrics.get("baseline_settings", {}).get("item_knn")
        recommendations = stages.recommendations(run.vectors, run.sequences, config, fallback)
    tables = stages.extra_tables(recommendations, run.sequences, run.items, config)
    manifest = build_manifest(
        config, run.events, run.sequences, run.split, run.vectors, metrics, gate
    )
    return stages.publish(run.vectors, neighbors, tables, manifest, publish)
