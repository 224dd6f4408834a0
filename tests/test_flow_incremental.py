"""``item2vec run --warm-start --cold-start`` night after night, through the real flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import kill_at_line

from item2vec.config import build_config
from item2vec.synth_daily import write_daily_folder

pytestmark = pytest.mark.flows


def test_two_nights_warm_start_and_flag_cold_start_items(prefect_harness, tmp_path):
    from item2vec_flows.pipeline import run_pipeline

    info = write_daily_folder(tmp_path / "all", days=3, events=4_000, users=300, items=200)
    live = tmp_path / "logs"
    live.mkdir()
    shutil.copy(info["files"][0], live)
    settings = {
        "ingest": {
            "paths": [str(live)],
            "items_path": info["items_path"],
            "item_title_col": "title",
            "item_category_col": "category",
        },
        "train": {"warm_start": True, "cold_start": True, "epochs": 4},
        "evaluate": {"split": "temporal", "test_days": 1.0},
        "publish": {"output": str(tmp_path / "out"), "model_name": "nightly", "report": False},
    }
    versions, manifests = [], []
    for path in info["files"][1:]:  # tonight's file lands in the folder
        shutil.copy(path, live)
        version = Path(run_pipeline(build_config(settings))["version_dir"])
        versions.append(version.name)
        manifests.append(json.loads((version / "manifest.json").read_text()))
    records = [manifest["warm_start"] for manifest in manifests]
    assert [r["mode"] for r in records] == ["full", "warm"]
    assert records[1]["previous_version"] == versions[0]
    # The warm night keeps the item-kNN settings the full night chose.
    assert [r["knn_settings"] for r in records] == ["chosen", "kept"]
    full, warm = (m["metrics"]["baseline_settings"]["item_knn"] for m in manifests)
    assert warm == {**full, "chosen_in": versions[0]}
    assert "warm_plan" in manifests[1]["placement"]["stages"]
    table = pq.read_table(version / "item_vectors.parquet").to_pandas()
    assert set(table["source"]) == {"trained", "cold_start"}
    cold = table[table["source"] == "cold_start"]
    assert (cold["count"] < 5).all()  # too few events for a trained vector (min_count 5)


@pytest.mark.slow
def test_sigkill_during_a_warm_run_leaves_the_previous_version_and_latest(tmp_path):
    """``item2vec run --warm-start`` killed while it trains warm: LATEST and the version it
    started from are untouched, and no other version appears."""
    import os
    import subprocess
    import sys

    from item2vec.publish import list_version_dirs, read_latest

    info = write_daily_folder(tmp_path / "all", days=3, events=4_000, users=300, items=200)
    live = tmp_path / "logs"
    live.mkdir()
    for path in info["files"][:2]:
        shutil.copy(path, live)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "item2vec_flows.cli", "run", str(live), "--warm-start"]
    command += ["--split", "temporal", "--test-days", "1", "--output", str(tmp_path / "out")]
    command += ["--model-name", "nightly", "--no-report", "--gate-margin", "0"]
    first = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    model_dir = tmp_path / "out" / "nightly"
    latest = read_latest(model_dir)
    before = {p.name: p.read_bytes() for p in (model_dir / latest).iterdir()}

    shutil.copy(info["files"][2], live)  # tonight's file
    # Far more epochs than could finish before the kill; 0.5 s puts it inside the training.
    lines = kill_at_line(
        [*command, "--warm-epochs", "1000"], tmp_path, env, "warm start from", settle=0.5
    )
    assert not any("published" in line for line in lines), lines[-5:]
    assert read_latest(model_dir) == latest
    assert [p.name for p in list_version_dirs(model_dir)] == [latest]
    assert {p.name: p.read_bytes() for p in (model_dir / latest).iterdir()} == before
