"""The run page's artifacts: rounded tables, the version as a path or URL, the report linked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from item2vec.neighbors import nearest_neighbors
from item2vec.publish import publish_version
from item2vec.summary import (
    rounded_rows,
    run_page,
    significant,
    version_location,
)
from item2vec.vectors import ItemVectors

METRICS = {
    "k": [10],
    "model": {"hr@10": 0.12975391000509262, "unrankable": 0.0},
    "baselines": {"popularity": {"hr@10": 0.04262295081967213}},
}


@pytest.fixture
def version(tmp_path: Path) -> tuple[Path, ItemVectors]:
    rng = np.random.default_rng(0)
    vectors = ItemVectors(
        item_ids=np.array(list("abcd"), dtype=object),
        vectors=rng.normal(size=(4, 4)).astype(np.float32),
        context_vectors=None,
        counts=np.arange(1, 5, dtype=np.int64),
    )
    manifest = {
        "gate": {"passed": True, "reason": "hr@10 0.1298 >= popularity 0.04262"},
        "metrics": METRICS,
        "counts": {"users": 3, "dropped": {}},
    }
    version_dir = publish_version(
        tmp_path / "out", "shop", vectors, nearest_neighbors(vectors, 2), manifest, True
    )
    (version_dir / "report.md").write_text("# Report\n")
    return version_dir, vectors


def test_numbers_have_four_significant_digits():
    assert significant(0.12975391000509262) == 0.1298
    assert significant(0.00012345678) == 0.0001235 and significant(1234.5678) == 1235.0
    rows = rounded_rows([{"method": "item2vec", "hr@10": 0.04262295081967213, "n": 610}])
    assert rows == [{"method": "item2vec", "hr@10": 0.04262, "n": 610}]


@pytest.mark.parametrize(
    ("where", "shown"),
    [
        ("s3://bucket/out/shop/v1/", "s3://bucket/out/shop/v1"),
        ("gs://bucket/out/shop/v1", "gs://bucket/out/shop/v1"),
        ("file:///srv/out/shop/v%201", "/srv/out/shop/v 1"),
        ("/srv/out/shop/v1", "/srv/out/shop/v1"),
    ],
)
def test_the_version_is_a_path_or_the_object_store_url_as_it_is(where, shown):
    assert version_location(where) == shown


def test_a_relative_version_is_shown_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert version_location("out/shop/v1") == str(tmp_path.resolve() / "out" / "shop" / "v1")


def test_the_run_page_rounds_and_says_where_the_version_and_report_are(version):
    version_dir, vectors = version
    neighbors = nearest_neighbors(vectors, 2)
    page = run_page(version_dir, vectors, neighbors, None)
    assert page.metrics[0]["hr@10"] == 0.1298 and page.metrics[1]["hr@10"] == 0.04262
    assert page.location == str(version_dir.resolve())
    assert page.report == str(version_dir.resolve() / "report.md")
    text = page.version_markdown("http://ui/runs/flow-run/1?tab=Artifacts")
    assert f"`{version_dir.resolve()}`" in text and "file://" not in text
    assert "[on this run's page](http://ui/runs/flow-run/1?tab=Artifacts)" in text
    (version_dir / "report.md").unlink()
    page = run_page(version_dir, vectors, neighbors, pa.table({"item_id": ["a"], "title": ["A"]}))
    assert page.report is None and "Report" not in page.version_markdown("http://ui")


@pytest.mark.flows
def test_the_artifacts_of_a_run(prefect_harness, version):
    """Created in a flow run: the table rounded, the version as a path, the report linked."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    from item2vec_flows.artifacts import create_run_artifacts

    version_dir, vectors = version

    @flow(name="artifacts-test")
    def make() -> tuple[dict, str | None]:
        from prefect.runtime import flow_run

        keys = create_run_artifacts(version_dir, vectors, nearest_neighbors(vectors, 2), None)
        return keys, f"http://ui.example/runs/flow-run/{flow_run.id}"

    with temporary_settings({PREFECT_UI_URL: "http://ui.example"}):
        keys, run_url = make()
    assert set(keys) == {"summary", "metrics", "version", "report"}
    with get_client(sync_client=True) as client:
        by_key = {a.key: a for a in client.read_artifacts() if a.key in keys.values()}
    table = json.loads(by_key["shop-metrics"].data)
    assert table[0]["hr@10"] == 0.1298
    shown = by_key["shop-version"].data
    assert by_key["shop-version"].type == "markdown" and "file://" not in shown
    assert f"`{version_dir.resolve()}`" in shown and f"`{version_dir.resolve()}/report.md`" in shown
    assert f"({run_url}?tab=Artifacts)" in shown and run_url in by_key["shop-summary"].data
