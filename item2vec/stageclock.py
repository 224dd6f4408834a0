"""Wall time of each pipeline stage, as the run that orchestrates them sees it.

The clock lives where the stages are called (the flow), so it measures the same
thing whether a stage runs in a thread, a process or on a Dask worker: from the
call until its result is in hand. Stages that run side by side (the baselines
beside training) overlap in time; their seconds are not meant to add up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    """Seconds per named stage, safe to use from several threads.

    Examples
    --------
    >>> clock = StageClock()
    >>> with clock.stage("split"):
    ...     pass
    >>> sorted(clock.seconds)
    ['split']
    """

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._open: dict[str, float] = {}
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self, name: str) -> None:
        """Start timing ``name`` (for a stage submitted now and awaited later)."""
        with self._lock:
            self._open[name] = time.perf_counter()

    def stop(self, name: str) -> float:
        """Stop timing ``name``; returns its seconds (added to any earlier ones)."""
        with self._lock:
            seconds = time.perf_counter() - self._open.pop(name)
            self._seconds[name] = self._seconds.get(name, 0.0) + seconds
            return seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``."""
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    @property
    def seconds(self) -> dict[str, float]:
        """Finished stages, rounded to milliseconds, in the order they finished."""
        with self._lock:
            return {name: round(value, 3) for name, value in self._seconds.items()}

    def elapsed(self) -> float:
        """Seconds since the clock was made."""
        return round(time.perf_counter() - self._started, 3)
