"""Scheduled deployments of the ``item2vec-run`` flow."""

from __future__ import annotations

from typing import Any

from flows.pipeline import item2vec_run
from item2vec.config import PipelineConfig
from item2vec.errors import ConfigError

DEFAULT_DEPLOYMENT = "nightly"


def build_deployment(config: PipelineConfig, cron: str, name: str = DEFAULT_DEPLOYMENT) -> Any:
    """A deployment of the pipeline with ``config`` as its default parameters, on ``cron``.

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
    return item2vec_run.to_deployment(
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


def serve(config: PipelineConfig, cron: str, name: str = DEFAULT_DEPLOYMENT) -> None:
    """Serve the deployment in this process until interrupted (runs happen here).

    Raises
    ------
    ConfigError
        Without a Prefect server (``PREFECT_API_URL``).
    """
    from prefect import serve as prefect_serve

    require_server()
    prefect_serve(build_deployment(config, cron, name))
