"""Scheduled deployments of the ``item2vec-run`` flow."""

from __future__ import annotations

from typing import Any

from item2vec.config import PipelineConfig
from item2vec.errors import ConfigError
from item2vec_flows.pipeline import item2vec_run, result_storage_path

DEFAULT_DEPLOYMENT = "nightly"


def build_deployment(
    config: PipelineConfig, cron: str, name: str = DEFAULT_DEPLOYMENT, task_runner: Any = None
) -> Any:
    """A deployment of the pipeline with ``config`` as its default parameters, on ``cron``.

    ``task_runner`` (see :func:`item2vec_flows.runners.build_task_runner`) replaces the
    default thread pool for the deployment's runs.

    Raises
    ------
    ConfigError
        If ``cron`` is not a valid cron expression.
    """
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:
        raise ConfigError(
            f"--cron {cron!r} is not a valid cron expression, e.g. '0 3 * * *'"
        ) from exc
    flow = item2vec_run.with_options(task_runner=task_runner) if task_runner else item2vec_run
    return flow.to_deployment(
        name=name,
        cron=cron,
        parameters={"config": config.model_dump(mode="json")},
        description="Behaviour log -> item2vec vectors, evaluated against baselines and published",
        tags=["item2vec"],
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
    config: PipelineConfig, cron: str, name: str = DEFAULT_DEPLOYMENT, task_runner: Any = None
) -> None:
    """Serve the deployment in this process until interrupted (runs happen here).

    Any result Prefect persists goes under the run's cache directory, not the
    working directory.

    Raises
    ------
    ConfigError
        Without a Prefect server (``PREFECT_API_URL``).
    """
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    require_server()
    deployment = build_deployment(config, cron, name, task_runner)
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(result_storage_path(config))}):
        prefect_serve(deployment)
