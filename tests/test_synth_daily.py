"""The daily folder: one file a day, new items appearing, deterministic, and its CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from item2vec.synth_daily import daily_log, write_daily_folder
from item2vec_flows.cli import main


def test_a_daily_folder_grows_and_new_items_appear(tmp_path):
    info = write_daily_folder(tmp_path / "logs", days=6, events=3_000, users=200, items=100)
    assert [p.rsplit("/", 1)[1] for p in info["files"]] == [
        f"events-2026-11-0{d}.csv" for d in range(1, 7)
    ]
    days = [pd.read_csv(p, dtype={"user_id": str, "item_id": str}) for p in info["files"]]
    assert sum(map(len, days)) == info["events"] == 3_000
    seen: set[str] = set()
    for number, day in enumerate(days):
        stamps = pd.to_datetime(day["timestamp"], unit="s", utc=True).dt.date.astype(str)
        assert (stamps == f"2026-11-0{number + 1}").all()  # each file holds its own day
        new = set(day["item_id"]) - seen
        assert number == 0 or new, f"no new item on day {number + 1}"
        seen |= new
    items = pd.read_csv(info["items_path"])
    first = dict(zip(items["item_id"], items["first_day"], strict=True))
    for number, day in enumerate(days):  # nobody sees an item before it exists
        assert (day["item_id"].map(first) <= f"2026-11-0{number + 1}").all()
    assert items["category"].nunique() > 1


def test_the_same_seed_gives_the_same_log():
    first, _ = daily_log(days=3, events=900, users=50, items=40, clusters=4, seed=5)
    again, _ = daily_log(days=3, events=900, users=50, items=40, clusters=4, seed=5)
    other, _ = daily_log(days=3, events=900, users=50, items=40, clusters=4, seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"days": 1}, "days must be at least 2"),
        ({"events": 10, "users": 20}, "must be at least users"),
        ({"items": 10, "clusters": 8}, "at least twice clusters"),
    ],
)
def test_sizes_out_of_range_are_refused(sizes, message):
    with pytest.raises(ValueError, match=message):
        daily_log(**{"days": 3, "events": 900, "users": 50, "items": 40, "clusters": 4, **sizes})


def test_synth_days_writes_a_folder(tmp_path, capsys):
    out = tmp_path / "logs"
    args = ["synth", "--days", "3", "--events", "900", "--users", "50", "--items", "40"]
    assert main([*args, "--clusters", "4", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["files"]) == 3 and (tmp_path / "logs-items.csv").is_file()
    assert main([*args[:2], "1", *args[3:], "--out", str(out)]) != 0  # one day is refused
