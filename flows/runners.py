"""Task runners: Prefect's thread pool by default, a Dask cluster on request.

Dask is opt-in. On one small machine its start-up and serialisation cost more
than they save (DESIGN §6: 17-19 s for 50 trivial tasks against 0.5 s on
threads); it pays off on a real cluster, or when partitions are many and large.
"""

from __future__ import annotations

import os
from typing import Any

from item2vec.errors import ConfigError

TASK_RUNNERS = ("threads", "dask")
#: Local Dask cluster when no address is given: one single-threaded process per
#: worker, so gensim's and BLAS's own threads do not oversubscribe the cores.
LOCAL_CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True}


def build_task_runner(
    kind: str = "threads", address: str | None = None, dask_workers: int | None = None
) -> Any:
    """The task runner a flow run uses.

    Parameters
    ----------
    kind
        ``threads`` (Prefect's ThreadPoolTaskRunner) or ``dask`` (prefect-dask's
        DaskTaskRunner).
    address
        Scheduler of an existing Dask cluster, e.g. ``tcp://10.0.0.5:8786``. Without
        it, ``dask`` starts a LocalCluster for the run and closes it afterwards.
    dask_workers
        Workers of the LocalCluster (default 2); ignored with ``address``.

    Raises
    ------
    ConfigError
        On an unknown kind, or an address without ``dask``.
    """
    if kind not in TASK_RUNNERS:
        raise ConfigError(f"--task-runner {kind!r} is unknown; choose one of {TASK_RUNNERS}")
    if kind == "threads":
        if address:
            raise ConfigError("--dask-address needs --task-runner dask")
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if address:
        if not address.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
            raise ConfigError(
                f"--dask-address {address!r} is not a Dask scheduler address; "
                "write it as tcp://HOST:8786"
            )
        return DaskTaskRunner(address=address)
    cluster = dict(LOCAL_CLUSTER)
    if dask_workers:
        cluster["n_workers"] = dask_workers
    # The dashboard would try to bind a port and needs bokeh; nobody looks at it here.
    cluster["dashboard_address"] = None
    return DaskTaskRunner(cluster_kwargs=cluster)


#: The environment that chooses the task runner of a flow loaded from its entrypoint.
#: Prefect loads a deployment's flow anew for every run (``item2vec serve`` in a
#: subprocess of its own, a work pool's worker on its infrastructure), so a runner
#: set on the flow object in the serving process is lost; the environment is not.
RUNNER_ENV = "ITEM2VEC_TASK_RUNNER"
ADDRESS_ENV = "ITEM2VEC_DASK_ADDRESS"


def runner_environment(kind: str = "threads", address: str | None = None) -> dict[str, str]:
    """The environment variables that make a deployment's runs use this task runner.

    Raises
    ------
    ConfigError
        As :func:`build_task_runner` does, before anything is served.
    """
    build_task_runner(kind, address)
    return {RUNNER_ENV: kind, **({ADDRESS_ENV: address} if address else {})}


def task_runner_from_environment() -> Any:
    """The task runner :data:`RUNNER_ENV` and :data:`ADDRESS_ENV` name (threads without them).

    An address alone means Dask. The flow's module calls this when it is loaded.

    Raises
    ------
    ConfigError
        On an unknown runner or an address that is not a scheduler's, naming the variable.
    """
    address = os.environ.get(ADDRESS_ENV) or None
    kind = os.environ.get(RUNNER_ENV) or ("dask" if address else "threads")
    try:
        return build_task_runner(kind, address)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from the environment: {RUNNER_ENV}, {ADDRESS_ENV})") from exc
