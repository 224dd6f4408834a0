"""The pipeline on a real Dask cluster: heavy stages on workers, placement recorded, logs kept.

One ``distributed.LocalCluster`` of 2 worker processes on 127.0.0.1 serves the
module; the flow connects to it by address, as to any cluster.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import two_file_config
from distributed.diagnostics.plugin import SchedulerPlugin

pytestmark = pytest.mark.flows

#: Every stage whose cost grows with the data: each must run on a worker.
HEAVY = (
    "ingest",
    "sequences",
    "split",
    "baselines",
    "train",
    "evaluate_model",
    "neighbors",
    "recommend",
    "publish",
)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


class HeldWhenStarting(SchedulerPlugin):
    """A scheduler plugin: the keys in worker memory when a task named ``prefix``-... starts.

    Dask names a submitted function's task ``<function name>-<token>``.
    """

    def __init__(self, scheduler, prefix: str) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.prefix = f"{prefix}-"
        self.keys: list[str] | None = None

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "processing" and str(key).startswith(self.prefix) and self.keys is None:
            tasks = self.scheduler.tasks.values()
            self.keys = [str(task.key) for task in tasks if task.state == "memory"]


@contextmanager
def held_when_starting(cluster, task):
    """The keys in worker memory when the run's ``task`` (a Prefect task) starts (``.keys``)."""
    name = f"held-when-{task.name}"
    held = HeldWhenStarting(cluster.scheduler, task.fn.__name__)
    cluster.scheduler.add_plugin(held, name=name)
    try:
        yield held
    finally:
        cluster.scheduler.remove_plugin(name)


def held_of(held: HeldWhenStarting, *tasks) -> list[str]:
    """The keys of ``tasks`` (Prefect tasks) among those ``held`` when its task started."""
    assert held.keys is not None, f"no task {held.prefix}... started on the cluster"
    prefixes = tuple(f"{task.fn.__name__}-" for task in tasks)
    return [key for key in held.keys if key.startswith(prefixes)]


def _run_logs(flow_run_id: str, *wanted: str, timeout: float = 30.0) -> list[str]:
    """The run's log messages, once each of ``wanted`` starts one of them (workers send
    theirs in batches, so one line may arrive before another). Every page is read: the
    server returns at most a page of logs per call."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout
    page = 200
    while True:
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while True:
                logs = client.read_logs(
                    LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                    limit=page,
                    offset=len(messages),
                )
                messages += [log.message for log in logs]
                if len(logs) < page:
                    break
        found = all(any(w in m for m in messages) for w in wanted)
        if found or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def test_heavy_stages_run_on_the_workers_and_the_manifest_says_where(
    prefect_harness, cluster, tmp_path
):
    import json

    from prefect_dask import DaskTaskRunner

    from item2vec_flows import pipeline
    from item2vec_flows.pipeline import run_pipeline
    from item2vec_flows.placement import FLOW_PROCESS

    workers = set(cluster.scheduler_info["workers"])
    on_threads = run_pipeline(two_file_config(tmp_path, "threads", mixed_units=True))
    with (
        held_when_starting(cluster, pipeline.train_task) as training,
        held_when_starting(cluster, pipeline.publish_task) as publishing,
    ):
        on_dask = run_pipeline(
            two_file_config(tmp_path, "dask", mixed_units=True),
            task_runner=DaskTaskRunner(address=cluster.scheduler_address),
        )
    # The files' rows left the workers' memory once the sequences were built, and
    # the shards of neighbours and recommendations once they were concatenated.
    assert not held_of(training, pipeline.ingest_file_task)
    assert held_of(training, pipeline.split_task)
    assert not held_of(publishing, pipeline.neighbors_task, pipeline.recommend_task)
    assert len(held_of(publishing, pipeline.concat_task)) == 2

    manifest = json.loads((Path(on_dask["version_dir"]) / "manifest.json").read_text())
    placement = manifest["placement"]
    assert placement["task_runner"] == "DaskTaskRunner"
    assert placement["cluster"] == cluster.scheduler_address
    for stage in HEAVY:
        assert placement["stages"][stage], stage
        assert set(placement["stages"][stage]) <= workers, (stage, placement["stages"][stage])
    # The shards really spread: the per-file ingest used both workers (2 files, 2 idle workers).
    assert set().union(*placement["stages"].values()) == workers
    threads = json.loads((Path(on_threads["version_dir"]) / "manifest.json").read_text())
    assert set(threads["placement"]["stages"]["train"]) == {FLOW_PROCESS}
    assert threads["placement"]["task_runner"] == "ThreadPoolTaskRunner"

    # Sharded (one shard per worker) and unsharded runs measure the same thing exactly.
    assert on_dask["metrics"] == on_threads["metrics"]
    assert on_dask["counts"] == on_threads["counts"]

    # The library's lines and warnings from the workers are in the run's logs.
    messages = _run_logs(
        on_dask["flow_run_id"], "mixes epoch units", "evaluated model on", "trained "
    )
    assert any("mixes epoch units" in m for m in messages), messages[:20]
    assert any(m.startswith("evaluated model on") for m in messages)
    assert any(m.startswith("trained ") and "item vectors" in m for m in messages)


def test_python_warnings_on_a_worker_become_library_log_records(cluster):
    """warnings.warn on a worker reaches the handlers of the ``item2vec`` logger."""
    from distributed import Client

    from item2vec_flows.workers import forward_warnings

    def warn_and_collect() -> list[str]:
        import logging
        import warnings

        seen: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record.getMessage())

        keep = Keep()
        logging.getLogger("item2vec").addHandler(keep)
        try:
            warnings.warn("a worker-side library warning", UserWarning, stacklevel=1)
        finally:
            logging.getLogger("item2vec").removeHandler(keep)
        return seen

    with Client(cluster.scheduler_address) as client:
        forward_warnings(client)
        seen = client.run(warn_and_collect)
    assert set(seen) == set(cluster.scheduler_info["workers"])
    for messages in seen.values():
        assert any("a worker-side library warning" in m for m in messages), messages


@pytest.mark.slow  # a fresh interpreter, a Prefect home and a LocalCluster: 40-80 s here
def test_without_a_server_only_the_flow_starts_a_temporary_one(tmp_path):
    """No PREFECT_API_URL: the workers report to the flow's temporary server, not their own."""
    import os
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\n"
        "import item2vec_flows\n"
        "from conftest import two_file_config\n"
        "from item2vec_flows.pipeline import run_pipeline\n"
        "from item2vec_flows.runners import build_task_runner\n"
        "if __name__ == '__main__':\n"
        "    config = two_file_config(__import__('pathlib').Path(sys.argv[1]), 'out')\n"
        "    result = run_pipeline(config, task_runner=build_task_runner('dask', dask_workers=2))\n"
        "    print(json.dumps(result['placement']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PYTHONPATH"] = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert output.count("Starting temporary server") == 1, output[-3000:]
    import json

    placement = json.loads(done.stdout.strip().splitlines()[-1])
    assert placement["task_runner"] == "DaskTaskRunner"
    assert "flow process" not in {w for ws in placement["stages"].values() for w in ws}


@pytest.mark.parametrize(
    ("address", "local"),
    [
        (None, True),
        ("tcp://127.0.0.1:8786", True),
        ("tcp://localhost:8786", True),
        ("tcp://10.0.0.5:8786", False),
        ("tls://scheduler.example:8786", False),
    ],
)
def test_only_a_cluster_on_this_machine_is_pointed_at_the_temporary_server(address, local):
    from item2vec_flows.workers import is_local

    assert is_local(address) is local


def test_a_remote_cluster_without_a_server_is_warned_about_and_left_alone(caplog):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from item2vec_flows.workers import shared_server

    class DaskTaskRunner:  # the name is what shared_server recognises
        address = "tcp://10.0.0.5:8786"

    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        caplog.at_level("WARNING"),
        shared_server(DaskTaskRunner()) as url,
    ):
        assert url is None
        assert PREFECT_API_URL.value() is None
    assert "PREFECT_API_URL" in caplog.text


@pytest.mark.slow  # a whole run on the cluster: 40-90 s here
def test_sequences_in_partitions_of_users_equal_one_workers_and_run_on_the_workers(
    prefect_harness, cluster, tmp_path
):
    import json

    import pyarrow.parquet as pq
    from prefect_dask import DaskTaskRunner
    from test_user_partitions import config_for, synthetic_log

    from item2vec.cache import events_and_sequences
    from item2vec_flows import partitioned, pipeline
    from item2vec_flows.pipeline import run_pipeline

    synthetic_log(tmp_path / "logs", files=3)
    config = config_for(tmp_path, shuffle_partitions=3, write_sequences=True)
    config.train.epochs, config.train.min_count = 1, 1
    config.publish.report, config.publish.gate_margin = False, 0
    events, expected = events_and_sequences(config)  # the one-worker path, in this process
    try:
        with held_when_starting(cluster, pipeline.train_task) as held:
            runner = DaskTaskRunner(address=cluster.scheduler_address)
            result = run_pipeline(config, task_runner=runner)
    except Exception as exc:  # a refused gate still publishes; only the tables matter here
        result = getattr(exc, "result", None)
        assert result is not None, exc
    version = Path(result["version_dir"])
    published = pq.read_table(version / "sequences.parquet")
    assert published.select(expected.column_names).equals(expected)
    ingest_drops = {
        reason: result["counts"]["dropped"][reason] for reason in events.counts["dropped"]
    }
    assert ingest_drops == events.counts["dropped"]
    assert result["counts"]["events_kept"] == events.counts["events_kept"]
    placement = json.loads((version / "manifest.json").read_text())["placement"]
    workers = set(cluster.scheduler_info["workers"])
    assert placement["stages"]["sequences"]
    assert set(placement["stages"]["sequences"]) <= workers
    # Once the sequences are built, the workers hold no file's rows and no partition.
    parts = (partitioned.rows_task, partitioned.support_part_task, partitioned.sequences_part_task)
    assert not held_of(held, pipeline.ingest_file_task, *parts)
    assert held_of(held, pipeline.split_task)


def test_shuffle_partitions_on_threads_is_refused_naming_the_flag(tmp_path):
    from test_user_partitions import config_for

    from item2vec.errors import ConfigError
    from item2vec_flows.partitioned import refuse_without_cluster

    config = config_for(tmp_path, shuffle_partitions=4)
    with pytest.raises(ConfigError, match="--shuffle-partitions.*--task-runner dask"):
        refuse_without_cluster(config, "threads")
    refuse_without_cluster(config, "dask")
    refuse_without_cluster(config_for(tmp_path), "threads")


@pytest.mark.slow  # a cluster of its own and a whole run: 30-60 s here
def test_train_runs_only_on_the_worker_with_the_training_resource(prefect_harness, tmp_path):
    import json

    from distributed import Nanny, Scheduler, SpecCluster
    from prefect_dask import DaskTaskRunner

    from item2vec_flows.pipeline import run_pipeline

    workers = {
        "trainer": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"gensim": 1}}},
        "other": {"cls": Nanny, "options": {"nthreads": 1}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as spec:
        spec.wait_for_workers(2)
        info = spec.scheduler_info["workers"]
        trainer = {address for address, w in info.items() if w.get("resources")}
        config = two_file_config(tmp_path, "out")
        config.train.resource = "gensim"
        config.publish.refit = True
        result = run_pipeline(config, task_runner=DaskTaskRunner(address=spec.scheduler_address))
    stages = json.loads((Path(result["version_dir"]) / "manifest.json").read_text())
    stages = stages["placement"]["stages"]
    assert len(trainer) == 1
    assert set(stages["train"]) == trainer
    assert set(stages["refit"]) == trainer


def test_a_training_resource_name_is_checked():
    from pydantic import ValidationError

    from item2vec.config import TrainConfig

    with pytest.raises(ValidationError, match="resource"):
        TrainConfig(resource="two words")
