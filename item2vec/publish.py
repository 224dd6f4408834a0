"""Publish: versioned Parquet tables and a manifest, written atomically.

The layout is :mod:`item2vec.layout`'s. On a local disk a version is built in a
hidden, unguessably named sibling ``.tmp-<version>-...`` (see
:mod:`item2vec.atomicfile`), every file is fsynced, and the directory is renamed
into place. ``LATEST`` is replaced with ``os.replace``. The rename, ``LATEST``
and retention happen under one lock, so retention never deletes a version that
its run is about to point ``LATEST`` at. A killed run leaves at most a ``.tmp-``
entry, which a later run removes once :func:`item2vec.atomicfile.is_stale` says
its writer is gone.

An output in an object store (``s3://...``) has no atomic rename: the version is
built the same way in a local temporary directory, then committed by
:func:`item2vec.objectstore.commit_version` (temporary prefix, manifest last,
``LATEST`` under a lock with a conditional write).

Every table gets a ``version`` column holding its version id
(:data:`item2vec.schemas.VERSION_COLUMN`), so that rows of two versions read
together can be told apart.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from item2vec import objectstore
from item2vec.atomicfile import (
    TMP_PREFIX,
    fsync_path,
    is_stale,
    make_temporary_dir,
    open_lock,
    temporary_beside,
    write_text,
)
from item2vec.errors import ConfigError
from item2vec.layout import (
    ITEMS_FILE,
    LATEST,
    MANIFEST,
    MANIFEST_MAX_BYTES,
    NEIGHBORS_FILE,
    RECOMMENDATIONS_FILE,
    SAFE_NAME,
    SEQUENCES_FILE,
    VECTORS_FILE,
    check_name,
    latest_manifest,
    list_version_dirs,
    read_latest,
    read_manifest,
)
from item2vec.progress import Progress
from item2vec.schemas import VERSION_COLUMN
from item2vec.storage import as_path, is_remote
from item2vec.vectors import ItemVectors

#: Names that moved to :mod:`item2vec.layout` and are still imported from here.
__all__ = [
    "ITEMS_FILE",
    "LATEST",
    "MANIFEST",
    "MANIFEST_MAX_BYTES",
    "NEIGHBORS_FILE",
    "RECOMMENDATIONS_FILE",
    "SAFE_NAME",
    "SEQUENCES_FILE",
    "TMP_PREFIX",
    "VECTORS_FILE",
    "apply_retention",
    "check_name",
    "latest_manifest",
    "list_version_dirs",
    "publish_version",
    "read_latest",
    "read_manifest",
    "remove_stale_temporaries",
    "sha256_file",
    "write_latest",
]

log = logging.getLogger(__name__)


def new_version_id(now: datetime, salt: str) -> str:
    """Version id: UTC time plus a short hash, e.g. ``20261124T101500Z-3f2a9c1``.

    The hash mixes in random bytes, so two runs in the same second never collide.
    """
    digest = hashlib.sha256(f"{now.isoformat()}|{salt}|{uuid.uuid4()}".encode()).hexdigest()
    return f"{now:%Y%m%dT%H%M%S}Z-{digest[:7]}"


#: Tables written at once. Two 1M-item tables (vectors at dim 64, ten neighbours
#: each) took 1.1-1.5 s side by side against 1.8-2.4 s one after the other, on
#: two cores.
WRITERS = 2

#: Name of the local staging folders of a publish to an object store
#: (``.tmp-item2vec-publish-...`` in the temporary folder).
STAGING = "item2vec-publish"


def vectors_table(vectors: ItemVectors, metadata: dict[str, str]) -> pa.Table:
    """``item_vectors`` table: item_id, vector fixed_size_list<float32>, count[, context_vector]
    [, source]."""
    dim = vectors.dim
    columns = {
        "item_id": pa.array(vectors.item_ids.astype(object), type=pa.string()),
        "vector": _fixed_size(vectors.vectors, dim),
        "count": pa.array(vectors.counts, type=pa.int64()),
    }
    if vectors.context_vectors is not None:
        columns["context_vector"] = _fixed_size(vectors.context_vectors, dim)
    if vectors.source is not None:  # trained or cold_start (item2vec.cold_start)
        columns["source"] = pa.array(vectors.source.astype(object), type=pa.string())
    table = pa.table(columns)
    return table.replace_schema_metadata({f"item2vec.{k}": v for k, v in metadata.items()})


def _fixed_size(matrix: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel(), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, dim)


def _write_parquet(table: pa.Table, path: Path, vector_columns: tuple[str, ...] = ()) -> None:
    present = [c for c in vector_columns if c in table.column_names]
    pq.write_table(
        table,
        path,
        compression="zstd",
        # Byte-stream split makes float vectors ~9% smaller under zstd.
        use_byte_stream_split=[f"{c}.list.element" for c in present] or False,
    )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _seal(path: Path) -> str:
    """fsync a finished file and return its SHA-256."""
    fsync_path(path)
    return sha256_file(path)


def library_versions() -> dict[str, str]:
    """Versions of item2vec and the libraries that shape its output."""
    versions = {"python": sys.version.split()[0]}
    for name in ("item2vec", "gensim", "numpy", "pandas", "pyarrow", "scikit-learn", "prefect"):
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def remove_stale_temporaries(folder: Path, name: str = "") -> list[Path]:
    """Delete ``.tmp-`` entries whose writer is gone (:func:`~item2vec.atomicfile.is_stale`).

    Parameters
    ----------
    folder
        The folder to sweep: a model directory, or the temporary folder.
    name
        Only temporaries made for this name (``.tmp-<name>-...``): in a folder
        shared with other programs, such as the temporary folder.

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    if not folder.is_dir():
        return removed
    prefix = f"{TMP_PREFIX}{name}-" if name else TMP_PREFIX
    for entry in folder.iterdir():
        if not entry.name.startswith(prefix) or not is_stale(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:  # a LATEST replacement that a killed run never renamed
            entry.unlink(missing_ok=True)
        removed.append(entry)
        log.info("removed stale temporary directory %s", entry)
    return removed


def write_latest(model_dir: Path, version: str) -> None:
    """Point ``LATEST`` at ``version`` atomically (temp file, fsync, ``os.replace``)."""
    check_name(version, "version")
    write_text(model_dir / LATEST, version + "\n", durable=True)
    fsync_path(model_dir)


@contextmanager
def model_lock(model_dir: Path) -> Iterator[None]:
    """Exclusive lock serialising renames into place, LATEST updates and retention.

    Raises
    ------
    UnsafePathError
        If ``.lock`` is a symbolic link or not a regular file.
    """
    fd = open_lock(model_dir / ".lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def apply_retention(model_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` versions, never the one LATEST names.

    Returns
    -------
    list of Path
        The deleted version directories.
    """
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, got {keep}")
    latest = read_latest(model_dir)
    versions = list_version_dirs(model_dir)
    doomed = [p for p in versions[: max(len(versions) - keep, 0)] if p.name != latest]
    for path in doomed:
        # Rename first so a reader never sees a half-deleted version under its name.
        trash = temporary_beside(model_dir / f"deleting-{path.name}")
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        log.info("retention: removed version %s", path.name)
    return doomed


def publish_version(
    output: str | Path,
    model_name: str,
    vectors: ItemVectors,
    neighbors: pa.Table,
    manifest: dict[str, Any],
    move_latest: bool,
    now: datetime | None = None,
    extra_tables: dict[str, pa.Table] | None = None,
    keep: int | None = None,
    finalize: Callable[[Path], Any] | None = None,
) -> Path:
    """Write one version atomically and, if ``move_latest``, point LATEST at it.

    Parameters
    ----------
    output
        Output root: a local folder, a ``file://`` URL, or an object store URL
        such as ``s3://bucket/prefix`` (see :mod:`item2vec.objectstore`).
    model_name
        Model family name (safe characters only).
    vectors, neighbors
        Tables to write.
    manifest
        Everything the manifest holds except ``model_name``, ``version``,
        ``created_at``, ``versions`` and ``files``, which are added here.
    move_latest
        Whether the quality gate passed.
    now
        Creation time (UTC); defaults to the current time.
    extra_tables
        Further tables by file name, e.g. ``user_recommendations.parquet``.
    keep
        Keep only the newest ``keep`` versions (LATEST is never deleted).
    finalize
        Called with the still-hidden version directory once tables and manifest
        are written, to add derived files (the report) before the rename.

    Returns
    -------
    Path or ObjectPath
        The final version directory (an :class:`~item2vec.storage.ObjectPath`
        in an object store).
    """
    check_name(model_name, "model name")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    salt = json.dumps(manifest.get("input", {}), sort_keys=True)
    tables = {VECTORS_FILE: vectors, NEIGHBORS_FILE: neighbors, **(extra_tables or {})}
    if is_remote(output):
        model_dir = as_path(output) / model_name
        objectstore.remove_stale_temporaries(model_dir)
        version = new_version_id(now, salt)
        # Staged in the local temporary folder, named as temporaries are, so that
        # what a killed publisher left there is swept like a stale temporary.
        staging_root = Path(tempfile.gettempdir())
        remove_stale_temporaries(staging_root, STAGING)
        staging = make_temporary_dir(staging_root / STAGING)
        try:
            staged = staging / version
            staged.mkdir()
            _build_version(staged, model_name, version, tables, manifest, now, finalize)
            return objectstore.commit_version(staged, model_dir, version, move_latest, keep)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    model_dir = as_path(output) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(model_dir)
    version = new_version_id(now, salt)
    final = model_dir / version
    temporary = make_temporary_dir(final)
    try:
        _build_version(temporary, model_name, version, tables, manifest, now, finalize)
        fsync_path(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    with model_lock(model_dir):
        # The rename and retention under one lock: a concurrent run's retention
        # cannot delete this version between its rename and its LATEST.
        try:
            os.rename(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        fsync_path(model_dir)
        log.info("published %s", final)
        if move_latest:
            write_latest(model_dir, version)
            log.info("LATEST -> %s", version)
        if keep is not None:
            apply_retention(model_dir, keep)
    return final


def version_column(version: str, rows: int) -> pa.DictionaryArray:
    """The ``version`` column: one dictionary entry, so it costs ~4 bytes a row in memory
    and next to nothing in Parquet, which stores it run-length encoded."""
    indices = pa.array(np.zeros(rows, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([version], type=pa.string()))


def stamp(table: pa.Table, metadata: dict[str, str]) -> pa.Table:
    """``table`` with the ``version`` column (last) and the version in its file metadata."""
    if VERSION_COLUMN in table.column_names:
        table = table.drop_columns([VERSION_COLUMN])
    table = table.append_column(VERSION_COLUMN, version_column(metadata["version"], table.num_rows))
    return table.replace_schema_metadata({f"item2vec.{k}": v for k, v in metadata.items()})


def _build_version(
    directory: Path,
    model_name: str,
    version: str,
    tables: dict[str, Any],
    manifest: dict[str, Any],
    now: datetime,
    finalize: Callable[[Path], Any] | None,
) -> None:
    """Write every table, the manifest and the derived files of one version into ``directory``."""
    vectors = tables[VECTORS_FILE]
    metadata = {
        "model_name": model_name,
        "version": version,
        "dim": str(vectors.dim),
        "normalized": "false",
    }
    files = {
        name: stamp(vectors_table(table, metadata) if name == VECTORS_FILE else table, metadata)
        for name, table in tables.items()
    }

    def write_and_seal(name: str, table: pa.Table) -> dict[str, Any]:
        path = directory / name
        _write_parquet(table, path, ("vector", "context_vector"))
        digest = _seal(path)
        return {"rows": table.num_rows, "bytes": path.stat().st_size, "sha256": digest}

    # Tables are written WRITERS at a time, each then fsynced and hashed by
    # the same worker: pyarrow encodes one Parquet file on one core, and the
    # writing, fsync and hashing all release the GIL.
    with (
        ThreadPoolExecutor(max_workers=WRITERS) as writers,
        Progress("publish", total=len(files), unit="tables") as progress,
    ):
        pending = {name: writers.submit(write_and_seal, name, t) for name, t in files.items()}
        described = {}
        for name, written in pending.items():
            described[name] = written.result()
            progress.advance(table=name)
    # The identifying keys come last so that nothing in ``manifest`` can override them.
    document = {
        **manifest,
        "model_name": model_name,
        "version": version,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": library_versions(),
        "files": described,
    }
    manifest_path = directory / MANIFEST
    manifest_path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    if finalize is not None:
        finalize(directory)
        # Derived files (the report) are listed too, so the manifest still
        # accounts for every file of the version.
        for extra in sorted(directory.iterdir()):
            if extra.name != MANIFEST and extra.name not in described:
                described[extra.name] = {"bytes": extra.stat().st_size, "sha256": _seal(extra)}
        manifest_path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    fsync_path(manifest_path)
