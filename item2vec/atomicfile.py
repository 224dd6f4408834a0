"""Files that appear whole or not at all, written where a planted link cannot redirect them.

A file is written under a temporary name beside its target, then renamed over
it: a reader (a downstream job, a second run, a half-killed one) sees either
the old file or the new one, never a prefix of it.

Output folders may be shared (a team volume, a bucket mounted on several
hosts), so whoever can write there could plant symbolic links. Hence:

- a temporary name is ``.tmp-<target>-<owner>-<random>-<pid>``: 64 random bits
  make it unguessable, and it is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
  (a directory with ``mkdir``), which fails on anything already there, links
  included;
- a target that is a symbolic link is refused (:class:`UnsafePathError`), and
  so is a lock file that is one (:func:`open_lock`);
- the owner part is a digest of this machine's boot id, pid namespace and host
  name: where pids mean the same thing. :func:`is_stale` removes an entry
  early only when its owner is this very pid space and its pid is gone;
  anything else is stale only after :data:`LEASE_SECONDS` without a change, so
  a run in another container or on another host never loses a live write.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from item2vec.errors import UnsafePathError

#: Prefix of every temporary file or directory item2vec writes beside a target.
TMP_PREFIX = ".tmp-"

#: How long a temporary of another host or container (or of unknown origin) must
#: stay unchanged before it counts as left behind. Writing one version at the
#: reference size (20M events) takes minutes; a day leaves a wide margin for slow
#: shared storage, and what it keeps is hidden and only costs disk.
LEASE_SECONDS = 24 * 3600

#: Flags of a file created fresh: fails on an existing entry, links included.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@functools.cache
def owner_id() -> str:
    """12 hex digits naming the pid space of this process: boot, pid namespace, host."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def temporary_beside(target: Path) -> Path:
    """A fresh, unguessable temporary name for ``target``, in the same directory."""
    token = secrets.token_hex(8)
    return target.with_name(f"{TMP_PREFIX}{target.name}-{owner_id()}-{token}-{os.getpid()}")


def temporary_owner(name: str) -> tuple[str, int] | None:
    """The owner id and pid a temporary name carries, or None if it carries none."""
    parts = name.rsplit("-", 3)
    if len(parts) != 4 or not parts[3].isdigit() or len(parts[1]) != 12:
        return None
    return parts[1], int(parts[3])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(entry: Path, now: float | None = None) -> bool:
    """Whether a ``.tmp-`` entry was left behind by a writer that is gone.

    Parameters
    ----------
    entry
        A file or directory whose name starts with :data:`TMP_PREFIX`.
    now
        The current time (seconds since the epoch); defaults to ``time.time()``.

    Returns
    -------
    bool
        True when the entry's owner is this pid space and its process has
        exited, or when the entry has not changed for :data:`LEASE_SECONDS`.
    """
    owner = temporary_owner(entry.name)
    if owner is not None and owner[0] == owner_id() and owner[1] != os.getpid():
        return not _pid_alive(owner[1])
    try:
        changed = entry.lstat().st_mtime
    except FileNotFoundError:
        return False
    return (now if now is not None else time.time()) - changed > LEASE_SECONDS


def refuse_link(path: Path, what: str) -> None:
    """Raise :class:`UnsafePathError` if ``path`` is a symbolic link."""
    if path.is_symlink():
        raise UnsafePathError(
            f"{what} {path} is a symbolic link; item2vec does not write through links "
            "in its output; remove the link (rm) and run again"
        )


def make_temporary_dir(target: Path) -> Path:
    """Create an empty, unguessably named temporary directory for ``target``, beside it."""
    temporary = temporary_beside(target)
    try:
        temporary.mkdir()  # fails on any existing entry, a link included
    except FileExistsError as exc:
        raise _planted(temporary) from exc
    return temporary


def _planted(temporary: Path) -> UnsafePathError:
    return UnsafePathError(
        f"{temporary} already exists, though its name is fresh and random: something "
        "else writes names like item2vec's in this folder; nothing was written"
    )


def open_lock(path: Path) -> int:
    """Open (creating if needed) the lock file ``path`` without following a link.

    Raises
    ------
    UnsafePathError
        If ``path`` is a symbolic link or not a regular file.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if path.is_symlink() or not path.is_file():
            raise UnsafePathError(
                f"lock file {path} is a symbolic link or not a regular file; "
                "remove it (rm) and run again"
            ) from exc
        raise
    return fd


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file or a directory) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(target: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Write to the yielded temporary path; on success it replaces ``target``.

    The temporary file exists (empty) when the body starts, created where no
    link can redirect it. Before the rename it must still be that same file, so
    a file swapped in meanwhile is never put in place. On any exception, the
    temporary file is removed and ``target`` is left as it was. The parent
    directory is created if needed.

    Parameters
    ----------
    target
        The file to create or replace.
    durable
        fsync the file before the rename, for files whose loss after a crash
        matters (``LATEST``); caches and reports can be rebuilt and skip it.

    Yields
    ------
    pathlib.Path
        Where to write.

    Raises
    ------
    UnsafePathError
        If ``target`` is a symbolic link, or the temporary file was replaced
        while it was written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(target, "target")
    temporary = temporary_beside(target)
    # Held open until the rename, so that its inode number cannot be reused by
    # a file swapped in under the same name.
    try:
        fd = os.open(temporary, CREATE_FLAGS, 0o666)
    except FileExistsError as exc:
        raise _planted(temporary) from exc
    try:
        created = os.fstat(fd)
        yield temporary
        now = temporary.lstat()
        if (now.st_dev, now.st_ino) != (created.st_dev, created.st_ino):
            raise UnsafePathError(
                f"temporary file {temporary} was replaced while it was written; "
                f"{target} is left as it was"
            )
        if durable:
            fsync_path(temporary)
        os.replace(temporary, target)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_bytes(target: str | os.PathLike, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``target`` atomically; see :func:`replacing`."""
    with replacing(target, durable=durable) as temporary:
        fd = os.open(temporary, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def write_text(target: str | os.PathLike, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically; see :func:`replacing`."""
    write_bytes(target, text.encode("utf-8"), durable=durable)
