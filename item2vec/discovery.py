"""Finding the event files a run reads, and fingerprinting them for the manifest.

Paths may be files, folders (read recursively, in path order, hidden files
skipped) or glob patterns, on a local disk or in an object store (``s3://``,
``gs://``, ``abfs://``: see :mod:`item2vec.storage`); a rolling window then
keeps the daily partitions to train on (:mod:`item2vec.partitions`), and blank
files are skipped with a warning.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from pathlib import Path
from typing import Any

from item2vec.config import IngestConfig
from item2vec.errors import InputError
from item2vec.partitions import select_window
from item2vec.readers import PARQUET_SUFFIXES, first_line, is_parquet
from item2vec.storage import ObjectPath, as_path, is_remote, scheme

log = logging.getLogger(__name__)


def resolve_paths(paths: list[str]) -> list[Path | ObjectPath]:
    """Expand folders and glob patterns into event files, and check that they exist.

    A folder contributes every CSV/TSV/Parquet file inside it (recursively,
    hidden files skipped), sorted by path, so daily partitions are read in order.

    Raises
    ------
    InputError
        Naming the first path that does not exist or matches nothing.
    """
    if not paths:
        raise InputError("no event files given; pass EVENTS paths or set ingest.paths")
    resolved: list[Path | ObjectPath] = []
    for raw in paths:
        if is_remote(raw):
            resolved.extend(_resolve_remote(raw))
            continue
        path = as_path(raw)  # a plain path, or a file:// URL
        if scheme(raw) == "file":
            raw = str(path)
        if any(ch in raw for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"pattern {raw} matches no file; check the path")
            resolved.extend(matches)
        elif path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and is_event_file(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise InputError(
                    f"folder {raw} holds no CSV, TSV or Parquet file; pass the files themselves"
                )
            resolved.extend(files)
        elif path.is_file():
            resolved.append(path)
        else:
            raise InputError(f"events file {raw} does not exist; check the path")
    return resolved


def _resolve_remote(raw: str) -> list[ObjectPath]:
    """An object, the event files under a prefix, or the objects a glob pattern matches."""
    path = as_path(raw)
    if any(ch in path.path for ch in "*?["):
        matches = [ObjectPath(path.fs, name, "file") for name in sorted(path.fs.glob(path.path))]
        matches = [match for match in matches if match.fs.isfile(match.path)]
        if not matches:
            raise InputError(f"pattern {raw} matches no object; check the URL")
        return matches
    if path.is_file():
        return [path]
    if path.is_dir():
        files = [
            p
            for p in path.find()
            if is_event_file(p)
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        if not files:
            raise InputError(
                f"prefix {raw} holds no CSV, TSV or Parquet object; pass the objects themselves"
            )
        return files
    raise InputError(f"events file {raw} does not exist; check the URL and the credentials")


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") for part in parts)


EVENT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz", *PARQUET_SUFFIXES)


def is_event_file(path: Path | ObjectPath) -> bool:
    """Whether a file inside an events folder is read (by its suffix)."""
    return path.name.lower().endswith(EVENT_SUFFIXES)


def input_files(config: IngestConfig, warn_skipped: bool = True) -> list[Path]:
    """The event files a run reads: paths, folders and globs resolved, windowed, blanks skipped.

    ``warn_skipped=False`` checks without logging the skipped files, for a check
    that runs before the read that reports them.

    Raises
    ------
    InputError
        On a path that matches nothing, a window that selects no partition, or
        when every file is empty.
    """
    files = select_window(resolve_paths(config.paths), config.since, config.window_days)
    return skip_blank(files, warn=warn_skipped)


def is_blank(path: Path) -> bool:
    """Whether ``path`` is a text file without a single line (0 bytes, or gzip of nothing).

    Parquet files always carry a schema, so they are never blank.
    """
    return not is_parquet(path) and not first_line(path).strip()


def skip_blank(paths: list[Path], warn: bool = True) -> list[Path]:
    """``paths`` without blank files, each skipped with a warning.

    Writers such as Spark leave an empty part file for an empty partition, so
    in a folder of parts a blank file holds no events rather than being an
    error; a header-only file is read and counts as zero events.

    Raises
    ------
    InputError
        If every file is blank.
    """
    blank = [path for path in paths if is_blank(path)]
    if paths and len(blank) == len(paths):
        names = first_few([str(path) for path in paths])
        which = f"events file {names} is" if len(paths) == 1 else f"all events files ({names}) are"
        raise InputError(f"{which} empty (not a single line); check the export that wrote them")
    for path in blank if warn else []:
        log.warning("skipped %s: the file is empty (no header, no rows)", path)
    skipped = set(blank)
    return [path for path in paths if path not in skipped]


def first_few(labels: list[str], shown: int = 3) -> str:
    """``a, b, c and 4 more``: a list of files short enough for one message."""
    rest = len(labels) - shown
    return ", ".join(labels[:shown]) + (f" and {rest} more" if rest > 0 else "")


def fingerprint(paths: list[Path | ObjectPath]) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of each input file, for the manifest."""
    entries = []
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        entries.append(
            {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
        )
    return entries
