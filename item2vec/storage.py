"""Object stores beside local disks: ``s3://``, ``gs://``, ``abfs://`` through fsspec.

A path given to item2vec (events, items file, output, cache) is either local, a
plain path or a ``file://`` URL, handled by :mod:`pathlib` and the local code as
before (atomic renames, leases, links refused), or an object in a store, named by
a URL and handled here as an :class:`ObjectPath`: the few :class:`pathlib.Path`
methods that item2vec's readers call (``name``, ``/``, ``open``, ``stat``,
``iterdir``...), each one call of the store's fsspec filesystem. The clients
are the store's own fsspec packages (s3fs, gcsfs, adlfs), installed as the
extras ``item2vec[s3]``, ``item2vec[gcs]`` and ``item2vec[azure]``; credentials
and endpoints come from their usual settings (``AWS_*`` variables, ``~/.aws``,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``...).

Listings are never cached (``use_listings_cache=False``): another run may have
published since, and a stale listing would hide it.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

from item2vec.errors import ConfigError

#: The optional package and the extra that brings it, by URL scheme.
EXTRAS = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
    "az": ("adlfs", "azure"),
}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme(raw: str | Path | ObjectPath) -> str | None:
    """The URL scheme of ``raw`` in lower case (``s3``, ``file``...), or None for a plain path."""
    if isinstance(raw, ObjectPath):
        return raw.protocol
    if isinstance(raw, Path):
        return None
    found = _SCHEME.match(str(raw))
    return found.group(1).lower() if found else None


def is_remote(raw: str | Path | ObjectPath | None) -> bool:
    """Whether ``raw`` names an object in a store (any URL but ``file://``)."""
    return raw is not None and scheme(raw) not in (None, "file")


def as_path(raw: str | Path | ObjectPath) -> Path | ObjectPath:
    """A :class:`Path` for a local path or ``file://`` URL, else an :class:`ObjectPath`.

    Raises
    ------
    ConfigError
        If the store's fsspec package is not installed, naming the extra to install.
    """
    if isinstance(raw, Path | ObjectPath):
        return raw
    found = scheme(raw)
    if found is None:
        return Path(raw)
    if found == "file":
        parts = urlsplit(str(raw))
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{raw}: a file:// URL names this machine; use file:///path")
        return Path(unquote(parts.path))
    return ObjectPath.from_url(str(raw))


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise ConfigError(f"{url}: object stores need fsspec; pip install fsspec") from exc
    protocol = scheme(url) or ""
    try:
        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except ImportError as exc:
        package, extra = EXTRAS.get(protocol, (f"the fsspec package for {protocol}://", None))
        fix = f"pip install 'item2vec[{extra}]'" if extra else f"install {package}"
        raise ConfigError(
            f"{url}: {protocol}:// needs the optional package {package}, which is not "
            f"installed; {fix}"
        ) from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ConfigError(f"{url}: fsspec knows no store {protocol}://") from exc
        raise


class ObjectPath:
    """One object or prefix in a store: a fsspec filesystem and a path without its protocol.

    Equal, hashed and sorted by URL. Prefixes ("folders") exist only while an
    object lies under them, so :meth:`mkdir` does nothing.
    """

    __slots__ = ("fs", "path", "_kind")

    def __init__(self, fs: Any, path: str, kind: str | None = None) -> None:
        self.fs = fs
        self.path = path.rstrip("/")
        self._kind = kind  # "file" or "directory" when known from a listing

    @classmethod
    def from_url(cls, url: str) -> ObjectPath:
        fs, path = _filesystem(url)
        return cls(fs, path)

    @property
    def protocol(self) -> str:
        protocol = self.fs.protocol
        return protocol if isinstance(protocol, str) else protocol[0]

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"ObjectPath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and self.url == other.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __lt__(self, other: ObjectPath) -> bool:
        return self.url < other.url

    def __truediv__(self, name: str) -> ObjectPath:
        return ObjectPath(self.fs, f"{self.path}/{str(name).strip('/')}")

    def __reduce__(self) -> tuple:
        return (ObjectPath, (self.fs, self.path, self._kind))

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.fs, str(PurePosixPath(self.path).parent))

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.path).parts

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(PurePosixPath(other.path))

    def resolve(self) -> ObjectPath:
        return self

    def as_uri(self) -> str:
        return self.url

    # Questions -----------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        if self._kind is not None:
            return self._kind == "file"
        return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        if self._kind is not None:
            return self._kind == "directory"
        return bool(self.fs.isdir(self.path))

    def is_symlink(self) -> bool:
        return False  # stores have no links

    def stat(self) -> SimpleNamespace:
        """``st_size`` and ``st_mtime``/``st_mtime_ns`` (0 for a prefix, which has no time).

        Raises
        ------
        FileNotFoundError
            If there is no such object or prefix.
        """
        if self._kind == "directory":
            return SimpleNamespace(st_size=0, st_mtime=0.0, st_mtime_ns=0)
        info = self.fs.info(self.path)
        if info.get("type") == "directory":
            return SimpleNamespace(st_size=0, st_mtime=0.0, st_mtime_ns=0)
        modified = modified_time(self.fs, self.path, info)
        return SimpleNamespace(
            st_size=int(info.get("size") or 0), st_mtime=modified, st_mtime_ns=int(modified * 1e9)
        )

    # Listing -------------------------------------------------------------------

    def iterdir(self) -> list[ObjectPath]:
        return [
            ObjectPath(self.fs, entry["name"], entry.get("type"))
            for entry in self.fs.ls(self.path, detail=True)
            if entry["name"].rstrip("/") != self.path
        ]

    def sizes(self) -> dict[str, int]:
        """The size of every object right under this prefix, by name, from one listing."""
        return {
            PurePosixPath(entry["name"]).name: int(entry.get("size") or 0)
            for entry in self.fs.ls(self.path, detail=True)
            if entry.get("type") == "file"
        }

    def find(self) -> list[ObjectPath]:
        """Every object under this prefix, sorted by path."""
        return sorted(ObjectPath(self.fs, name, "file") for name in self.fs.find(self.path))

    def rglob(self, pattern: str) -> list[ObjectPath]:
        if pattern != "*":
            raise NotImplementedError("only rglob('*') is offered on an object store")
        return self.find()

    def glob(self, pattern: str) -> list[ObjectPath]:
        return [
            ObjectPath(self.fs, name) for name in sorted(self.fs.glob(f"{self.path}/{pattern}"))
        ]

    # Reading and writing -------------------------------------------------------

    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        if "b" not in mode:
            kwargs.setdefault("encoding", "utf-8")
        return self.fs.open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        """One PUT: readers see the old object or the new one, never part of it."""
        self.fs.pipe_file(self.path, data)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        return None

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def remove_tree(self) -> None:
        """Delete every object under this prefix (nothing if there is none)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path, recursive=True)


def modified_time(fs: Any, path: str, info: dict[str, Any] | None = None) -> float:
    """When an object was last written, in seconds since the epoch (0.0 if the store won't say)."""
    info = info if info is not None else fs.info(path)
    for key in ("LastModified", "last_modified", "mtime", "updated"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    try:
        return fs.modified(path).timestamp()
    except (NotImplementedError, OSError, AttributeError):
        return 0.0


def arrow_source(path: Path | ObjectPath | str) -> dict[str, Any]:
    """Keyword arguments for pyarrow readers and writers: ``where`` and ``filesystem``."""
    if isinstance(path, ObjectPath):
        return {"where": path.path, "filesystem": path.fs}
    return {"where": path, "filesystem": None}


def read_parquet(path: Path | ObjectPath, **kwargs: Any) -> Any:
    """``pyarrow.parquet.read_table`` of a local file or an object."""
    import pyarrow.parquet as pq

    source = arrow_source(path)
    return pq.read_table(source["where"], filesystem=source["filesystem"], **kwargs)


def read_parquet_schema(path: Path | ObjectPath) -> Any:
    """``pyarrow.parquet.read_schema`` of a local file or an object."""
    import pyarrow.parquet as pq

    source = arrow_source(path)
    return pq.read_schema(source["where"], filesystem=source["filesystem"])


def input_stream(path: ObjectPath) -> Any:
    """A pyarrow input stream over an object, gunzipped when its name ends in ``.gz``."""
    import pyarrow.fs as pafs

    arrow_fs = pafs.PyFileSystem(pafs.FSSpecHandler(path.fs))
    return arrow_fs.open_input_stream(path.path, compression="detect")
