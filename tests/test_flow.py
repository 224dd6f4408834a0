"""Real flow runs: under prefect_test_harness, and through the CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from item2vec.config import build_config
from item2vec.errors import QualityGateError
from item2vec.presets import bundled_sample

pytestmark = pytest.mark.flows

MANIFEST_KEYS = {
    "model_name",
    "version",
    "created_at",
    "input",
    "config",
    "counts",
    "metrics",
    "gate",
    "versions",
    "files",
}
METRIC_KEYS = {f"{m}@{k}" for m in ("hr", "ndcg", "mrr", "coverage") for k in (10, 20)} | {
    "unrankable"
}


@pytest.fixture(scope="module")
def sample_run(prefect_harness, sample_ratings, tmp_path_factory):
    from item2vec_flows.pipeline import run_pipeline

    output = tmp_path_factory.mktemp("output")
    config = build_config(bundled_sample(), {"publish": {"output": str(output)}})
    return run_pipeline(config), output


@pytest.fixture(scope="module")
def planted_runs(prefect_harness, tmp_path_factory) -> tuple[dict, dict, dict]:
    """Two runs of one configuration over one planted log, and that configuration: the
    second run finds the first as LATEST, and its input in the cache."""
    from item2vec.synth import planted_clusters
    from item2vec_flows.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("planted")
    events, _ = planted_clusters(n_users=300, n_items=80, n_clusters=4, events_per_user=20)
    events.to_csv(folder / "events.csv", index=False)
    settings = {
        "ingest": {"paths": [str(folder / "events.csv")]},
        "publish": {"output": str(folder / "out"), "model_name": "planted", "report": False},
    }
    config = build_config(settings)
    return run_pipeline(config), run_pipeline(config), settings


def test_flow_publishes_the_contract_schema(sample_run):
    result, output = sample_run
    version_dir = Path(result["version_dir"])
    assert version_dir.parent == output / "movielens"
    assert (output / "movielens" / "LATEST").read_text().strip() == version_dir.name

    vectors = pq.read_table(version_dir / "item_vectors.parquet")
    assert vectors.schema.names == ["item_id", "vector", "count", "context_vector", "version"]
    dim = result["metrics"] and int(vectors.schema.metadata[b"item2vec.dim"])
    assert vectors.schema.field("vector").type == pa.list_(pa.float32(), dim)
    neighbors = pq.read_table(version_dir / "item_neighbors.parquet")
    assert [f.type for f in neighbors.schema] == [
        pa.string(),
        pa.int32(),
        pa.string(),
        pa.float32(),
        pa.dictionary(pa.int32(), pa.string()),
    ]
    assert set(pc for pc in neighbors.column("rank").to_pylist()) == set(range(1, 21))

    frame = pd.read_parquet(version_dir / "item_vectors.parquet")
    assert frame["item_id"].map(type).eq(str).all()
    assert len(frame["vector"].iloc[0]) == dim

    recommendations = pq.read_table(version_dir / "user_recommendations.parquet")
    names = ["user_id", "rank", "item_id", "score", "source", "version"]
    assert recommendations.schema.names == names
    assert len(set(recommendations.column("user_id").to_pylist())) == 610
    assert set(recommendations.column("source").to_pylist()) <= {"model", "item_knn", "popularity"}
    items = pq.read_table(version_dir / "items.parquet")
    assert items.schema.names[:2] == ["item_id", "title"]
    assert items.num_rows == 9_742
    for table in (vectors, neighbors, recommendations, items):
        assert set(table.column("version").to_pylist()) == {version_dir.name}

    report = (version_dir / "report.md").read_text()
    assert "Forrest Gump (1994)" in report and "hr_at_k.png" in report
    assert (version_dir / "embedding_map.png").stat().st_size > 10_000

    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert set(manifest) >= MANIFEST_KEYS
    # The evaluated model is published, and the manifest says what it was trained on.
    assert manifest["refit"] is False
    assert manifest["published"]["model"] == "evaluated"
    assert manifest["published"]["events"] == manifest["counts"]["train_events"]
    assert manifest["cost"]["tokens"] == manifest["counts"]["train_events"]
    assert manifest["cost"]["vocabulary"] == manifest["counts"]["vocabulary"]
    assert set(manifest["timings"]["seconds"]) >= {
        "ingest",
        "sequences",
        "split",
        "train",
        "baselines",
        "evaluate_model",
        "neighbors",
        "recommend",
    }
    assert set(manifest["files"]) == {
        "item_vectors.parquet",
        "item_neighbors.parquet",
        "user_recommendations.parquet",
        "items.parquet",
        "report.md",
        "hr_at_k.png",
        "embedding_map.png",
        "training_loss.png",
    }
    # The manifest accounts for every file of the version.
    assert {p.name for p in version_dir.iterdir()} == set(manifest["files"]) | {"manifest.json"}
    assert manifest["counts"]["events_read"] == 100_836
    assert manifest["counts"]["users"] == 610 and manifest["counts"]["test_users"] == 610
    assert set(manifest["metrics"]["model"]) == METRIC_KEYS
    assert set(manifest["metrics"]["baselines"]) == {"popularity", "item_knn"}
    # Both neighbour tables are measured item to item, with the genres' consistency.
    neighbors = manifest["metrics"]["neighbors"]
    assert neighbors["scoring"] == manifest["config"]["publish"]["neighbors_scoring"]
    assert neighbors["category"] == "first value of genres"
    for table in ("model", "item_knn"):
        assert {"hr@10", "ndcg@10", "category@10", "unrankable"} <= set(neighbors[table])
    assert "The neighbour table, item to item" in report
    # Item-kNN at its own query length, chosen on validation, and the model with its fallback.
    settings = manifest["metrics"]["baseline_settings"]["item_knn"]
    assert settings["chosen_on"].startswith("validation")
    assert str(settings["query_items"]) in settings["validation"]
    assert set(manifest["metrics"]["model_with_fallback"]) == METRIC_KEYS | {"fallback_share"}
    assert "at its validated best" in manifest["gate"]["reason"]
    assert manifest["files"]["item_vectors.parquet"]["rows"] == vectors.num_rows


def test_duckdb_reads_the_tables(sample_run):
    result, _ = sample_run
    path = Path(result["version_dir"]) / "item_neighbors.parquet"
    rows = duckdb.sql(
        f"SELECT neighbor_id, score FROM read_parquet('{path}') WHERE item_id = '1' ORDER BY rank"
    ).fetchall()
    assert len(rows) == 20
    assert all(rows[i][1] >= rows[i + 1][1] for i in range(19))


def test_sample_quality_beats_both_baselines_in_the_same_run(sample_run):
    result, _ = sample_run
    metrics = result["metrics"]
    model = metrics["model"]["hr@10"]
    popularity = metrics["baselines"]["popularity"]["hr@10"]
    knn = metrics["baselines"]["item_knn"]["hr@10"]
    # The bundled sample's tuned config (2 query items), measured over 6 runs
    # (item2vec run --seed 1/2/3, the sweep's 3 final seeds): HR@10 0.110-0.134,
    # against item-kNN's 0.090 and popularity's 0.043 on the same split and query.
    # Beating item-kNN leaves 0.020 (12 hits) below the lowest run; 1.8x popularity
    # (0.077) leaves 0.033. The reference figures of the baselines themselves are
    # checked in test_baselines.py.
    assert model > knn
    assert model > popularity * 1.8


def test_sample_neighbour_table_beats_item_knn_item_to_item(sample_run):
    """The published (in-out) neighbour table beats item-kNN's own on item-to-item HR@10."""
    result, _ = sample_run
    neighbors = result["metrics"]["neighbors"]
    model, knn = neighbors["model"], neighbors["item_knn"]
    # Measured on the sample's test target (bench/run neighbors, seeds 1/2/3, and the
    # default seed 42): the in-out table 0.075 / 0.095 / 0.084 / 0.090, item-kNN's
    # table 0.062 (it has no seed). Beating item-kNN leaves 0.013 (8 hits) below the
    # lowest run; the floor 0.060 leaves 0.015 (9 hits).
    assert model["hr@10"] > knn["hr@10"]
    assert model["hr@10"] >= 0.060
    # Category consistency (first genre) measured 0.396 for the model's table (mean
    # of 3 seeds 0.397) and 0.408 for item-kNN's: floors 0.33 and 0.35 leave 0.06.
    assert model["category@10"] >= 0.33 and knn["category@10"] >= 0.35


def test_gate_refusal_fails_the_flow_and_keeps_latest(prefect_harness, tmp_path):
    from item2vec.synth import planted_clusters
    from item2vec_flows.pipeline import run_pipeline

    events, _ = planted_clusters(n_users=60, n_items=20, events_per_user=8)
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    config = build_config(
        {
            "ingest": {"paths": [str(path)]},
            "train": {"epochs": 2},
            "publish": {"output": str(tmp_path / "out"), "model_name": "m", "gate_margin": 1e6},
        }
    )
    with pytest.raises(QualityGateError, match="refused") as info:
        run_pipeline(config)
    assert info.value.result["gate"]["passed"] is False
    assert "hr@10" in info.value.result["metrics"]["model"]
    model_dir = tmp_path / "out" / "m"
    versions = [p for p in model_dir.iterdir() if not p.name.startswith(".")]
    assert len(versions) == 1 and versions[0].is_dir()
    assert not (model_dir / "LATEST").exists()
    manifest = json.loads((versions[0] / "manifest.json").read_text())
    assert manifest["gate"]["passed"] is False


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "item2vec_flows.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_on_a_log_it_has_never_seen(tmp_path, cli_env):
    """Renamed columns, ids with leading zeros, ISO timestamps: only column flags needed."""
    from item2vec.synth import planted_clusters

    events, _ = planted_clusters(n_users=200, n_items=60, events_per_user=15)
    log = pd.DataFrame(
        {
            "visitor": "v" + events["user_id"].str.removeprefix("u").str.zfill(5),
            "sku": events["item_id"].str.removeprefix("i").str.zfill(7),
            "seen_at": pd.to_datetime(events["timestamp"], unit="s", utc=True).dt.strftime(
                "%Y-%m-%dT%H:%M:%S%z"
            ),
        }
    )
    path = tmp_path / "clicks.csv"
    log.to_csv(path, index=False)
    done = _cli(
        [
            "run",
            str(path),
            "--user-col",
            "visitor",
            "--item-col",
            "sku",
            "--time-col",
            "seen_at",
            "--output",
            str(tmp_path / "out"),
            "--model-name",
            "clicks",
        ],
        tmp_path,
        cli_env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "item-kNN" in done.stdout and "Published:" in done.stdout
    latest = (tmp_path / "out" / "clicks" / "LATEST").read_text().strip()
    ids = (
        pq.read_table(
            tmp_path / "out" / "clicks" / latest / "item_vectors.parquet", columns=["item_id"]
        )
        .column("item_id")
        .to_pylist()
    )
    assert all(len(i) == 7 for i in ids) and "0000001" in ids


@pytest.mark.parametrize(
    "time_value, fragments",
    [
        # Unparseable times: dropped, and above the allowed share.
        ("soon", ("bad_timestamp", "'timestamp'", "--max-bad-fraction")),
        # Valid, but every user has a single event: nothing to hold out and test.
        ("1600000000", ("20 sequences, the longest with 1 event", "--user-col")),
    ],
)
def test_cli_bad_log_one_clear_message(tmp_path, cli_env, time_value, fragments):
    """A log the run cannot use exits 1 with one error line and publishes nothing."""
    path = tmp_path / "events.csv"
    rows = "".join(f"u{n},i{n % 4},{time_value}\n" for n in range(20))
    path.write_text("user_id,item_id,timestamp\n" + rows)
    done = _cli(["run", str(path), "--output", str(tmp_path / "out")], tmp_path, cli_env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()
    errors = [line for line in last if line.startswith("error: ")]
    assert len(errors) == 1
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    # Prefect's own ERROR records of the same failure are not repeated on the console.
    assert not [line for line in last if "| ERROR" in line], done.stderr
    # Nothing is published; only the cache may keep the validated file for a re-run.
    published = [p for p in (tmp_path / "out").rglob("*.parquet") if ".cache" not in p.parts]
    assert published == []


def test_second_run_checks_regression_and_stability(planted_runs):
    """The second run is gated against LATEST (the first): regression and neighbour
    stability are checked and recorded, and the first version stays."""
    first, second, _ = planted_runs
    checks = {c["check"]: c for c in second["gate"]["checks"]}
    assert set(checks) == {"baseline", "regression", "stability"}
    assert "LATEST" in checks["regression"]["reason"]
    # Two trainings on the same data share a good part of their neighbourhoods.
    assert 0.0 < second["gate"]["stability"] <= 1.0
    manifest = json.loads((Path(second["version_dir"]) / "manifest.json").read_text())
    assert manifest["gate"]["stability"] == second["gate"]["stability"]
    assert Path(first["version_dir"]).is_dir()


def test_run_page_artifacts(sample_run):
    """The run page holds the summary, metrics table, version link and report artifacts."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    by_key = {a.key: a for a in artifacts if a.key}
    assert {"movielens-summary", "movielens-metrics", "movielens-version"} <= set(by_key)
    report = by_key["movielens-report"].data
    assert report.count("data:image/png;base64,") >= 3 and "Forrest Gump (1994)" in report
    summary = by_key["movielens-summary"].data
    assert "item-kNN" in summary and "Gate: passed" in summary
    assert "Forrest Gump (1994)" in summary
    table = json.loads(by_key["movielens-metrics"].data)
    methods = ["item2vec", "with fallback", "popularity", "item-kNN"]
    assert [row["method"] for row in table] == methods
    assert all(isinstance(row["hr@10"], float) for row in table)
    assert "## Neighbour tables, item to item" in summary and "category@10" in summary


def test_transient_read_failure_is_retried(prefect_harness, tmp_path, monkeypatch):
    import errno

    import item2vec_flows.pipeline as pipeline
    from item2vec.synth import planted_clusters

    events, _ = planted_clusters(n_users=60, n_items=20, events_per_user=8)
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    calls = []
    real_read = pipeline.partition_events

    def flaky_read(path, key, config):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error (injected)")
        return real_read(path, key, config)

    monkeypatch.setattr(pipeline, "partition_events", flaky_read)
    monkeypatch.setattr(pipeline.ingest_file_task, "retry_delay_seconds", [0])
    config = build_config(
        {
            "ingest": {"paths": [str(path)]},
            "train": {"epochs": 2},
            "publish": {
                "output": str(tmp_path / "out"),
                "model_name": "m",
                "gate_margin": 0,
                "report": False,
            },
        }
    )
    result = pipeline.run_pipeline(config)
    assert len(calls) == 2
    assert Path(result["version_dir"]).is_dir()


def test_bad_input_is_not_retried(prefect_harness, tmp_path, monkeypatch):
    import item2vec_flows.pipeline as pipeline
    from item2vec.errors import InputError

    calls = []

    def bad_read(path, key, config):
        calls.append(1)
        raise InputError("bad input (injected)")

    monkeypatch.setattr(pipeline, "partition_events", bad_read)
    (tmp_path / "x.csv").write_text("user_id,item_id,timestamp\nu,i,1\n")
    config = build_config(
        {
            "ingest": {"paths": [str(tmp_path / "x.csv")]},
            "publish": {"output": str(tmp_path / "out")},
        }
    )
    with pytest.raises(InputError, match="injected"):
        pipeline.run_pipeline(config)
    assert len(calls) == 1


def test_second_run_over_unchanged_input_uses_the_cache(planted_runs):
    """A second run over unchanged input reads it from the cache; with the cache off it
    reads the input again, and a refit publishes the model trained on every event."""
    from item2vec_flows.pipeline import run_pipeline

    first, second, settings = planted_runs
    assert first["input_cached"] is False and second["input_cached"] is True
    assert second["counts"]["events_read"] == first["counts"]["events_read"] == 300 * 20
    # The cache holds ingest and sequences only, so training can be as short as
    # it gets; a model name of its own keeps the first runs' versions out of the gate.
    uncached = {
        "ingest": {"cache": False},
        "train": {"epochs": 1},
        "publish": {"model_name": "cache-check", "gate_margin": 0, "refit": True},
    }
    refit = run_pipeline(build_config(settings, uncached))
    assert refit["input_cached"] is False
    manifest = json.loads((Path(refit["version_dir"]) / "manifest.json").read_text())
    assert manifest["published"]["model"] == "refit"
    assert manifest["published"]["events"] == manifest["counts"]["events_kept"]
    assert "refit" in manifest["timings"]["seconds"]


@pytest.mark.slow  # tests/test_cluster.py compares the same metrics on a cluster in the default run
def test_dask_local_cluster_gives_the_same_metrics(prefect_harness, tmp_path):
    from conftest import two_file_config

    from item2vec_flows.pipeline import run_pipeline
    from item2vec_flows.runners import build_task_runner

    on_threads = run_pipeline(two_file_config(tmp_path, "threads"))
    on_dask = run_pipeline(
        two_file_config(tmp_path, "dask"),
        task_runner=build_task_runner("dask", dask_workers=2),
    )
    assert on_dask["metrics"]["model"] == on_threads["metrics"]["model"]
    assert on_dask["metrics"]["baselines"] == on_threads["metrics"]["baselines"]
    assert on_dask["counts"] == on_threads["counts"]
