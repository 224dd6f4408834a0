"""Rolling windows over daily partitions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from item2vec.errors import InputError
from item2vec.partitions import partition_day, select_window


@pytest.mark.parametrize(
    ("path", "day"),
    [
        ("logs/2026-11-24.csv.gz", date(2026, 11, 24)),
        ("logs/events-20261124.parquet", date(2026, 11, 24)),
        ("logs/date=2026-11-24/part-0.parquet", date(2026, 11, 24)),
        ("logs/year=2026/month=11/day=4/part-0.parquet", date(2026, 11, 4)),
        # The innermost date wins over a dated parent folder.
        ("archive-2025-01-01/2026-11-24.csv", date(2026, 11, 24)),
        ("logs/events.csv", None),
        # Eight digits that are not a day are not taken for one.
        ("logs/20261399.csv", None),
    ],
)
def test_partition_day_reads_common_layouts(path, day):
    assert partition_day(path) == day


def _days(first: int, last: int) -> list[Path]:
    return [Path(f"logs/2026-11-{day:02d}.csv") for day in range(first, last + 1)]


def test_no_window_keeps_every_file_even_undated():
    paths = [Path("a.csv"), Path("b.csv")]
    assert select_window(paths) == paths


def test_since_keeps_the_days_on_and_after_it():
    chosen = select_window(_days(1, 10), since=date(2026, 11, 8))
    assert [partition_day(p).day for p in chosen] == [8, 9, 10]


def test_window_days_counts_back_from_the_newest_partition():
    # Counting from the newest file, not today: a missed night does not empty the window.
    chosen = select_window(_days(1, 10), window_days=3)
    assert [partition_day(p).day for p in chosen] == [8, 9, 10]
    assert select_window(_days(1, 10), window_days=100) == _days(1, 10)


def test_window_keeps_input_order():
    shuffled = [Path("logs/2026-11-09.csv"), Path("logs/2026-11-02.csv"), Path("x/2026-11-10.csv")]
    assert select_window(shuffled, window_days=2) == [shuffled[0], shuffled[2]]


def test_undated_file_in_a_window_is_refused_by_name():
    with pytest.raises(InputError, match=r"notes\.csv has no date.*--window-days"):
        select_window([*_days(1, 2), Path("logs/notes.csv")], window_days=1)


def test_window_after_every_partition_says_which_is_newest():
    with pytest.raises(InputError, match=r"newest: 2026-11-10.*--since"):
        select_window(_days(1, 10), since=date(2026, 12, 1))
