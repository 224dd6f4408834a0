"""Where each stage of a flow run ran: the flow process, or which Dask workers.

On Prefect's thread pool every task runs in the flow process. On a Dask task
runner each submitted task runs on a worker, and the scheduler's task stream
(``Client.get_task_stream``, started when the run starts) says which one; a
stage is recorded by the futures of its tasks. A task called directly, not
submitted, would run in the flow process: the pipeline submits every stage.

Waiting on a stage uses Dask's own ``wait`` on the wrapped futures, which,
unlike ``PrefectDaskFuture.wait``, does not bring the result into the flow
process.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

#: How a stage that ran outside any Dask worker is recorded.
FLOW_PROCESS = "flow process"


def here() -> str:
    """The Dask worker running the caller (its address), or :data:`FLOW_PROCESS`."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return FLOW_PROCESS


class Placement:
    """The stages of one flow run and where their tasks ran.

    Parameters
    ----------
    task_runner
        The run's task runner; a prefect-dask ``DaskTaskRunner`` is a cluster,
        anything else runs tasks in the flow process.
    """

    def __init__(self, task_runner: Any) -> None:
        self.client = _dask_client(task_runner)
        self.runner = type(task_runner).__name__ if task_runner is not None else "none"
        self.address = self.client.scheduler.address if self.client is not None else None
        self._keys: dict[str, list[str]] = {}
        self._started = time.time()
        # Futures by stage, kept only for :meth:`result`'s search for a failed
        # task; :meth:`release` drops a finished stage's (keys stay for the record).
        self._futures: dict[str, list[Any]] = {}
        if self.client is not None:
            self.client.get_task_stream(count=0)  # starts the scheduler's recording
            from item2vec_flows.workers import forward_warnings

            forward_warnings(self.client)

    @property
    def workers(self) -> int:
        """Workers of the cluster now (at least 1); 1 without a cluster."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def track(self, stage: str, *futures: Any) -> None:
        """Record ``futures`` as tasks of ``stage``."""
        keys = self._keys.setdefault(stage, [])
        self._futures.setdefault(stage, []).extend(futures)
        for future in futures:
            key = getattr(getattr(future, "wrapped_future", None), "key", None)
            if key is not None:  # a Dask future (thread futures have no key)
                keys.append(key)

    def track_keys(self, stage: str, keys: list[Any]) -> None:
        """Record plain Dask tasks (by key) as tasks of ``stage``, e.g. a shuffle's outputs."""
        self._keys.setdefault(stage, []).extend(keys)

    def release(self, *stages: str) -> None:
        """Stop holding the futures of ``stages``, which have finished without failing.

        On a cluster a task's result stays in a worker's memory while any
        future of it lives; holding every tracked future for the whole run
        kept each ingested file and every partition of the sequences stage on
        the workers beside training. Where the stages ran is still recorded.
        """
        for stage in stages:
            self._futures.pop(stage, None)

    def settle(self, *futures: Any) -> None:
        """Wait for ``futures`` to finish without fetching their results.

        When one failed, its error is raised now (see :meth:`result`), before
        later stages are submitted to fail on it.
        """
        if self.client is not None:
            from distributed import wait

            with self.client.as_current():  # wait() asks for the current client
                wait([future.wrapped_future for future in futures])
        else:
            for future in futures:
                future.wait()
        for future, failed in zip(futures, self.peek_all(futures, is_failed), strict=True):
            if failed:
                self.result(future)

    def peek(self, future: Any, look: Any) -> Any:
        """``look(state)`` of ``future``'s final state, evaluated where the result is.

        On a cluster ``look`` runs on the worker holding the result, so a large
        result never travels to the flow process to answer a small question.
        """
        wrapped = getattr(future, "wrapped_future", None)
        if self.client is not None and wrapped is not None:
            return self.client.submit(look, wrapped, pure=False).result()
        future.wait()
        return look(future.state)

    def peek_all(self, futures: list[Any] | tuple[Any, ...], look: Any) -> list[Any]:
        """:meth:`peek` of each future, all at once (one small task each, where it lives)."""
        if self.client is None:
            return [self.peek(future, look) for future in futures]
        wrapped = [future.wrapped_future for future in futures]
        return self.client.gather(self.client.map(look, wrapped, pure=False))

    def result(self, future: Any) -> Any:
        """``future.result()``; when it failed, the first failed task's own error instead.

        A task whose input failed fails with Prefect's upstream error, which
        hides the cause (a bad file, a bad setting): the first tracked task
        that failed by itself is raised instead.
        """
        try:
            return future.result()
        except Exception:
            tracked_now = [tracked for held in self._futures.values() for tracked in held]
            others = [tracked for tracked in tracked_now if tracked is not future]
            failures = self.peek_all(others, failed_by_itself)
            for tracked, failed in zip(others, failures, strict=True):
                if failed:
                    tracked.result()
            raise

    def stages(self) -> dict[str, list[str]]:
        """Each tracked stage and where its tasks ran: worker addresses, sorted."""
        if self.client is None:
            return {stage: [FLOW_PROCESS] for stage in self._keys}
        ran: dict[str, set[str]] = {}
        for record in self.client.get_task_stream(start=self._started):
            if record.get("status", "OK") == "OK":
                ran.setdefault(record["key"], set()).add(record["worker"])
        return {
            stage: sorted(set().union(*(ran.get(key, set()) for key in keys)) or {"unknown"})
            for stage, keys in self._keys.items()
        }

    def record(self, extra: dict[str, str] | None = None) -> dict[str, Any]:
        """The manifest's ``placement``: runner, cluster address and each stage's place."""
        stages = self.stages()
        for stage, where in (extra or {}).items():
            stages[stage] = [where]
        return {"task_runner": self.runner, "cluster": self.address, "stages": stages}


def on_resource(place: Placement, name: str | None) -> Any:
    """Tasks submitted inside this run only on workers holding resource ``name``.

    prefect-dask submits through ``Client.submit``, which takes the annotations
    of ``dask.annotate``; without a cluster or a name nothing changes.
    """
    if place.client is None or not name:
        return nullcontext()
    import dask

    return dask.annotate(resources={name: 1})


class Opaque:
    """A large value handed between tasks without Prefect looking inside.

    Prefect walks dataclasses, lists and tuples in a task's inputs for futures;
    a split holds millions of lists. ``quote`` would stop it too, but it is a
    tuple, and Dask rebuilds tuples as plain ones on the way to a worker.
    """

    def __init__(self, value: Any) -> None:
        self.value = value


def failed_by_itself(state: Any) -> bool:
    """The state is a failure of the task's own (not of an input's)."""
    if not state.is_failed():
        return False
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the failure inspected, not handled
        return type(exc).__name__ != "UpstreamTaskError"
    return False


def is_failed(state: Any) -> bool:
    """The task failed (by itself or for an input)."""
    return not state.is_completed()


def holds_none(state: Any) -> bool:
    """The task completed and returned None."""
    return state.is_completed() and state.result() is None


def _dask_client(task_runner: Any) -> Any:
    if task_runner is None or type(task_runner).__name__ != "DaskTaskRunner":
        return None
    return task_runner.client
