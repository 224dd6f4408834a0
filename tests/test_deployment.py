from pathlib import Path

import pytest

from item2vec.config import build_config
from item2vec.errors import ConfigError
from item2vec.presets import bundled_sample
from item2vec_flows.cli import build_parser, main
from item2vec_flows.cli_common import EXIT_ERROR
from item2vec_flows.cli_options import config_from_args

pytestmark = pytest.mark.flows


def test_deployment_has_schedule_and_parameters(prefect_harness):
    from item2vec_flows.deployment import build_deployment

    config = build_config(bundled_sample(), {"train": {"epochs": 3}})
    deployment = build_deployment(config, "0 3 * * *")
    assert deployment.name == "nightly"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    parameters = deployment.parameters["config"]
    assert parameters["train"]["epochs"] == 3
    assert parameters["ingest"]["user_col"] == "userId"
    # The parameter schema comes from the pydantic model, so the UI renders a form.
    schema = deployment._parameter_openapi_schema.model_dump()
    assert "config" in schema["properties"]


def test_bad_cron_is_refused(prefect_harness):
    from item2vec_flows.deployment import build_deployment

    with pytest.raises(ConfigError, match="not a valid cron"):
        build_deployment(build_config(bundled_sample()), "every night")


def test_serve_without_a_server_says_how(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: None}):
        code = main(["serve", "--cron", "0 3 * * *"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "prefect server start" in err and "PREFECT_API_URL" in err
    assert "Traceback" not in err


def test_prefect_yaml_parameters_validate():
    """prefect.yaml names the run flow, and its parameters validate as a config."""
    from pathlib import Path

    import yaml

    document = yaml.safe_load((Path(__file__).parent.parent / "prefect.yaml").read_text())
    (deployment,) = document["deployments"]
    assert deployment["schedules"][0]["cron"] == "0 3 * * *"
    config = build_config(deployment["parameters"]["config"])
    assert config.publish.model_name == "movielens"
    # prefect deploy and item2vec serve name their deployments apart.
    from item2vec_flows.deployment import DEFAULT_DEPLOYMENT, POOL_DEPLOYMENT

    assert deployment["name"] == POOL_DEPLOYMENT != DEFAULT_DEPLOYMENT


def test_deployment_has_a_concurrency_limit_of_one_that_enqueues(prefect_harness):
    from item2vec_flows.deployment import build_deployment

    deployment = build_deployment(build_config(bundled_sample()), "0 3 * * *")
    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options.collision_strategy.value == "ENQUEUE"
    unlimited = build_deployment(build_config(bundled_sample()), "0 3 * * *", limit=0)
    assert unlimited.concurrency_limit is None


@pytest.mark.parametrize(
    ("limit", "strategy", "message"),
    [(-1, "ENQUEUE", "0 \\(no limit\\) or more"), (1, "CANCEL_ALL", "CANCEL_NEW")],
)
def test_bad_concurrency_settings_are_refused(limit, strategy, message):
    from item2vec_flows.deployment import concurrency_limit

    with pytest.raises(ConfigError, match=message):
        concurrency_limit(limit, strategy)


def test_serve_refuses_a_negative_concurrency_limit_before_serving(capsys):
    code = main(["serve", "--cron", "0 3 * * *", "--concurrency-limit", "-1"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "--concurrency-limit -1" in err and "Traceback" not in err


def test_the_bundled_sample_is_stored_as_empty_paths_and_run_from_them(tmp_path):
    """A deployment holds no machine's paths: empty paths are the sample, where it runs."""
    from item2vec.presets import portable_sample, with_bundled_sample
    from item2vec_flows.deployment import deployment_parameters

    config = build_config(bundled_sample(), {"train": {"epochs": 3}})
    stored = deployment_parameters(config)["config"]["ingest"]
    assert stored["paths"] == [] and stored["items_path"] is None
    resolved = with_bundled_sample(build_config(deployment_parameters(config)["config"]))
    assert resolved == config
    # Another log's paths, and another items file, are kept as they are.
    own = build_config(bundled_sample(), {"ingest": {"paths": [str(tmp_path / "a.csv")]}})
    assert portable_sample(own) == own and with_bundled_sample(own) == own


def test_the_served_task_runner_travels_in_the_environment(monkeypatch):
    """Each run loads the flow from its entrypoint: the runner must come from the environment."""
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from item2vec_flows.runners import (
        ADDRESS_ENV,
        RUNNER_ENV,
        runner_environment,
        task_runner_from_environment,
    )

    env = runner_environment("dask", "tcp://scheduler.example:8786")
    assert env == {RUNNER_ENV: "dask", ADDRESS_ENV: "tcp://scheduler.example:8786"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = task_runner_from_environment()
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://scheduler.example:8786"
    monkeypatch.delenv(RUNNER_ENV)
    assert isinstance(task_runner_from_environment(), DaskTaskRunner)  # an address means Dask
    monkeypatch.delenv(ADDRESS_ENV)
    assert isinstance(task_runner_from_environment(), ThreadPoolTaskRunner)
    monkeypatch.setenv(RUNNER_ENV, "spark")
    with pytest.raises(ConfigError, match=RUNNER_ENV):
        task_runner_from_environment()


@pytest.mark.parametrize(
    ("kind", "address", "message"),
    [
        ("spark", None, "unknown"),
        ("threads", "tcp://h:8786", "needs --task-runner dask"),
        ("dask", "h:8786", "tcp://HOST:8786"),
    ],
)
def test_bad_task_runner_settings_are_refused(kind, address, message):
    from item2vec_flows.runners import build_task_runner

    with pytest.raises(ConfigError, match=message):
        build_task_runner(kind, address)


def test_cli_refuses_a_bad_dask_address_before_running(tmp_path, capsys):
    code = main(
        ["run", "--task-runner", "dask", "--dask-address", "h:8786", "--output", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "tcp://HOST:8786" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_the_prefect_yaml_entrypoint_is_a_module_a_dask_worker_can_import():
    """``prefect deploy`` and every run load the entrypoint anew. By file path, the flow
    would live in a module named ``pipeline`` that no Dask worker can import."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from item2vec_flows.deployment import build_deployment

    repo = Path(__file__).parent.parent
    (deployment,) = yaml.safe_load((repo / "prefect.yaml").read_text())["deployments"]
    assert deployment["entrypoint"] == "item2vec_flows.pipeline.item2vec_run"
    assert (
        build_deployment(build_config(bundled_sample()), "0 3 * * *").entrypoint
        == (deployment["entrypoint"])
    )
    code = (
        "from prefect.flows import load_flow_from_entrypoint\n"
        f"flow = load_flow_from_entrypoint({deployment['entrypoint']!r})\n"
        "print(flow.name, flow.fn.__module__)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip().splitlines()[-1] == "item2vec-run item2vec_flows.pipeline"


def _registered(client, name: str):
    deployment = client.read_deployment_by_name(f"item2vec-run/{name}")
    return {
        "config": build_config(deployment.parameters["config"]),
        "limit": deployment.global_concurrency_limit.limit,
        "collision": deployment.concurrency_options.collision_strategy.value,
        "crons": [s.schedule.cron for s in deployment.schedules],
        "tags": deployment.tags,
        "description": deployment.description,
    }


def test_prefect_yaml_registers_the_deployment_serve_does(prefect_harness, tmp_path):
    """`prefect deploy --all` and `item2vec serve` register the same deployment, apart
    from its name: the same settings (the sample's tuned ones), one run at a time."""
    import contextlib
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.testing.cli import invoke_and_assert

    from item2vec_flows.deployment import DEFAULT_DEPLOYMENT, POOL_DEPLOYMENT, build_deployment
    from item2vec_flows.runners import RUNNER_ENV

    repo = Path(__file__).resolve().parent.parent
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name="item2vec-pool", type="process"))
    # In-process, as Prefect's own CLI tests run it: a subprocess would import Prefect again.
    invoke_and_assert(["--no-prompt", "deploy", "--all"], temp_dir=str(repo), echo=False)
    # What `item2vec serve --cron "0 3 * * *"` registers before it starts serving.
    args = build_parser().parse_args(["serve", "--cron", "0 3 * * *"])
    build_deployment(config_from_args(args), args.cron, args.name).apply()
    with get_client(sync_client=True) as client:
        pool = _registered(client, POOL_DEPLOYMENT)
        served = _registered(client, DEFAULT_DEPLOYMENT)
        # The pool's runs take their task runner from the job's environment, as served ones do.
        job = client.read_deployment_by_name(f"item2vec-run/{POOL_DEPLOYMENT}").job_variables
    assert job["env"] == {RUNNER_ENV: "threads"}
    assert pool == served
    assert served["limit"] == 1 and served["collision"] == "ENQUEUE"
    assert served["config"].train.epochs == 41  # the sample's tuned settings, not the defaults
    assert served["config"].ingest.paths == []  # the sample, wherever it runs


class _Placement:
    """A Dask scheduler plugin: the worker each finished task ran on."""

    name = "item2vec-test-placement"

    def __init__(self) -> None:
        self.ran: dict[str, str] = {}

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "memory" and kwargs.get("worker"):
            self.ran[str(key)] = kwargs["worker"]


@pytest.fixture
def dask_cluster(prefect_harness, monkeypatch):
    """A LocalCluster of one worker process that talks to the harness's Prefect server
    (without it, the worker would start a temporary server of its own)."""
    from distributed import LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    placement = type("Placement", (_Placement, SchedulerPlugin), {})()
    cluster.scheduler.add_plugin(placement)
    try:
        yield cluster, placement
    finally:
        cluster.close()


# 49-55 s on 2 cores at load averages of 10-16 (serve, the run's subprocess and the
# Dask worker each import Prefect): over the default suite's budget, so marked slow.
@pytest.mark.slow
def test_served_runs_use_the_dask_cluster_given_to_serve(dask_cluster, tmp_path, cli_env):
    """`item2vec serve --task-runner dask --dask-address`, triggered by `prefect deployment
    run`, runs its tasks on that cluster, in its worker processes: the runner used to be
    lost when a run loaded the flow."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from conftest import interrupt
    from distributed import Client
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from item2vec.synth import planted_clusters

    cluster, placement = dask_cluster
    events, _ = planted_clusters(n_users=120, n_items=40, n_clusters=2, events_per_user=12)
    events.to_csv(tmp_path / "events.csv", index=False)
    item2vec = Path(sys.executable).parent / "item2vec"
    command = [
        str(item2vec), "serve", "--cron", "0 3 * * *", str(tmp_path / "events.csv"),
        "--name", "on-dask", "--output", str(tmp_path / "out"), "--model-name", "planted",
        "--epochs", "1", "--no-report", "--gate-margin", "0",
        "--task-runner", "dask", "--dask-address", cluster.scheduler_address,
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        served = subprocess.Popen(
            command, env=cli_env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while "being served" not in log.read_text():
            assert served.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        # Triggered as the user does, through Prefect's own CLI.
        prefect = Path(sys.executable).parent / "prefect"
        trigger = [str(prefect), "deployment", "run", "item2vec-run/on-dask"]
        trigger += ["--watch", "--watch-timeout", "180"]
        done = subprocess.run(trigger, env=cli_env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + log.read_text()[-3000:]
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["on-dask"]))
            )
        assert len(runs) == 1 and runs[0].state.is_completed(), runs
    finally:
        interrupt(served)
    with Client(cluster) as client:
        worker_pids = client.run(os.getpid)
    # The flow submits per-file ingest and the baselines at least; all ran in the worker.
    assert len(placement.ran) >= 2, placement.ran
    assert set(placement.ran.values()) <= set(worker_pids)
    assert not {os.getpid(), served.pid} & set(worker_pids.values())
    assert (tmp_path / "out" / "planted" / "LATEST").is_file()


def test_a_run_with_empty_paths_runs_the_bundled_sample(quickstart_output):
    """The flow, given a deployment's empty paths, reads the bundled sample's files."""
    import json

    from item2vec.presets import BUNDLED_SAMPLE_DIR

    latest = (quickstart_output / "movielens" / "LATEST").read_text().strip()
    manifest = json.loads((quickstart_output / "movielens" / latest / "manifest.json").read_text())
    assert [Path(f["path"]).name for f in manifest["input"]["files"]] == ["ratings.csv"]
    assert manifest["config"]["ingest"]["paths"] == [str(BUNDLED_SAMPLE_DIR / "ratings.csv")]
    assert manifest["counts"]["users"] == 610


# prefect deploy, a process work pool's worker, its flow-run process and the Dask worker
# each import Prefect: about a minute on 2 cores, so marked slow.
@pytest.mark.slow
def test_prefect_yaml_runs_use_the_dask_cluster_in_their_job_environment(
    dask_cluster, tmp_path, cli_env
):
    """A run of `prefect.yaml`'s deployment, picked up by a process work pool's worker,
    runs its tasks in the Dask worker named by ``ITEM2VEC_DASK_ADDRESS`` in the job's env."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml
    from distributed import Client
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from item2vec.synth import planted_clusters
    from item2vec_flows.runners import ADDRESS_ENV, RUNNER_ENV

    cluster, placement = dask_cluster
    events, _ = planted_clusters(n_users=120, n_items=40, n_clusters=2, events_per_user=12)
    events.to_csv(tmp_path / "events.csv", index=False)
    repo = Path(__file__).resolve().parent.parent
    project = yaml.safe_load((repo / "prefect.yaml").read_text())
    (deployment,) = project["deployments"]
    # The repository's file, with the edits its comments tell a user to make.
    deployment["name"], deployment["work_pool"]["name"] = "pool-on-dask", "item2vec-dask-pool"
    deployment["work_pool"]["job_variables"]["env"] = {
        RUNNER_ENV: "dask",
        ADDRESS_ENV: cluster.scheduler_address,
    }
    deployment["schedules"] = []
    deployment["parameters"]["config"] = {
        "ingest": {"paths": [str(tmp_path / "events.csv")]},
        "train": {"epochs": 1},
        "publish": {
            "output": str(tmp_path / "out"),
            "model_name": "planted",
            "report": False,
            "gate_margin": 0,
        },
    }
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump(project))
    prefect = str(Path(sys.executable).parent / "prefect")

    def prefect_cli(*args: str, timeout: float = 240) -> str:
        done = subprocess.run(
            [prefect, *args], cwd=tmp_path, env=cli_env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout

    prefect_cli("work-pool", "create", "item2vec-dask-pool", "--type", "process")
    prefect_cli("--no-prompt", "deploy", "--all")
    prefect_cli("deployment", "run", "item2vec-run/pool-on-dask")
    prefect_cli("worker", "start", "--pool", "item2vec-dask-pool", "--run-once", timeout=300)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["pool-on-dask"]))
        )
    assert len(runs) == 1 and runs[0].state.is_completed(), runs
    with Client(cluster) as client:
        worker_pids = client.run(os.getpid)
    assert len(placement.ran) >= 2, placement.ran
    assert set(placement.ran.values()) <= set(worker_pids)
    assert (tmp_path / "out" / "planted" / "LATEST").is_file()
