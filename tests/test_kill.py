"""SIGKILL at chosen moments: nothing half-written under a final name, LATEST never moved.

Publishing is killed inside a real process, either as soon as the model directory
shows a chosen state (polled from outside while a large version is being written), or
at a pause point the victim sets itself right after an ``fsync`` (for the moments that
last microseconds: manifest written, directory renamed, LATEST temp file written). A
whole ``item2vec run`` is killed during training. After every kill the next run, in
another process, must succeed and sweep the leftovers.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import kill_at_line

from item2vec.neighbors import NEIGHBOR_SCHEMA
from item2vec.publish import (
    LATEST,
    MANIFEST,
    NEIGHBORS_FILE,
    TMP_PREFIX,
    VECTORS_FILE,
    list_version_dirs,
    publish_version,
    read_latest,
    sha256_file,
)
from item2vec.synth import planted_clusters
from item2vec.vectors import ItemVectors

MODEL = "m"
BIG = 400_000  # items: two 64-d float32 columns (~190 MB) and 4M neighbour rows, ~2.5 s to write
SMALL = 20_000
NEXT = 1_000
PARTIAL = 256 * 1024  # bytes a table must have reached before a mid-write kill

# A fork server: one interpreter pays the imports (~2 s of CPU) and builds the tables
# once; each publisher (victim or next run) is a child forked from it, with its own pid,
# that has never touched the output before. Commands come as JSON lines on stdin; every
# line out is written with one os.write: "ready", "forked PID", "exited PID CODE", or
# "PID ..." from a child. A child with a pause point sleeps right after that fsync, so
# that the test can kill it in exactly that state. On EOF the server kills its children.
FORK_SERVER = r"""
import json, logging, os, select, signal, sys, time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import item2vec.atomicfile as atomicfile
import item2vec.publish as publish
from item2vec.neighbors import NEIGHBOR_SCHEMA
from item2vec.vectors import ItemVectors


def say(*words):
    os.write(1, (" ".join(str(w) for w in words) + "\n").encode())


def tables(n, k=10, dim=64):
    rng = np.random.default_rng(n)
    ids = pc.binary_join_element_wise("i", pa.array(np.arange(n)).cast(pa.string()), "")
    vectors = ItemVectors(
        item_ids=ids.to_numpy(zero_copy_only=False),
        vectors=rng.standard_normal((n, dim), dtype=np.float32),
        context_vectors=rng.standard_normal((n, dim), dtype=np.float32),
        counts=rng.integers(1, 100, n),
    )
    neighbors = pa.table(
        {
            "item_id": pc.take(ids, np.repeat(np.arange(n), k)),
            "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), n)),
            "neighbor_id": pc.take(ids, rng.integers(0, n, n * k)),
            "score": pa.array(rng.random(n * k, dtype=np.float32)),
        },
        schema=NEIGHBOR_SCHEMA,
    )
    return vectors, neighbors


DATA = {n: tables(n) for n in json.loads(sys.argv[1])}


class Say(logging.Handler):
    def emit(self, record):
        say(os.getpid(), "log", self.format(record))


def child(spec):
    pid = os.getpid()
    logging.getLogger().addHandler(Say())
    logging.getLogger().setLevel(logging.INFO)
    model_dir = Path(spec["output"], spec["model"])
    pause = spec["pause"]
    original_fsync = atomicfile.fsync_path

    def fsync_then_pause(path):
        original_fsync(path)
        path = Path(path)
        if (
            (pause == "manifest" and path.name == "manifest.json")
            or (pause == "renamed" and path == model_dir)
            or (pause == "latest-temp" and path.name.startswith(".tmp-LATEST-"))
        ):
            say(pid, "paused", pause)
            time.sleep(600)

    if pause:
        # publish fsyncs version files itself and LATEST through atomicfile.
        publish.fsync_path = atomicfile.fsync_path = fsync_then_pause
    final = publish.publish_version(
        spec["output"], spec["model"], *DATA[spec["n_items"]],
        {"input": {"files": []}, "gate": {"passed": True, "reason": "test"}},
        move_latest=True,
    )
    say(pid, "published", final.name)


children = set()
say("ready")
pending = b""
while True:
    if select.select([0], [], [], 0.005)[0]:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    child(json.loads(line))
                except BaseException as exc:
                    say(os.getpid(), "error", repr(exc))
                    code = 1
                os._exit(code)
            children.add(pid)
            say("forked", pid)
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        children.discard(pid)
        say("exited", pid, os.waitstatus_to_exitcode(status))
for pid in children:
    os.kill(pid, signal.SIGKILL)
"""


class ForkServer:
    """The fork server, its stdout read in a thread and sorted by process."""

    def __init__(self, sizes: list[int], log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER, json.dumps(sizes)],
            cwd=log.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.control: queue.Queue[str | None] = queue.Queue()
        self.lines: defaultdict[int, queue.Queue[str | None]] = defaultdict(queue.Queue)
        self.exits: dict[int, int] = {}
        self._lock = threading.Lock()
        self._exited = threading.Condition(self._lock)
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = threading.Event()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            word, _, rest = raw.decode().rstrip("\n").partition(" ")
            if word == "exited":
                pid, code = map(int, rest.split())
                with self._lock:
                    self.exits[pid] = code
                    self.lines[pid].put(None)
                    self._exited.notify_all()
            elif word.isdigit():
                with self._lock:
                    self.lines[int(word)].put(rest)
            else:
                self.control.put(f"{word} {rest}".strip())
        self.control.put(None)

    def _control(self, word: str, timeout: float = 180) -> str:
        try:
            line = self.control.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None or not line.startswith(word):
            pytest.fail(f"fork server: expected {word!r}, got {line!r}:\n{self._stderr_tail()}")
        return line

    def _stderr_tail(self) -> str:
        return self.log.read_text()[-3000:]

    def queue(self, pid: int) -> queue.Queue[str | None]:
        with self._lock:
            return self.lines[pid]

    def wait_ready(self) -> None:
        if not self.ready.is_set():
            self._control("ready")
            self.ready.set()

    def fork(self, output: Path, n_items: int, pause: str | None = None) -> Child:
        self.wait_ready()
        spec = {"output": str(output), "model": MODEL, "n_items": n_items, "pause": pause}
        self.proc.stdin.write((json.dumps(spec) + "\n").encode())
        self.proc.stdin.flush()
        return Child(self, int(self._control("forked").split()[1]))

    def wait_exit(self, pid: int, timeout: float = 60) -> int:
        with self._exited:
            if not self._exited.wait_for(lambda: pid in self.exits, timeout=timeout):
                pytest.fail(f"process {pid} did not exit within {timeout}s")
            return self.exits[pid]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._stderr.close()


class Child:
    """One publisher forked by the server."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.seen: list[str] = []

    def alive(self) -> bool:
        return self.pid not in self.server.exits

    def expect(self, prefix: str, timeout: float = 120) -> str:
        lines = self.server.queue(self.pid)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = None
            if line is None:
                pytest.fail(f"process {self.pid}: no line starting {prefix!r}; saw {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def kill(self) -> None:
        """SIGKILL, then wait until the server has reaped it (a zombie still looks alive)."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.server.wait_exit(self.pid) == -signal.SIGKILL

    def wait(self) -> int:
        return self.server.wait_exit(self.pid)

    def close(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


# moment -> (items the victim writes, pause point inside the victim, or None to poll)
MOMENTS = {
    "tmp-dir-created": (BIG, None),
    "vectors-half-written": (BIG, None),
    "neighbors-half-written": (BIG, None),
    "manifest-written": (SMALL, "manifest"),
    "renamed-before-latest": (SMALL, "renamed"),
    "latest-temp-before-replace": (SMALL, "latest-temp"),
}


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory):
    server = ForkServer([BIG, SMALL, NEXT], tmp_path_factory.mktemp("fork-server") / "err")
    try:
        yield server
    finally:
        server.close()


def _small_vectors(n: int = 50, dim: int = 8) -> tuple[ItemVectors, pa.Table]:
    rng = np.random.default_rng(7)
    ids = np.array([f"g{i}" for i in range(n)], dtype=object)
    vectors = ItemVectors(
        item_ids=ids,
        vectors=rng.standard_normal((n, dim), dtype=np.float32),
        context_vectors=None,
        counts=np.full(n, 3, dtype=np.int64),
    )
    neighbors = pa.table(
        {
            "item_id": pa.array(ids, pa.string()),
            "rank": pa.array(np.ones(n, dtype=np.int32)),
            "neighbor_id": pa.array(np.roll(ids, 1), pa.string()),
            "score": pa.array(np.full(n, 0.5, dtype=np.float32)),
        },
        schema=NEIGHBOR_SCHEMA,
    )
    return vectors, neighbors


def _snapshot(version_dir: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(version_dir.iterdir())}


def _assert_whole(version_dir: Path) -> None:
    """A version under its final name: a manifest naming it, every table listed and intact."""
    assert (version_dir / MANIFEST).is_file(), f"{version_dir.name}: no manifest, half-written"
    manifest = json.loads((version_dir / MANIFEST).read_text())
    assert manifest["version"] == version_dir.name
    on_disk = {p.name for p in version_dir.iterdir()} - {MANIFEST}
    assert on_disk == set(manifest["files"]), f"{version_dir}: unlisted or missing files"
    for name, described in manifest["files"].items():
        assert sha256_file(version_dir / name) == described["sha256"], f"{version_dir / name}"
        if name.endswith(".parquet"):  # the report's files have no rows
            assert pq.read_metadata(version_dir / name).num_rows == described["rows"]


def _assert_nothing_half_written(model_dir: Path) -> None:
    visible = [p for p in model_dir.iterdir() if not p.name.startswith(".")]
    assert sorted(p.name for p in visible if not p.is_dir()) in ([], [LATEST])
    version_dirs = sorted(p for p in visible if p.is_dir())
    assert version_dirs == sorted(list_version_dirs(model_dir))
    for version_dir in version_dirs:
        _assert_whole(version_dir)
    latest = read_latest(model_dir)
    assert latest is None or model_dir / latest in version_dirs


def _temporaries(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if p.name.startswith(TMP_PREFIX))


def _victim_temporary(model_dir: Path, pid: int) -> Path | None:
    with os.scandir(model_dir) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(TMP_PREFIX) and name.endswith(f"-{pid}") and entry.is_dir():
                return Path(entry.path)
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _poll(condition: Callable[[], bool], victim: Child, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if not victim.alive():
            pytest.fail(f"victim exited ({victim.wait()}) before {what}; saw {victim.seen}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def _new_dirs(model_dir: Path, good: Path) -> list[Path]:
    """Directories the victim made, whatever their name (a temporary one, if all is well)."""
    with os.scandir(model_dir) as entries:
        return [Path(e.path) for e in entries if e.is_dir() and e.name != good.name]


def _table_reached(model_dir: Path, good: Path, name: str) -> Callable[[], bool]:
    def reached() -> bool:
        return any(_size(d / name) >= PARTIAL for d in _new_dirs(model_dir, good))

    return reached


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_while_publishing(moment, fork_server, tmp_path):
    """Killed at ``moment``, a publisher leaves the last good version and LATEST untouched
    and nothing half-written under a final name; the next run publishes and sweeps up."""
    output = tmp_path / "out"
    model_dir = output / MODEL
    good = publish_version(output, MODEL, *_small_vectors(), {"input": {}}, move_latest=True)
    good_files = _snapshot(good)
    latest_bytes = (model_dir / LATEST).read_bytes()
    n_items, pause = MOMENTS[moment]

    victim = fork_server.fork(output, n_items, pause)
    pid = victim.pid
    try:
        if moment == "tmp-dir-created":
            _poll(lambda: bool(_new_dirs(model_dir, good)), victim, moment)
        elif moment == "vectors-half-written":
            _poll(_table_reached(model_dir, good, VECTORS_FILE), victim, moment)
        elif moment == "neighbors-half-written":
            _poll(_table_reached(model_dir, good, NEIGHBORS_FILE), victim, moment)
        else:
            victim.expect("paused")
        victim.kill()
    finally:
        victim.close()

    # What the kill left behind. First what holds whenever a kill lands.
    temporary = _victim_temporary(model_dir, pid)
    left = {p.name: p.stat().st_size for p in temporary.iterdir()} if temporary else {}
    print(f"\n{moment}: killed pid {pid}; temporaries {_temporaries(model_dir)}; in it {left}")
    assert read_latest(model_dir) == good.name
    assert (model_dir / LATEST).read_bytes() == latest_bytes
    assert _snapshot(good) == good_files
    _assert_whole(good)
    _assert_nothing_half_written(model_dir)
    # Then where this moment should have left the victim.
    if pause in (None, "manifest"):
        # Killed before the rename: the victim's version exists only as a temporary.
        assert temporary is not None
        assert list_version_dirs(model_dir) == [good]
    if moment.endswith("half-written"):
        name = VECTORS_FILE if moment.startswith("vectors") else NEIGHBORS_FILE
        with pytest.raises(pa.ArrowInvalid):  # truly cut short: no footer
            pq.read_metadata(temporary / name)
    if pause == "manifest":
        assert set(left) == {VECTORS_FILE, NEIGHBORS_FILE, MANIFEST}
    if pause in ("renamed", "latest-temp"):
        # Whole under its final name, but LATEST not moved to it.
        assert temporary is None
        assert len(list_version_dirs(model_dir)) == 2
    if pause == "latest-temp":
        assert [
            name
            for name in _temporaries(model_dir)
            if name.startswith(f"{TMP_PREFIX}{LATEST}-") and name.endswith(f"-{pid}")
        ]

    # The next run publishes, moves LATEST and sweeps the killed run's leftovers.
    nxt = fork_server.fork(output, NEXT)
    new_version = nxt.expect("published").split()[1]
    assert nxt.wait() == 0
    assert read_latest(model_dir) == new_version
    _assert_whole(model_dir / new_version)
    _assert_nothing_half_written(model_dir)
    assert _temporaries(model_dir) == []
    removed = [line for line in nxt.seen if "removed stale temporary" in line]
    assert all(line.endswith(f"-{pid}") for line in removed), removed
    assert len(removed) == (0 if pause == "renamed" else 1), removed
    assert _snapshot(good) == good_files


# --- a whole `item2vec run` -------------------------------------------------------------------


def _cli_env(prefect_home: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    return env


@pytest.mark.flows
def test_sigkill_during_training_then_rerun(tmp_path):
    """A whole run killed while it trains leaves no version and no LATEST; the next run in
    the same Prefect home publishes a whole version."""
    events, _ = planted_clusters(n_users=300, n_items=80, n_clusters=4, events_per_user=30)
    log_path = tmp_path / "events.csv"
    events[["user_id", "item_id", "timestamp"]].to_csv(log_path, index=False)
    output = tmp_path / "out"
    model_dir = output / MODEL
    env = _cli_env(tmp_path / "prefect-home")  # shared by both runs
    command = [sys.executable, "-m", "item2vec_flows.cli", "run", str(log_path)]
    command += ["--output", str(output), "--model-name", MODEL]

    # kill_at_line runs it in a session of its own, so that the kill also takes Prefect's
    # temporary API server, which runs as a child process and would otherwise be orphaned.
    # Far more epochs than could finish before the kill lands (minutes of training).
    lines = kill_at_line([*command, "--epochs", "1000"], tmp_path, env, "training Word2Vec")
    assert not any("trained " in line or "published" in line for line in lines), lines[-5:]

    assert list_version_dirs(model_dir) == []
    assert not (model_dir / LATEST).exists()
    if model_dir.exists():
        _assert_nothing_half_written(model_dir)
        assert _temporaries(model_dir) == []

    done = subprocess.run(
        [*command, "--epochs", "5", "--no-report"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    latest = read_latest(model_dir)
    assert latest is not None
    assert [p.name for p in list_version_dirs(model_dir)] == [latest]
    _assert_whole(model_dir / latest)
    _assert_nothing_half_written(model_dir)
    manifest = json.loads((model_dir / latest / MANIFEST).read_text())
    assert manifest["config"]["train"]["epochs"] == 5
    assert _temporaries(model_dir) == []
