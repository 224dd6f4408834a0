"""Sequences built in partitions of users equal the one-worker path's, row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from item2vec.cache import events_and_sequences, partition_events, plan_inputs
from item2vec.config import build_config
from item2vec.errors import InputError
from item2vec.user_partitions import run_ids, sequences_in_partitions


def synthetic_log(folder, files: int = 3, seed: int = 0) -> None:
    """Users of very different activity, rare items, ties, exact duplicates and event types."""
    rng = np.random.default_rng(seed)
    rows = 3000
    users = rng.zipf(1.6, rows) % 150
    items = rng.zipf(1.4, rows) % 300
    ts = 1_700_000_000 + rng.integers(0, 20_000, rows) // 7 * 7  # ties
    frame = pd.DataFrame(
        {
            "user": [f"u{u:03d}" for u in users],
            "item": [f"i{i}" for i in items],
            "ts": ts,
            "event": rng.choice(["view", "buy", "skip"], rows, p=[0.7, 0.2, 0.1]),
            "rating": rng.choice([1.0, 2.5, 4.0, np.nan], rows),
        }
    )
    frame = pd.concat([frame, frame.sample(200, random_state=seed)])  # duplicates
    folder.mkdir(parents=True, exist_ok=True)
    shuffled = frame.sample(frac=1, random_state=seed)
    cuts = np.linspace(0, len(shuffled), files + 1).astype(int)
    for n in range(files):
        shuffled.iloc[cuts[n] : cuts[n + 1]].to_csv(folder / f"part-{n}.csv", index=False)


def config_for(tmp_path, **sequences):
    return build_config(
        {
            "ingest": {
                "paths": [str(tmp_path / "logs")],
                "user_col": "user",
                "item_col": "item",
                "time_col": "ts",
                "event_col": "event",
                "keep_events": ["view", "buy"],
                "drop_duplicates": True,
                "min_item_count": 3,
                "min_user_count": 4,
                "cache": False,
            },
            "sequences": {"session_gap": "1h", "min_length": 2, **sequences},
            "publish": {"output": str(tmp_path / "out")},
        }
    )


def partitioned(config):
    plan = plan_inputs(config)
    partitions = [
        partition_events(path, key, config)
        for path, key in zip(plan.paths, plan.partition_keys, strict=True)
    ]
    return sequences_in_partitions(partitions, config, plan.files)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_partitions_of_users_give_the_one_worker_sequences(tmp_path, n):
    synthetic_log(tmp_path / "logs")
    config = config_for(tmp_path, shuffle_partitions=n)
    events, expected = events_and_sequences(config)
    got_events, got = partitioned(config)
    # The filters really drop items, users, duplicates and event types here.
    assert all(events.counts["dropped"][reason] > 0 for reason in ("rare_item", "rare_user"))
    assert events.counts["dropped"]["duplicate"] > 0
    assert events.counts["dropped"]["event_type"] > 0
    assert got_events.counts == events.counts
    assert got.schema == expected.schema
    assert got.equals(expected)
    assert got.schema.metadata == expected.schema.metadata


def test_weights_travel_through_the_shuffle_and_filter_as_on_one_worker(tmp_path):
    synthetic_log(tmp_path / "logs")
    config = config_for(tmp_path, shuffle_partitions=3)
    config.ingest.weight_col, config.ingest.min_weight = "rating", 2.0
    events, expected = events_and_sequences(config)
    got_events, got = partitioned(config)
    assert events.counts["dropped"]["low_weight"] > 0
    assert got_events.counts == events.counts
    assert got.equals(expected)


def test_partitions_that_hold_no_user_are_harmless(tmp_path):
    synthetic_log(tmp_path / "logs", files=2)
    config = config_for(tmp_path, shuffle_partitions=400)  # more partitions than users
    _, expected = events_and_sequences(config)
    assert partitioned(config)[1].equals(expected)


def test_filters_that_leave_nothing_fail_as_on_one_worker(tmp_path):
    synthetic_log(tmp_path / "logs")
    config = config_for(tmp_path, shuffle_partitions=3)
    config.ingest.min_user_count = 10_000
    with pytest.raises(InputError, match="no usable events left"):
        partitioned(config)


def test_a_partition_count_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1 partition"):
        run_ids([], 0)
    with pytest.raises(ValueError, match="shuffle_partitions"):
        config_for(tmp_path, shuffle_partitions=-1)


def test_users_are_cut_into_ranges_of_equal_events_in_id_order():
    import pyarrow as pa

    from item2vec.user_partitions import FileIds

    # Users "a".."e" with 1, 1, 6, 4, 1 events over two files: half the log is in a-c.
    first = FileIds(pa.array(["c", "a", "e"]), np.array([4, 1, 1]), pa.array(["x"]))
    second = FileIds(pa.array(["d", "b", "c"]), np.array([4, 1, 2]), pa.array(["y", "x"]))
    ids = run_ids([first, second], 2)
    assert ids.users.to_pylist() == ["a", "b", "c", "d", "e"]
    assert ids.items.to_pylist() == ["x", "y"]
    assert [ids.user_range(j) for j in range(len(ids.divisions) - 1)] == [(0, 3), (3, 5)]
    assert run_ids([first], 400).divisions == [0, 1, 2]  # 3 users: 2 partitions at most


def test_check_files_warns_each_file_with_its_own_examples_when_names_repeat(tmp_path, caplog):
    from pathlib import Path

    from item2vec.user_partitions import FileSummary, check_files

    bad = {"null_user": 0, "null_item": 0, "bad_timestamp": 2}
    good = dict.fromkeys(bad, 0)
    summaries = [
        FileSummary(Path("logs/date=1/part-0.csv"), 3, bad, ["yesterday"]),
        FileSummary(Path("logs/date=2/part-0.csv"), 3, bad, ["tomorrow"]),
        FileSummary(Path("logs/date=3/part-0.csv"), 400, good, []),
    ]
    with caplog.at_level("WARNING", logger="item2vec.validation"):
        check_files(summaries, config_for(tmp_path).ingest)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (first,) = [w for w in warnings if "date=1" in w]
    (second,) = [w for w in warnings if "date=2" in w]
    assert "yesterday" in first and "tomorrow" not in first
    assert "tomorrow" in second and "yesterday" not in second
