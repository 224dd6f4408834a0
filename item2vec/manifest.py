"""The manifest's content that comes from the run (publish adds ids, versions and files)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from item2vec.config import PipelineConfig
from item2vec.ingest import Events
from item2vec.sequences import dropped_in_sequences
from item2vec.split import Split
from item2vec.train import ItemVectors


def build_manifest(
    config: PipelineConfig,
    events: Events,
    sequences: pa.Table,
    split: Split,
    vectors: ItemVectors,
    metrics: dict[str, Any],
    gate: dict[str, Any],
) -> dict[str, Any]:
    """Input fingerprint, config, counts per stage, metrics and gate of one run.

    Returns
    -------
    dict
        Keys ``input``, ``config``, ``counts``, ``metrics``, ``gate`` as in the
        manifest contract.
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
        "counts": counts,
        "metrics": metrics,
        "training": vectors.history,
        "gate": gate,
    }
