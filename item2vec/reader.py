"""Read published versions back: vectors, neighbours, manifest, and similarity queries.

The reader only opens what :mod:`item2vec.publish` writes as open formats
(Parquet and JSON), so it works on any copy of the output tree, including
one written by another machine or another version of item2vec, and on an
output in an object store (``s3://bucket/out``, through fsspec). There, where
a version is not renamed into place whole, a version is trusted only if its
manifest exists and every file matches it: :func:`load` checks each file's
SHA-256 before using it, :func:`list_versions` that each file is there at its
size.

Examples
--------
>>> from item2vec.reader import load, list_versions
>>> model = load("output", "movielens")                     # doctest: +SKIP
>>> model.most_similar("1", topn=5)                         # doctest: +SKIP
[('3114', 0.83...), ...]
>>> list_versions("output", "movielens")                    # doctest: +SKIP
[{'version': '20261124T101500Z-3f2a9c1', 'is_latest': True, ...}]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from item2vec.atomicfile import TMP_PREFIX
from item2vec.chunks import single_array
from item2vec.errors import InputError
from item2vec.layout import (
    LATEST,
    NEIGHBORS_FILE,
    VECTORS_FILE,
    check_name,
    list_version_dirs,
    read_latest,
    read_manifest,
)
from item2vec.queries import ItemQueries
from item2vec.schemas import NEIGHBOR_SCHEMA
from item2vec.storage import ObjectPath, as_path, is_remote, read_parquet_schema

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: The ``version`` argument that means "whatever LATEST names".
LATEST_ALIAS = "latest"


@dataclass(eq=False, repr=False)
class PublishedModel(ItemQueries):
    """One published version, loaded into memory.

    Attributes
    ----------
    model_name, version
        Which model family and which version this is.
    path
        The version directory (an :class:`~item2vec.storage.ObjectPath` in an
        object store).
    manifest
        The parsed ``manifest.json``.
    item_ids
        Item ids (object array of ``str``), in table order.
    vectors
        Input vectors, float32, shape ``(len(item_ids), dim)``, as trained (not
        normalised). Read-only: it shares memory with the Arrow table it came from.
    context_vectors
        gensim's output vectors in the same layout, or None when the version has none.
    counts
        Training occurrences of each item (int64).
    neighbor_table
        The published neighbour table (Arrow): ``item_id``, ``rank``, ``neighbor_id``,
        ``score``; :attr:`neighbors` is the same as a pandas DataFrame.
    """

    model_name: str
    version: str
    path: Path | ObjectPath
    manifest: dict[str, Any]
    item_ids: np.ndarray
    vectors: np.ndarray
    context_vectors: np.ndarray | None
    counts: np.ndarray
    neighbor_table: pa.Table
    # Built on first use: a 1M-item dict or a normalised copy of the vectors is
    # not free, and many callers only want the tables.
    _index: dict[str, int] | None = field(default=None, init=False)
    _unit: np.ndarray | None = field(default=None, init=False)
    _neighbors: pd.DataFrame | None = field(default=None, init=False)

    def __repr__(self) -> str:
        return (
            f"PublishedModel(model_name={self.model_name!r}, version={self.version!r}, "
            f"items={len(self)}, dim={self.dim}, path={str(self.path)!r})"
        )

    @property
    def neighbors(self) -> pd.DataFrame:
        """The published neighbour table as a pandas DataFrame, converted on first use.

        pandas is imported here, not with the module: loading a version and
        querying its vectors then starts without it.
        """
        if self._neighbors is None:
            self._neighbors = self.neighbor_table.to_pandas()
        return self._neighbors

    def label(self) -> str:
        """``model_name/version``, for messages."""
        return f"{self.model_name}/{self.version}"

    def table_scoring(self) -> str:
        """The scoring the version's neighbour table was built with, from its manifest.

        Versions whose manifest does not say were published before the choice
        existed, when the table was always ``in-in``.
        """
        publish = (self.manifest.get("config") or {}).get("publish") or {}
        return publish.get("neighbors_scoring") or "in-in"


def load(output: str | Path, model: str, version: str = LATEST_ALIAS) -> PublishedModel:
    """Load one published version of a model.

    Parameters
    ----------
    output
        Output root, the ``--output`` of the run (``output`` by default): a
        folder, or an object store URL such as ``s3://bucket/out``.
    model
        Model family name, the ``--model-name`` of the run.
    version
        A version id such as ``20261124T101500Z-3f2a9c1``, or ``"latest"`` for the
        version ``LATEST`` names (the newest one that passed the quality gate).

    Returns
    -------
    PublishedModel

    Raises
    ------
    ConfigError
        If ``model`` or ``version`` has characters outside ``[A-Za-z0-9._-]``
        (this refuses paths such as ``../x``).
    InputError
        If the model, LATEST, the version or one of its files is missing or unreadable.
    """
    check_name(model, "model name")
    check_name(version, "version")
    model_dir = _model_dir(output, model)
    if version == LATEST_ALIAS:
        resolved = read_latest(model_dir)
        if resolved is None:
            raise InputError(
                f"no {LATEST} in {model_dir}; run `item2vec run` first (LATEST moves only "
                "when the quality gate passes), or pass version=... "
                f"(versions there: {_listing(model_dir, dirs=True)})"
            )
        version = resolved
    if version.startswith(TMP_PREFIX):
        raise InputError(
            f"version {version!r} is the temporary directory of an unfinished publish, "
            f"not a version; choose one of: {_listing(model_dir, dirs=True)}"
        )
    path = model_dir / version
    if not path.is_dir():
        raise InputError(
            f"version {version!r} not found in {model_dir}; "
            f"versions there: {_listing(model_dir, dirs=True)}; use list_versions() to see them"
        )
    manifest = read_manifest(path)
    vectors = _read_table(path / VECTORS_FILE, model, version, manifest)
    neighbors = _read_table(path / NEIGHBORS_FILE, model, version, manifest)
    require_schema(path / NEIGHBORS_FILE, NEIGHBOR_SCHEMA, "neighbour", neighbors.schema)
    for name in ("item_id", "vector", "count"):
        if name not in vectors.column_names:
            raise InputError(
                f"{path / VECTORS_FILE} has no column {name!r} (columns: "
                f"{', '.join(vectors.column_names)}); it was not written by item2vec publish; "
                "republish the version"
            )
    n = vectors.num_rows
    context = (
        vector_matrix(vectors.column("context_vector"), n, path / VECTORS_FILE, "context_vector")
        if "context_vector" in vectors.column_names
        else None
    )
    return PublishedModel(
        model_name=model,
        version=version,
        path=path,
        manifest=manifest,
        item_ids=vectors.column("item_id").to_numpy(zero_copy_only=False).astype(object),
        vectors=vector_matrix(vectors.column("vector"), n, path / VECTORS_FILE, "vector"),
        context_vectors=context,
        counts=vectors.column("count").to_numpy().astype(np.int64, copy=False),
        neighbor_table=neighbors,
    )


def list_versions(output: str | Path, model: str) -> list[dict[str, Any]]:
    """Summarise every published version of a model, oldest first.

    Parameters
    ----------
    output
        Output root.
    model
        Model family name.

    Returns
    -------
    list of dict
        One dict per version directory, oldest first (version ids start with
        their UTC second; same-second versions follow their write time), with
        keys ``version``, ``created_at``, ``gate_passed``, ``gate_reason``,
        ``metric`` (the gate's primary metric), ``metric_value``
        (the model's figure on it), ``is_latest`` and ``error``. ``error`` is None
        unless the manifest could not be read, in which case it says why and the
        manifest fields are None. Unfinished ``.tmp-`` directories are skipped.
        ``pandas.DataFrame(list_versions(...))`` gives a table.

    Raises
    ------
    ConfigError
        If ``model`` has characters outside ``[A-Za-z0-9._-]``.
    InputError
        If the model directory does not exist.
    """
    check_name(model, "model name")
    model_dir = _model_dir(output, model)
    try:
        latest = read_latest(model_dir)
    except (InputError, OSError) as error:
        # A damaged LATEST should not hide the versions; say so and carry on.
        log.warning("ignoring unreadable %s: %s", model_dir / LATEST, error)
        latest = None
    entries = []
    # publish's own notion of a version directory and of its age (hidden .tmp-
    # work directories and the lock file excluded), so this list is in the order
    # retention deletes in.
    for path in list_version_dirs(model_dir):
        entry: dict[str, Any] = {
            "version": path.name,
            "created_at": None,
            "gate_passed": None,
            "gate_reason": None,
            "metric": None,
            "metric_value": None,
            "is_latest": path.name == latest,
            "error": None,
        }
        try:
            manifest = read_manifest(path)
            if is_remote(path):
                check_listed_files(path, manifest)
        except InputError as error:
            entry["error"] = str(error)
            entries.append(entry)
            continue
        gate = _as_dict(manifest.get("gate"))
        metric = gate.get("metric")
        model_metrics = _as_dict(_as_dict(manifest.get("metrics")).get("model"))
        entry.update(
            created_at=manifest.get("created_at"),
            gate_passed=gate.get("passed"),
            gate_reason=gate.get("reason"),
            metric=metric,
            metric_value=model_metrics.get(metric) if isinstance(metric, str) else None,
        )
        entries.append(entry)
    return entries


def _as_dict(value: Any) -> dict:
    # Manifests are hand-editable JSON; a wrong shape should blank a field, not crash.
    return value if isinstance(value, dict) else {}


def _model_dir(output: str | Path, model: str) -> Path:
    """The model's directory, or a clear error naming the models that do exist."""
    model_dir = as_path(output) / model
    if not model_dir.is_dir():
        raise InputError(
            f"no model {model!r} in {output}: {model_dir} does not exist "
            f"(models there: {_listing(as_path(output), dirs=True)}); run `item2vec run` "
            "first, or check output and model_name (--output, --model-name)"
        )
    return model_dir


def _listing(directory: Path | ObjectPath, dirs: bool) -> str:
    """Comma-separated visible entries of a directory, for error messages."""
    if not directory.is_dir():
        return "none; the directory does not exist"
    names = sorted(
        p.name for p in directory.iterdir() if not p.name.startswith(".") and p.is_dir() == dirs
    )
    if not names:
        return "none"
    shown = ", ".join(names[-10:])
    return shown if len(names) <= 10 else f"{len(names)} in all, newest: {shown}"


def _read_table(
    path: Path | ObjectPath, model: str, version: str, manifest: dict[str, Any] | None = None
) -> pa.Table:
    if not path.is_file():
        raise InputError(
            f"{path.name} missing from {path.parent}; the version is incomplete; "
            "republish it or choose another version"
        )
    try:
        table = pq.read_table(verified_source(path, manifest or {}))
    except (OSError, pa.ArrowException) as error:
        raise InputError(
            f"{path} is not a readable Parquet file ({error}); republish the version "
            "or choose another one"
        ) from error
    # Publish stamps every table with its version; a mismatch means files were
    # copied between versions, and vectors must never be mixed across versions.
    stamped = (table.schema.metadata or {}).get(b"item2vec.version")
    if stamped is not None and stamped.decode() != version:
        raise InputError(
            f"{path} belongs to version {stamped.decode()!r}, not {model}/{version}; "
            "files were copied between versions; republish the version"
        )
    return table


def verified_source(path: Path | ObjectPath, manifest: dict[str, Any]) -> Path | pa.Buffer:
    """What to hand pyarrow to read a file of a version: a local path as it is, or an
    object's content once its SHA-256 is the one ``manifest`` lists for it.

    Raises
    ------
    InputError
        If the object's content is not what the manifest lists.
    """
    if not isinstance(path, ObjectPath):
        return path  # renamed into place whole, with its manifest
    import hashlib

    described = _as_dict(_as_dict(manifest.get("files")).get(path.name))
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != described.get("sha256"):
        raise InputError(
            f"{path} does not match the SHA-256 its manifest lists (or is not listed); "
            "the version is damaged or was not published whole; choose another version "
            "or republish it"
        )
    return pa.py_buffer(data)


def check_listed_files(path: ObjectPath, manifest: dict[str, Any]) -> None:
    """Raise unless every file the manifest lists is in the version's prefix at its size.

    Raises
    ------
    InputError
        Naming the first file that is missing or of another size.
    """
    files = _as_dict(manifest.get("files"))
    if not files:
        raise InputError(f"{path}: its manifest lists no files; republish the version")
    sizes = path.sizes()
    for name, described in sorted(files.items()):
        size = _as_dict(described).get("bytes")
        if name not in sizes or (size is not None and sizes[name] != size):
            raise InputError(
                f"{path / name} is missing or not the size its manifest lists; the version "
                "was not published whole; choose another version or republish it"
            )


def require_schema(
    path: Path | ObjectPath, expected: pa.Schema, what: str, schema: pa.Schema | None = None
) -> None:
    """Raise a clear error unless the Parquet file ``path`` has ``expected``'s columns and types.

    Text columns may be ``string`` or ``large_string``; the file may hold
    more columns than ``expected`` names. ``schema`` is the file's, when it was
    read already.

    Raises
    ------
    InputError
        Naming the file, the first column missing or of another type, and the fix.
    """
    try:
        schema = schema if schema is not None else read_parquet_schema(path)
    except (OSError, pa.ArrowException) as error:
        raise InputError(
            f"{path} is not a readable Parquet file ({error}); republish the version "
            "or choose another one"
        ) from error
    for column in expected:
        index = schema.get_field_index(column.name)
        found = schema.field(index).type if index >= 0 else None
        if found is None or not _same_kind(found, column.type):
            problem = "is missing" if found is None else f"is {found}, expected {column.type}"
            raise InputError(
                f"{path} is not an item2vec {what} table: column {column.name!r} {problem}; "
                "republish the version or choose another one"
            )


def _same_kind(found: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    return found == expected


def vector_matrix(column: pa.ChunkedArray, n: int, path: Path, name: str) -> np.ndarray:
    """A float32 ``(n, dim)`` view of a fixed-size-list column (a copy only across chunks)."""
    array = single_array(column)
    if pa.types.is_fixed_size_list(array.type):
        dim = array.type.list_size
    elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        # Parquet written by other tools may lose the fixed size; accept equal lengths.
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if n else 0
        if n and not (lengths == dim).all():
            raise InputError(
                f"column {name!r} of {path} has vectors of different lengths "
                f"({int(lengths.min())}..{int(lengths.max())}); expected one dimension; "
                "republish the version"
            )
    else:
        raise InputError(
            f"column {name!r} of {path} is {array.type}, expected fixed_size_list<float32>; "
            "republish the version"
        )
    # flatten() would silently drop null vectors and shift every later row.
    if array.null_count or array.flatten().null_count:
        raise InputError(
            f"column {name!r} of {path} has null vectors or values; expected none; "
            "republish the version"
        )
    values = array.flatten()
    if values.type != pa.float32():
        raise InputError(
            f"column {name!r} of {path} holds {values.type}, expected float32; "
            "republish the version"
        )
    return values.to_numpy().reshape(n, dim)
