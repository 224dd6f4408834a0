"""Shared fixtures: the bundled sample, synthetic logs, and one Prefect test harness."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from item2vec.presets import BUNDLED_SAMPLE_DIR
from item2vec.synth import planted_clusters

REPO = Path(__file__).resolve().parent.parent
SHARED_SAMPLE = REPO.parent / "shared" / "data" / "movielens-small"


@pytest.fixture(scope="session")
def sample_ratings() -> Path:
    """The bundled MovieLens ratings file."""
    path = BUNDLED_SAMPLE_DIR / "ratings.csv"
    if not path.is_file():
        pytest.skip(f"bundled sample missing at {path}; restore data/movielens-small")
    return path


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    """The MovieLens copy in ../shared, when the checkout sits beside it."""
    if not (SHARED_SAMPLE / "ratings.csv").is_file():
        pytest.skip(f"../shared is not beside this checkout ({SHARED_SAMPLE} missing)")
    return SHARED_SAMPLE


@pytest.fixture
def clustered_log(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A CSV log of users who each browse one of two disjoint item worlds, plus the truth."""
    events, truth = planted_clusters(n_users=200, n_items=60, n_clusters=2, events_per_user=20)
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    return path, truth


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One embedded Prefect server for every flow test (starting one costs seconds)."""
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    import item2vec_flows  # noqa: F401  (sets quiet Prefect defaults before Prefect is imported)

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def cli_env(prefect_harness, tmp_path_factory) -> dict[str, str]:
    """Environment for ``item2vec`` CLI runs in a subprocess, on the harness's server.

    A CLI run without a server starts a temporary one (seconds per run, plus a database
    migration in every new PREFECT_HOME). The runs that need no particular server share
    the harness's instead; tests/test_kill.py keeps the embedded server, and kills it.
    """
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_HOME": str(tmp_path_factory.mktemp("cli-prefect-home"))}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    return env


@pytest.fixture(scope="session")
def quickstart_output(prefect_harness, tmp_path_factory) -> Path:
    """What the Quickstart's ``item2vec run`` publishes, trained for one epoch only.

    It runs from the parameters a deployment stores for the sample (empty paths,
    which the flow resolves to the bundled files), so the one sample run of the
    default suite also proves that a deployment run with empty paths works.
    """
    from item2vec.config import build_config
    from item2vec.presets import bundled_sample, portable_sample
    from item2vec_flows.pipeline import run_pipeline

    output = tmp_path_factory.mktemp("quickstart") / "output"
    quick = {"output": str(output), "gate_margin": 0, "report": False}
    config = portable_sample(
        build_config(bundled_sample(), {"train": {"epochs": 1}, "publish": quick})
    )
    assert config.ingest.paths == []
    run_pipeline(config)
    return output


def publish_small_model(output: Path, model: str) -> Path:
    """Publish a four-item model (a..d) with titles and two recommendations for user u1."""
    import numpy as np
    import pyarrow as pa

    from item2vec.neighbors import nearest_neighbors
    from item2vec.publish import ITEMS_FILE, RECOMMENDATIONS_FILE, publish_version
    from item2vec.vectors import ItemVectors

    rng = np.random.default_rng(0)
    vectors = ItemVectors(
        item_ids=np.array(["a", "b", "c", "d"], dtype=object),
        vectors=rng.normal(size=(4, 4)).astype(np.float32),
        context_vectors=None,
        counts=np.ones(4, dtype=np.int64),
    )
    extra = {
        RECOMMENDATIONS_FILE: pa.table(
            {
                "user_id": ["u1", "u1"],
                "rank": pa.array([1, 2], pa.int32()),
                "item_id": ["c", "d"],
                "score": pa.array([0.9, 0.5], pa.float32()),
            }
        ),
        ITEMS_FILE: pa.table(
            {"item_id": ["a", "b", "c", "d"], "title": ["Alpha", "Beta", "Gamma", "Delta"]}
        ),
    }
    manifest = {
        "gate": {"passed": True, "reason": "ok", "metric": "hr@10"},
        "metrics": {"model": {"hr@10": 0.2}},
    }
    return publish_version(
        output,
        model,
        vectors,
        nearest_neighbors(vectors, 3),
        manifest,
        move_latest=True,
        extra_tables=extra,
    )


def kill_at_line(
    command: list[str], cwd: Path, env: dict[str, str], marker: str, settle: float = 0.0
) -> list[str]:
    """Run ``command`` in a session of its own and SIGKILL it (its Prefect server too)
    ``settle`` seconds after a line containing ``marker``; the lines it printed."""
    import signal
    import subprocess
    import threading
    import time

    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not seen.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {marker!r} line (exit {proc.poll()}):\n{''.join(lines)}")
        time.sleep(settle)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    reader.join(timeout=30)
    return lines


def interrupt(process) -> None:
    """Stop a command started in a session of its own: SIGINT, then SIGKILL after 30 s."""
    import signal
    import subprocess

    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def two_file_config(tmp_path: Path, output: str, mixed_units: bool = False):
    """A small deterministic run over a folder of two CSV parts, published under ``output``.

    With ``mixed_units``, a third of part 2's times are written in milliseconds:
    the same instants, and a mixed-unit warning from whoever reads that file.
    """
    from item2vec.config import build_config

    events, _ = planted_clusters(n_users=120, n_items=40, events_per_user=10)
    folder = tmp_path / "logs"
    folder.mkdir(exist_ok=True)
    half = len(events) // 2
    events.iloc[:half].to_csv(folder / "part-1.csv", index=False)
    second = events.iloc[half:].copy()
    if mixed_units:
        in_ms = second.index[::3]
        second.loc[in_ms, "timestamp"] = second.loc[in_ms, "timestamp"] * 1000
    second.to_csv(folder / "part-2.csv", index=False)
    return build_config(
        {
            "ingest": {"paths": [str(folder)], "cache": False},
            "train": {"epochs": 3, "deterministic": True, "min_count": 1},
            "publish": {
                "output": str(tmp_path / output),
                "model_name": "m",
                "gate_margin": 0,
                "report": False,
            },
        }
    )
