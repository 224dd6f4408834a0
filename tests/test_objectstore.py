"""Events, items, output and cache in S3, against a real S3 server started here on 127.0.0.1.

The server is moto's (``moto.server.ThreadedMotoServer``) on a free port of the
loopback address; the clients are s3fs and botocore, told where it is and given
dummy credentials through environment variables set for these tests only. A whole
``item2vec run`` reads its log from the bucket and publishes into it; publishers
are killed with SIGKILL at each step of the commit; two runs publish at once.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from item2vec import objectstore  # noqa: E402
from item2vec.errors import ConfigError, InputError, PublishConflictError  # noqa: E402
from item2vec.layout import LATEST, MANIFEST, read_latest  # noqa: E402
from item2vec.reader import list_versions, load  # noqa: E402
from item2vec.storage import ObjectPath, as_path  # noqa: E402
from item2vec.synth import planted_clusters  # noqa: E402

MODEL = "m"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and the variables that point s3fs at it."""
    import logging

    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's line per request
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield env
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket of the server."""
    import fsspec

    name = f"b-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3", use_listings_cache=False).mkdir(name)
    return name


def _fs():
    import fsspec

    return fsspec.filesystem("s3", use_listings_cache=False)


def _write_log(bucket: str) -> None:
    events, _ = planted_clusters(n_users=200, n_items=60, n_clusters=3, events_per_user=20)
    table = pa.Table.from_pandas(events[["user_id", "item_id", "timestamp"]], preserve_index=False)
    pq.write_table(table, f"{bucket}/events.parquet", filesystem=_fs())
    items = sorted(events["item_id"].unique())
    lines = "item_id,title\n" + "".join(f"{item},Item {item}\n" for item in items)
    _fs().pipe_file(f"{bucket}/items.csv", lines.encode())


def _run(bucket: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "item2vec_flows.cli", "run", f"s3://{bucket}/events.parquet"]
    command += ["--output", f"s3://{bucket}/out", "--model-name", MODEL]
    command += ["--items", f"s3://{bucket}/items.csv", "--epochs", "2", "--no-report"]
    command += ["--gate-margin", "0", *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.flows
def test_a_whole_run_reads_from_and_publishes_to_s3(s3, bucket, cli_env, tmp_path):
    """``item2vec run s3://.../events.parquet --output s3://.../out``, read back with pyarrow,
    pandas, DuckDB and item2vec's reader; a second run takes its input from the S3 cache."""
    import duckdb
    import pandas as pd

    _write_log(bucket)
    env = {**cli_env, **s3}
    done = _run(bucket, env)
    assert done.returncode == 0, done.stderr[-3000:]
    model_dir = as_path(f"s3://{bucket}/out/{MODEL}")
    version = read_latest(model_dir)
    assert f"Published: s3://{bucket}/out/{MODEL}/{version}" in done.stdout
    prefix = f"{bucket}/out/{MODEL}/{version}"
    manifest = json.loads(_fs().cat_file(f"{prefix}/{MANIFEST}"))
    assert set(manifest["files"]) == {
        "item_vectors.parquet",
        "item_neighbors.parquet",
        "user_recommendations.parquet",
        "items.parquet",
    }
    assert [p for p in _fs().ls(f"{bucket}/out/{MODEL}") if ".tmp-" in p or ".lock" in p] == []

    # pyarrow, through s3fs.
    vectors = pq.read_table(f"{prefix}/item_vectors.parquet", filesystem=_fs())
    assert vectors.num_rows == manifest["files"]["item_vectors.parquet"]["rows"]
    assert set(vectors.column("version").to_pylist()) == {version}
    # pandas, through fsspec.
    neighbors = pd.read_parquet(f"s3://{prefix}/item_neighbors.parquet")
    assert len(neighbors) == manifest["files"]["item_neighbors.parquet"]["rows"]
    assert set(neighbors["version"]) == {version}
    # DuckDB, through the same fsspec filesystem: its own httpfs extension is a download,
    # which this machine cannot make.
    con = duckdb.connect()
    con.register_filesystem(_fs())
    rows = con.sql(
        f"SELECT version, count(*) FROM read_parquet('s3://{prefix}/user_recommendations.parquet')"
        " GROUP BY version"
    ).fetchall()
    assert rows == [(version, manifest["files"]["user_recommendations.parquet"]["rows"])]
    titles = con.sql(f"SELECT title FROM read_parquet('s3://{prefix}/items.parquet')").fetchall()
    assert titles and all(t[0].startswith("Item ") for t in titles)
    # item2vec's own reader, in-process and through the reading commands.
    model = load(f"s3://{bucket}/out", MODEL)
    assert model.version == version and model.vectors.shape == (vectors.num_rows, model.dim)
    from item2vec.lookup import recommendations, similar, titles

    assert titles(model).str.startswith("Item ").all()
    item = model.item_ids[0]
    assert (similar(model, item, 3)["title"] != "").all()
    user = pq.read_table(f"{prefix}/user_recommendations.parquet", filesystem=_fs())["user_id"][0]
    assert len(recommendations(model, user.as_py(), 3)) == 3
    assert [v["version"] for v in list_versions(f"s3://{bucket}/out", MODEL)] == [version]
    shown = subprocess.run(
        [sys.executable, "-m", "item2vec_flows.cli", "versions", "--output", f"s3://{bucket}/out"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0 and version in shown.stdout and "LATEST" in shown.stdout
    # The report of a version in the bucket, written to a local folder; never into the bucket.
    report = [sys.executable, "-m", "item2vec_flows.cli", "report", f"s3://{prefix}"]
    local = tmp_path / "report"
    written = subprocess.run(
        [*report, "--out", str(local)], env=env, capture_output=True, text=True, timeout=300
    )
    assert written.returncode == 0, written.stderr[-3000:]
    assert "Item " in (local / "report.md").read_text()  # the bucket's titles
    refused = subprocess.run(report, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "--out" in refused.stderr
    assert not [p for p in _fs().ls(prefix) if p.endswith("report.md")]

    # The cache lives beside the output, in the bucket: nothing is read again.
    again = _run(bucket, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Input unchanged since an earlier run" in again.stdout
    assert len(list_versions(f"s3://{bucket}/out", MODEL)) == 2
    assert _fs().find(f"{bucket}/out/.cache/sequences")


# --- killed publishers ---------------------------------------------------------------------

#: A publisher in a process of its own. With a pause point it stops right after (or, for
#: "locked", right before) that step of the commit, says so, and waits to be killed.
PUBLISHER = r"""
import json, sys, time

import numpy as np
import pyarrow as pa

import item2vec.objectstore as objectstore
from item2vec.neighbors import nearest_neighbors
from item2vec.publish import publish_version
from item2vec.vectors import ItemVectors

spec = json.loads(sys.argv[1])
pause = spec.get("pause")


def say(*words):
    print(*words, flush=True)


def stop(moment):
    say("paused", moment)
    if spec.get("go"):  # wait for the go file instead of a kill
        while not __import__("os").path.exists(spec["go"]):
            time.sleep(0.01)
        return
    time.sleep(600)


def after(name, moment, when=lambda *a: True):
    original = getattr(objectstore, name)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        if when(*args):
            stop(moment)
        return result

    setattr(objectstore, name, wrapped)


def before(name, moment):
    original = getattr(objectstore, name)

    def wrapped(*args, **kwargs):
        stop(moment)
        return original(*args, **kwargs)

    setattr(objectstore, name, wrapped)


if pause == "half-uploaded":
    def first_file_only(staged, temporary, names):
        objectstore.upload_all.__wrapped__(staged, temporary, names[:1])
        stop(pause)

    first_file_only.__wrapped__ = objectstore.upload_all
    objectstore.upload_all = first_file_only
elif pause == "uploaded":
    after("upload_all", pause)
elif pause == "copied":
    after("copy_all", pause)
elif pause == "manifest":
    after("create_only", pause, lambda target, data: target.name == "manifest.json")
elif pause == "locked":
    before("write_latest", pause)
elif pause == "lock":
    before("model_lock", pause)

n = spec["n_items"]
rng = np.random.default_rng(n)
vectors = ItemVectors(
    item_ids=np.array([f"i{i}" for i in range(n)], dtype=object),
    vectors=rng.standard_normal((n, 16), dtype=np.float32),
    context_vectors=None,
    counts=np.ones(n, dtype=np.int64),
)
final = publish_version(
    spec["output"], "m", vectors, nearest_neighbors(vectors, 5),
    {"input": {"files": []}, "gate": {"passed": True, "reason": "test"}},
    move_latest=True,
)
say("published", final.name)
"""


class Publisher:
    """A publisher process; its lines are read in a thread, so that waiting can time out."""

    def __init__(
        self,
        output: str,
        n_items: int,
        pause: str | None,
        go: Path | None = None,
        tmpdir: Path | None = None,
    ):
        spec = {"output": output, "n_items": n_items, "pause": pause, "go": str(go or "")}
        env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir else None
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"publisher {self.proc.pid}: no line starting {prefix!r} in time")
            if line is None:
                pytest.fail(
                    f"publisher exited {self.proc.wait()} before {prefix!r}: "
                    + self.proc.stderr.read()[-3000:]
                )
            if line.startswith(prefix):
                return line

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL

    def finish(self) -> str:
        name = self.expect("published").split()[1]
        assert self.proc.wait(timeout=120) == 0, self.proc.stderr.read()
        return name

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def _publish(output: str, n_items: int = 30) -> str:
    """Publish a small version in this process (as the victim's child script does) and
    move LATEST to it; returns its id."""
    import numpy as np

    from item2vec.neighbors import nearest_neighbors
    from item2vec.publish import publish_version
    from item2vec.vectors import ItemVectors

    rng = np.random.default_rng(n_items)
    vectors = ItemVectors(
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        vectors=rng.standard_normal((n_items, 16), dtype=np.float32),
        context_vectors=None,
        counts=np.ones(n_items, dtype=np.int64),
    )
    manifest = {"input": {"files": []}, "gate": {"passed": True, "reason": "test"}}
    neighbors = nearest_neighbors(vectors, 5)
    return publish_version(output, MODEL, vectors, neighbors, manifest, move_latest=True).name


def _objects(model_dir: ObjectPath) -> dict[str, str]:
    """Every object under the model prefix, by name, with its ETag (its content's identity)."""
    return {
        o.path.removeprefix(model_dir.path + "/"): o.fs.info(o.path)["ETag"]
        for o in model_dir.find()
    }


def _assert_whole(model_dir: ObjectPath, version: str) -> None:
    """A version with its manifest, every file it lists there and matching its SHA-256."""
    model = load(model_dir.parent.url, MODEL, version)
    assert model.version == version
    listed = set(model.manifest["files"])
    present = {o.name for o in (model_dir / version).find()} - {MANIFEST}
    assert present == listed
    for name, described in model.manifest["files"].items():
        assert objectstore.object_sha256(model_dir / version / name) == described["sha256"]


MOMENTS = {
    "half-uploaded": (2_000, "half-uploaded"),
    "uploaded": (2_000, "uploaded"),
    "copied": (2_000, "copied"),
    "manifest": (2_000, "manifest"),
    "locked": (2_000, "locked"),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_while_publishing_to_s3(moment, s3, bucket, tmp_path, monkeypatch):
    """Killed at any step of the commit, a publisher leaves LATEST and the last good version
    as they were, and no version that a reader would take for whole unless it is; the next
    publisher sweeps what the killed one left, in the store and in the local staging folder."""
    import tempfile

    from item2vec.publish import STAGING

    staging_root = tmp_path / "tmp"
    staging_root.mkdir()
    output = f"s3://{bucket}/out"
    model_dir = as_path(output) / MODEL
    good = _publish(output)
    before = _objects(model_dir)
    good_objects = {name: tag for name, tag in before.items() if name.startswith(good)}
    n_items, pause = MOMENTS[moment]

    victim = Publisher(output, n_items, pause, tmpdir=staging_root)
    try:
        victim.expect(f"paused {pause}")
        victim.kill()
    finally:
        victim.close()
    left = list(staging_root.glob(f".tmp-{STAGING}-*"))
    assert len(left) == 1  # what the victim staged, still there after its death

    after = _objects(model_dir)
    assert read_latest(model_dir) == good
    assert {name: tag for name, tag in after.items() if name in before} == before
    _assert_whole(model_dir, good)
    listed = list_versions(output, MODEL)
    trusted = [v["version"] for v in listed if v["error"] is None]
    for entry in listed:
        if entry["error"] is not None:  # the victim's, copied in part: never loaded
            with pytest.raises(InputError):
                load(output, MODEL, entry["version"])
    assert good in trusted
    if pause in ("manifest", "locked"):
        assert len(trusted) == 2  # whole, but LATEST was not moved to it
    else:
        assert trusted == [good]
    if pause == "locked":
        assert objectstore.LOCK in after

    monkeypatch.setattr(tempfile, "tempdir", str(staging_root))
    nxt = _publish(output)
    assert read_latest(model_dir) == nxt
    _assert_whole(model_dir, nxt)
    assert list(staging_root.iterdir()) == []  # the victim's staging swept, its own removed
    names = _objects(model_dir)
    assert not [n for n in names if n.startswith(".tmp-") or n == objectstore.LOCK]
    versions = list_versions(output, MODEL)
    assert all(v["error"] is None for v in versions), versions
    assert {name: tag for name, tag in names.items() if name.startswith(good)} == good_objects


# --- two publishers at once ----------------------------------------------------------------


def test_two_publishers_racing_for_latest_both_end_whole(s3, bucket, tmp_path):
    """Both wait at the lock's door and are let in together: each version is whole, the lock
    is gone, LATEST names one of them and each LATEST write saw the other's."""
    output = f"s3://{bucket}/out"
    model_dir = as_path(output) / MODEL
    go = tmp_path / "go"
    racers = [Publisher(output, 500, "lock", go) for _ in range(2)]
    try:
        for racer in racers:
            racer.expect("paused lock")
        go.touch()
        versions = [racer.finish() for racer in racers]
    finally:
        for racer in racers:
            racer.close()
    assert read_latest(model_dir) in versions
    for version in versions:
        _assert_whole(model_dir, version)
    assert objectstore.LOCK not in _objects(model_dir)
    assert sorted(v["version"] for v in list_versions(output, MODEL)) == sorted(versions)


@pytest.mark.flows
def test_two_whole_runs_at_once_both_end_whole(s3, bucket, cli_env):
    """Two ``item2vec run`` processes publishing the same model at the same time."""
    _write_log(bucket)
    env = {**cli_env, **s3}
    command = [sys.executable, "-m", "item2vec_flows.cli", "run", f"s3://{bucket}/events.parquet"]
    command += ["--output", f"s3://{bucket}/out", "--model-name", MODEL, "--epochs", "2"]
    command += ["--no-report", "--gate-margin", "0"]
    runs = [
        subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
    model_dir = as_path(f"s3://{bucket}/out") / MODEL
    published = [
        line.rsplit("/", 1)[1]
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("Published: ")
    ]
    assert len(set(published)) == 2
    assert read_latest(model_dir) in published
    for version in published:
        _assert_whole(model_dir, version)
    assert objectstore.LOCK not in _objects(model_dir)


# --- the pieces, one at a time ---------------------------------------------------------------


def test_latest_is_not_replaced_when_it_changed_since_it_was_read(s3, bucket):
    """The conditional write: a LATEST moved by someone else in between is left as they set it."""
    output = f"s3://{bucket}/out"
    model_dir = as_path(output) / MODEL
    first = _publish(output)
    latest = model_dir / LATEST
    seen = objectstore.etag(latest)
    latest.write_bytes(b"someone-elses-version\n")
    with pytest.raises(PublishConflictError, match="changed by another run"):
        objectstore.replace_if_unchanged(latest, (first + "\n").encode(), seen)
    assert latest.read_bytes() == b"someone-elses-version\n"
    objectstore.replace_if_unchanged(model_dir / "NEW", b"x", None)  # None: only if absent
    with pytest.raises(PublishConflictError):
        objectstore.replace_if_unchanged(model_dir / "NEW", b"y", None)
    assert (model_dir / "NEW").read_bytes() == b"x"


def test_the_lock_waits_for_a_live_holder_and_takes_over_from_a_dead_one(s3, bucket):
    model_dir = as_path(f"s3://{bucket}/out") / MODEL
    lock = model_dir / objectstore.LOCK
    alive = {"owner": objectstore.owner_id(), "pid": os.getppid(), "token": "other"}
    lock.write_bytes(json.dumps(alive).encode())
    with (
        pytest.raises(PublishConflictError, match="held by another run"),
        objectstore.model_lock(model_dir, wait=0.3),
    ):
        pass
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = {"owner": objectstore.owner_id(), "pid": int(dead.stdout), "token": "gone"}
    lock.write_bytes(json.dumps(gone).encode())
    with objectstore.model_lock(model_dir, wait=5):
        assert json.loads(lock.read_bytes())["pid"] == os.getpid()
    assert not lock.exists()


def test_a_damaged_object_is_refused_by_the_reader(s3, bucket):
    """Readers trust an object only if its SHA-256 (load) or size (versions) is the manifest's."""
    output = f"s3://{bucket}/out"
    version = _publish(output)
    target = as_path(output) / MODEL / version / "item_neighbors.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    target.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256"):
        load(output, MODEL)
    target.write_bytes(bytes(data[:-10]))
    (entry,) = list_versions(output, MODEL)
    assert entry["error"] and "size" in entry["error"]


def test_events_from_a_prefix_and_a_glob(s3, bucket):
    """A prefix is read like a folder (hidden objects skipped), a pattern like a local glob."""
    import gzip

    from item2vec.discovery import resolve_paths
    from item2vec.readers import read_columns, read_table

    fs = _fs()
    rows = b"user_id,item_id,timestamp\nu1,007,1700000000\nu2,8,1700000001\n"
    for name in ("2026-11-01.csv", "notes.md", ".hidden/x.csv"):
        fs.pipe_file(f"{bucket}/logs/{name}", rows)
    fs.pipe_file(f"{bucket}/logs/2026-11-02.csv.gz", gzip.compress(rows))
    found = resolve_paths([f"s3://{bucket}/logs/"])
    assert [p.name for p in found] == ["2026-11-01.csv", "2026-11-02.csv.gz"]
    for path in found:  # the CSV as it is and gunzipped, ids kept as exact text
        assert read_columns(path) == ["user_id", "item_id", "timestamp"]
        table = read_table(path, ["user_id", "item_id"])
        assert table.column("item_id").to_pylist() == ["007", "8"]
    pattern = [p.name for p in resolve_paths([f"s3://{bucket}/logs/*.csv"])]
    assert pattern == ["2026-11-01.csv"]
    with pytest.raises(InputError, match="does not exist"):
        resolve_paths([f"s3://{bucket}/nothing.csv"])


def test_a_missing_store_package_names_the_extra(monkeypatch):
    """Without gcsfs (or s3fs, adlfs), the error says which extra installs it."""
    import fsspec  # noqa: F401  (loads fsspec.registry)

    registry = sys.modules["fsspec.registry"]._registry
    for protocol, module, extra in (("gs", "gcsfs", "gcs"), ("s3", "s3fs", "s3")):
        monkeypatch.delitem(registry, protocol, raising=False)
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(ConfigError, match=rf"item2vec\[{extra}\]"):
            as_path(f"{protocol}://bucket/events.csv")


def test_file_urls_are_local_paths(tmp_path):
    assert as_path(f"file://{tmp_path}/x.csv") == tmp_path / "x.csv"
    assert as_path("relative/x.csv") == Path("relative/x.csv")


def test_a_warm_chain_continues_a_version_published_in_s3(s3, bucket, tmp_path):
    import pandas as pd

    from item2vec import stages
    from item2vec.config import build_config
    from item2vec.publish import publish_version
    from item2vec.sequences import build_sequences
    from item2vec.synth_daily import daily_log
    from item2vec.warm_start import train_nightly

    events, _ = daily_log(days=3, events=3_000, users=150, items=60, clusters=3, seed=2)
    day = (events["timestamp"] - events["timestamp"].min()) // 86_400
    output = f"s3://{bucket}/out"
    config = build_config(
        {
            "train": {"warm_start": True, "epochs": 4, "vector_size": 8, "workers": 1},
            "evaluate": {"split": "temporal", "test_days": 1.0, "max_users": 0},
            "publish": {"output": output, "model_name": MODEL},
        }
    )
    records, published = [], []
    for last in (1, 2):
        frame = events[day <= last].rename(columns={"timestamp": "ts"})
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        sequences = build_sequences(frame[["user_id", "item_id", "ts"]])
        split = stages.split(sequences, config.evaluate)
        vectors = train_nightly(split, sequences, config)
        records.append(vectors.history["warm_start"])
        manifest = {
            "config": config.model_dump(mode="json"),
            "warm_start": vectors.history["warm_start"],
            "gate": {"passed": True, "reason": "test"},
        }
        neighbors = stages.neighbors(vectors, config.publish)
        version = publish_version(output, MODEL, vectors, neighbors, manifest, move_latest=True)
        published.append(version.name)
    assert records[0]["mode"] == "full"
    assert records[1]["mode"] == "warm", records[1]["reason"]
    assert records[1]["previous_version"] == published[0]
