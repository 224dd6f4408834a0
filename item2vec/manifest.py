"""The manifest's content that comes from the run (publish adds ids, versions and files)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from item2vec.config import PipelineConfig
from item2vec.ingest import Events
from item2vec.sequences import dropped_in_sequences
from item2vec.split import Split
from item2vec.vectors import ItemVectors


def build_manifest(
    config: PipelineConfig,
    events: Events,
    sequences: pa.Table,
    split: Split,
    vectors: ItemVectors,
    metrics: dict[str, Any],
    gate: dict[str, Any],
    stage_seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Input fingerprint, config, counts per stage, metrics and gate of one run.

    Parameters
    ----------
    stage_seconds
        Wall time of each stage so far (the manifest is written by ``publish``,
        so publishing itself is not in it).

    Returns
    -------
    dict
        Keys ``input``, ``config``, ``counts``, ``metrics``, ``gate`` as in the
        manifest contract, plus ``published`` (what the published vectors were
        trained on), ``training`` (its loss, seconds and cost estimate), ``cost``
        and ``timings``.
    """
    counts = {
        **events.counts,
        "dropped": {**events.counts["dropped"], **dropped_in_sequences(sequences)},
        "sequences": sequences.num_rows,
        "train_events": sum(len(s) for s in split.train),
        "test_users": len(split.test),
        "vocabulary": len(vectors),
    }
    return {
        "input": {"files": events.files},
        "config": config.model_dump(mode="json"),
        # Metrics always describe the model trained without the test targets; with
        # refit, the published vectors were trained again on every event.
        "refit": config.publish.refit,
        "published": published_model(config, sequences, counts["train_events"]),
        "counts": counts,
        "metrics": metrics,
        "training": vectors.history,
        # Warm or full, from which version, and what it trained on (docs/incremental.md).
        "warm_start": vectors.history.get("warm_start"),
        "cost": vectors.history.get("cost"),
        "timings": {"seconds": dict(stage_seconds or {})},
        "gate": gate,
    }


def published_model(config: PipelineConfig, sequences: pa.Table, train_events: int) -> dict:
    """What the published vectors are and what they were trained on."""
    if config.publish.refit:
        return {
            "model": "refit",
            "trained_on": "every event, the test targets included, after evaluation",
            "events": int(pc.sum(pc.list_value_length(sequences.column("items"))).as_py() or 0),
            "evaluated": False,
        }
    held_out = (
        f"every event up to the cut-off {config.evaluate.test_days:g} days before the last"
        if config.evaluate.split == "temporal"
        else "every event but each test case's target (its last event)"
    )
    return {
        "model": "evaluated",
        "trained_on": f"the split's training side: {held_out}",
        "events": train_events,
        "evaluated": True,
    }
