"""Dask workers of a flow run: the run's Prefect server, and library warnings in its logs.

Without ``PREFECT_API_URL``, a flow run talks to a temporary Prefect server in
its own process, and each Dask worker, which runs its tasks through Prefect's
task engine, would start a temporary server of its own (16-20 s each, and the
logs and artifacts of its tasks would land there, unseen).
:func:`shared_server` starts the flow process's temporary server before the
run and points the run at it; the run's settings travel with every task to
the workers, so they report to the same server. A cluster on other machines
cannot reach a temporary server on 127.0.0.1, so it is left alone, with a
warning: give it a real server (``prefect server start``, ``PREFECT_API_URL``
in the flow's environment).

The library's ``item2vec`` logger reaches the run logs on a worker as in the
flow process (Prefect's ``PREFECT_LOGGING_EXTRA_LOGGERS``). Warnings do not go
through logging unless asked; :class:`WarningsToRunLogs` asks, on every
worker of the run's cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger("item2vec_flows.workers")

#: Scheduler hosts that are this machine, whose workers reach a server on 127.0.0.1.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

#: The logger that carries workers' warnings (under the library's, so into run logs).
WARNINGS_LOGGER = "item2vec.warnings"
PLUGIN_NAME = "item2vec-warnings-to-run-logs"


class _Forward(logging.Handler):
    """Hands each ``py.warnings`` record to :data:`WARNINGS_LOGGER`'s handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(WARNINGS_LOGGER).handle(record)


class WarningsToRunLogs(WorkerPlugin):
    """On each worker: warnings become log records under the library's logger."""

    def setup(self, worker: Any) -> None:
        logging.captureWarnings(True)
        source = logging.getLogger("py.warnings")
        if not any(isinstance(h, _Forward) for h in source.handlers):
            source.addHandler(_Forward())
        source.propagate = False  # once, through the library's handlers
        library = logging.getLogger("item2vec")
        if library.level == logging.NOTSET:
            library.setLevel(logging.INFO)


def forward_warnings(client: Any) -> None:
    """Install :class:`WarningsToRunLogs` on every worker of ``client``'s cluster."""
    client.register_plugin(WarningsToRunLogs(), name=PLUGIN_NAME)


def is_local(address: str | None) -> bool:
    """The scheduler is on this machine: a LocalCluster (no address) or a loopback one."""
    if not address:
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in LOCAL_HOSTS


@contextmanager
def shared_server(task_runner: Any) -> Iterator[str | None]:
    """Run inside this with a Dask task runner, so that its workers use one Prefect server.

    With ``PREFECT_API_URL`` set, nothing changes: the workers get that URL.
    Without it, the process's temporary server is started now and the run is
    pointed at it. Yields the URL the run (and its workers) use.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if type(task_runner).__name__ != "DaskTaskRunner" or PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    if not is_local(getattr(task_runner, "address", None)):
        log.warning(
            "the Dask cluster at %s is not on this machine and no Prefect server is set: "
            "each worker starts a temporary server of its own (16-20 s each) and the "
            "logs of its tasks stay there; run `prefect server start --host 0.0.0.0` "
            "and set PREFECT_API_URL=http://HOST:4200/api",
            task_runner.address,
        )
        yield None
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same one embedded mode would start
    server.start()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server.api_url
