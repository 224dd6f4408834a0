"""A cache of ingest and sequences, so an unchanged input is not read again.

Two levels, both plain Parquet files under ``<output>/.cache`` (or ``cache_dir``):

- ``partitions/<key>.parquet``: the validated rows of one input file. The key is
  the file's SHA-256 and the settings that shape how it is read (columns, time
  unit, delimiter...). A nightly run over a growing folder of daily partitions
  reads and validates only the new files.
- ``sequences/<key>.parquet``: the sequences built from a set of partitions, with
  the run's event counts in its metadata. The key is every partition key, the
  filters and the sequence settings. On a hit, nothing is read at all.

Content hashes are memoised by (size, modification time), the way ``git``'s
index does, so an unchanged 2 GB file is not hashed again either. Entries are
written to a temporary file and renamed, so a crash never leaves half an entry,
and entries unused for :data:`CACHE_DAYS` days are removed.

The cache may be in an object store (``cache_dir = "s3://bucket/cache"``, or an
output there): an entry is then one PUT, which readers see whole or not at all,
and it is removed :data:`CACHE_DAYS` days after it was written (a store keeps no
time of last use). Input objects are rehashed when their size or their time of
last write changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from item2vec.atomicfile import TMP_PREFIX, is_stale, replacing, write_bytes
from item2vec.config import IngestConfig, PipelineConfig, SequenceConfig
from item2vec.discovery import fingerprint, input_files
from item2vec.ingest import Events, Partition, combine_partitions, read_partition
from item2vec.sequences import build_sequences
from item2vec.storage import ObjectPath, as_path, read_parquet

log = logging.getLogger(__name__)

#: Bump when the cached tables change shape, so old entries are never misread.
CACHE_FORMAT = 1
#: Entries not used for this many days are removed.
CACHE_DAYS = 14
#: IngestConfig fields that change how one file is read and validated.
READ_FIELDS = ("user_col", "item_col", "time_col", "sep", "header", "columns", "time_unit")
READ_FIELDS += ("event_col", "weight_col")
#: IngestConfig fields applied to the combined events (filters and limits).
COMBINE_FIELDS = ("max_bad_fraction", "keep_events", "min_weight", "drop_duplicates")
COMBINE_FIELDS += ("min_item_count", "min_user_count")
_COUNTS_KEY = b"item2vec.events"
_EXAMPLES_KEY = b"item2vec.examples"


def cache_root(config: PipelineConfig) -> Path | ObjectPath:
    """Where the cache of ``config`` lives: ``ingest.cache_dir`` or ``<output>/.cache``."""
    if config.ingest.cache_dir:
        return as_path(config.ingest.cache_dir)
    return as_path(config.publish.output) / ".cache"


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class InputPlan:
    """The input files of a run, their fingerprints and cache keys.

    Attributes
    ----------
    paths
        Event files in read order.
    files
        Fingerprint of each file (path, bytes, sha256), as the manifest records it.
    partition_keys
        Cache key of each file's validated rows.
    sequences_key
        Cache key of the sequences built from all of them.
    """

    paths: list[Path]
    files: list[dict[str, Any]]
    partition_keys: list[str]
    sequences_key: str
    hits: dict[str, bool] = field(default_factory=dict)


class StageCache:
    """Parquet cache of partitions and sequences under ``root``.

    Parameters
    ----------
    root
        Cache directory; created on first write.
    enabled
        When False nothing is read or written, but keys are still computed (the
        manifest records the input fingerprint either way).
    """

    def __init__(
        self, root: Path | ObjectPath | str, enabled: bool = True, always_hash: bool = False
    ) -> None:
        self.root = as_path(root)
        self.enabled = enabled
        self.always_hash = always_hash

    # Fingerprints -----------------------------------------------------------

    def fingerprints(self, paths: list[Path]) -> list[dict[str, Any]]:
        """Path, size and SHA-256 of each file, rehashing only files whose size or
        modification time changed since the last run (every file with ``always_hash``).

        Size and time are not a content check: a file edited in place to the same
        size, its time restored, keeps its old hash unless ``always_hash`` is set.
        """
        memo_path = self.root / "fingerprints.json"
        memo: dict[str, Any] = {}
        if self.enabled and memo_path.is_file():
            try:
                memo = json.loads(memo_path.read_text())
            except (OSError, ValueError, RecursionError):
                memo = {}  # a damaged memo only costs a rehash
        if not isinstance(memo, dict):
            memo = {}
        entries, changed = [], False
        for path in paths:
            stat = path.stat()
            known = None if self.always_hash else memo.get(str(path.resolve()))
            if (
                isinstance(known, dict)
                and known.get("bytes") == stat.st_size
                and known.get("mtime_ns") == stat.st_mtime_ns
                and isinstance(known.get("sha256"), str)
            ):
                entries.append(
                    {"path": str(path), "bytes": stat.st_size, "sha256": known["sha256"]}
                )
                continue
            entry = fingerprint([path])[0]
            entries.append(entry)
            memo[str(path.resolve())] = {
                "bytes": entry["bytes"],
                "mtime_ns": stat.st_mtime_ns,
                "sha256": entry["sha256"],
            }
            changed = True
        if self.enabled and changed:
            if isinstance(memo_path, ObjectPath):
                memo_path.write_bytes(json.dumps(memo).encode())
            else:
                write_bytes(memo_path, json.dumps(memo).encode())
        return entries

    def plan(self, paths: list[Path], config: PipelineConfig) -> InputPlan:
        """Fingerprint ``paths`` and derive every cache key of the run."""
        files = self.fingerprints(paths)
        partition_keys = [partition_key(entry["sha256"], config.ingest) for entry in files]
        return InputPlan(
            paths=list(paths),
            files=files,
            partition_keys=partition_keys,
            sequences_key=sequences_key(partition_keys, config.ingest, config.sequences),
        )

    # Partitions -------------------------------------------------------------

    def _partition_file(self, key: str) -> Path | ObjectPath:
        return self.root / "partitions" / f"{key}.parquet"

    def load_partition(self, path: Path, key: str) -> Partition | None:
        """The cached validated rows of ``path``, or None on a miss."""
        entry = self._partition_file(key)
        if not self.enabled or not entry.is_file():
            return None
        table = _read_entry(entry)
        if table is None:
            return None
        metadata = table.schema.metadata or {}
        examples = json.loads(metadata.get(_EXAMPLES_KEY, b"[]"))
        log.info("ingest cached: %s unchanged, read from cache", path.name)
        return Partition(path=path, table=table, examples=examples)

    def store_partition(self, partition: Partition, key: str) -> None:
        """Keep ``partition`` for the next run (no-op when disabled)."""
        if not self.enabled:
            return
        metadata = dict(partition.table.schema.metadata or {})
        metadata[_EXAMPLES_KEY] = json.dumps(partition.examples).encode()
        _write_table(self._partition_file(key), partition.table.replace_schema_metadata(metadata))

    # Sequences --------------------------------------------------------------

    def _sequences_file(self, key: str) -> Path | ObjectPath:
        return self.root / "sequences" / f"{key}.parquet"

    def load_sequences(self, plan: InputPlan) -> tuple[Events, pa.Table] | None:
        """Event counts and sequences of an identical earlier run, or None on a miss."""
        entry = self._sequences_file(plan.sequences_key)
        if not self.enabled or not entry.is_file():
            return None
        table = _read_entry(entry)
        if table is None:
            return None
        metadata = dict(table.schema.metadata or {})
        counts = json.loads(metadata.pop(_COUNTS_KEY))
        log.info(
            "ingest and sequences cached: %d input file(s) unchanged since an earlier run "
            "(key %s); nothing re-read",
            len(plan.paths),
            plan.sequences_key[:12],
        )
        events = Events(None, counts=counts, files=plan.files)
        return events, table.replace_schema_metadata(metadata)

    def store_sequences(self, plan: InputPlan, events: Events, sequences: pa.Table) -> None:
        """Keep the sequences and event counts of this run (no-op when disabled)."""
        if not self.enabled:
            return
        metadata = dict(sequences.schema.metadata or {})
        metadata[_COUNTS_KEY] = json.dumps(events.counts).encode()
        _write_table(
            self._sequences_file(plan.sequences_key), sequences.replace_schema_metadata(metadata)
        )
        self.prune()

    def prune(self, max_age_days: float = CACHE_DAYS) -> int:
        """Remove entries unused for ``max_age_days`` and leftovers of crashed writes."""
        removed = 0
        cutoff = time.time() - max_age_days * 86400
        for folder in ("partitions", "sequences"):
            for entry in (self.root / folder).glob("*"):
                stale_tmp = (
                    isinstance(entry, Path)
                    and entry.name.startswith(TMP_PREFIX)
                    and is_stale(entry)
                )
                parquet = entry.name.endswith(".parquet")
                if stale_tmp or (parquet and entry.stat().st_mtime < cutoff):
                    entry.unlink(missing_ok=True)
                    removed += 1
        return removed


def partition_key(sha256: str, config: IngestConfig) -> str:
    """Cache key of one file's validated rows: its content and how it is read."""
    settings = {name: getattr(config, name) for name in READ_FIELDS}
    return _digest({"format": CACHE_FORMAT, "sha256": sha256, "read": settings})


def sequences_key(
    partition_keys: list[str], ingest: IngestConfig, sequences: SequenceConfig
) -> str:
    """Cache key of the sequences: every partition, the filters and the sequence settings."""
    filters = {name: getattr(ingest, name) for name in COMBINE_FIELDS}
    # Both ways of building the sequences give the same table: one entry serves both.
    shape = sequences.model_dump(exclude={"write_sequences", "shuffle_partitions"})
    return _digest(
        {"format": CACHE_FORMAT, "partitions": partition_keys, "filters": filters, "seq": shape}
    )


def _read_entry(entry: Path | ObjectPath) -> pa.Table | None:
    """Read a cache entry and mark it used; a damaged entry is removed and missed."""
    try:
        table = read_parquet(entry)
    except (pa.ArrowException, OSError) as exc:
        log.warning("cache entry %s is unreadable (%s); rebuilding it", entry, exc)
        entry.unlink(missing_ok=True)
        return None
    if isinstance(entry, Path):
        os.utime(entry)  # last use, for pruning
    return table


def _write_table(target: Path | ObjectPath, table: pa.Table) -> None:
    if isinstance(target, ObjectPath):
        # One upload, completed whole or not at all: no temporary name is needed.
        pq.write_table(table, target.path, filesystem=target.fs, compression="zstd")
        return
    with replacing(target) as temporary:
        pq.write_table(table, temporary, compression="zstd")


def stage_cache(config: PipelineConfig) -> StageCache:
    """The cache a run of ``config`` uses (disabled with ``ingest.cache = false``)."""
    return StageCache(
        cache_root(config), enabled=config.ingest.cache, always_hash=config.ingest.always_hash
    )


def plan_inputs(config: PipelineConfig) -> InputPlan:
    """Resolve, window and fingerprint the input files of ``config``, with their cache keys.

    Raises
    ------
    InputError
        On a missing path, or a window that selects nothing.
    """
    return stage_cache(config).plan(input_files(config.ingest), config)


def partition_events(path: Path | ObjectPath, key: str, config: PipelineConfig) -> Partition:
    """The validated rows of one input file: from the cache, or read and then cached."""
    cache = stage_cache(config)
    cached = cache.load_partition(path, key)
    if cached is not None:
        return cached
    partition = read_partition(path, config.ingest)
    cache.store_partition(partition, key)
    return partition


def cached_sequences(plan: InputPlan, config: PipelineConfig) -> tuple[Events, pa.Table] | None:
    """Events counts and sequences of an identical earlier run, or None."""
    return stage_cache(config).load_sequences(plan)


def sequences_from_partitions(
    partitions: list[Partition], plan: InputPlan, config: PipelineConfig
) -> tuple[Events, pa.Table]:
    """Combine validated partitions into events, build their sequences, and cache both."""
    events = combine_partitions(partitions, config.ingest, plan.files)
    sequences = build_sequences(events.table, config.sequences)
    stage_cache(config).store_sequences(plan, events, sequences)
    return events, sequences


def events_and_sequences(config: PipelineConfig) -> tuple[Events, pa.Table]:
    """Ingest and sequences of ``config`` in one call, through the cache (no Prefect needed).

    Returns
    -------
    events, sequences
        On a full cache hit ``events`` carries counts and fingerprints but no rows.
    """
    plan = plan_inputs(config)
    cached = cached_sequences(plan, config)
    if cached is not None:
        return cached
    partitions = [
        partition_events(path, key, config)
        for path, key in zip(plan.paths, plan.partition_keys, strict=True)
    ]
    return sequences_from_partitions(partitions, plan, config)
