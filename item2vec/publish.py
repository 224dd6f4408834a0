"""Publish: versioned Parquet tables and a manifest, written atomically.

Layout::

    <output>/<model_name>/<version>/item_vectors.parquet
                                   /item_neighbors.parquet
                                   /manifest.json
    <output>/<model_name>/LATEST      (the current version's name)

A version is built in a hidden, unguessably named sibling ``.tmp-<version>-...``
(see :mod:`item2vec.atomicfile`), every file is fsynced, and the directory is
renamed into place. ``LATEST`` is replaced with ``os.replace``. The rename,
``LATEST`` and retention happen under one lock, so retention never deletes a
version that its run is about to point ``LATEST`` at. A killed run leaves at
most a ``.tmp-`` entry, which a later run removes once
:func:`item2vec.atomicfile.is_stale` says its writer is gone.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sys
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

from item2vec.atomicfile import (
    TMP_PREFIX,
    fsync_path,
    is_stale,
    make_temporary_dir,
    open_lock,
    refuse_link,
    temporary_beside,
    write_text,
)
from item2vec.errors import ConfigError, InputError
from item2vec.progress import Progress
from item2vec.vectors import ItemVectors

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
LATEST = "LATEST"
MANIFEST = "manifest.json"
VECTORS_FILE = "item_vectors.parquet"
NEIGHBORS_FILE = "item_neighbors.parquet"
RECOMMENDATIONS_FILE = "user_recommendations.parquet"
ITEMS_FILE = "items.parquet"
SEQUENCES_FILE = "sequences.parquet"


def check_name(value: str, what: str) -> str:
    """Refuse names that could escape the output directory.

    Raises
    ------
    ConfigError
        If ``value`` has characters outside ``[A-Za-z0-9._-]`` or is ``.``/``..``.
    """
    if not SAFE_NAME.match(value or "") or value in {".", ".."}:
        raise ConfigError(
            f"{what} {value!r} is not allowed; use only letters, digits, '.', '_' and '-'"
        )
    return value


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


def remove_stale_temporaries(model_dir: Path) -> list[Path]:
    """Delete ``.tmp-`` entries whose writer is gone (:func:`~item2vec.atomicfile.is_stale`).

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    if not model_dir.is_dir():
        return removed
    for entry in model_dir.iterdir():
        if not entry.name.startswith(TMP_PREFIX) or not is_stale(entry):
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


def list_version_dirs(model_dir: Path) -> list[Path]:
    """Published version directories, oldest first.

    Version ids start with their UTC second; versions made within the same
    second are ordered by when their directory was last written.
    """
    if not model_dir.is_dir():
        return []
    versions = [
        p
        for p in model_dir.iterdir()
        if p.is_dir()
        and not p.is_symlink()
        and not p.name.startswith(".")
        and SAFE_NAME.match(p.name)
    ]
    return sorted(versions, key=lambda p: (p.name.split("-", 1)[0], p.stat().st_mtime_ns, p.name))


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


def latest_manifest(output: str | Path, model_name: str) -> dict[str, Any] | None:
    """LATEST's manifest, or None when the model has no LATEST yet.

    Raises
    ------
    InputError
        If LATEST is damaged, or names a version whose manifest cannot be read.
    """
    model_dir = Path(output) / check_name(model_name, "model name")
    version = read_latest(model_dir)
    if version is None:
        return None
    try:
        return read_manifest(model_dir / version)
    except InputError as exc:
        raise InputError(
            f"LATEST names {version}, but its manifest cannot be read ({exc}); "
            "point LATEST at a whole version or remove it"
        ) from exc


#: The most bytes a LATEST file holds: a version id and a newline are ~26.
LATEST_MAX_BYTES = 256


def read_latest(model_dir: Path) -> str | None:
    """The version ``LATEST`` names, or None when there is none yet.

    The file's content is never quoted in an error: LATEST may have been
    replaced by anything.

    Raises
    ------
    UnsafePathError
        If LATEST is a symbolic link.
    InputError
        If LATEST is not a regular file, is larger than :data:`LATEST_MAX_BYTES`,
        or does not hold a version id.
    """
    path = model_dir / LATEST
    refuse_link(path, "LATEST")
    if not path.exists():
        return None
    fix = "point it at a version (item2vec versions lists them) or remove it"
    if not path.is_file():
        raise InputError(f"{path} is not a regular file; {fix}")
    with path.open("rb") as handle:
        data = handle.read(LATEST_MAX_BYTES + 1)
    if len(data) > LATEST_MAX_BYTES:
        raise InputError(f"{path} holds over {LATEST_MAX_BYTES} bytes, not a version id; {fix}")
    version = data.decode("ascii", errors="replace").strip()
    if not SAFE_NAME.match(version) or version in {".", ".."} or version.startswith(TMP_PREFIX):
        raise InputError(
            f"{path} does not hold a version id (letters, digits, '.', '_', '-'); {fix}"
        )
    return version


def read_manifest(path: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a version directory, with a clear error if it is not one.

    Raises
    ------
    InputError
        If the manifest is missing, larger than :data:`MANIFEST_MAX_BYTES`, not
        UTF-8 JSON, nested too deeply to parse, or not a JSON object.
    """
    manifest_path = path / MANIFEST
    fix = "republish the version or choose another one"
    if not manifest_path.is_file():
        raise InputError(
            f"{MANIFEST} missing from {path}; the version is incomplete or not an item2vec "
            f"version; {fix}"
        )
    try:
        if manifest_path.stat().st_size > MANIFEST_MAX_BYTES:
            raise InputError(f"{manifest_path} is over {MANIFEST_MAX_BYTES:,} bytes; {fix}")
        document = json.loads(manifest_path.read_text(encoding="utf-8"))
    except RecursionError as error:
        raise InputError(f"{manifest_path} is nested too deeply to be a manifest; {fix}") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{manifest_path} is not readable JSON ({error}); {fix}") from error
    if not isinstance(document, dict):
        raise InputError(
            f"{manifest_path} holds a JSON {type(document).__name__}, expected an object; {fix}"
        )
    return document


#: Manifests are a few kilobytes; anything this large was not written by publish.
MANIFEST_MAX_BYTES = 16 * 1024 * 1024


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
        Output root.
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
    Path
        The final version directory.
    """
    check_name(model_name, "model name")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    model_dir = Path(output) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(model_dir)
    version = new_version_id(now, json.dumps(manifest.get("input", {}), sort_keys=True))
    final = model_dir / version
    temporary = make_temporary_dir(final)
    try:
        metadata = {
            "model_name": model_name,
            "version": version,
            "dim": str(vectors.dim),
            "normalized": "false",
        }
        files = {
            VECTORS_FILE: vectors_table(vectors, metadata),
            NEIGHBORS_FILE: neighbors,
            **(extra_tables or {}),
        }
        files = {
            name: table
            if name == VECTORS_FILE
            else table.replace_schema_metadata({f"item2vec.{k}": v for k, v in metadata.items()})
            for name, table in files.items()
        }

        def write_and_seal(name: str, table: pa.Table) -> dict[str, Any]:
            path = temporary / name
            _write_parquet(table, path, ("vector", "context_vector"))
            return {"rows": table.num_rows, "sha256": _seal(path)}

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
        manifest_path = temporary / MANIFEST
        manifest_path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        if finalize is not None:
            finalize(temporary)
            # Derived files (the report) are listed too, so the manifest still
            # accounts for every file of the version.
            for extra in sorted(temporary.iterdir()):
                if extra.name != MANIFEST and extra.name not in described:
                    described[extra.name] = {
                        "bytes": extra.stat().st_size,
                        "sha256": _seal(extra),
                    }
            manifest_path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        fsync_path(manifest_path)
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
