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
    """

    session_gap: str | None = None
    collapse_repeats: bool = False
    min_length: int = Field(1, ge=1)
    max_length: int | None = Field(None, ge=1)
    write_sequences: bool = False

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
