"""The ``item2vec run`` flow: ingest -> sequences -> split -> train -> evaluate -> publish.

Each task wraps one library function and holds no logic of its own. Tasks pass
in-memory objects and do not cache: hashing DataFrames for a cache key costs
more than the stages themselves on one machine. Large inputs are wrapped in
``quote`` so that Prefect does not walk every element looking for futures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote, unmapped

from item2vec import stages
from item2vec.cache import (
    InputPlan,
    cache_root,
    cached_sequences,
    partition_events,
    plan_inputs,
    sequences_from_partitions,
)
from item2vec.cold_start import cold_start
from item2vec.config import (
    EvaluateConfig,
    IngestConfig,
    PipelineConfig,
    PublishConfig,
    TrainConfig,
)
from item2vec.errors import QualityGateError
from item2vec.gate import decide_gate
from item2vec.ingest import Events, Partition
from item2vec.manifest import build_manifest
from item2vec.readers import is_transient
from item2vec.split import Split
from item2vec.stageclock import StageClock
from item2vec.summary import report_markdown, run_page
from item2vec.vectors import ItemVectors
from item2vec.warm_start import latest_on_holdout, train_nightly

STAGE = {"cache_policy": NO_CACHE, "persist_result": False}

# A deployment loads this file by path, so flows/__init__.py may not have run:
# let the library's INFO records through to the run logs here as well.
if logging.getLogger("item2vec").level == logging.NOTSET:  # --quiet/--verbose win
    logging.getLogger("item2vec").setLevel(logging.INFO)


def _retry_transient_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only transient I/O failures; bad input fails at once."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the state's own exception, inspected
        return is_transient(exc)
    return False


# Only the tasks that read input files retry; a failed computation would fail again.
IO_RETRIES = {
    "retries": 3,
    "retry_delay_seconds": [1, 5, 20],
    "retry_condition_fn": _retry_transient_io,
}


@task(name="plan-inputs", **IO_RETRIES, **STAGE)
def plan_task(config: PipelineConfig) -> InputPlan:
    return plan_inputs(config)


@task(name="cached-sequences", **STAGE)
def cached_sequences_task(
    plan: InputPlan, config: PipelineConfig
) -> tuple[Events, pa.Table] | None:
    return cached_sequences(plan, config)


@task(name="ingest-file", task_run_name="ingest-{path.name}", **IO_RETRIES, **STAGE)
def ingest_file_task(path: Path, key: str, config: PipelineConfig) -> Partition:
    return partition_events(path, key, config)


@task(name="sequences", **STAGE)
def sequences_task(
    partitions: list[Partition], plan: InputPlan, config: PipelineConfig
) -> tuple[Events, pa.Table]:
    return sequences_from_partitions(partitions, plan, config)


@task(name="split", **STAGE)
def split_task(sequences: pa.Table, config: EvaluateConfig) -> Split:
    return stages.split(sequences, config)


@task(name="train", **STAGE)
def train_task(split: Split, config: TrainConfig) -> ItemVectors:
    return stages.train(split, config)


@task(name="train-nightly", **STAGE)
def train_nightly_task(split: Split, sequences: pa.Table, config: PipelineConfig) -> ItemVectors:
    return train_nightly(split, sequences, config)


@task(name="cold-start", **STAGE)
def cold_start_task(vectors: ItemVectors, split: Split, categories: pa.Table) -> ItemVectors:
    return cold_start(vectors, split, categories)


@task(name="latest-on-holdout", **STAGE)
def latest_on_holdout_task(
    sequences: pa.Table, split: Split, config: PipelineConfig
) -> dict[str, Any] | None:
    return latest_on_holdout(config, sequences, split)


@task(name="refit", **STAGE)
def refit_task(sequences: pa.Table, config: TrainConfig) -> ItemVectors:
    return stages.refit(sequences, config)


@task(name="recommend", **STAGE)
def recommend_task(
    vectors: ItemVectors, sequences: pa.Table, config: PipelineConfig, fallback_query_items: int
) -> pa.Table:
    return stages.recommendations(vectors, sequences, config, fallback_query_items)


@task(name="items", **IO_RETRIES, **STAGE)
def items_task(config: IngestConfig) -> pa.Table | None:
    return stages.items(config)


@task(name="evaluate-model", **STAGE)
def evaluate_model_task(
    vectors: ItemVectors,
    split: Split,
    config: EvaluateConfig,
    neighbors_scoring: str,
    categories: pa.Table | None,
) -> dict:
    return stages.model_metrics(vectors, split, config, neighbors_scoring, categories)


class Opaque:
    """A large value handed to a submitted task without Prefect or Dask looking inside.

    ``quote`` does this for Prefect, but it is a tuple, and Dask rebuilds tuples
    as plain ones on the way to a worker, so the task would get the wrong type.
    """

    def __init__(self, value: Any) -> None:
        self.value = value


@task(name="evaluate-baselines", **STAGE)
def evaluate_baselines_task(
    split: Opaque, config: EvaluateConfig, sequences: Opaque, categories: Opaque
) -> dict[str, dict]:
    return stages.baseline_metrics(split.value, config, sequences.value, categories.value)


@task(name="neighbors", **STAGE)
def neighbors_task(vectors: ItemVectors, config: PublishConfig) -> pa.Table:
    return stages.neighbors(vectors, config)


@task(name="gate", **STAGE)
def gate_task(
    metrics: dict[str, Any], neighbors: pa.Table, config: PipelineConfig
) -> dict[str, Any]:
    return decide_gate(metrics, neighbors, config)


@task(name="publish", **STAGE)
def publish_task(
    vectors: ItemVectors,
    neighbors: pa.Table,
    tables: dict[str, pa.Table],
    manifest: dict[str, Any],
    config: PublishConfig,
) -> Path:
    return stages.publish(vectors, neighbors, tables, manifest, config)


@task(name="artifacts", **STAGE)
def artifacts_task(
    version_dir: Path, vectors: ItemVectors, neighbors: pa.Table, items: pa.Table | None
) -> None:
    page = run_page(version_dir, vectors, neighbors, items)
    create_markdown_artifact(page.markdown, key=f"{page.key}-summary", description=page.about)
    create_table_artifact(page.metrics, key=f"{page.key}-metrics", description="Model vs baselines")
    create_link_artifact(page.link, link_text=page.label, key=f"{page.key}-version")
    report = report_markdown(version_dir)
    if report is not None:
        create_markdown_artifact(
            report, key=f"{page.key}-report", description="Report: plots, counts, neighbours"
        )


@flow(name="item2vec-run", log_prints=True)
def item2vec_run(config: PipelineConfig) -> dict[str, Any]:
    """Turn a behaviour log into evaluated, published item vectors.

    Returns
    -------
    dict
        ``version_dir``, ``metrics``, ``gate`` and ``counts`` of the run.

    Raises
    ------
    QualityGateError
        When the model was published but refused by the gate (LATEST unchanged).
    """
    clock = StageClock()
    with clock.stage("plan"):
        plan = plan_task(config)
        cached = cached_sequences_task(plan, config)
    input_cached = cached is not None
    if cached is None:
        with clock.stage("ingest"):
            # One task per input file: in parallel on the task runner, each cached on its own.
            futures = ingest_file_task.map(plan.paths, plan.partition_keys, unmapped(config))
            partitions = [future.result() for future in futures]  # the first bad file raises
        with clock.stage("sequences"):
            cached = sequences_task(quote(partitions), plan, config)
    events, sequences = cached
    with clock.stage("items"):
        items = items_task(config.ingest)
    categories = stages.categories(items, config.ingest)
    with clock.stage("split"):
        split = split_task(quote(sequences), config.evaluate)
    # The baselines need no model: they are evaluated while it trains.
    clock.start("baselines")
    baselines = evaluate_baselines_task.submit(
        Opaque(split), config.evaluate, Opaque(sequences), Opaque(categories)
    )
    with clock.stage("train"):
        if config.train.warm_start:  # from LATEST when it may (docs/incremental.md)
            vectors = train_nightly_task(quote(split), quote(sequences), config)
        else:
            vectors = train_task(quote(split), config.train)
        if config.train.cold_start:  # items with too few events (docs/incremental.md)
            vectors = cold_start_task(quote(vectors), quote(split), quote(categories))
    with clock.stage("evaluate_model"):
        model_metrics = evaluate_model_task(
            quote(vectors),
            quote(split),
            config.evaluate,
            config.publish.neighbors_scoring,
            quote(categories),
        )
    baseline_metrics = baselines.result()
    clock.stop("baselines")
    metrics = stages.metrics(
        model_metrics, baseline_metrics, split, config.evaluate, config.ingest.item_category_col
    )
    if config.train.warm_start:  # LATEST on tonight's holdout, for the gate
        metrics["latest_on_holdout"] = latest_on_holdout_task(
            quote(sequences), quote(split), config
        )
    published = vectors
    if config.publish.refit:
        with clock.stage("refit"):
            published = refit_task(quote(sequences), config.train)
    with clock.stage("neighbors"):
        neighbors = neighbors_task(quote(published), config.publish)
    with clock.stage("gate"):
        gate = gate_task(metrics, quote(neighbors), config)
    recommendations = None
    if config.publish.recommendations_n:
        with clock.stage("recommend"):
            # Users the model cannot rank get item-kNN at its validated query length.
            fallback = metrics["baseline_settings"]["item_knn"]["query_items"]
            recommendations = recommend_task(quote(published), quote(sequences), config, fallback)
    tables = stages.extra_tables(recommendations, sequences, items, config)
    manifest = build_manifest(
        config, events, sequences, split, published, metrics, gate, clock.seconds
    )
    with clock.stage("publish"):
        version_dir = publish_task(
            quote(published), quote(neighbors), quote(tables), manifest, config.publish
        )
    with clock.stage("artifacts"):
        artifacts_task(version_dir, quote(published), quote(neighbors), quote(items))
    result = {
        "version_dir": str(version_dir),
        "metrics": metrics,
        "gate": gate,
        "counts": manifest["counts"],
        "input_cached": input_cached,
        "stage_seconds": clock.seconds,
    }
    if not gate["passed"]:
        raise QualityGateError(
            f"quality gate refused the model: {gate['reason']}; "
            f"published as {version_dir} without moving LATEST",
            result,
        )
    return result


def run_pipeline(config: PipelineConfig, task_runner: Any = None) -> dict[str, Any]:
    """Run :func:`item2vec_run` in-process (Prefect's embedded mode unless an API URL is set).

    Parameters
    ----------
    config
        Every setting of the run.
    task_runner
        A Prefect task runner (see :func:`item2vec_flows.runners.build_task_runner`);
        default: Prefect's thread pool.

    Flow-run heartbeats are turned off: they detect crashed runs for a server-side
    worker, and otherwise cost about a second at the end of every run. Any result
    Prefect persists goes under the run's cache directory, never the working one.
    """
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    flow_run = item2vec_run.with_options(task_runner=task_runner) if task_runner else item2vec_run
    settings = {
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_LOCAL_STORAGE_PATH: str(result_storage_path(config)),
    }
    with temporary_settings(settings):
        return flow_run(config)


def result_storage_path(config: PipelineConfig) -> Path:
    """Where Prefect would persist task results of this run: inside the cache directory."""
    return (cache_root(config) / "prefect-results").resolve()
