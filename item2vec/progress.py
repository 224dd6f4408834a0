"""Progress of long stages: a bar on a terminal, a few plain log lines everywhere else.

A bar only makes sense for a person watching a terminal. In CI, under Prefect
or with output sent to a file, the same progress is written as ordinary INFO
log lines, at most about ten per stage and none for work that ends within two
seconds, so logs stay short and readable.
``ITEM2VEC_PROGRESS=0`` turns the bars off, ``=1`` forces them on.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

log = logging.getLogger("item2vec.progress")

#: Plain-line mode writes a line at most every this share of the total...
LINE_EVERY_SHARE = 0.1
#: ...or after this many seconds, whichever comes first.
LINE_EVERY_SECONDS = 30.0
#: Work that ends sooner than this writes no progress line at all.
LINE_AFTER_SECONDS = 2.0


def bars_enabled(stream: TextIO | None = None) -> bool:
    """Whether progress bars are drawn: ``stream`` (stderr) is a terminal and INFO is shown."""
    forced = os.environ.get("ITEM2VEC_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    stream = stream if stream is not None else sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        interactive = False
    return interactive and log.isEnabledFor(logging.INFO)


class Progress:
    """Progress of one stage, used as a context manager.

    Parameters
    ----------
    description
        What is being done, e.g. ``"train"``; starts every line.
    total
        Number of steps, or None when unknown.
    unit
        Name of a step, e.g. ``"epochs"`` or ``"users"``.
    stream
        Where a bar is drawn (default stderr); only used to detect a terminal.

    Examples
    --------
    >>> with Progress("train", total=3, unit="epochs") as bar:
    ...     for epoch in range(3):
    ...         bar.advance(loss=0.5)
    """

    def __init__(
        self, description: str, total: int | None, unit: str = "", stream: TextIO | None = None
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self.stream = stream
        self.bar_shown = bars_enabled(stream)
        self._bar: Any = None
        self._task: Any = None
        self._started = time.perf_counter()
        self._last_line_at = self._started
        self._last_line_share = 0.0

    def __enter__(self) -> Progress:
        if self.bar_shown:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                transient=True,
                console=Console(file=self.stream) if self.stream is not None else None,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, status="")
        return self

    def advance(self, steps: int = 1, **status: Any) -> None:
        """Record ``steps`` more steps done; ``status`` (e.g. ``loss=0.3``) is shown beside."""
        self.done += steps
        text = " ".join(f"{key} {_short(value)}" for key, value in status.items())
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, status=text)
            return
        now = time.perf_counter()
        share = self.done / self.total if self.total else 0.0
        finished = self.total is not None and self.done >= self.total
        due = (
            share - self._last_line_share >= LINE_EVERY_SHARE
            or now - self._last_line_at >= LINE_EVERY_SECONDS
        )
        if due and not finished and now - self._started >= LINE_AFTER_SECONDS:
            self._line(text, now, share)

    def _line(self, text: str, now: float, share: float) -> None:
        of_total = f"/{self.total:,}" if self.total else ""
        percent = f" ({share:.0%})" if self.total else ""
        log.info(
            "%s: %s%s %s%s%s, %.1f s",
            self.description,
            f"{self.done:,}",
            of_total,
            self.unit,
            percent,
            f", {text}" if text else "",
            now - self._started,
        )
        self._last_line_at = now
        self._last_line_share = share

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
