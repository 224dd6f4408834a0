"""Committing a version to an object store, where there is no atomic rename.

A version is built whole in a local temporary directory first (the tables, the
manifest with their SHA-256 and sizes, the report), exactly as on a local disk.
Then, with ``<model_dir>`` the model's prefix in the store:

1. every file but the manifest is uploaded under a hidden temporary prefix,
   ``<model_dir>/.tmp-<version>-<owner>-<random>-<pid>/``, named like the local
   temporaries of :mod:`item2vec.atomicfile`;
2. each is copied (server side) to ``<model_dir>/<version>/``, then read back
   there and checked against the manifest's SHA-256 and size;
3. the manifest is written last, create-only (S3 ``If-None-Match: *``);
4. the temporary prefix is deleted;
5. under the model's lock (:func:`model_lock`), ``LATEST`` is written with a
   conditional write (S3 ``If-Match`` on the ETag read under the lock), and
   retention deletes old versions, each manifest first.

So a version directory without a manifest is never trusted: readers
(:mod:`item2vec.reader`) refuse it, and check every file against the manifest
before using it. A killed run leaves a temporary prefix, and at most a
manifest-less version prefix, which the next run removes once its writer is
gone (:func:`remove_stale_temporaries`); LATEST is untouched.

Which stores give which guarantee is in docs/object-stores.md.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from item2vec.atomicfile import (
    LEASE_SECONDS,
    TMP_PREFIX,
    _pid_alive,
    owner_id,
    temporary_beside,
    temporary_owner,
)
from item2vec.errors import ConfigError, InputError, PublishConflictError
from item2vec.layout import (
    LATEST,
    MANIFEST,
    check_name,
    list_version_dirs,
    read_latest,
)
from item2vec.storage import ObjectPath, modified_time

log = logging.getLogger(__name__)

#: Stores whose create-only write is atomic on the server: S3 (``If-None-Match``),
#: GCS (``ifGenerationMatch=0``, experimental in gcsfs), Azure (``overwrite=False``).
ATOMIC_CREATE = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
#: Stores where LATEST is also replaced only if unchanged since read (S3 ``If-Match``).
COMPARE_AND_SWAP = frozenset({"s3", "s3a"})
_AZURE = frozenset({"abfs", "abfss", "az"})

#: The lock object of a model prefix.
LOCK = ".lock"
#: A lock older than this is taken over: it is held only while LATEST is written and
#: retention runs, seconds at most, so ten minutes means its holder is gone.
LOCK_LEASE_SECONDS = 600
#: How long a run waits for the lock before giving up.
LOCK_WAIT_SECONDS = 900


def create_only(target: ObjectPath, data: bytes) -> None:
    """Write ``target`` only if no object has its name.

    Raises
    ------
    FileExistsError
        If the object exists. Atomic where the store offers a conditional write
        (:data:`ATOMIC_CREATE`); elsewhere fsspec checks, then writes.
    """
    if target.protocol in _AZURE:
        try:
            target.fs.pipe_file(target.path, data, overwrite=False)
        except Exception as exc:
            if type(exc).__name__ == "ResourceExistsError":
                raise FileExistsError(target.url) from exc
            raise
        return
    target.fs.pipe_file(target.path, data, mode="create")


def _is_precondition_failure(exc: BaseException) -> bool:
    # s3fs raises FileExistsError for If-None-Match and EINVAL for If-Match.
    return isinstance(exc, FileExistsError) or (
        isinstance(exc, OSError) and exc.errno == errno.EINVAL and "condition" in str(exc)
    )


def replace_if_unchanged(target: ObjectPath, data: bytes, etag: str | None) -> None:
    """Write ``target`` only if it still has ``etag`` (None: only if it still does not exist).

    Where the store offers no compare-and-swap (:data:`COMPARE_AND_SWAP`), an
    existing object is overwritten, and the caller's lock is the only guard.

    Raises
    ------
    PublishConflictError
        If the object changed since ``etag`` was read.
    """
    try:
        if etag is None:
            create_only(target, data)
        elif target.protocol in COMPARE_AND_SWAP:
            target.fs.pipe_file(target.path, data, IfMatch=etag)
        else:
            target.write_bytes(data)
    except OSError as exc:
        if not _is_precondition_failure(exc):
            raise
        raise PublishConflictError(
            f"{target} was changed by another run since this one read it; it is left as "
            "that run wrote it"
        ) from exc


def etag(target: ObjectPath) -> str | None:
    """The object's ETag (its version in the store), or None when it does not exist."""
    try:
        info = target.fs.info(target.path)
    except FileNotFoundError:
        return None
    return info.get("ETag") or info.get("etag") or info.get("generation") or ""


def upload_all(staged: Path, temporary: ObjectPath, names: list[str]) -> None:
    """Upload the staged files under the temporary prefix (in parallel where the store can)."""
    temporary.fs.put(
        [str(staged / name) for name in names], [(temporary / name).path for name in names]
    )


def copy_all(temporary: ObjectPath, final: ObjectPath, names: list[str]) -> None:
    """Copy the uploaded files to the version's own prefix, on the server side."""
    temporary.fs.copy(
        [(temporary / name).path for name in names], [(final / name).path for name in names]
    )


def object_sha256(target: ObjectPath) -> str:
    """Hex SHA-256 of an object, streamed from the store."""
    digest = hashlib.sha256()
    with target.open("rb", block_size=8 << 20) as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_all(final: ObjectPath, files: dict[str, dict[str, Any]]) -> None:
    """Read every file of the version back from the store and check it against the manifest.

    Raises
    ------
    InputError
        Naming the first file that is missing or differs.
    """
    for name, described in sorted(files.items()):
        target = final / name
        try:
            size = target.stat().st_size
        except FileNotFoundError:
            size = None
        if size is None or (described.get("bytes") is not None and size != described["bytes"]):
            raise InputError(f"{target} is missing or cut short after its upload; nothing moved")
        if object_sha256(target) != described["sha256"]:
            raise InputError(f"{target} differs from the file uploaded; nothing moved")


def commit_version(
    staged: Path, model_dir: ObjectPath, version: str, move_latest: bool, keep: int | None
) -> ObjectPath:
    """Commit the version built in ``staged`` to ``model_dir/version`` (see the module doc).

    Returns
    -------
    ObjectPath
        The version's prefix in the store.

    Raises
    ------
    PublishConflictError
        If LATEST changed behind the lock (the version is whole; LATEST is not moved).
    """
    check_name(version, "version")
    manifest = (staged / MANIFEST).read_bytes()
    files = json.loads(manifest)["files"]
    names = sorted(files)
    final = model_dir / version
    temporary = model_dir / temporary_beside(Path(version)).name
    if final.exists():
        raise InputError(f"{final} exists already, though version ids are fresh; nothing written")
    if model_dir.protocol not in ATOMIC_CREATE:
        log.warning(
            "%s:// has no conditional write: two runs publishing %s at the same time "
            "may both believe they moved LATEST; run them one at a time",
            model_dir.protocol,
            model_dir,
        )
    try:
        upload_all(staged, temporary, names)
        copy_all(temporary, final, names)
        verify_all(final, files)
        create_only(final / MANIFEST, manifest)  # last: from now on the version is whole
    except BaseException:
        with contextlib.suppress(Exception):
            if not (final / MANIFEST).exists():
                final.remove_tree()
            temporary.remove_tree()
        raise
    temporary.remove_tree()
    log.info("published %s", final)
    if move_latest or keep is not None:
        with model_lock(model_dir):
            if move_latest:
                write_latest(model_dir, version)
                log.info("LATEST -> %s", version)
            if keep is not None:
                apply_retention(model_dir, keep)
    return final


def write_latest(model_dir: ObjectPath, version: str) -> None:
    """Point LATEST at ``version``, only if nobody changed it since it was read here.

    Called under :func:`model_lock`; the conditional write also catches a run
    whose lock was taken over while it stalled.
    """
    check_name(version, "version")
    target = model_dir / LATEST
    replace_if_unchanged(target, (version + "\n").encode(), etag(target))


def apply_retention(model_dir: ObjectPath, keep: int) -> list[ObjectPath]:
    """Delete all but the newest ``keep`` whole versions, never the one LATEST names.

    Each version's manifest goes first, so that a reader never trusts a version
    that is being deleted.
    """
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, got {keep}")
    latest = read_latest(model_dir)
    versions = [v for v in list_version_dirs(model_dir) if (v / MANIFEST).is_file()]
    doomed = [p for p in versions[: max(len(versions) - keep, 0)] if p.name != latest]
    for path in doomed:
        (path / MANIFEST).unlink(missing_ok=True)
        path.remove_tree()
        log.info("retention: removed version %s", path.name)
    return doomed


def _stale(owner: tuple[str, int] | None, written: float, lease: float) -> bool:
    """Whether a writer is gone: a dead pid of this pid space, or nothing new for ``lease``."""
    if owner is not None and owner[0] == owner_id() and owner[1] != os.getpid():
        return not _pid_alive(owner[1])
    return time.time() - written > lease


def remove_stale_temporaries(model_dir: ObjectPath) -> list[ObjectPath]:
    """Delete temporary prefixes whose writer is gone, with the manifest-less version beside.

    A writer counts as gone as for local temporaries
    (:func:`item2vec.atomicfile.is_stale`): its pid has exited, when it ran in
    this pid space, or nothing under its prefix was written for
    :data:`~item2vec.atomicfile.LEASE_SECONDS`.
    """
    removed: list[ObjectPath] = []
    if not model_dir.is_dir():
        return removed
    for entry in model_dir.iterdir():
        if not entry.name.startswith(TMP_PREFIX) or not entry.is_dir():
            continue
        objects = entry.find()
        written = max((modified_time(o.fs, o.path) for o in objects), default=0.0)
        if not _stale(temporary_owner(entry.name), written, LEASE_SECONDS):
            continue
        version = entry.name[len(TMP_PREFIX) :].rsplit("-", 3)[0]
        half = model_dir / version
        if version and not (half / MANIFEST).exists():
            half.remove_tree()  # copied in part when its writer died; never trusted
        entry.remove_tree()
        removed.append(entry)
        log.info("removed stale temporary directory %s", entry)
    return removed


@contextmanager
def model_lock(model_dir: ObjectPath, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Exclusive lock on a model prefix: the object ``.lock``, created only if absent.

    A lock whose holder is gone (a dead pid of this pid space, or older than
    :data:`LOCK_LEASE_SECONDS`) is taken over, by a conditional overwrite where
    the store has one. Released by deleting it, if it is still this run's.

    Raises
    ------
    PublishConflictError
        If the lock stays held by a live run for ``wait`` seconds.
    """
    lock = model_dir / LOCK
    token = secrets.token_hex(8)
    body = json.dumps(
        {"owner": owner_id(), "pid": os.getpid(), "host": socket.gethostname(), "token": token}
    ).encode()
    deadline = time.monotonic() + wait
    delay = 0.05
    while not _try_lock(lock, body):
        if time.monotonic() > deadline:
            raise PublishConflictError(
                f"{lock} has been held by another run for over {wait:.0f} s; if no run is "
                "publishing this model, delete it and run again"
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if json.loads(lock.read_bytes()).get("token") == token:
                lock.unlink(missing_ok=True)


def _try_lock(lock: ObjectPath, body: bytes) -> bool:
    try:
        create_only(lock, body)
        return True
    except FileExistsError:
        pass
    try:
        info = lock.fs.info(lock.path)
        held = json.loads(lock.read_bytes())
    except FileNotFoundError:
        return False  # released meanwhile: try again at once
    except ValueError:
        held = {}  # not JSON: judged by its age alone
    owner = (held.get("owner"), held.get("pid")) if isinstance(held.get("pid"), int) else None
    if not _stale(owner, modified_time(lock.fs, lock.path, info), LOCK_LEASE_SECONDS):
        return False
    tag = info.get("ETag") or info.get("etag")
    try:
        if lock.protocol in COMPARE_AND_SWAP and tag:
            lock.fs.pipe_file(lock.path, body, IfMatch=tag)
        else:
            lock.unlink(missing_ok=True)
            create_only(lock, body)
    except OSError as exc:
        if _is_precondition_failure(exc):
            return False  # another run took it over first
        raise
    log.info("took over the lock %s of a run that is gone", lock)
    return True
