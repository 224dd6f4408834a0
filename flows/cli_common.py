"""What every ``item2vec`` subcommand shares: exit codes, subparsers, log handling."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from item2vec.errors import Item2VecError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_GATE = 3


def subcommand(
    subparsers: argparse._SubParsersAction, name: str, help_text: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help keeps the description's own line breaks."""
    return subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def print_frame(frame: Any) -> None:
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


class ExpectedErrorFilter(logging.Filter):
    """Drops console records of errors item2vec raised on purpose.

    Prefect logs a task's failure (with its traceback), then the task's and the
    flow's failed states, each quoting the exception. For bad input the message
    already says what to fix, and the CLI prints it once as its ``error:`` line;
    ``--debug`` keeps them all. Records below ERROR are kept, traceback removed.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], Item2VecError):
            record.exc_info = None
            record.exc_text = None
            return record.levelno < logging.ERROR
        if record.levelno >= logging.ERROR:
            # "Finished in state Failed('... InputError: <message>')" has no exc_info.
            text = record.getMessage()
            return not any(f"{name}: " in text or f"{name}(" in text for name in _expected())
        return True


def _expected() -> list[str]:
    """Names of :class:`Item2VecError` and its subclasses, as Prefect's messages quote them."""
    names, pending = [], [Item2VecError]
    while pending:
        kind = pending.pop()
        names.append(kind.__name__)
        pending.extend(kind.__subclasses__())
    return names


def quiet_expected_tracebacks() -> None:
    """Install :class:`ExpectedErrorFilter` on the console handlers of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ExpectedErrorFilter) for f in handler.filters):
            handler.addFilter(ExpectedErrorFilter())


def set_verbosity(quiet: bool, verbose: bool) -> None:
    """Log levels for --quiet / --verbose; must run before Prefect is imported."""
    if quiet:
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        logging.getLogger("item2vec").setLevel(logging.WARNING)
    elif verbose:
        logging.getLogger("item2vec").setLevel(logging.DEBUG)
        logging.getLogger("gensim").setLevel(logging.INFO)
