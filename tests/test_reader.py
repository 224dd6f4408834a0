import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from item2vec.errors import ConfigError, InputError
from item2vec.neighbors import nearest_neighbors
from item2vec.publish import LATEST, NEIGHBORS_FILE, VECTORS_FILE, publish_version
from item2vec.reader import PublishedModel, list_versions, load
from item2vec.vectors import ItemVectors

K = 5


@pytest.fixture
def vectors() -> ItemVectors:
    rng = np.random.default_rng(7)
    n, dim = 40, 8
    return ItemVectors(
        # Leading zeros: ids must come back as the exact text, never as numbers.
        item_ids=np.array([f"{i:03d}" for i in range(n)], dtype=object),
        vectors=rng.normal(size=(n, dim)).astype(np.float32),
        context_vectors=rng.normal(size=(n, dim)).astype(np.float32),
        counts=rng.integers(1, 100, size=n),
    )


def _publish(
    output: Path,
    vectors: ItemVectors,
    move_latest: bool = True,
    manifest: dict | None = None,
    day: int | None = None,
) -> Path:
    return publish_version(
        output,
        "m",
        vectors,
        nearest_neighbors(vectors, K),
        manifest if manifest is not None else {"gate": {"passed": move_latest}},
        move_latest=move_latest,
        # A fixed day orders versions by name, which starts with the time.
        now=datetime(2026, 1, day, tzinfo=UTC) if day else None,
    )


def _brute_force(
    vectors: np.ndarray, query_rows: list[int], topn: int
) -> tuple[list[int], np.ndarray]:
    # float64 reference, computed independently of the reader.
    unit = vectors.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    query = unit[query_rows].mean(axis=0)
    query /= np.linalg.norm(query)
    scores = unit @ query
    scores[query_rows] = -np.inf
    return list(np.argsort(-scores, kind="stable")[:topn]), scores


def test_load_latest_and_explicit_version(tmp_path: Path, vectors: ItemVectors):
    first = _publish(tmp_path, vectors, day=1)
    second = _publish(tmp_path, vectors, day=2)
    latest = load(tmp_path, "m")
    assert isinstance(latest, PublishedModel)
    assert latest.version == second.name and latest.path == second
    assert latest.model_name == "m"
    assert latest.manifest["version"] == second.name
    explicit = load(tmp_path, "m", version=first.name)
    assert explicit.version == first.name and explicit.path == first
    assert "items=40" in repr(explicit) and "dim=8" in repr(explicit)


def test_tables_round_trip_exactly(tmp_path: Path, vectors: ItemVectors):
    model = load(tmp_path, "m", _publish(tmp_path, vectors).name)
    assert model.vectors.dtype == np.float32 and model.vectors.shape == (40, 8)
    np.testing.assert_array_equal(model.vectors, vectors.vectors)
    np.testing.assert_array_equal(model.context_vectors, vectors.context_vectors)
    np.testing.assert_array_equal(model.counts, vectors.counts)
    assert model.item_ids.tolist() == vectors.item_ids.tolist()
    assert all(type(item) is str for item in model.item_ids)
    assert list(model.neighbors.columns) == ["item_id", "rank", "neighbor_id", "score", "version"]
    assert len(model.neighbors) == 40 * K
    assert len(model) == 40 and model.dim == 8
    assert "007" in model and "7" not in model and 7 not in model
    np.testing.assert_array_equal(model.vector("007"), vectors.vectors[7])


def test_without_context_vectors(tmp_path: Path, vectors: ItemVectors):
    """A version without context vectors loads, with context_vectors None."""
    vectors.context_vectors = None
    model = load(tmp_path, "m", _publish(tmp_path, vectors).name)
    assert model.context_vectors is None
    np.testing.assert_array_equal(model.vectors, vectors.vectors)


def test_most_similar_matches_published_neighbours(tmp_path: Path, vectors: ItemVectors):
    model = load(tmp_path, "m", _publish(tmp_path, vectors).name)
    table = model.neighbors.sort_values(["item_id", "rank"])
    for item_id, group in table.groupby("item_id"):
        found = model.most_similar(item_id, topn=K)
        assert [name for name, _ in found] == group["neighbor_id"].tolist()
        np.testing.assert_allclose([s for _, s in found], group["score"], rtol=1e-6)


def test_most_similar_matches_brute_force(tmp_path: Path, vectors: ItemVectors):
    model = load(tmp_path, "m", _publish(tmp_path, vectors).name)
    ids = vectors.item_ids
    for rows in ([0], [3], [1, 2], [5, 17, 33]):
        expected, scores = _brute_force(vectors.vectors, rows, 10)
        query = [ids[r] for r in rows]
        found = model.most_similar(query if len(rows) > 1 else query[0], topn=10)
        assert [name for name, _ in found] == [ids[r] for r in expected]
        np.testing.assert_allclose([s for _, s in found], scores[expected], rtol=1e-5)
        assert not set(query) & {name for name, _ in found}
        assert all(type(name) is str and type(score) is float for name, score in found)


def test_most_similar_topn_beyond_vocabulary(tmp_path: Path, vectors: ItemVectors):
    """topn past the vocabulary gives every other item; topn 0 or no query is refused."""
    model = load(tmp_path, "m", _publish(tmp_path, vectors).name)
    assert len(model.most_similar("000", topn=1000)) == 39
    assert len(model.most_similar(["000", "001", "000"], topn=1000)) == 38
    with pytest.raises(ValueError, match="topn"):
        model.most_similar("000", topn=0)
    with pytest.raises(InputError, match="at least one"):
        model.most_similar([])


def test_unknown_item_named(tmp_path: Path, vectors: ItemVectors):
    """An unknown item id is an error naming the id and the version."""
    version = _publish(tmp_path, vectors).name
    model = load(tmp_path, "m")
    with pytest.raises(InputError, match=rf"'99999' is not in the vectors of m/{version}"):
        model.most_similar("99999")
    with pytest.raises(InputError, match="min_count"):
        model.most_similar(["000", "99999"])
    with pytest.raises(ValueError, match="'7'"):
        model.vector("7")


def test_missing_latest(tmp_path: Path, vectors: ItemVectors):
    """Without LATEST, load says to run first and names the version there; by name it loads."""
    refused = _publish(tmp_path, vectors, move_latest=False)
    with pytest.raises(InputError, match=r"no LATEST in .*run `item2vec run` first") as error:
        load(tmp_path, "m")
    assert refused.name in str(error.value)
    assert load(tmp_path, "m", refused.name).version == refused.name


def test_missing_model_version_and_file(tmp_path: Path, vectors: ItemVectors):
    """A missing model, version or table, an unfinished publish or bad manifest is named."""
    version_dir = _publish(tmp_path, vectors)
    with pytest.raises(InputError, match=r"no model 'other'.*models there: m"):
        load(tmp_path, "other")
    with pytest.raises(InputError, match=rf"version '2020' not found.*{version_dir.name}"):
        load(tmp_path, "m", "2020")
    with pytest.raises(InputError, match="unfinished publish"):
        load(tmp_path, "m", ".tmp-x-1")
    (version_dir / NEIGHBORS_FILE).unlink()
    with pytest.raises(InputError, match=rf"{NEIGHBORS_FILE} missing from"):
        load(tmp_path, "m")
    (version_dir / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="not readable JSON"):
        load(tmp_path, "m")


def test_files_mixed_across_versions_refused(tmp_path: Path, vectors: ItemVectors):
    first = _publish(tmp_path, vectors, day=1)
    second = _publish(tmp_path, vectors, day=2)
    shutil.copy(first / VECTORS_FILE, second / VECTORS_FILE)
    with pytest.raises(InputError, match="copied between versions"):
        load(tmp_path, "m", second.name)


@pytest.mark.parametrize("name", ["../x", "..", "a/b", ""])
def test_unsafe_names_refused(tmp_path: Path, vectors: ItemVectors, name: str):
    _publish(tmp_path, vectors)
    with pytest.raises(ConfigError, match="not allowed"):
        load(tmp_path, name)
    with pytest.raises(ConfigError, match="not allowed"):
        load(tmp_path, "m", name)
    with pytest.raises(ConfigError, match="not allowed"):
        list_versions(tmp_path, name)


def test_list_versions(tmp_path: Path, vectors: ItemVectors):
    """Every version, oldest first, with its gate, metric, LATEST flag and any read error."""
    passed = _publish(
        tmp_path,
        vectors,
        manifest={
            "gate": {"passed": True, "reason": "ok", "metric": "hr@10"},
            "metrics": {"model": {"hr@10": 0.2}},
        },
        day=1,
    )
    refused = _publish(
        tmp_path,
        vectors,
        move_latest=False,
        manifest={
            "gate": {"passed": False, "reason": "r", "metric": "hr@10"},
            "metrics": {"model": {"hr@10": 0.1}},
        },
        day=2,
    )
    broken = tmp_path / "m" / "20260103T000000Z-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("[1, 2")
    (tmp_path / "m" / ".tmp-20260104T000000Z-abc-1").mkdir()

    entries = list_versions(tmp_path, "m")
    assert [e["version"] for e in entries] == [passed.name, refused.name, broken.name]
    first, second, third = entries
    assert first["is_latest"] and not second["is_latest"] and not third["is_latest"]
    assert first["gate_passed"] is True and first["metric_value"] == 0.2
    assert second == {
        "version": refused.name,
        "created_at": "2026-01-02T00:00:00Z",
        "gate_passed": False,
        "gate_reason": "r",
        "metric": "hr@10",
        "metric_value": 0.1,
        "is_latest": False,
        "error": None,
    }
    assert "not readable JSON" in third["error"] and third["gate_passed"] is None
    assert first["error"] is None
    json.dumps(entries)  # plain values, ready for a CLI table or a JSON dump


def test_list_versions_tolerates_missing_fields_and_latest(tmp_path: Path, vectors: ItemVectors):
    version = _publish(tmp_path, vectors)  # manifest has no metric
    (tmp_path / "m" / LATEST).unlink()
    (version / "manifest.json").unlink()
    other = _publish(tmp_path, vectors, move_latest=False)
    entries = {e["version"]: e for e in list_versions(tmp_path, "m")}
    assert "manifest.json missing" in entries[version.name]["error"]
    assert entries[other.name]["metric"] is None and entries[other.name]["metric_value"] is None
    assert not any(e["is_latest"] for e in entries.values())
    with pytest.raises(InputError, match="no model 'nope'"):
        list_versions(tmp_path, "nope")


def test_a_deeply_nested_manifest_is_one_error_naming_the_file(tmp_path: Path, vectors):
    """100,000 nested brackets in manifest.json: an InputError, not a RecursionError."""
    version_dir = _publish(tmp_path, vectors)
    (version_dir / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"manifest\.json is nested too deeply"):
        load(tmp_path, "m")
    [entry] = list_versions(tmp_path, "m")
    assert "nested too deeply" in entry["error"]


def test_a_recommendations_table_with_the_wrong_schema_names_the_file(tmp_path: Path, vectors):
    """user_recommendations.parquet without a user_id text column: one InputError naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from item2vec.lookup import recommendations
    from item2vec.publish import RECOMMENDATIONS_FILE

    version_dir = _publish(tmp_path, vectors)
    pq.write_table(
        pa.table({"user_id": [1, 2], "rank": [1, 1]}), version_dir / RECOMMENDATIONS_FILE
    )
    with pytest.raises(InputError, match=rf"{RECOMMENDATIONS_FILE}.*'user_id'.*republish"):
        recommendations(load(tmp_path, "m"), "1")


def test_a_neighbour_table_with_the_wrong_schema_names_the_file(tmp_path: Path, vectors):
    """item_neighbors.parquet missing its rank column is refused when the model loads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    version_dir = _publish(tmp_path, vectors)
    version = version_dir.name
    table = pa.table({"item_id": ["000"], "neighbor_id": ["001"]})
    table = table.replace_schema_metadata({"item2vec.version": version})
    pq.write_table(table, version_dir / NEIGHBORS_FILE)
    with pytest.raises(InputError, match=rf"{NEIGHBORS_FILE}.*'rank'"):
        load(tmp_path, "m")


@pytest.mark.parametrize("scoring", ["in-out", "symmetric"])
def test_most_similar_ranks_as_the_table_of_its_version(
    tmp_path: Path, vectors: ItemVectors, scoring: str
):
    """By default most_similar uses the scoring the version's manifest names for its table,
    so the two agree; scoring='in-in' still gives the input-vector cosine."""
    manifest = {"gate": {"passed": True}, "config": {"publish": {"neighbors_scoring": scoring}}}
    version = publish_version(
        tmp_path, "m", vectors, nearest_neighbors(vectors, K, scoring), manifest, move_latest=True
    )
    model = load(tmp_path, "m", version.name)
    assert model.table_scoring() == scoring
    table = model.neighbors.sort_values(["item_id", "rank"])
    for item_id, group in table.groupby("item_id"):
        found = model.most_similar(item_id, topn=K)
        assert [name for name, _ in found] == group["neighbor_id"].tolist()
        np.testing.assert_allclose([s for _, s in found], group["score"], rtol=1e-5, atol=1e-6)
    expected, _ = _brute_force(vectors.vectors, [3], K)
    assert [n for n, _ in model.most_similar("003", K, scoring="in-in")] == [
        vectors.item_ids[r] for r in expected
    ]


def test_most_similar_refuses_a_scoring_it_cannot_do(tmp_path: Path, vectors: ItemVectors):
    """An unknown scoring, or in-out without output vectors, is a ConfigError saying what to use."""
    model = load(tmp_path, "m", _publish(tmp_path, vectors).name)
    with pytest.raises(ConfigError, match="'in-in', 'in-out' or 'symmetric'"):
        model.most_similar("000", scoring="out-out")
    vectors.context_vectors = None
    bare = load(tmp_path, "m", _publish(tmp_path, vectors, day=3).name)
    with pytest.raises(ConfigError, match="scoring='in-in'"):
        bare.most_similar("000", scoring="in-out")
