"""The ``item2vec run`` flow: ingest -> sequences -> split -> train -> evaluate -> publish.

Each task wraps one library function and holds no logic of its own. Every
stage whose cost grows with the data is *submitted*, so on a Dask task runner
it runs on a worker, and tasks hand each other futures: large tables and arrays
move between workers (or stay in the memory of the flow process on threads),
and only small results (the plan, metrics, the gate, the manifest) come back
to the flow. Evaluation, recommendations and neighbours run as one task per
shard (:mod:`item2vec.shards`), one shard per Dask worker. Tasks do not cache:
hashing DataFrames for a cache key costs more than the stages themselves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.utilities.annotations import unmapped

from item2vec import shards as sharded
from item2vec import stages
from item2vec.cache import (
    InputPlan,
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
from item2vec.latest_holdout import latest_on_holdout
from item2vec.manifest import build_manifest
from item2vec.nightly_knn import nightly_knn_choice, nightly_validation
from item2vec.presets import with_bundled_sample
from item2vec.readers import is_transient
from item2vec.stageclock import StageClock
from item2vec.vectors import ItemVectors
from item2vec.warm_start import plan_warm_start, train_nightly
from item2vec_flows.artifacts import create_run_artifacts
from item2vec_flows.partitioned import partitioned_sequences, refuse_without_cluster
from item2vec_flows.placement import Opaque, Placement, here, holds_none, on_resource
from item2vec_flows.run_settings import result_storage_path, workers_server
from item2vec_flows.runners import task_runner_from_environment

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
def cached_sequences_task(plan: InputPlan, config: PipelineConfig) -> Opaque | None:
    cached = cached_sequences(plan, config)
    return None if cached is None else Opaque(cached)


@task(name="ingest-file", task_run_name="ingest-{path.name}", **IO_RETRIES, **STAGE)
def ingest_file_task(path: Path, key: str, config: PipelineConfig) -> Partition:
    return partition_events(path, key, config)


@task(name="sequences", **STAGE)
def sequences_task(partitions: list[Partition], plan: InputPlan, config: PipelineConfig) -> Opaque:
    events, sequences = sequences_from_partitions(partitions, plan, config)
    # The rows are not needed again: the manifest wants their counts and files.
    return Opaque((Events(None, events.counts, events.files), sequences))


@task(name="split", **STAGE)
def split_task(prepared: Opaque, config: EvaluateConfig) -> Opaque:
    return Opaque(stages.split(prepared.value[1], config))


@task(name="warm-plan", **STAGE)
def warm_plan_task(prepared: Opaque, config: PipelineConfig) -> Opaque:
    return Opaque(plan_warm_start(config, prepared.value[1]))


def _kept_knn(plan: Opaque | None) -> dict[str, Any] | None:
    return None if plan is None else plan.value.knn_settings


@task(name="validation-split", **STAGE)
def validation_task(prepared: Opaque, config: EvaluateConfig, plan: Opaque | None) -> Opaque:
    return Opaque(nightly_validation(prepared.value[1], config, _kept_knn(plan)))


@task(name="train", **STAGE)
def train_task(split: Opaque, config: TrainConfig) -> ItemVectors:
    return stages.train(split.value, config)


@task(name="train-nightly", **STAGE)
def train_nightly_task(
    split: Opaque, prepared: Opaque, config: PipelineConfig, plan: Opaque
) -> ItemVectors:
    return train_nightly(split.value, prepared.value[1], config, plan.value)


@task(name="cold-start", **STAGE)
def cold_start_task(vectors: ItemVectors, split: Opaque, items: Opaque) -> ItemVectors:
    return cold_start(vectors, split.value, items.value[1])


@task(name="latest-on-holdout", **STAGE)
def latest_on_holdout_task(
    prepared: Opaque, split: Opaque, config: PipelineConfig, plan: Opaque
) -> dict[str, Any] | None:
    return latest_on_holdout(config, prepared.value[1], split.value, plan.value)


@task(name="refit", **STAGE)
def refit_task(prepared: Opaque, config: TrainConfig) -> ItemVectors:
    return stages.refit(prepared.value[1], config)


@task(name="items", **IO_RETRIES, **STAGE)
def items_task(config: IngestConfig) -> Opaque:
    items = stages.items(config)
    return Opaque((items, stages.categories(items, config)))


@task(name="knn-validation", task_run_name="knn-validation-{shard}", **STAGE)
def knn_validation_task(validation: Opaque, config: EvaluateConfig, shard: int, shards: int):
    return sharded.knn_validation_part(validation.value, config, shard, shards)


@task(name="knn-choice", **STAGE)
def knn_choice_task(parts: list, config: EvaluateConfig, plan: Opaque | None) -> dict[str, Any]:
    return nightly_knn_choice(parts, config, _kept_knn(plan))


@task(name="evaluate-baselines", task_run_name="evaluate-baselines-{shard}", **STAGE)
def baselines_task(
    split: Opaque,
    config: EvaluateConfig,
    settings: dict[str, Any],
    items: Opaque,
    shard: int,
    shards: int,
) -> Opaque:
    part = sharded.baseline_part(split.value, config, settings, items.value[1], shard, shards)
    return Opaque(part)


@task(name="evaluate-model", task_run_name="evaluate-model-{shard}", **STAGE)
def model_task(
    vectors: ItemVectors,
    split: Opaque,
    config: EvaluateConfig,
    baselines: Opaque,
    neighbors_scoring: str,
    items: Opaque,
    shard: int,
    shards: int,
) -> dict[str, Any] | None:
    categories = items.value[1]
    return sharded.model_part(
        vectors, split.value, config, baselines.value, neighbors_scoring, categories, shard, shards
    )


@task(name="metrics", **STAGE)
def metrics_task(parts: list, config: EvaluateConfig, category_col: str | None) -> dict[str, Any]:
    return sharded.combine_parts(parts, config, category_col)


@task(name="neighbors", task_run_name="neighbors-{shard}", **STAGE)
def neighbors_task(
    vectors: ItemVectors, config: PublishConfig, shard: int, shards: int
) -> pa.Table:
    return sharded.neighbors_part(vectors, config, shard, shards)


@task(name="recommend", task_run_name="recommend-{shard}", **STAGE)
def recommend_task(
    vectors: ItemVectors,
    prepared: Opaque,
    config: PipelineConfig,
    fallback_knn: dict,
    shard: int,
    shards: int,
) -> pa.Table:
    return sharded.recommendations_part(
        vectors, prepared.value[1], config, fallback_knn, shard, shards
    )


@task(name="concat", **STAGE)
def concat_task(parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(parts)


@task(name="gate", **STAGE)
def gate_task(
    metrics: dict[str, Any], neighbors: pa.Table, config: PipelineConfig
) -> dict[str, Any]:
    return decide_gate(metrics, neighbors, config)


@task(name="manifest", **STAGE)
def manifest_task(
    config: PipelineConfig,
    prepared: Opaque,
    split: Opaque,
    vectors: ItemVectors,
    metrics: dict[str, Any],
    gate: dict[str, Any],
    stage_seconds: dict[str, float],
) -> dict[str, Any]:
    events, sequences = prepared.value
    return build_manifest(
        config, events, sequences, split.value, vectors, metrics, gate, stage_seconds
    )


@task(name="publish", **STAGE)
def publish_task(
    vectors: ItemVectors,
    neighbors: pa.Table,
    recommendations: pa.Table | None,
    prepared: Opaque,
    items: Opaque,
    manifest: dict[str, Any],
    config: PipelineConfig,
) -> Path:
    tables = stages.extra_tables(recommendations, prepared.value[1], items.value[0], config)
    manifest["placement"]["stages"]["publish"] = [here()]
    return stages.publish(vectors, neighbors, tables, manifest, config.publish)


@task(name="artifacts", **STAGE)
def artifacts_task(
    version_dir: Path, vectors: ItemVectors, neighbors: pa.Table, items: Opaque
) -> None:
    create_run_artifacts(version_dir, vectors, neighbors, items.value[0])


# A deployment's runs load this module anew: the environment names their task runner.
@flow(name="item2vec-run", log_prints=True, task_runner=task_runner_from_environment())
def item2vec_run(config: PipelineConfig) -> dict[str, Any]:
    """Turn a behaviour log into evaluated, published item vectors.

    Empty ``config.ingest.paths`` means the bundled sample (its files and layout).

    Returns
    -------
    dict
        ``version_dir``, ``metrics``, ``gate``, ``counts`` and ``placement`` of the run.

    Raises
    ------
    QualityGateError
        When the model was published but refused by the gate (LATEST unchanged).
    """
    config = with_bundled_sample(config)
    clock = StageClock()
    place = Placement(FlowRunContext.get().task_runner)
    refuse_without_cluster(config, "dask" if place.client is not None else "threads")
    shards = place.workers  # one shard of users (or items) per worker
    prepared, input_cached = _prepare(config, clock, place)
    ev = config.evaluate
    with clock.stage("split"):
        split = split_task.submit(prepared, ev)
        place.track("split", split)
        place.settle(split)
    items = items_task.submit(config.ingest)
    place.track("items", items)
    plan = None
    if config.train.warm_start:  # one plan for training, item-kNN and the gate
        with clock.stage("warm_plan"):
            plan = warm_plan_task.submit(prepared, config)
            place.track("warm_plan", plan)
            place.settle(plan)
        # LATEST on tonight's holdout, for the gate: it needs no model either.
        latest = latest_on_holdout_task.submit(prepared, split, config, plan)
        place.track("latest_on_holdout", latest)
    # The baselines need no model: they are evaluated while it trains.
    clock.start("baselines")
    validation = validation_task.submit(prepared, ev, plan)
    tried = [knn_validation_task.submit(validation, ev, s, shards) for s in range(shards)]
    settings = knn_choice_task.submit(tried, ev, plan)
    baselines = [
        baselines_task.submit(split, ev, settings, items, s, shards) for s in range(shards)
    ]
    place.track("baselines", validation, *tried, settings, *baselines)
    with clock.stage("train"):
        with on_resource(place, config.train.resource):  # the worker sized for gensim
            if config.train.warm_start:  # from LATEST when it may (docs/incremental.md)
                vectors = train_nightly_task.submit(split, prepared, config, plan)
            else:
                vectors = train_task.submit(split, config.train)
        place.track("train", vectors)
        if config.train.cold_start:  # items with too few events (docs/incremental.md)
            vectors = cold_start_task.submit(vectors, split, items)
            place.track("cold_start", vectors)
        place.settle(vectors)
    with clock.stage("evaluate_model"):
        scoring = config.publish.neighbors_scoring
        parts = [
            model_task.submit(vectors, split, ev, baselines[s], scoring, items, s, shards)
            for s in range(shards)
        ]
        place.track("evaluate_model", *parts)
        metrics_future = metrics_task.submit(parts, ev, config.ingest.item_category_col)
        place.track("metrics", metrics_future)
        metrics = place.result(metrics_future)
    clock.stop("baselines")
    if config.train.warm_start:
        with clock.stage("latest_on_holdout"):  # the wait only: it ran beside training
            metrics["latest_on_holdout"] = place.result(latest)
    published = vectors
    if config.publish.refit:
        with clock.stage("refit"):
            with on_resource(place, config.train.resource):
                published = refit_task.submit(prepared, config.train)
            place.track("refit", published)
            place.settle(published)
    with clock.stage("neighbors"):
        neighbors = _concatenated(
            place,
            "neighbors",
            [neighbors_task.submit(published, config.publish, s, shards) for s in range(shards)],
        )
    with clock.stage("gate"):
        gate_future = gate_task.submit(metrics, neighbors, config)
        place.track("gate", gate_future)
        gate = place.result(gate_future)
    recommendations = None
    if config.publish.recommendations_n:
        with clock.stage("recommend"):
            # Users the model cannot rank get item-kNN at its validated settings.
            fallback = metrics["baseline_settings"]["item_knn"]
            recommendations = _concatenated(
                place,
                "recommend",
                [
                    recommend_task.submit(published, prepared, config, fallback, s, shards)
                    for s in range(shards)
                ],
            )
    manifest_future = manifest_task.submit(
        config, prepared, split, published, metrics, gate, clock.seconds
    )
    place.track("manifest", manifest_future)
    manifest = place.result(manifest_future)
    manifest["placement"] = place.record()
    with clock.stage("publish"):
        version = publish_task.submit(
            published, neighbors, recommendations, prepared, items, manifest, config
        )
        place.track("publish", version)
        version_dir = place.result(version)
    with clock.stage("artifacts"):
        artifacts = artifacts_task.submit(version_dir, published, neighbors, items)
        place.track("artifacts", artifacts)
        place.result(artifacts)
    result = {
        "version_dir": str(version_dir),
        "metrics": metrics,
        "gate": gate,
        "counts": manifest["counts"],
        "input_cached": input_cached,
        "stage_seconds": clock.seconds,
        "placement": place.record(),
        "flow_run_id": str(FlowRunContext.get().flow_run.id),
    }
    if not gate["passed"]:
        raise QualityGateError(
            f"quality gate refused the model: {gate['reason']}; "
            f"published as {version_dir} without moving LATEST",
            result,
        )
    return result


def _concatenated(place: Placement, stage: str, shards: list[Any]) -> Any:
    """The future of the shards' tables concatenated, once it has finished.

    The shards' own futures are not kept: on a cluster each shard's table would
    otherwise stay in a worker's memory beside the concatenation until the run
    ends, twice the table while it is published.
    """
    combined = concat_task.submit(shards)
    place.track(stage, *shards, combined)
    place.settle(combined)
    place.release(stage)
    return combined


def _prepare(config: PipelineConfig, clock: StageClock, place: Placement) -> tuple[Any, bool]:
    """Events and sequences as a future: from the cache, or ingested file by file."""
    with clock.stage("plan"):
        planned = plan_task.submit(config)
        place.track("plan", planned)
        plan = place.result(planned)
        cached = cached_sequences_task.submit(plan, config)
        place.track("plan", cached)
        place.settle(cached)
    if not place.peek(cached, holds_none):
        return cached, True
    with clock.stage("ingest"):
        # One task per input file: in parallel on the task runner, each cached on its own.
        files = ingest_file_task.map(plan.paths, plan.partition_keys, unmapped(config))
        place.track("ingest", *files)
        place.settle(*files)
    with clock.stage("sequences"):
        if config.sequences.shuffle_partitions:  # in partitions of users (docs/operations.md)
            prepared = partitioned_sequences(list(files), plan, config, place)
        else:
            prepared = sequences_task.submit(list(files), plan, config)
        place.track("sequences", prepared)
        place.settle(prepared)  # a bad file raises its own error here
    # Only ``prepared`` is needed from here on: the files' rows and the
    # partitions of users leave the workers' memory before training.
    place.release("ingest", "sequences")
    return prepared, False


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
    with temporary_settings(settings), workers_server(task_runner):
        return flow_run(config)
