"""``item2vec run --warm-start --cold-start`` night after night, through the real flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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
    versions, records = [], []
    for path in info["files"][1:]:  # tonight's file lands in the folder
        shutil.copy(path, live)
        version = Path(run_pipeline(build_config(settings))["version_dir"])
        versions.append(version.name)
        records.append(json.loads((version / "manifest.json").read_text())["warm_start"])
    assert [r["mode"] for r in records] == ["full", "warm"]
    assert records[1]["previous_version"] == versions[0]
    table = pq.read_table(version / "item_vectors.parquet").to_pandas()
    assert set(table["source"]) == {"trained", "cold_start"}
    cold = table[table["source"] == "cold_start"]
    assert (cold["count"] < 5).all()  # too few events for a trained vector (min_count 5)
