"""The ``[sequences]`` section: how events become sequences."""

from __future__ import annotations

from pydantic import Field, field_validator

from item2vec.config_section import _Section


class SequenceConfig(_Section):
    """How events become sequences.

    Parameters
    ----------
    session_gap
        Cut a user's history into sessions wherever two events are further apart
        than this (``30m``, ``2h``, ``1d`` or seconds); None keeps one sequence per
        user.
    collapse_repeats
        Merge consecutive repeats of the same item into one event.
    min_length
        Drop sequences shorter than this.
    max_length
        Keep at most this many items of a sequence, the most recent ones. None
        keeps them all.
    write_sequences
        Also publish the sequences as ``sequences.parquet``.
    shuffle_partitions
        On a Dask task runner, build the sequences in this many partitions of
        users instead of on one worker: the events are shuffled by a hash of the
        user id (Dask DataFrame's shuffle), each partition is filtered and turned
        into sequences on a worker, and the parts are combined into exactly the
        sequences of one worker. 0 (the default) builds them on one worker, which
        needs about 90 bytes per event (1.6-1.8 GB at 20M events). Use it when the
        log does not fit one worker; start with two to four per worker, so that
        each part fits a worker's memory a few times over. Needs ``--task-runner
        dask``: on threads the partitions would all sit in one process.
    """

    session_gap: str | None = None
    collapse_repeats: bool = False
    min_length: int = Field(1, ge=1)
    max_length: int | None = Field(None, ge=1)
    write_sequences: bool = False
    shuffle_partitions: int = Field(0, ge=0)

    @field_validator("session_gap")
    @classmethod
    def _parse_gap(cls, value: str | None) -> str | None:
        if value is not None:
            gap_seconds(value)
        return value


GAP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def gap_seconds(text: str) -> float:
    """Seconds of a gap written as ``90``, ``90s``, ``30m``, ``2h`` or ``1d``."""
    cleaned = text.strip().lower()
    unit = GAP_UNITS.get(cleaned[-1:]) if cleaned[-1:].isalpha() else 1
    number = cleaned[:-1] if cleaned[-1:].isalpha() else cleaned
    try:
        seconds = float(number) * unit if unit else None
    except ValueError:
        seconds = None
    if not seconds or seconds <= 0:
        raise ValueError(f"session gap {text!r} is not a duration; write e.g. 30m, 2h, 1d or 900")
    return seconds
