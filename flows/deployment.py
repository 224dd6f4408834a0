"""Scheduled deployments of the ``item2vec-run`` flow: ``item2vec serve`` and ``prefect.yaml``.

Both run the same settings: ``prefect.yaml``'s parameters are what ``item2vec serve``
with no EVENTS stores (tests/test_deployment.py compares the two on a server). They
differ in name, so that ``prefect deploy --all`` never replaces a served deployment.
"""

from __future__ import annotations

import os
from typing import Any

from item2vec.config import PipelineConfig
from item2vec.errors import ConfigError
from item2vec.presets import portable_sample
from item2vec_flows.pipeline import item2vec_run
from item2vec_flows.run_settings import result_storage_path
from item2vec_flows.runners import runner_environment

#: The name ``item2vec serve`` gives its deployment.
DEFAULT_DEPLOYMENT = "nightly"
#: The name of ``prefect.yaml``'s deployment, distinct from :data:`DEFAULT_DEPLOYMENT`:
#: a deployment is known by flow and name, and ``prefect deploy`` replaces one of the same.
POOL_DEPLOYMENT = "nightly-pool"
#: At most this many runs of a deployment at once. A slow run and the next scheduled
#: one would otherwise overlap, both publish, and LATEST would end on whichever
#: finished last.
DEFAULT_CONCURRENCY_LIMIT = 1
#: A run that finds the limit reached waits for the running one (``ENQUEUE``), so no
#: run is lost, a manual one included; ``CANCEL_NEW`` drops it instead.
DEFAULT_COLLISION_STRATEGY = "ENQUEUE"
COLLISION_STRATEGIES = ("ENQUEUE", "CANCEL_NEW")
DESCRIPTION = "Behaviour log -> item2vec vectors, evaluated against baselines and published"


def concurrency_limit(
    limit: int = DEFAULT_CONCURRENCY_LIMIT, collision_strategy: str = DEFAULT_COLLISION_STRATEGY
) -> Any:
    """Prefect's ``ConcurrencyLimitConfig`` for a deployment, or None when ``limit`` is 0.

    Raises
    ------
    ConfigError
        On a negative limit or an unknown collision strategy.
    """
    if limit < 0:
        raise ConfigError(f"--concurrency-limit {limit} must be 0 (no limit) or more")
    if collision_strategy not in COLLISION_STRATEGIES:
        raise ConfigError(
            f"--collision-strategy {collision_strategy!r} is unknown; "
            f"choose one of {COLLISION_STRATEGIES}"
        )
    if limit == 0:
        return None
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    return ConcurrencyLimitConfig(limit=limit, collision_strategy=collision_strategy)


def deployment_parameters(config: PipelineConfig) -> dict[str, Any]:
    """The deployment's default parameters: ``config``, with the bundled sample as empty paths."""
    return {"config": portable_sample(config).model_dump(mode="json")}


def build_deployment(
    config: PipelineConfig,
    cron: str,
    name: str = DEFAULT_DEPLOYMENT,
    limit: int = DEFAULT_CONCURRENCY_LIMIT,
    collision_strategy: str = DEFAULT_COLLISION_STRATEGY,
) -> Any:
    """A deployment of the pipeline with ``config`` as its default parameters, on ``cron``.

    The task runner is not part of it: runs load the flow anew, and take theirs from
    the environment (:func:`item2vec_flows.runners.runner_environment`).

    Raises
    ------
    ConfigError
        If ``cron`` is not a valid cron expression, or the concurrency settings are invalid.
    """
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.types.entrypoint import EntrypointType

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:
        raise ConfigError(
            f"--cron {cron!r} is not a valid cron expression, e.g. '0 3 * * *'"
        ) from exc
    return item2vec_run.to_deployment(
        name=name,
        cron=cron,
        parameters=deployment_parameters(config),
        description=DESCRIPTION,
        tags=["item2vec"],
        concurrency_limit=concurrency_limit(limit, collision_strategy),
        # By module, as prefect.yaml names it: a flow loaded from a file path lives in a
        # module no Dask worker can import, so its tasks could not run there.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def require_server() -> str:
    """The Prefect API URL, or a clear error when only the embedded server would run.

    Prefect's embedded (ephemeral) server runs no scheduler service, so a cron
    deployment served against it would never get a run.
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigError(
            "item2vec serve needs a Prefect server: the embedded one runs no scheduler. "
            "Start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return url


def serve(
    deployment: Any,
    config: PipelineConfig,
    task_runner: str = "threads",
    dask_address: str | None = None,
) -> None:
    """Serve ``deployment`` in this process until interrupted; each run is a subprocess.

    The runs load the flow from its entrypoint, so the task runner travels to them
    in this process's environment (:data:`item2vec_flows.runners.RUNNER_ENV`). Any
    result Prefect persists goes under the run's cache directory, not the working
    directory.

    Raises
    ------
    ConfigError
        Without a Prefect server (``PREFECT_API_URL``), or on bad task-runner settings.
    """
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    require_server()
    os.environ.update(runner_environment(task_runner, dask_address))
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(result_storage_path(config))}):
        prefect_serve(deployment)
