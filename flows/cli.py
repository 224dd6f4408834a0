"""The ``item2vec`` command line.

Arguments are validated, and the input's columns checked, before any flow run
starts, so bad input ends with one readable line and a non-zero exit code. Each
subcommand lives in its own module; this one builds the parser and turns errors
into exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys

from item2vec.errors import Item2VecError, QualityGateError
from item2vec_flows.cli_common import EXIT_ERROR, EXIT_GATE
from item2vec_flows.cli_published import add_published_parsers
from item2vec_flows.cli_run import add_run_parsers
from item2vec_flows.sweep_cli import add_sweep_parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``item2vec`` command."""
    parser = argparse.ArgumentParser(
        prog="item2vec",
        description="Item embeddings from user-behaviour logs, evaluated against baselines.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_run_parsers(subparsers)
    add_sweep_parser(subparsers)
    add_published_parsers(subparsers)
    return parser


#: Environment defaults the command sets for its own process; a value the user set wins.
#: Arrow's allocator (mimalloc) commits its 1 GiB arenas eagerly by default. On
#: machines that hand freed memory back to the host (virtual machines) that memory
#: then arrives as transparent huge pages, whose first touch costs more: reading the
#: 20M-event, 1M-user Parquet log in a fresh process took 1.60-2.76 s (median 1.76 s,
#: 4 runs) with commit on demand against 1.72-2.20 s (median 2.04 s) without. It must
#: be set before pyarrow allocates anything: here, before any command imports it.
PROCESS_DEFAULTS = {"MIMALLOC_ARENA_EAGER_COMMIT": "0"}


def apply_process_defaults() -> None:
    """Set :data:`PROCESS_DEFAULTS` in this process's environment, unless already set."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


#: The log level of Prefect's temporary API server, a process of its own that writes
#: to this one's terminal. When several jobs share ``~/.prefect``, its SQLite database
#: is busy, and stopping the server cancels its task-run recorder mid-flush: about one
#: run in five then printed some 150 lines of ``CancelledError`` tracebacks, on runs
#: that succeeded. Nothing the server logs below CRITICAL is for a CLI user; a failed
#: API call still reaches this process as an error.
EMBEDDED_SERVER_LOG_LEVEL = "CRITICAL"


def quiet_embedded_server(debug: bool) -> None:
    """Quiet Prefect's temporary server (unless ``debug``, or the user set a level)."""
    if not debug:
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", EMBEDDED_SERVER_LOG_LEVEL)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``item2vec`` console script; returns the exit code."""
    apply_process_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_embedded_server(getattr(args, "debug", False))
    try:
        return args.handler(args)
    except QualityGateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_GATE
    except Item2VecError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
