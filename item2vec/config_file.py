"""Reading a settings file: TOML with the sections of :class:`item2vec.config.PipelineConfig`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from item2vec.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a plain dict, with a clear error on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing .toml file")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        # The reason of a binary file would quote its bytes: named by kind instead.
        reason = exc if isinstance(exc, tomllib.TOMLDecodeError) else type(exc).__name__
        raise ConfigError(
            f"config file {path} is not valid TOML ({reason}); pass a UTF-8 .toml file"
        ) from exc
