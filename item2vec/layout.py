"""The published layout, read: names, ``LATEST``, manifests and version directories.

::

    <output>/<model_name>/<version>/item_vectors.parquet
                                   /item_neighbors.parquet
                                   /manifest.json
    <output>/<model_name>/LATEST      (the current version's name)

The same on a local disk and in an object store: every function here takes a
:class:`pathlib.Path` or an :class:`item2vec.storage.ObjectPath` and only reads.
Writing is :mod:`item2vec.publish` (local disks) and :mod:`item2vec.objectstore`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from item2vec.atomicfile import TMP_PREFIX, refuse_link
from item2vec.errors import ConfigError, InputError
from item2vec.storage import ObjectPath, as_path

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


def list_version_dirs(model_dir: Path | ObjectPath) -> list[Path]:
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


def latest_manifest(output: str | Path, model_name: str) -> dict[str, Any] | None:
    """LATEST's manifest, or None when the model has no LATEST yet.

    Raises
    ------
    InputError
        If LATEST is damaged, or names a version whose manifest cannot be read.
    """
    model_dir = as_path(output) / check_name(model_name, "model name")
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


def read_latest(model_dir: Path | ObjectPath) -> str | None:
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


def read_manifest(path: Path | ObjectPath) -> dict[str, Any]:
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
