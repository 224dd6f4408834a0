"""Files that appear whole or not at all: write beside the target, then rename over it.

A reader (a downstream job, a second run, a half-killed one) sees either the
old file or the new one, never a prefix of it. The temporary name starts with
``.tmp-`` and ends with the writer's process id, the pattern
:func:`item2vec.publish.remove_stale_temporaries` uses to clear what a killed
writer left behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: Prefix of every temporary file or directory item2vec writes beside a target.
TMP_PREFIX = ".tmp-"


def temporary_beside(target: Path) -> Path:
    """The temporary name this process uses for ``target``, in the same directory."""
    return target.with_name(f"{TMP_PREFIX}{target.name}-{os.getpid()}")


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

    On any exception, the temporary file is removed and ``target`` is left as
    it was. The parent directory is created if needed.

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
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(target)
    try:
        yield temporary
        if durable:
            fsync_path(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``target`` atomically; see :func:`replacing`."""
    with replacing(target, durable=durable) as temporary:
        temporary.write_bytes(data)


def write_text(target: str | os.PathLike, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically; see :func:`replacing`."""
    write_bytes(target, text.encode("utf-8"), durable=durable)
