"""Publishing a model fitted in Python, through the same steps as ``item2vec run``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from item2vec.errors import InputError
from item2vec.gate import decide_gate
from item2vec.manifest import build_manifest
from item2vec.neighbors import nearest_neighbors
from item2vec.publish import RECOMMENDATIONS_FILE, check_name, publish_version
from item2vec.recommend import recommend_for_users
from item2vec.report import write_report

if TYPE_CHECKING:
    from item2vec.model import Item2VecModel


def save_fitted(model: Item2VecModel, output: Path, model_name: str | None) -> Path:
    """Write ``model`` as a new version under ``output/model_name``; see ``Item2VecModel.save``."""
    run = model._run
    if run.split is None or model.evaluation is None:
        raise InputError(
            "a model fitted with evaluate_model=False has no metrics for the manifest and "
            "the quality gate; fit with evaluate_model=True to save it"
        )
    name = check_name(model_name or model.config.publish.model_name, "model_name")
    publish = model.config.publish.model_copy(update={"output": str(output), "model_name": name})
    config = model.config.model_copy(update={"publish": publish})
    neighbors = nearest_neighbors(run.vectors, publish.neighbors_k)
    metrics = model.evaluation.record
    gate = decide_gate(metrics, neighbors, config)
    tables = {}
    if publish.recommendations_n:
        evaluate = config.evaluate
        tables[RECOMMENDATIONS_FILE] = recommend_for_users(
            run.vectors,
            run.sequences,
            publish.recommendations_n,
            evaluate.scoring,
            evaluate.query_items,
            evaluate.exclude_seen,
        )
    manifest = build_manifest(
        config, run.events, run.sequences, run.split, run.vectors, metrics, gate
    )
    return publish_version(
        output,
        name,
        run.vectors,
        neighbors,
        manifest,
        move_latest=gate["passed"],
        extra_tables=tables,
        keep=publish.keep,
        finalize=write_report if publish.report else None,
    )
