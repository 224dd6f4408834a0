"""Prefect settings and servers of a flow run in this process (``run_pipeline``).

Where Prefect may persist results, and on Dask, one Prefect server for the
flow and its workers (:mod:`item2vec_flows.workers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from item2vec.cache import cache_root
from item2vec.config import PipelineConfig


@contextmanager
def workers_server(task_runner: Any) -> Iterator[None]:
    """On Dask, one Prefect server for the flow and its workers (:mod:`.workers`)."""
    if type(task_runner).__name__ != "DaskTaskRunner":
        yield
        return
    from item2vec_flows.workers import shared_server

    with shared_server(task_runner):
        yield


def result_storage_path(config: PipelineConfig) -> Path:
    """Where Prefect would persist task results of this run: inside the cache directory,
    or a local temporary folder when the cache is in an object store."""
    root = cache_root(config)
    if not isinstance(root, Path):
        import tempfile

        return Path(tempfile.gettempdir()) / "item2vec-prefect-results"
    return (root / "prefect-results").resolve()
