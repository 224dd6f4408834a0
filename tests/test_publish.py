import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from item2vec.errors import ConfigError
from item2vec.neighbors import nearest_neighbors
from item2vec.publish import (
    LATEST,
    apply_retention,
    check_name,
    list_version_dirs,
    publish_version,
    read_latest,
    remove_stale_temporaries,
)
from item2vec.vectors import ItemVectors


@pytest.fixture
def vectors() -> ItemVectors:
    rng = np.random.default_rng(0)
    n, dim = 30, 8
    return ItemVectors(
        item_ids=np.array([f"{i:03d}" for i in range(n)], dtype=object),
        vectors=rng.normal(size=(n, dim)).astype(np.float32),
        context_vectors=rng.normal(size=(n, dim)).astype(np.float32),
        counts=rng.integers(1, 100, size=n),
    )


def _publish(tmp_path: Path, vectors: ItemVectors, move_latest=True) -> Path:
    return publish_version(
        tmp_path,
        "m",
        vectors,
        nearest_neighbors(vectors, 5),
        {"gate": {"passed": move_latest}},
        move_latest=move_latest,
    )


def test_tables_schema_and_metadata(tmp_path: Path, vectors: ItemVectors):
    """The tables have the contract's column types and the model's Parquet metadata."""
    version_dir = _publish(tmp_path, vectors)
    table = pq.read_table(version_dir / "item_vectors.parquet")
    assert table.schema.field("item_id").type == pa.string()
    assert table.schema.field("count").type == pa.int64()
    # Parquet stores the fixed-size list as a list; pyarrow restores it from the Arrow schema.
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 8)
    assert table.schema.field("context_vector").type == pa.list_(pa.float32(), 8)
    meta = table.schema.metadata
    assert meta[b"item2vec.dim"] == b"8" and meta[b"item2vec.model_name"] == b"m"
    assert meta[b"item2vec.version"].decode() == version_dir.name
    neighbors = pq.read_table(version_dir / "item_neighbors.parquet")
    assert neighbors.schema.names == ["item_id", "rank", "neighbor_id", "score", "version"]
    assert [f.type for f in neighbors.schema] == [
        pa.string(),
        pa.int32(),
        pa.string(),
        pa.float32(),
        pa.dictionary(pa.int32(), pa.string()),
    ]
    # Every table ends with its version id, one dictionary entry for all its rows.
    for read in (table, neighbors):
        assert read.column_names[-1] == "version"
        assert set(read.column("version").to_pylist()) == {version_dir.name}


def test_manifest_files_hashes_and_latest(tmp_path: Path, vectors: ItemVectors):
    """The manifest names the version and hashes every table; LATEST points at it."""
    import hashlib

    version_dir = _publish(tmp_path, vectors)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["version"] == version_dir.name
    assert manifest["model_name"] == "m"
    assert manifest["created_at"].endswith("Z")
    for name, entry in manifest["files"].items():
        digest = hashlib.sha256((version_dir / name).read_bytes()).hexdigest()
        assert entry["sha256"] == digest
        assert entry["rows"] == pq.read_metadata(version_dir / name).num_rows
    assert read_latest(tmp_path / "m") == version_dir.name
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp-")]


def test_refused_model_does_not_move_latest(tmp_path: Path, vectors: ItemVectors):
    first = _publish(tmp_path, vectors)
    second = _publish(tmp_path, vectors, move_latest=False)
    assert second.is_dir() and second != first
    assert (tmp_path / "m" / LATEST).read_text().strip() == first.name


def test_a_dead_writer_of_this_pid_space_is_stale_a_live_one_is_kept(tmp_path: Path):
    """Same owner id: a temporary whose pid is gone is removed, one whose pid lives is kept."""
    from item2vec.atomicfile import owner_id

    model_dir = tmp_path / "m"
    dead = model_dir / f".tmp-20200101T000000Z-abc-{owner_id()}-00aa-999999999"
    live = model_dir / f".tmp-20200101T000000Z-def-{owner_id()}-00bb-{os.getppid()}"
    dead.mkdir(parents=True)
    live.mkdir()
    removed = remove_stale_temporaries(model_dir)
    assert removed == [dead]
    assert live.exists()


def test_a_named_sweep_removes_only_temporaries_of_that_name(tmp_path: Path):
    """In a folder shared with other programs (the temporary folder) only item2vec's staging
    folders of a dead writer go."""
    from item2vec.atomicfile import owner_id
    from item2vec.publish import STAGING

    dead = tmp_path / f".tmp-{STAGING}-{owner_id()}-00aa-999999999"
    other = tmp_path / f".tmp-someone-else-{owner_id()}-00bb-999999999"
    live = tmp_path / f".tmp-{STAGING}-{owner_id()}-00cc-{os.getppid()}"
    for entry in (dead, other, live):
        entry.mkdir()
    assert remove_stale_temporaries(tmp_path, STAGING) == [dead]
    assert other.exists() and live.exists()


def test_another_hosts_temporary_is_kept_until_its_lease_runs_out(tmp_path: Path):
    """A pid from another host or container says nothing here: only age makes it stale."""
    from item2vec.atomicfile import LEASE_SECONDS

    model_dir = tmp_path / "m"
    other = model_dir / ".tmp-20200101T000000Z-abc-0123456789ab-00cc-999999999"
    other.mkdir(parents=True)
    assert remove_stale_temporaries(model_dir) == []
    old = other.stat().st_mtime - LEASE_SECONDS - 60
    os.utime(other, (old, old))
    assert remove_stale_temporaries(model_dir) == [other]


@pytest.mark.parametrize("name", ["../x", "a/b", "", "..", "x y"])
def test_unsafe_names_refused(name: str):
    with pytest.raises(ConfigError, match="not allowed"):
        check_name(name, "model name")


def test_read_back_with_pandas_and_duckdb(tmp_path: Path, vectors: ItemVectors):
    version_dir = _publish(tmp_path, vectors)
    import pandas as pd

    frame = pd.read_parquet(version_dir / "item_vectors.parquet")
    assert frame["item_id"].tolist() == list(vectors.item_ids)
    np.testing.assert_array_equal(np.stack(frame["vector"].to_numpy()), vectors.vectors)
    path = str(version_dir / "item_neighbors.parquet")
    rows = duckdb.sql(
        f"SELECT neighbor_id FROM read_parquet('{path}') WHERE item_id = '000' ORDER BY rank"
    ).fetchall()
    assert len(rows) == 5
    # The neighbour table agrees with DuckDB's own cosine over the stored vectors.
    vec_path = str(version_dir / "item_vectors.parquet")
    best = duckdb.sql(
        f"""SELECT b.item_id FROM read_parquet('{vec_path}') a, read_parquet('{vec_path}') b
            WHERE a.item_id = '000' AND b.item_id <> '000'
            ORDER BY array_cosine_similarity(a.vector::FLOAT[8], b.vector::FLOAT[8]) DESC
            LIMIT 5"""
    ).fetchall()
    assert [r[0] for r in best] == [r[0] for r in rows]


def test_retention_keeps_newest_and_latest(tmp_path: Path, vectors: ItemVectors):
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for day in range(4):
        made.append(
            publish_version(
                tmp_path,
                "m",
                vectors,
                nearest_neighbors(vectors, 2),
                {},
                move_latest=day == 0,
                now=start + timedelta(days=day),
            )
        )
    removed = apply_retention(tmp_path / "m", keep=2)
    left = [p.name for p in list_version_dirs(tmp_path / "m")]
    # LATEST (the oldest) survives although only 2 are kept; the two newest stay.
    assert left == [made[0].name, made[2].name, made[3].name]
    assert [p.name for p in removed] == [made[1].name]
    assert read_latest(tmp_path / "m") == made[0].name


def test_keep_option_applies_when_publishing(tmp_path: Path, vectors: ItemVectors):
    for _ in range(3):
        publish_version(
            tmp_path, "m", vectors, nearest_neighbors(vectors, 2), {}, move_latest=True, keep=1
        )
    left = list_version_dirs(tmp_path / "m")
    assert [p.name for p in left] == [read_latest(tmp_path / "m")]


CONCURRENT_SCRIPT = """
import sys, numpy as np
from item2vec.neighbors import nearest_neighbors
from item2vec.publish import publish_version
from item2vec.vectors import ItemVectors
rng = np.random.default_rng(int(sys.argv[2]))
v = ItemVectors(np.array([str(i) for i in range(2000)], dtype=object),
                rng.normal(size=(2000, 16)).astype("float32"), None, np.ones(2000, dtype="int64"))
print("ready", flush=True)
sys.stdin.readline()  # both processes publish from the same moment on
for _ in range(3):
    publish_version(sys.argv[1], "m", v, nearest_neighbors(v, 5), {}, move_latest=True)
"""


def test_concurrent_runs_both_finish_whole(tmp_path: Path):
    import subprocess
    import sys

    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(tmp_path), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(2)
    ]
    # Imports take seconds and publishing milliseconds: start both once both are ready.
    assert [run.stdout.readline().strip() for run in runs] == ["ready", "ready"]
    for run in runs:
        run.stdin.close()
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    versions = list_version_dirs(tmp_path / "m")
    assert len(versions) == 6
    for version in versions:
        manifest = json.loads((version / "manifest.json").read_text())
        assert set(manifest["files"]) == {"item_vectors.parquet", "item_neighbors.parquet"}
        assert pq.read_metadata(version / "item_vectors.parquet").num_rows == 2000
    assert read_latest(tmp_path / "m") in {v.name for v in versions}
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp-")]


def test_stale_latest_temp_file_removed(tmp_path: Path):
    """A LATEST temporary of a dead writer of this pid space is removed."""
    from item2vec.atomicfile import owner_id

    model_dir = tmp_path / "m"
    model_dir.mkdir()
    leftover = model_dir / f".tmp-LATEST-{owner_id()}-00dd-999999999"
    leftover.write_text("x\n")
    assert remove_stale_temporaries(model_dir) == [leftover]
    assert not leftover.exists()


def test_broken_latest_manifest_is_a_clear_error(tmp_path: Path, vectors: ItemVectors):
    from item2vec.errors import InputError
    from item2vec.publish import latest_manifest

    version_dir = _publish(tmp_path, vectors)
    (version_dir / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        latest_manifest(tmp_path, "m")


def test_a_planted_link_in_place_of_the_lock_is_refused(tmp_path: Path, vectors: ItemVectors):
    """.lock linked to a file outside: the publish refuses and the outside file is untouched."""
    from item2vec.errors import UnsafePathError

    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    model_dir = tmp_path / "out" / "m"
    model_dir.mkdir(parents=True)
    (model_dir / ".lock").symlink_to(outside)
    with pytest.raises(UnsafePathError, match=r"\.lock.*symbolic link"):
        _publish(tmp_path / "out", vectors)
    assert outside.read_text() == "precious\n"
    assert not (model_dir / LATEST).exists()


def test_a_planted_link_in_place_of_latest_is_refused(tmp_path: Path, vectors: ItemVectors):
    """LATEST linked to a file outside: neither written through nor read; the error says so."""
    from item2vec.errors import UnsafePathError

    outside = tmp_path / "secret.txt"
    outside.write_text("top-secret-content\n")
    model_dir = tmp_path / "out" / "m"
    model_dir.mkdir(parents=True)
    (model_dir / LATEST).symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symbolic link") as info:
        _publish(tmp_path / "out", vectors)
    assert "top-secret" not in str(info.value)
    assert outside.read_text() == "top-secret-content\n"
    with pytest.raises(UnsafePathError, match="symbolic link") as info:
        read_latest(model_dir)
    assert "top-secret" not in str(info.value)


def test_temporaries_are_unguessable_and_never_follow_a_planted_link(tmp_path: Path):
    """Two writes of one target use different names; a link planted at a name is not opened."""
    from item2vec.atomicfile import replacing
    from item2vec.errors import UnsafePathError

    target = tmp_path / "LATEST"
    with replacing(target) as first:
        first.write_text("a")
    with replacing(target) as second:
        second.write_text("b")
    assert first.name != second.name
    assert first.name.startswith(".tmp-LATEST-") and second.name.startswith(".tmp-LATEST-")
    outside = tmp_path / "outside"
    outside.write_text("keep")
    import item2vec.atomicfile as atomicfile

    planted = tmp_path / ".tmp-LATEST-planted"
    planted.symlink_to(outside)
    original = atomicfile.temporary_beside
    atomicfile.temporary_beside = lambda target: planted
    try:
        with pytest.raises(UnsafePathError, match="already exists"), replacing(target) as temporary:
            temporary.write_text("through the link")
    finally:
        atomicfile.temporary_beside = original
    assert outside.read_text() == "keep"
    assert target.read_text() == "b"


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff\xfe binary", b"v" * (10 * 1024 * 1024), b"../../etc\n", b""],
    ids=["binary", "10MB", "traversal", "empty"],
)
def test_a_damaged_latest_is_one_error_naming_the_file_without_its_content(
    tmp_path: Path, content: bytes
):
    """A binary, huge, unsafe or empty LATEST is an InputError naming LATEST, short, no content."""
    from item2vec.errors import InputError

    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / LATEST).write_bytes(content)
    with pytest.raises(InputError, match="LATEST") as info:
        read_latest(model_dir)
    message = str(info.value)
    assert len(message) < 400 and "vvvv" not in message and "etc" not in message


def test_retention_never_deletes_a_version_before_its_latest_moves(
    tmp_path: Path, vectors: ItemVectors, monkeypatch
):
    """The rename into place happens under the lock that retention takes."""
    import item2vec.publish as publish

    held = []
    real_rename = os.rename

    def rename(source, destination):
        if Path(destination).parent == tmp_path / "m" and not Path(destination).name.startswith(
            "."
        ):
            held.append(_lock_is_held(tmp_path / "m" / ".lock"))
        return real_rename(source, destination)

    monkeypatch.setattr(publish.os, "rename", rename)
    _publish(tmp_path, vectors)
    assert held == [True]


def _lock_is_held(path: Path) -> bool:
    """Whether another open file description holds an exclusive flock on ``path``."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_every_table_has_its_version_and_the_documented_queries_union_two(
    tmp_path: Path, monkeypatch
):
    """docs/tables.md, "Several versions together": every table's ``version`` column, and
    its DuckDB queries run as written on two published versions."""
    import re

    from conftest import publish_small_model

    output = tmp_path / "output"
    first = publish_small_model(output, "movielens")
    second = publish_small_model(output, "movielens")
    for version_dir in (first, second):
        tables = sorted(version_dir.glob("*.parquet"))
        assert len(tables) == 4
        for path in tables:
            assert pq.read_schema(path).names[-1] == "version", path.name
            found = duckdb.sql(f"SELECT DISTINCT version FROM read_parquet('{path}')").fetchall()
            assert found == [(version_dir.name,)], path.name
    section = (Path(__file__).parents[1] / "docs" / "tables.md").read_text()
    section = section.split("## Several versions together", 1)[1].split("\n## ", 1)[0]
    queries = [
        query.replace("<version>", first.name).replace("<other-version>", second.name)
        for query in re.findall(r"```sql\n(.*?)```", section, re.S)
    ]
    assert len(queries) == 2
    monkeypatch.chdir(tmp_path)
    both = sorted([first.name, second.name])
    rows = pq.read_metadata(first / "item_neighbors.parquet").num_rows
    assert [(v, n) for v, n, _ in duckdb.sql(queries[0]).fetchall()] == [(v, rows) for v in both]
    # The small model's items are a..d; the sample's first item is '1'.
    side_by_side = duckdb.sql(queries[1].replace("item_id = '1'", "item_id = 'a'")).fetchall()
    assert {row[2] for row in side_by_side} == set(both)
    assert [row[1] for row in side_by_side] == sorted(row[1] for row in side_by_side)
