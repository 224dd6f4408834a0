"""The ingest and sequences cache: hits, partial re-reads, invalidation, damage."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import item2vec.cache as cache_module
from item2vec.cache import cache_root, events_and_sequences, stage_cache
from item2vec.config import build_config
from item2vec.ingest import read_events
from item2vec.sequences import build_sequences
from item2vec.synth import planted_clusters


def _daily_log(folder: Path, days: list[int], seed: int = 0) -> list[Path]:
    """One CSV per day; every day has its own users' events, timed inside that day."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for day in days:
        events, _ = planted_clusters(
            n_users=30, n_items=40, n_clusters=2, events_per_user=6, seed=seed + day
        )
        events["user_id"] = events["user_id"].astype(str) + f"-d{day}"
        start = pd.Timestamp(f"2026-11-{day:02d}", tz="UTC").value // 10**9
        events["timestamp"] = start + (events["timestamp"] - events["timestamp"].min()) % 80_000
        path = folder / f"2026-11-{day:02d}.csv"
        events.to_csv(path, index=False)
        paths.append(path)
    return paths


def _config(folder: Path, output: Path, **ingest):
    return build_config(
        {"ingest": {"paths": [str(folder)], **ingest}, "publish": {"output": str(output)}}
    )


@pytest.fixture
def count_reads(monkeypatch):
    """Names of the files actually read and validated (cache misses)."""
    read = []
    real = cache_module.read_partition

    def counting(path, config):
        read.append(Path(path).name)
        return real(path, config)

    monkeypatch.setattr(cache_module, "read_partition", counting)
    return read


def _uncached(config) -> pa.Table:
    return build_sequences(read_events(config.ingest).frame, config.sequences)


def test_second_run_reads_nothing_and_says_so(tmp_path, count_reads, caplog):
    _daily_log(tmp_path / "logs", [1, 2, 3])
    config = _config(tmp_path / "logs", tmp_path / "out")
    events, first = events_and_sequences(config)
    assert sorted(count_reads) == ["2026-11-01.csv", "2026-11-02.csv", "2026-11-03.csv"]
    count_reads.clear()
    with caplog.at_level(logging.INFO, logger="item2vec"):
        cached_events, second = events_and_sequences(config)
    assert count_reads == []
    assert "ingest and sequences cached" in caplog.text
    assert second.equals(first)
    assert second.schema.metadata == first.schema.metadata  # drop counts survive
    assert cached_events.counts == events.counts
    assert cached_events.files == events.files
    assert first.equals(_uncached(config))


def test_growing_folder_reads_only_the_new_day(tmp_path, count_reads):
    paths = _daily_log(tmp_path / "logs", [1, 2])
    config = _config(tmp_path / "logs", tmp_path / "out")
    events_and_sequences(config)
    _daily_log(tmp_path / "logs", [3])
    count_reads.clear()
    events, sequences = events_and_sequences(config)
    assert count_reads == ["2026-11-03.csv"]
    assert sequences.equals(_uncached(config))
    assert [entry["path"] for entry in events.files] == [str(p) for p in paths] + [
        str(tmp_path / "logs" / "2026-11-03.csv")
    ]


def test_rolling_window_reads_only_recent_days(tmp_path, count_reads):
    _daily_log(tmp_path / "logs", [1, 2, 3, 4])
    config = _config(tmp_path / "logs", tmp_path / "out", window_days=2)
    events, sequences = events_and_sequences(config)
    assert sorted(count_reads) == ["2026-11-03.csv", "2026-11-04.csv"]
    users = set(sequences.column("user_id").to_pylist())
    assert users and all(user.endswith(("-d3", "-d4")) for user in users)
    assert len(events.files) == 2


def test_changed_content_is_read_again(tmp_path, count_reads):
    (path,) = _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out")
    _, before = events_and_sequences(config)
    frame = pd.read_csv(path, dtype=str)
    frame.iloc[: len(frame) // 2].to_csv(path, index=False)  # same name, new content
    count_reads.clear()
    _, after = events_and_sequences(config)
    assert count_reads == ["2026-11-01.csv"]
    assert after.equals(_uncached(config)) and not after.equals(before)


def test_new_filter_rebuilds_sequences_from_cached_partitions(tmp_path, count_reads):
    _daily_log(tmp_path / "logs", [1, 2])
    events_and_sequences(_config(tmp_path / "logs", tmp_path / "out"))
    count_reads.clear()
    stricter = _config(tmp_path / "logs", tmp_path / "out", min_item_count=9)
    events, sequences = events_and_sequences(stricter)
    assert count_reads == []  # partitions came from the cache...
    assert events.counts["dropped"]["rare_item"] > 0  # ...and the new filter still applied
    assert sequences.equals(_uncached(stricter))


def test_disabled_cache_writes_nothing(tmp_path, count_reads):
    _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out", cache=False)
    events_and_sequences(config)
    events_and_sequences(config)
    assert len(count_reads) == 2
    assert not cache_root(config).exists()


def test_cache_dir_setting_moves_the_cache(tmp_path):
    _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out", cache_dir=str(tmp_path / "elsewhere"))
    events_and_sequences(config)
    assert any((tmp_path / "elsewhere" / "sequences").glob("*.parquet"))
    assert not (tmp_path / "out").exists()


def test_damaged_entry_is_rebuilt_with_a_warning(tmp_path, count_reads, caplog):
    _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out")
    _, first = events_and_sequences(config)
    for entry in cache_root(config).rglob("*.parquet"):
        entry.write_bytes(b"not parquet")
    count_reads.clear()
    with caplog.at_level(logging.WARNING, logger="item2vec"):
        _, second = events_and_sequences(config)
    assert "unreadable" in caplog.text
    assert count_reads == ["2026-11-01.csv"]
    assert second.equals(first)


def test_unchanged_files_are_not_hashed_again(tmp_path, monkeypatch):
    _daily_log(tmp_path / "logs", [1, 2])
    config = _config(tmp_path / "logs", tmp_path / "out")
    events_and_sequences(config)
    hashed = []
    real = cache_module.fingerprint
    monkeypatch.setattr(
        cache_module, "fingerprint", lambda paths: hashed.extend(paths) or real(paths)
    )
    events_and_sequences(config)
    assert hashed == []
    touched = tmp_path / "logs" / "2026-11-02.csv"
    os.utime(touched, ns=(1, 1))  # same bytes, new time: hashed again, same key
    events_and_sequences(config)
    assert hashed == [touched]


def test_prune_removes_old_entries_and_crashed_writes(tmp_path):
    _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out")
    events_and_sequences(config)
    cache = stage_cache(config)
    crashed = cache.root / "partitions" / ".tmp-x.parquet-123"
    crashed.write_bytes(b"half")
    entries = list(cache.root.rglob("*.parquet"))
    for path in [*entries, crashed]:
        os.utime(path, (0, 0))
    assert cache.prune() == len(entries) + 1
    assert not list(cache.root.rglob("*.parquet")) and not crashed.exists()


def _edit_in_place_keeping_size_and_mtime(path: Path) -> None:
    """Change one byte of ``path`` and restore its modification time, as some sync tools do."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    last_line = data.rindex(b"\n", 0, len(data) - 1) + 1
    data[last_line] = (
        ord("Z") if data[last_line] != ord("Z") else ord("Y")
    )  # a user id's first char
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_an_in_place_edit_with_its_mtime_restored_is_a_stale_hit_by_default(tmp_path, count_reads):
    """The documented limit: size and mtime unchanged means the memoised hash is trusted."""
    [day] = _daily_log(tmp_path / "logs", [1])
    events_and_sequences(_config(tmp_path / "logs", tmp_path / "out"))
    _edit_in_place_keeping_size_and_mtime(day)
    count_reads.clear()
    events_and_sequences(_config(tmp_path / "logs", tmp_path / "out"))
    assert count_reads == []


def test_always_hash_reads_an_in_place_edit_with_its_mtime_restored(tmp_path, count_reads):
    """With always_hash the content is hashed every run, so the edited file is read again."""
    [day] = _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out", always_hash=True)
    events, _ = events_and_sequences(config)
    _edit_in_place_keeping_size_and_mtime(day)
    count_reads.clear()
    edited, _ = events_and_sequences(config)
    assert count_reads == [day.name]
    assert edited.files[0]["sha256"] != events.files[0]["sha256"]


def test_a_damaged_fingerprint_memo_only_costs_a_rehash(tmp_path):
    """A memo that is deeply nested or of the wrong shape is ignored, not a crash."""
    _daily_log(tmp_path / "logs", [1])
    config = _config(tmp_path / "logs", tmp_path / "out")
    events_and_sequences(config)
    memo = cache_root(config) / "fingerprints.json"
    for damage in ("[" * 100_000, '{"x": 1}', "[1, 2]"):
        memo.write_text(damage)
        events, _ = events_and_sequences(config)
        assert events.counts["events_read"] > 0
