"""The ``sequences`` stage in partitions of users, spread over a Dask cluster.

Used when ``sequences.shuffle_partitions`` > 0 on a Dask task runner (see
:mod:`item2vec.user_partitions` for the steps and why they equal the one-worker
path). Every large table stays on the workers: the ingested files reach the
shuffle as the Dask futures of their tasks, and so does the run's dictionary
of ids (``user-ranges``; the flow process fetches only its n + 1 cut points);
the shuffle's partitions reach their ``sequences-part-<n>`` tasks as Dask
futures, and only the flags of the support rounds come back to the flow
process. The combined sequences are
cached as the one-worker path caches them, under the same key.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from item2vec import user_partitions as parts
from item2vec.cache import InputPlan, stage_cache
from item2vec.config import IngestConfig, PipelineConfig, SequenceConfig
from item2vec.errors import ConfigError
from item2vec.filters import needs_support
from item2vec_flows.placement import Opaque

STAGE = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="check-files", **STAGE)
def check_task(summaries: list, config: IngestConfig) -> tuple[int, dict[str, int]]:
    return parts.check_files(summaries, config)


@task(name="user-ranges", **STAGE)
def ranges_task(summaries: list, n: int) -> parts.RunIds:
    return parts.run_ids(summaries, n)


@task(name="user-rows", task_run_name="user-rows-{n}", **STAGE)
def rows_task(frame: Any, ids: parts.RunIds, config: IngestConfig, n: int) -> parts.UserPart:
    return parts.user_rows(frame, ids, n, config)


@task(name="item-support", **STAGE)
def support_task(summaries: list) -> parts.SupportRound:
    return parts.combine_support(summaries)


@task(name="support-filter", task_run_name="support-filter-{n}", **STAGE)
def support_part_task(
    part: parts.UserPart, support: parts.SupportRound, config: IngestConfig, n: int
) -> parts.UserPart:
    return parts.support_part(part, support, config)


@task(name="sequences-part", task_run_name="sequences-part-{n}", **STAGE)
def sequences_part_task(part: parts.UserPart, config: SequenceConfig, n: int):
    return parts.part_sequences(part, config)


@task(name="combine-sequences", **STAGE)
def combine_task(built: list, checked: tuple, plan: InputPlan, config: PipelineConfig) -> Any:
    events, sequences = parts.combine_sequences(built, checked, plan.files, plan.paths)
    stage_cache(config).store_sequences(plan, events, sequences)
    return Opaque((events, sequences))


def refuse_without_cluster(config: PipelineConfig, task_runner: str) -> None:
    """Refuse ``sequences.shuffle_partitions`` on any runner but Dask.

    On threads every partition would sit in the one flow process: the shuffle
    would cost time and save no memory, and a user would believe the log spread.

    Raises
    ------
    ConfigError
        Naming the setting, its flag and the two ways out.
    """
    n = config.sequences.shuffle_partitions
    if n and task_runner != "dask":
        raise ConfigError(
            f"sequences.shuffle_partitions = {n} (--shuffle-partitions) spreads the sequences "
            f"over a Dask cluster, but the task runner is {task_runner}; run with "
            "--task-runner dask or set it to 0 (on one process the partitions would only "
            "cost time)"
        )


def _state_value(state: Any) -> Any:
    return state.result()


def _summary(state: Any) -> Any:
    return parts.file_summary(state.result())


def _ids(state: Any) -> Any:
    return parts.file_ids(state.result())


def _divisions(state: Any) -> list[int]:
    return state.result().divisions


def _part_summary(state: Any) -> Any:
    return state.result().summary()


def _done(state: Any) -> bool:
    return state.result().done


def partitioned_sequences(files: list, plan: InputPlan, config: PipelineConfig, place: Any):
    """Submit the stage's tasks; the future of ``(Events, sequences)``, as ``sequences`` gives.

    Parameters
    ----------
    files
        The futures of the ``ingest-file`` tasks, in input order (settled).
    plan, config
        The run's input plan and settings.
    place
        The run's :class:`item2vec_flows.placement.Placement` (on a Dask runner).
    """
    client = place.client
    ingest, n = config.ingest, config.sequences.shuffle_partitions
    wrapped = [future.wrapped_future for future in files]
    checked = check_task.submit(client.map(_summary, wrapped, pure=False), ingest)
    place.track("sequences", checked)
    place.settle(checked)  # too many bad rows fail here, before the shuffle
    ranges = ranges_task.submit(client.map(_ids, wrapped, pure=False), n)
    place.track("sequences", ranges)
    divisions = place.peek(ranges, _divisions)  # n + 1 integers
    ids = client.submit(_state_value, ranges.wrapped_future, pure=False)
    place.track_keys("sequences", [ids.key])
    values = client.map(_state_value, wrapped, pure=False)
    frames = client.compute(parts.user_frames(values, ids, divisions, ingest).to_delayed())
    place.track_keys("sequences", [frame.key for frame in frames])
    rows = [rows_task.submit(frame, ids, ingest, j) for j, frame in enumerate(frames)]
    place.track("sequences", *rows)
    while needs_support(ingest):
        summaries = client.map(_part_summary, [part.wrapped_future for part in rows], pure=False)
        support = support_task.submit(summaries)
        place.track("sequences", support)
        if place.peek(support, _done):
            break
        rows = [support_part_task.submit(part, support, ingest, j) for j, part in enumerate(rows)]
        place.track("sequences", *rows)
    built = [sequences_part_task.submit(part, config.sequences, j) for j, part in enumerate(rows)]
    prepared = combine_task.submit(built, checked, plan, config)
    place.track("sequences", *built, prepared)
    return prepared
