import pytest

from item2vec.config import build_config
from item2vec.errors import ConfigError
from item2vec.presets import bundled_sample
from item2vec_flows.cli import main
from item2vec_flows.cli_common import EXIT_ERROR

pytestmark = pytest.mark.flows


def test_deployment_has_schedule_and_parameters(prefect_harness):
    from item2vec_flows.deployment import build_deployment

    config = build_config(bundled_sample(), {"train": {"epochs": 3}})
    deployment = build_deployment(config, "0 3 * * *", name="nightly")
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
    assert deployment["entrypoint"] == "flows/pipeline.py:item2vec_run"
    assert deployment["schedules"][0]["cron"] == "0 3 * * *"
    config = build_config(deployment["parameters"]["config"])
    assert config.publish.model_name == "movielens"


def test_deployment_can_run_on_dask(prefect_harness):
    from prefect_dask import DaskTaskRunner

    from item2vec_flows.deployment import build_deployment
    from item2vec_flows.runners import build_task_runner

    runner = build_task_runner("dask", "tcp://scheduler.example:8786")
    deployment = build_deployment(build_config(bundled_sample()), "0 3 * * *", task_runner=runner)
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    assert isinstance(runner, DaskTaskRunner)


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


def test_the_prefect_yaml_entrypoint_loads_by_path_from_the_project_folder():
    """``prefect deploy`` loads flows/pipeline.py by path: it must import without the package."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from prefect.flows import load_flow_from_entrypoint\n"
        "flow = load_flow_from_entrypoint('flows/pipeline.py:item2vec_run')\n"
        "print(flow.name)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip().splitlines()[-1] == "item2vec-run"
