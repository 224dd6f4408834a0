"""Item-kNN's settings on a nightly run: kept from LATEST on a warm night, else chosen.

The grid that chooses the baseline's query length and similarity
(:func:`item2vec.evaluate.knn_settings`) scores every setting on a validation
target; at millions of events it outlasts a warm training. A warm night keeps
what LATEST chose (docs/incremental.md, "What a warm run does", step 5).
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from item2vec.config import EvaluateConfig, PipelineConfig
from item2vec.split import Split

__all__ = ["kept_knn_settings", "nightly_knn_choice", "nightly_validation"]

log = logging.getLogger(__name__)


def kept_knn_settings(
    manifest: dict[str, Any], config: PipelineConfig, version: str
) -> dict[str, Any] | None:
    """Item-kNN's settings from a previous version's manifest, for a warm night to keep.

    The grid that chooses them scores every similarity and query length on a
    validation target (:func:`item2vec.evaluate.knn_settings`); at millions of
    events it outlasts a warm training. The previous version chose them on
    events before its own cut-off, which is at or before tonight's, so keeping
    them shows item-kNN nothing of tonight's test target. A full night chooses
    again, which bounds how old they get (``train.full_retrain_every``).

    Returns
    -------
    dict or None
        The settings with ``chosen_in`` (the version that chose them) added;
        None when the manifest holds none or its ``[evaluate]`` settings differ
        from this run's (another grid, sample or cut-off would have chosen).
    """
    settings = ((manifest.get("metrics") or {}).get("baseline_settings") or {}).get("item_knn")
    if not isinstance(settings, dict) or not {"query_items", "similarity"} <= settings.keys():
        log.info("item-kNN: %s records no settings; choosing them again", version)
        return None
    previous = (manifest.get("config") or {}).get("evaluate")
    if previous != config.evaluate.model_dump(mode="json"):
        log.info("item-kNN: [evaluate] changed since %s; choosing its settings again", version)
        return None
    log.info(
        "item-kNN: keeping the settings chosen in %s (%d query items, %s)",
        settings.get("chosen_in", version),
        settings["query_items"],
        settings["similarity"],
    )
    return {**settings, "chosen_in": settings.get("chosen_in", version)}


def nightly_validation(
    sequences: pa.Table, config: EvaluateConfig, kept: dict[str, Any] | None
) -> Split | None:
    """The split item-kNN's settings are chosen on, or None when the night keeps
    ``kept`` (a warm plan's ``knn_settings``)."""
    from item2vec.stages import baseline_validation

    return None if kept is not None else baseline_validation(sequences, config)


def nightly_knn_choice(
    parts: list[Any], config: EvaluateConfig, kept: dict[str, Any] | None
) -> dict[str, Any]:
    """Item-kNN's settings: ``kept`` when the night keeps LATEST's, else the best of
    the validation tallies (:func:`item2vec.evaluate.knn_choice`)."""
    from item2vec.evaluate import knn_choice

    return kept if kept is not None else knn_choice(parts, config)
