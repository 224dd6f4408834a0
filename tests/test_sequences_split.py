import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from item2vec.errors import InputError
from item2vec.sequences import build_sequences
from item2vec.split import MIN_EVENTS_FOR_TEST, leave_last_out, split_sequences, temporal


def _events(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    return frame


def test_time_order_with_stable_ties():
    events = _events([("a", "x", 5), ("a", "y", 1), ("a", "z", 5), ("b", "q", 3), ("a", "w", 1)])
    table = build_sequences(events)
    assert table.column("user_id").to_pylist() == ["a", "b"]
    assert table.column("items").to_pylist() == [["y", "w", "x", "z"], ["q"]]
    start = table.column("start").to_pylist()[0]
    assert start == pd.Timestamp(1, unit="s", tz="UTC")


def test_leave_last_out_targets_and_short_users():
    """The last event is the test target, the one before it validation; short users only train."""
    events = _events([("a", f"i{n}", n) for n in range(5)] + [("b", "j0", 0), ("b", "j1", 1)])
    split = leave_last_out(build_sequences(events))
    assert split.test.user_ids.tolist() == ["a"]
    assert split.test.targets.tolist() == ["i4"]
    assert split.validation.targets.tolist() == ["i3"]
    assert split.test.history_items.tolist() == ["i0", "i1", "i2", "i3"]
    assert split.validation.history_items.tolist() == ["i0", "i1", "i2"]
    # b has fewer than 3 events: it only trains, whole.
    assert sorted(map(tuple, split.train)) == [("i0", "i1", "i2", "i3"), ("j0", "j1")]


event_rows = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4"]),
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.integers(0, 20),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(event_rows)
def test_every_event_once_in_time_order(rows):
    events = _events(rows)
    table = build_sequences(events)
    expected = (
        events.assign(order=np.arange(len(events)))
        .sort_values(["user_id", "ts", "order"])
        .groupby("user_id")["item_id"]
        .agg(list)
    )
    got = dict(
        zip(table.column("user_id").to_pylist(), table.column("items").to_pylist(), strict=True)
    )
    assert got == expected.to_dict()


@settings(max_examples=60, deadline=None)
@given(event_rows)
def test_split_recombines_to_the_input(rows):
    table = build_sequences(_events(rows))
    split = leave_last_out(table)
    sequences = dict(
        zip(table.column("user_id").to_pylist(), table.column("items").to_pylist(), strict=True)
    )
    offsets = split.test.history_offsets
    for n, user in enumerate(split.test.user_ids):
        history = split.test.history_items[offsets[n] : offsets[n + 1]].tolist()
        assert history + [split.test.targets[n]] == sequences[user]
    assert len(split.test) == sum(len(s) >= MIN_EVENTS_FOR_TEST for s in sequences.values())
    held_out = len(split.test)
    assert sum(map(len, split.train)) + held_out == sum(map(len, sequences.values()))


def test_temporal_split_by_cutoff():
    """Each user's first event after the cut-off is tested, on the history before it."""
    day = 86_400
    events = _events(
        [
            ("a", "a1", 0),
            ("a", "a2", 5 * day),
            ("a", "a3", 9 * day),
            ("a", "a4", 10 * day),
            ("b", "b1", 1 * day),
            ("b", "b2", 2 * day),
            ("c", "c1", 9 * day),
        ]
    )
    split = temporal(build_sequences(events), test_days=2)
    # Cut-off at day 8: a has history a1, a2 and first later event a3; b has no later
    # event; c has no history before the cut-off.
    assert split.test.user_ids.tolist() == ["a"]
    assert split.test.targets.tolist() == ["a3"]
    assert split.test.history_items.tolist() == ["a1", "a2"]
    assert sorted(map(tuple, split.train)) == [("a1", "a2"), ("b1", "b2")]
    # Validation one period earlier: cut-off day 6, target in (6, 8] -> nobody for a
    # (a3 is on day 9); b's events are all before day 6.
    assert len(split.validation) == 0


def test_split_dispatch_and_unknown_method():
    """split_sequences defaults to leave-last-out and refuses an unknown method."""
    table = build_sequences(_events([("a", "x", 1), ("a", "y", 2), ("a", "z", 3)]))
    assert split_sequences(table).test.targets.tolist() == ["z"]
    with pytest.raises(ValueError, match="unknown split"):
        split_sequences(table, "random")


def test_sessions_collapse_and_lengths():
    """Sessions cut at the gap, repeats collapsed, lengths bounded, and each drop counted."""
    from item2vec.config import SequenceConfig
    from item2vec.sequences import dropped_in_sequences

    minute = 60
    events = _events(
        [
            ("a", "x", 0),
            ("a", "x", minute),
            ("a", "y", 2 * minute),  # session 1
            ("a", "z", 3 * 3600),
            ("a", "w", 3 * 3600 + minute),  # session 2 (gap 3h)
            ("a", "v", 9 * 3600),  # session 3: one event
        ]
    )
    config = SequenceConfig(session_gap="30m", collapse_repeats=True, min_length=2, max_length=1)
    table = build_sequences(events, config)
    assert table.column("items").to_pylist() == [["y"], ["w"]]
    assert table.column("user_id").to_pylist() == ["a", "a"]
    assert dropped_in_sequences(table) == {"repeat": 1, "truncated": 2, "short_sequence": 1}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=40),
    st.integers(1, 2000),
)
def test_sessions_split_exactly_at_gaps(times, gap_seconds):
    from item2vec.config import SequenceConfig

    events = _events([("u", f"i{n}", t) for n, t in enumerate(times)])
    table = build_sequences(events, SequenceConfig(session_gap=str(gap_seconds)))
    ordered = sorted(times)
    expected_sessions = 1 + sum(
        b - a > gap_seconds for a, b in zip(ordered, ordered[1:], strict=False)
    )
    assert table.num_rows == expected_sessions
    for session in table.column("times").to_pylist():
        stamps = [t.timestamp() for t in session]
        assert all(b - a <= gap_seconds for a, b in zip(stamps, stamps[1:], strict=False))


def test_bad_session_gap_refused():
    import pytest

    from item2vec.config import build_config
    from item2vec.errors import ConfigError

    with pytest.raises(ConfigError, match="not a duration"):
        build_config({"sequences": {"session_gap": "soon"}})


def test_arrow_backed_chunked_item_column():
    """A chunked Arrow-backed item column sorts like a plain one."""
    import pyarrow as pa

    chunked = pa.chunked_array([["x", "y"], ["z"]])
    events = _events([("a", "_", 3), ("a", "_", 1), ("b", "_", 2)])
    events["item_id"] = pd.Series(pd.arrays.ArrowExtensionArray(chunked))
    table = build_sequences(events)
    assert table.column("items").to_pylist() == [["y", "x"], ["z"]]


def _reference_sequences(rows, gap, collapse, min_length, max_length):
    """Sequences and drop counts by the plain definition, one event at a time."""
    ordered = sorted(enumerate(rows), key=lambda pair: (pair[1][0], pair[1][2], pair[0]))
    sequences, dropped = [], {"repeat": 0, "truncated": 0, "short_sequence": 0}
    for _, (user, item, ts) in ordered:
        current = sequences[-1] if sequences else None
        if current is None or current[0] != user or (gap is not None and ts - current[2] > gap):
            sequences.append([user, [], ts])
            current = sequences[-1]
        elif collapse and current[1][-1] == item:
            dropped["repeat"] += 1
            current[2] = ts
            continue
        current[1].append(item)
        current[2] = ts
    kept = []
    for user, items, _ in sequences:
        if len(items) < min_length:
            dropped["short_sequence"] += len(items)
            continue
        if max_length is not None and len(items) > max_length:
            dropped["truncated"] += len(items) - max_length
            items = items[-max_length:]
        kept.append((user, items))
    return kept, dropped


@settings(max_examples=150, deadline=None)
@given(
    event_rows,
    st.one_of(st.none(), st.integers(1, 6)),
    st.booleans(),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(1, 5)),
)
def test_sequences_match_their_plain_definition(rows, gap, collapse, min_length, max_length):
    from item2vec.config import SequenceConfig
    from item2vec.sequences import dropped_in_sequences

    config = SequenceConfig(
        session_gap=None if gap is None else str(gap),
        collapse_repeats=collapse,
        min_length=min_length,
        max_length=max_length,
    )
    table = build_sequences(_events(rows), config)
    expected, dropped = _reference_sequences(rows, gap, collapse, min_length, max_length)
    got = list(
        zip(table.column("user_id").to_pylist(), table.column("items").to_pylist(), strict=True)
    )
    assert got == expected
    assert dropped_in_sequences(table) == dropped
    assert table.column("sequence_id").to_pylist() == list(range(len(expected)))
    for times, start, end in zip(
        table.column("times").to_pylist(),
        table.column("start").to_pylist(),
        table.column("end").to_pylist(),
        strict=True,
    ):
        assert times[0] == start and times[-1] == end and times == sorted(times)


@pytest.mark.parametrize("method", ["leave-last-out", "temporal"])
def test_nothing_to_evaluate_is_a_clear_error(method):
    """Every user with one or two events: no test case, so no honest metric."""
    rows = [("u1", "a", 0), ("u2", "b", 10), ("u2", "c", 20), ("u3", "a", 30)]
    table = build_sequences(_events(rows))
    with pytest.raises(InputError) as info:
        split_sequences(table, method, test_days=1e-9)
    message = str(info.value)
    assert "3 sequences, the longest with 2 events" in message
    assert ("--test-days" if method == "temporal" else "--user-col") in message


def _holdout(users, lengths):
    from item2vec.split import Holdout

    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    items = np.array(
        [f"{u}-{n}" for u, size in zip(users, lengths, strict=True) for n in range(size)]
    )
    targets = np.array([f"{u}-target" for u in users])
    return Holdout(np.array(users, dtype=object), items, offsets, targets)


def test_evaluation_sample_keeps_whole_cases_and_is_stable_as_the_log_grows():
    from item2vec.split import evaluation_sample

    users = [f"user{n}" for n in range(500)]
    holdout = _holdout(users, [1 + n % 4 for n in range(500)])
    assert evaluation_sample(holdout, 0) is holdout
    assert evaluation_sample(holdout, 500) is holdout
    sample = evaluation_sample(holdout, 100)
    assert len(sample) == 100
    # Each kept case still pairs its own history with its own target, in input order.
    kept = [users.index(u) for u in sample.user_ids]
    assert kept == sorted(kept)
    for row, user in enumerate(sample.user_ids):
        history = sample.history_items[
            sample.history_offsets[row] : sample.history_offsets[row + 1]
        ]
        assert list(history) == [f"{user}-{n}" for n in range(1 + users.index(user) % 4)]
        assert sample.targets[row] == f"{user}-target"
    # More users: none of the old ones enters the sample, some may leave it.
    grown = _holdout(users + [f"new{n}" for n in range(300)], [2] * 800)
    grown_sample = set(evaluation_sample(grown, 100).user_ids)
    assert grown_sample & set(users) <= set(sample.user_ids)
    assert len(grown_sample) == 100


def test_evaluation_sample_keeps_every_session_of_a_user():
    from item2vec.split import evaluation_sample

    users = ["a", "b", "a", "c", "b", "a", "d"]
    holdout = _holdout(users, [1] * len(users))
    sample = evaluation_sample(holdout, 4)
    chosen = set(sample.user_ids)
    kept = list(sample.user_ids)
    assert all(kept.count(user) == users.count(user) for user in chosen)
    assert 0 < len(sample) <= 4
    # A single user with more sessions than the cap is still evaluated, not dropped.
    assert len(evaluation_sample(holdout, 1)) >= 1


def test_flat_items_share_one_string_per_id_and_respect_slices():
    import pyarrow as pa

    from item2vec.sequences import flat_items, shared_strings

    table = build_sequences(
        _events([("a", "x", 1), ("a", "ÿ", 2), ("b", "x", 1), ("b", "007", 2), ("c", "x", 5)])
    )
    values, offsets = flat_items(table.slice(1))  # b and c: values rebased on the slice
    assert values.tolist() == ["x", "007", "x"] and offsets.tolist() == [0, 2, 3]
    # Both occurrences of "x" are one object: ids are stored once, hashed once.
    assert values[0] is values[2]
    nulls = shared_strings(pa.array(["p", None, "p"]))
    assert nulls.tolist() == ["p", None, "p"]


@settings(max_examples=60, deadline=None)
@given(event_rows, st.sampled_from(["leave-last-out", "temporal"]))
def test_flat_training_side_equals_the_training_lists(rows, method):
    """The Arrow training side (for the catalogue and baselines) is the lists gensim gets."""
    from item2vec.catalogue import build_catalogue, user_item_matrix

    table = build_sequences(_events(rows))
    split = temporal(table, 0.0001) if method == "temporal" else leave_last_out(table)
    flat = split.train_flat
    items = flat.items.to_pylist()
    as_lists = [items[a:b] for a, b in zip(flat.offsets[:-1], flat.offsets[1:], strict=True)]
    assert [s for s in as_lists if s] == split.train
    if not split.train:
        return
    from_lists, from_flat = build_catalogue(split.train), build_catalogue(flat)
    assert from_flat.item_ids.tolist() == from_lists.item_ids.tolist()
    assert from_flat.counts.tolist() == from_lists.counts.tolist()
    by_lists = user_item_matrix(split.train, from_lists).toarray()
    by_flat = user_item_matrix(flat, from_flat).toarray()
    assert by_flat[by_flat.any(axis=1)].tolist() == by_lists[by_lists.any(axis=1)].tolist()
