"""Exception types raised by item2vec.

Every message says what was expected, what was found and how to fix it, so the
CLI can print it as one line instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InputError",
    "Item2VecError",
    "PublishConflictError",
    "QualityGateError",
]


class Item2VecError(Exception):
    """Base class of every error item2vec raises on purpose."""


class InputError(Item2VecError, ValueError):
    """The events or items input cannot be used as given (path, columns, values)."""


class ConfigError(Item2VecError, ValueError):
    """A configuration value or file is invalid."""


class QualityGateError(Item2VecError):
    """The trained model was published but refused by the quality gate.

    ``result`` carries the run's summary (version directory, metrics, gate), so
    a caller can still show what was measured.
    """

    def __init__(self, message: str, result: dict | None = None) -> None:
        super().__init__(message)
        self.result = result


class UnsafePathError(Item2VecError):
    """An output path is not what item2vec wrote there (a symbolic link, a swapped file).

    Raised instead of writing, so that nobody who can write into a shared output
    folder can redirect a run's writes outside it.
    """


class PublishConflictError(Item2VecError):
    """Another run changed what this one was about to change (LATEST, the lock) in an object store.

    The version this run wrote is whole either way; only LATEST was left as the
    other run set it.
    """
