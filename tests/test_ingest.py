import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from item2vec.config import IngestConfig
from item2vec.errors import InputError
from item2vec.ingest import read_events
from item2vec.items import read_items


def _config(path: Path, **overrides) -> IngestConfig:
    return IngestConfig(paths=[str(path)], user_col="u", item_col="i", time_col="t", **overrides)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_ids_stay_exact_strings(tmp_path: Path):
    path = _write(
        tmp_path / "e.csv",
        'u,i,t\n007,00123,1600000000\n007,"a,b",1600000001\n7,17850.0,1600000002\nüser,☃,1600000003\n',
    )
    frame = read_events(_config(path)).frame
    assert frame["user_id"].tolist() == ["007", "007", "7", "üser"]
    assert frame["item_id"].tolist() == ["00123", "a,b", "17850.0", "☃"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1600000000", "2020-09-13T12:26:40Z"),
        ("1600000000000", "2020-09-13T12:26:40Z"),
        ("2020-09-13T12:26:40Z", "2020-09-13T12:26:40Z"),
        ("2020-09-13 14:26:40+02:00", "2020-09-13T12:26:40Z"),
        ("2020-09-13 12:26:40", "2020-09-13T12:26:40Z"),
    ],
)
def test_timestamp_formats_normalise_to_utc(tmp_path: Path, raw: str, expected: str):
    path = _write(tmp_path / "e.csv", f"u,i,t\na,x,{raw}\n")
    ts = read_events(_config(path)).frame["ts"].iloc[0]
    assert ts == pd.Timestamp(expected)


def test_gzip_and_tab_separated(tmp_path: Path):
    """A gzipped tab-separated file is read like a CSV."""
    path = tmp_path / "e.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("u\ti\tt\na\tx\t1600000000\nb\ty\t1600000001\n")
    assert len(read_events(_config(path)).frame) == 2


def test_parquet_with_integer_ids_and_native_times(tmp_path: Path):
    """Integer ids in Parquet become decimal strings; native times become UTC."""
    path = tmp_path / "e.parquet"
    table = pa.table(
        {
            "u": pa.array([1, 2], pa.int64()),
            "i": pa.array([10, 20], pa.int32()),
            "t": pa.array(pd.to_datetime(["2020-01-01", "2020-01-02"])),
        }
    )
    pq.write_table(table, path)
    frame = read_events(_config(path)).frame
    assert frame["user_id"].tolist() == ["1", "2"]
    assert frame["item_id"].tolist() == ["10", "20"]
    assert str(frame["ts"].dt.tz) == "UTC"


@pytest.mark.parametrize("scale, kind", [(1, pa.int32()), (1000, pa.int64())])
def test_parquet_integer_epochs_with_row_groups_beside_a_csv(tmp_path, scale, kind):
    """Integer epochs keep their unit until grouping scales them; a text file in
    the same run has nanoseconds. Every time and the order come out as from the
    plain definition."""
    rng = np.random.default_rng(3)
    seconds = 1_600_000_000 + rng.integers(0, 50, 400)
    users = rng.choice(["a", "b", "007", "ü"], 400)
    parquet = tmp_path / "part-1.parquet"
    table = pa.table(
        {"u": users, "i": rng.choice(["x", "y", "z"], 400), "t": pa.array(seconds * scale, kind)}
    )
    pq.write_table(table, parquet, row_group_size=64)  # several dictionaries per column
    _write(tmp_path / "part-2.csv", "u,i,t\nb,late,2030-01-01T00:00:00Z\n")
    config = IngestConfig(
        paths=[str(tmp_path)], user_col="u", item_col="i", time_col="t", drop_duplicates=False
    )
    frame = read_events(config).frame

    expected = pd.DataFrame(
        {
            "user_id": list(users) + ["b"],
            "item_id": table.column("i").to_pylist() + ["late"],
            "ts": list(pd.to_datetime(seconds, unit="s", utc=True))
            + [pd.Timestamp("2030-01-01", tz="UTC")],
        }
    )
    expected = expected.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)


def test_parquet_integer_epochs_out_of_range_or_null_are_counted(tmp_path: Path):
    path = tmp_path / "e.parquet"
    times = pa.array([1_600_000_000, None, 10**17, 1_600_000_001], pa.int64())
    pq.write_table(pa.table({"u": ["a", "a", "b", "b"], "i": ["x"] * 4, "t": times}), path)
    events = read_events(_config(path, time_unit="s", max_bad_fraction=0.6))
    assert events.counts["dropped"]["bad_timestamp"] == 2
    assert events.frame["ts"].tolist() == list(
        pd.to_datetime([1_600_000_000, 1_600_000_001], unit="s", utc=True)
    )


def test_float_ids_in_parquet_refused(tmp_path: Path):
    """Float ids in Parquet are refused, naming the file and the type."""
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"u": [1.0], "i": ["x"], "t": [1600000000]}), path)
    with pytest.raises(InputError, match="e.parquet.*float|double"):
        read_events(_config(path))


def test_bad_rows_counted_below_threshold(tmp_path: Path):
    """Below the allowed share, bad rows are dropped and counted by reason."""
    rows = [f"u{n % 5},i{n % 7},{1600000000 + n}" for n in range(98)]
    rows += ["u1,i1,not-a-time", ",i2,1600000000"]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(rows) + "\n")
    events = read_events(_config(path))
    assert events.counts["events_read"] == 100
    assert events.counts["events_kept"] == 98
    dropped = events.counts["dropped"]
    assert {k: dropped[k] for k in ("null_user", "null_item", "bad_timestamp")} == {
        "null_user": 1,
        "null_item": 0,
        "bad_timestamp": 1,
    }
    assert sum(dropped.values()) == 2


def test_unparseable_timestamps_fail_with_column_and_flag(tmp_path: Path):
    path = _write(tmp_path / "e.csv", "u,i,t\na,x,yesterday\nb,y,tomorrow\nc,z,1600000000\n")
    with pytest.raises(InputError) as info:
        read_events(_config(path))
    message = str(info.value)
    assert "e.csv" in message and "'t'" in message and "--max-bad-fraction" in message
    assert "yesterday" in message


def test_missing_column_names_available_and_setting(tmp_path: Path):
    path = _write(tmp_path / "e.csv", "user,item,t\na,x,1\n")
    with pytest.raises(
        InputError, match=r"column 'u' not found in e.csv; available: user, item, t"
    ):
        read_events(_config(path))


def test_empty_file(tmp_path: Path):
    """An empty events file is an InputError naming it."""
    path = _write(tmp_path / "e.csv", "")
    with pytest.raises(InputError, match="e.csv is empty"):
        read_events(_config(path))


def test_header_only(tmp_path: Path):
    """A header without rows holds no events: an InputError."""
    path = _write(tmp_path / "e.csv", "u,i,t\n")
    with pytest.raises(InputError, match="holds no events"):
        read_events(_config(path))


def test_nonexistent_path(tmp_path: Path):
    """A path that does not exist is an InputError."""
    with pytest.raises(InputError, match="does not exist"):
        read_events(_config(tmp_path / "missing.csv"))


def test_binary_garbage_named_csv(tmp_path: Path):
    """Binary content in a .csv file is an InputError naming the file."""
    path = tmp_path / "e.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="e.csv"):
        read_events(_config(path))


def test_items_file_titles(tmp_path: Path):
    """The items file gives titles by item id, ids kept as strings; a missing column is named."""
    path = _write(tmp_path / "items.csv", "id,name,genre\n001,One,a\n2,Two,b\n")
    items = read_items(path, "id", "name")
    assert items["item_id"].tolist() == ["001", "2"]
    assert items["title"].tolist() == ["One", "Two"]
    with pytest.raises(InputError, match="column 'title' not found"):
        read_items(path, "id", "title")


def test_folder_of_daily_parts_and_glob(tmp_path: Path):
    """A folder reads its parts in path order, skipping hidden and other files; globs too."""
    folder = tmp_path / "days"
    folder.mkdir()
    _write(folder / "2026-01-02.csv", "u,i,t\nb,y,1600000100\n")
    _write(folder / "2026-01-01.csv", "u,i,t\na,x,1600000000\n")
    (folder / ".hidden.csv").write_text("u,i,t\nz,z,1\n")
    (folder / "notes.md").write_text("not events")
    events = read_events(_config(folder))
    assert events.frame["user_id"].tolist() == ["a", "b"]  # parts in path order
    assert [Path(f["path"]).name for f in events.files] == ["2026-01-01.csv", "2026-01-02.csv"]
    globbed = read_events(_config(Path(str(folder / "2026-01-0*.csv"))))
    assert len(globbed.frame) == 2
    with pytest.raises(InputError, match="matches no file"):
        read_events(_config(Path(str(folder / "1999-*.csv"))))


def _gzip(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return path


def test_spark_style_export_with_empty_parts(tmp_path: Path, caplog):
    # Spark's CSV writer: dt=... folders of headerless gzip parts, an empty part
    # for an empty partition, _SUCCESS markers and hidden .crc checksums.
    root = tmp_path / "clicks"
    _gzip(root / "dt=2024-01-01/part-00000-c000.csv.gz", "001;x;2024-01-01T10:00:00.250+01:00\n")
    _gzip(root / "dt=2024-01-01/part-00001-c000.csv.gz", "")
    (root / "dt=2024-01-01/_SUCCESS").write_bytes(b"")
    (root / "dt=2024-01-01/.part-00000-c000.csv.gz.crc").write_bytes(b"crc")
    _gzip(root / "dt=2024-01-02/part-00000-c000.csv.gz", "001;y;2024-01-02T09:00:00.000Z\n")
    config = _config(root, header=False, columns=["u", "i", "t"])
    with caplog.at_level("WARNING", logger="item2vec.discovery"):
        events = read_events(config)
    assert events.frame["item_id"].tolist() == ["x", "y"]
    assert events.frame["user_id"].tolist() == ["001", "001"]
    assert events.frame["ts"].iloc[0] == pd.Timestamp("2024-01-01T09:00:00.250Z")
    assert [Path(f["path"]).parent.name for f in events.files] == ["dt=2024-01-01", "dt=2024-01-02"]
    assert "part-00001-c000.csv.gz: the file is empty" in caplog.text


def test_only_empty_parts_is_an_error_naming_them(tmp_path: Path):
    _gzip(tmp_path / "days/a.csv.gz", "")
    _write(tmp_path / "days/b.csv", "")
    with pytest.raises(InputError, match=r"all events files \(.*a.csv.gz, .*b.csv\) are empty"):
        read_events(_config(tmp_path / "days"))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_excel_export_with_byte_order_mark_and_crlf(tmp_path: Path, suffix: str):
    # Excel's "CSV UTF-8" starts with a byte-order mark, which must not become
    # part of the first column's name.
    raw = "\ufeffu,i,t\r\na,x,1600000000\r\na,y,1600000001\r\n".encode()
    path = tmp_path / f"e{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    frame = read_events(_config(path)).frame
    assert frame["user_id"].tolist() == ["a", "a"]
    assert frame["item_id"].tolist() == ["x", "y"]


@pytest.mark.parametrize("rows_before", [0, 20_000])
def test_latin1_text_names_the_conversion(tmp_path: Path, rows_before: int):
    # Near the top the header reader fails; deep in the file, the CSV parser.
    rows = "".join(f"u{n},i{n},{1600000000 + n}\n" for n in range(rows_before))
    path = tmp_path / "e.csv"
    path.write_bytes(("u,i,t\n" + rows + "José,café,1600000000\n").encode("latin-1"))
    with pytest.raises(InputError, match=r"e\.csv.*iconv -f latin1 -t utf-8"):
        read_events(_config(path))


def test_headerless_with_columns(tmp_path: Path):
    """A headerless file is read with the given column names and separator."""
    path = _write(tmp_path / "e.csv", "a;x;1600000000\nb;y;1600000001\n")
    config = IngestConfig(
        paths=[str(path)],
        user_col="u",
        item_col="i",
        time_col="t",
        header=False,
        columns=["u", "i", "t"],
        sep=";",
    )
    assert read_events(config).frame["item_id"].tolist() == ["x", "y"]


def test_forced_time_unit(tmp_path: Path):
    """time_unit='ms' reads integer times as milliseconds."""
    path = _write(tmp_path / "e.csv", "u,i,t\na,x,1600000000000\n")
    ts = read_events(_config(path, time_unit="ms")).frame["ts"].iloc[0]
    assert ts == pd.Timestamp("2020-09-13T12:26:40Z")


def test_duplicates_among_tied_times_keep_input_order(tmp_path: Path):
    path = _write(
        tmp_path / "e.csv",
        "u,i,t\na,x,5\na,y,5\na,x,5\na,z,5\nb,x,5\na,y,5\na,x,6\n",
    )
    events = read_events(_config(path))
    assert events.counts["dropped"]["duplicate"] == 2
    frame = events.frame
    assert frame[frame["user_id"] == "a"]["item_id"].tolist() == ["x", "y", "z", "x"]


def test_event_weight_duplicate_and_support_filters(tmp_path: Path):
    """Event-type, weight, duplicate and support filters each drop and count rows."""
    rows = [
        "u,i,t,e,w",
        "a,x,1,view,5",
        "a,x,1,view,5",  # exact duplicate
        "a,y,2,cart,5",
        "a,z,3,view,1",  # low weight
        "b,x,4,view,4",
        "b,y,5,click,4",  # click filtered
        "c,q,6,view,5",  # q and c fall below support
    ]
    path = _write(tmp_path / "e.csv", "\n".join(rows) + "\n")
    config = _config(
        path,
        event_col="e",
        keep_events=["view", "cart"],
        weight_col="w",
        min_weight=4,
        min_item_count=2,
        min_user_count=1,
    )
    events = read_events(config)
    dropped = events.counts["dropped"]
    assert dropped["duplicate"] == 1 and dropped["low_weight"] == 1
    assert dropped["event_type"] == 1 and dropped["rare_item"] == 2
    assert sorted(zip(events.frame["user_id"], events.frame["item_id"], strict=True)) == [
        ("a", "x"),
        ("b", "x"),
    ]


def test_iterative_support_until_stable(tmp_path: Path):
    """Support filters repeat until no user or item is below its minimum."""
    # Dropping user c (1 event) makes item y rare, which then makes user b rare.
    rows = ["u,i,t", "a,x,1", "a,x,2", "b,y,3", "c,y,4", "a,w,5", "d,w,6"]
    path = _write(tmp_path / "e.csv", "\n".join(rows) + "\n")
    events = read_events(_config(path, min_item_count=2, min_user_count=2, drop_duplicates=False))
    assert set(events.frame["user_id"]) == {"a"}


def test_filters_leaving_nothing_say_which(tmp_path: Path):
    """Filters that leave nothing name the filter that dropped the rows and its flag."""
    path = _write(tmp_path / "e.csv", "u,i,t,e\na,x,1,click\n")
    with pytest.raises(InputError, match="event_type 1.*--keep-events"):
        read_events(_config(path, event_col="e", keep_events=["view"]))


def test_inconsistent_options_refused():
    from item2vec.config import build_config
    from item2vec.errors import ConfigError

    with pytest.raises(ConfigError, match="header=false needs columns"):
        build_config({"ingest": {"header": False}})
    with pytest.raises(ConfigError, match="keep_events needs event_col"):
        build_config({"ingest": {"keep_events": ["view"]}})


def test_half_the_user_ids_null_fails_naming_the_column(tmp_path: Path):
    rows = [f"{'' if n % 2 else 'u' + str(n)},i{n},{1600000000 + n}" for n in range(40)]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"50\.0% of rows .* null_user in column 'u'.*--user-col"):
        read_events(_config(path))


def test_two_percent_bad_timestamps_are_counted_not_fatal(tmp_path: Path):
    rows = [f"u{n % 7},i{n % 11},{1600000000 + n}" for n in range(98)] + ["a,b,x", "c,d,y"]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(rows) + "\n")
    events = read_events(_config(path))
    assert events.counts["dropped"]["bad_timestamp"] == 2
    assert events.counts["events_kept"] == 98


def test_one_broken_part_among_good_ones_is_named_in_a_warning(tmp_path: Path, caplog):
    logs = tmp_path / "logs"
    logs.mkdir()
    good = [f"u{n % 7},i{n % 11},{1600000000 + n}" for n in range(200)]
    _write(logs / "day-1.csv", "u,i,t\n" + "\n".join(good) + "\n")
    _write(logs / "day-2.csv", "u,i,t\nu1,i1,yesterday\nu2,i2,soon\nu3,i3,2020-09-13 12:26:40\n")
    with caplog.at_level("WARNING", logger="item2vec.validation"):
        events = read_events(_config(logs))
    # 2 bad of 203 rows is within the default 5%, so the run goes on...
    assert events.counts["dropped"]["bad_timestamp"] == 2
    # ...but the part where 2 of 3 rows are bad is named, with its column and examples.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "day-2.csv: 2 of its 3 rows" in warnings[0]
    assert "bad_timestamp in column 't'" in warnings[0] and "yesterday" in warnings[0]


def test_files_of_one_name_in_two_folders_each_warn_with_their_own_examples(tmp_path: Path, caplog):
    logs = tmp_path / "logs"
    good = [f"u{n % 7},i{n % 11},{1600000000 + n}" for n in range(400)]
    for day, bad in (("2020-09-13", "yesterday"), ("2020-09-14", "tomorrow")):
        (logs / f"date={day}").mkdir(parents=True)
        _write(logs / f"date={day}" / "part-0.csv", f"u,i,t\nu1,i1,{bad}\nu2,i2,{bad}-x\n")
    (logs / "date=2020-09-15").mkdir()
    _write(logs / "date=2020-09-15" / "part-0.csv", "u,i,t\n" + "\n".join(good) + "\n")
    with caplog.at_level("WARNING", logger="item2vec.validation"):
        read_events(_config(logs))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings
    for day, bad, other in (("13", "yesterday", "tomorrow"), ("14", "tomorrow", "yesterday")):
        (said,) = [w for w in warnings if f"date=2020-09-{day}" in w]
        assert bad in said and other not in said, said


def test_a_single_file_with_a_few_bad_rows_does_not_warn(tmp_path: Path, caplog):
    rows = [f"u{n % 7},i{n % 11},{1600000000 + n}" for n in range(98)] + ["a,b,x"]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="item2vec.validation"):
        read_events(_config(path))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_every_user_with_a_single_event_trains_but_has_no_test_case(tmp_path: Path):
    from item2vec.sequences import build_sequences
    from item2vec.split import leave_last_out

    rows = [f"u{n},i{n % 5},{1600000000 + n}" for n in range(30)]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(rows) + "\n")
    split = leave_last_out(build_sequences(read_events(_config(path)).frame))
    assert len(split.test) == 0 and len(split.train) == 30


def test_one_huge_user_among_ordinary_ones(tmp_path: Path):
    """A 100k-event user is cut to max_length; the other users keep every event."""
    from item2vec.config import SequenceConfig
    from item2vec.sequences import build_sequences

    bot = pd.DataFrame(
        {
            "u": "bot",
            "i": [f"i{n % 500}" for n in range(100_000)],
            "t": 1600000000 + np.arange(100_000),
        }
    )
    people = pd.DataFrame(
        {
            "u": [f"p{n % 50}" for n in range(500)],
            "i": [f"i{n % 40}" for n in range(500)],
            "t": 1600000000 + np.arange(500),
        }
    )
    path = tmp_path / "e.parquet"
    pd.concat([people, bot]).to_parquet(path)
    events = read_events(_config(path))
    table = build_sequences(events.frame, SequenceConfig(max_length=1_000))
    lengths = dict(
        zip(
            table.column("user_id").to_pylist(),
            [len(s) for s in table.column("items").to_pylist()],
            strict=True,
        )
    )
    assert lengths["bot"] == 1_000 and lengths["p0"] == 10
    assert dict(zip(*np.unique(list(lengths.values()), return_counts=True), strict=True))[10] == 50


def test_transient_errors_are_told_apart_from_bad_input():
    import errno

    from item2vec.readers import is_transient

    assert is_transient(OSError(errno.EIO, "io"))
    assert is_transient(OSError(errno.ESTALE, "nfs"))
    assert not is_transient(OSError(errno.ENOENT, "missing"))
    assert not is_transient(InputError("bad column"))
    assert not is_transient(ValueError("other"))


def _identity(size: int) -> np.ndarray:
    """Dictionary codes mapping each index to itself: ids already coded."""
    return np.arange(size, dtype=np.int32)


def _reference_order(users: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return np.lexsort((np.arange(len(users)), ts, users))


@pytest.mark.parametrize(
    "layout",
    ["time-ordered", "shuffled", "time-ordered blocks", "user spans blocks", "wide times"],
)
@pytest.mark.parametrize("n_users", [50, 70_000, 600_000])
def test_group_rows_is_a_stable_sort_whatever_the_layout(layout, n_users):
    from item2vec.grouping import CodedChunk, group_rows

    rng = np.random.default_rng(len(layout) + n_users)
    size = 200_000
    users = rng.integers(0, n_users, size).astype(np.int32)
    # Coarse times so that many (user, time) pairs tie and input order decides.
    ts = np.sort(rng.integers(0, 5_000, size)) * 1_000_000_000
    if layout == "shuffled":
        ts = rng.permutation(ts)
    elif layout in ("time-ordered blocks", "user spans blocks"):
        # Two blocks, each in time order; users are split between them...
        low = users < n_users // 2
        users, ts = np.r_[users[low], users[~low]], np.r_[ts[low], ts[~low]]
        if layout == "user spans blocks":
            # ...except one user whose late event sits in the first block.
            users[0], ts[0] = users[-1], ts[-1] + 1
    elif layout == "wide times":
        ts = ts * 1_000 + rng.integers(0, 1_000, size)
        ts[::2] = np.iinfo(np.int64).max // 2 - ts[::2]
    chunk = CodedChunk(
        users=users,
        user_codes=_identity(n_users),
        items=np.zeros(size, dtype=np.int32),
        item_codes=_identity(1),
        ts=ts,
        drop=np.zeros(size, dtype=np.int8),
    )
    grouped = group_rows([chunk], n_users)
    expected = _reference_order(users, ts)
    assert np.array_equal(grouped.position, expected)
    assert np.array_equal(grouped.ts, ts[expected])
    # Time-ordered input needs no user sorted apart.
    if layout in ("time-ordered", "time-ordered blocks"):
        assert grouped.reordered_users == 0


@pytest.mark.parametrize("chunk_sizes", [[1], [7, 0, 13], [3] * 40])
def test_group_rows_across_chunks_with_own_dictionaries(chunk_sizes):
    """Chunks that each code ids through their own dictionary, some rows dropped,
    across the two threads' shares: the same rows, order and codes as a plain sort."""
    from item2vec.grouping import CodedChunk, group_rows

    rng = np.random.default_rng(sum(chunk_sizes))
    scale = 2_000 // max(1, sum(chunk_sizes))
    sizes = [size * scale for size in chunk_sizes]
    n_users, n_items = 30, 12
    chunks, users, items, ts, drop = [], [], [], [], []
    for size in sizes:
        # A chunk's dictionary: a random subset of the run's codes, in random order.
        user_codes = rng.permutation(n_users)[: rng.integers(1, n_users + 1)].astype(np.int32)
        item_codes = rng.permutation(n_items)[: rng.integers(1, n_items + 1)].astype(np.int32)
        local_users = rng.integers(0, len(user_codes), size).astype(np.int16)
        local_items = rng.integers(0, len(item_codes), size).astype(np.int64)
        chunk_ts = rng.integers(0, 50, size).astype(np.int64)
        chunk_drop = (rng.random(size) < 0.2).astype(np.int8)
        chunks.append(
            CodedChunk(local_users, user_codes, local_items, item_codes, chunk_ts, chunk_drop)
        )
        users.append(user_codes[local_users])
        items.append(item_codes[local_items])
        ts.append(chunk_ts)
        drop.append(chunk_drop)
    users, items, ts, drop = (np.concatenate(a) for a in (users, items, ts, drop))
    kept = np.flatnonzero(drop == 0)
    expected = kept[_reference_order(users[kept], ts[kept])]

    grouped = group_rows(chunks, n_users)

    assert np.array_equal(grouped.position, expected)
    assert np.array_equal(grouped.users(), users[expected])
    assert np.array_equal(grouped.items, items[expected])
    assert np.array_equal(grouped.ts, ts[expected])
    assert np.array_equal(grouped.counts, np.bincount(users[kept], minlength=n_users))
    # Shuffled times: some users needed their own sort, and it was counted.
    assert grouped.reordered_users > 0
    without = group_rows(chunks, n_users, positions=False)
    assert without.position is None
    assert np.array_equal(without.items, grouped.items) and np.array_equal(without.ts, grouped.ts)


def test_group_rows_leaves_time_ordered_users_alone():
    from item2vec.grouping import CodedChunk, group_rows

    users = np.array([2, 0, 2, 1, 0], dtype=np.int32)
    chunk = CodedChunk(
        users, _identity(3), users, _identity(3), np.arange(5) * 10, np.zeros(5, np.int8)
    )
    grouped = group_rows([chunk], 3)
    assert grouped.reordered_users == 0
    assert grouped.position.tolist() == [1, 4, 3, 0, 2]


@given(hnp.arrays(np.int32, st.integers(0, 300), elements=st.integers(0, 40)))
@settings(max_examples=50, deadline=None)
def test_count_distinct_matches_unique(codes):
    from item2vec.grouping import count_distinct

    assert count_distinct(codes) == len(np.unique(codes))


@given(
    hnp.arrays(np.int32, st.integers(0, 200), elements=st.integers(0, 3)),
    st.integers(0, 2**31),
)
@settings(max_examples=50, deadline=None)
def test_tied_rows_are_the_rows_equal_to_their_predecessor(users, seed):
    from item2vec.grouping import tied_rows

    ts = np.random.default_rng(seed).integers(0, 3, len(users)).astype(np.int64)
    expected = [n for n in range(1, len(users)) if (users[n], ts[n]) == (users[n - 1], ts[n - 1])]
    assert tied_rows(users, ts).tolist() == expected


def test_a_bad_file_stops_the_hashing_of_the_files_after_it(tmp_path: Path, monkeypatch):
    import threading

    from item2vec import ingest

    folder = tmp_path / "days"
    folder.mkdir()
    for day in range(1, 6):
        _write(folder / f"2026-01-0{day}.csv", f"u,i,t\na,x,{1600000000 + day}\n")
    failed = threading.Event()
    hashed: list[str] = []
    real_fingerprint, real_read = ingest.fingerprint, ingest.read_partition

    def slow_fingerprint(paths):
        hashed.extend(path.name for path in paths)
        failed.wait(5)  # still hashing the first file when the reading fails
        return real_fingerprint(paths)

    def failing_read(path, config):
        failed.set()
        raise InputError(f"{path.name}: broken")

    monkeypatch.setattr(ingest, "fingerprint", slow_fingerprint)
    monkeypatch.setattr(ingest, "read_partition", failing_read)
    with pytest.raises(InputError, match="2026-01-01.csv: broken"):
        read_events(_config(folder))
    assert hashed == ["2026-01-01.csv"]

    monkeypatch.setattr(ingest, "read_partition", real_read)
    events = read_events(_config(folder))
    assert [Path(f["path"]).name for f in events.files] == [
        f"2026-01-0{d}.csv" for d in range(1, 6)
    ]
    assert events.files == real_fingerprint(sorted(folder.iterdir()))


def _good_rows(iso: bool, n: int = 40) -> list[str]:
    """``n`` valid rows from 2020-09-13T12:26:40Z on, as epoch seconds or ISO text."""
    times = pd.to_datetime([1600000000 + k for k in range(n)], unit="s", utc=True)
    return [
        f"u{k % 5},i{k % 7},{time.isoformat() if iso else 1600000000 + k}"
        for k, time in enumerate(times)
    ]


@pytest.mark.parametrize(
    "iso, sentinel",
    [
        (True, "9999-12-31"),
        (True, "9999-12-31T23:59:59Z"),
        (True, "1600-01-01"),
        (False, "32503680000"),
        (False, "-32503680000"),
        (False, "32503680000000.5"),
    ],
)
def test_an_out_of_range_time_in_text_is_dropped_and_counted(tmp_path, iso, sentinel):
    """A warehouse sentinel date (after 2262 or before 1677) is one counted drop, not a crash."""
    rows = _good_rows(iso) + [f"u9,i9,{sentinel}"]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(rows) + "\n")
    events = read_events(_config(path, max_bad_fraction=0.05))
    assert events.counts["dropped"]["bad_timestamp"] == 1
    assert events.counts["events_kept"] == 40
    assert events.frame["ts"].min() == pd.Timestamp(1600000000, unit="s", tz="UTC")


@pytest.mark.parametrize("kind", [pa.timestamp("us"), pa.timestamp("ms", tz="UTC"), pa.date32()])
def test_native_parquet_times_beyond_nanoseconds_are_dropped_and_counted(tmp_path, kind):
    """Parquet times in 9999, 2999 or 1600 are bad_timestamp drops with the raw value as example."""
    import datetime as dt

    good = [dt.datetime(2020, 1, 1, 0, 0, n) for n in range(40)]
    bad = [dt.datetime(9999, 12, 31), dt.datetime(2999, 1, 1), dt.datetime(1600, 1, 1)]
    if pa.types.is_date(kind):
        good = [g.date() + dt.timedelta(days=n) for n, g in enumerate(good)]
        bad = [b.date() for b in bad]
    path = tmp_path / "e.parquet"
    users = [f"u{n % 5}" for n in range(43)]
    pq.write_table(pa.table({"u": users, "i": ["x"] * 43, "t": pa.array(good + bad, kind)}), path)
    events = read_events(_config(path, max_bad_fraction=0.1))
    assert events.counts["dropped"]["bad_timestamp"] == 3
    assert events.counts["events_kept"] == 40
    with pytest.raises(InputError, match=r"bad_timestamp in column 't'.*9999"):
        read_events(_config(path, max_bad_fraction=0.01))


def test_epoch_seconds_and_milliseconds_mixed_in_one_column_are_read_per_value(tmp_path, caplog):
    """Seconds rows and milliseconds rows both land on their real dates, and a warning says so."""
    seconds = [f"u{k % 5},i{k},{1600000000 + k}" for k in range(6)]
    millis = [f"u{k % 5},j{k},{(1600000100 + k) * 1000}" for k in range(4)]
    path = _write(tmp_path / "e.csv", "u,i,t\n" + "\n".join(seconds + millis) + "\n")
    with caplog.at_level("WARNING"):
        frame = read_events(_config(path)).frame
    assert frame["ts"].min() >= pd.Timestamp("2020-09-13", tz="UTC")
    assert frame["ts"].max() <= pd.Timestamp("2020-09-14", tz="UTC")
    assert "e.csv" in caplog.text and "'t'" in caplog.text and "--time-unit" in caplog.text


def test_mixed_epoch_units_in_parquet_integers_are_read_per_value(tmp_path: Path):
    """The same per-value reading holds for native int64 epochs."""
    path = tmp_path / "e.parquet"
    times = [1600000000, 1600000001000, 1600000002, 1600000003000]
    pq.write_table(pa.table({"u": ["a"] * 4, "i": ["w", "x", "y", "z"], "t": times}), path)
    frame = read_events(_config(path)).frame
    expected = pd.to_datetime([1600000000 + k for k in range(4)], unit="s", utc=True)
    assert frame["ts"].tolist() == list(expected)


def test_a_required_column_named_twice_in_the_header_is_an_error_naming_it(tmp_path: Path):
    """Two columns called 't' would silently use the first; the run refuses and names it."""
    path = _write(tmp_path / "e.csv", "u,i,t,t\na,x,1600000000,1700000000\n")
    with pytest.raises(InputError, match=r"column 't' appears 2 times in e.csv.*rename"):
        read_events(_config(path))


def test_a_required_column_named_twice_in_a_parquet_schema_is_an_error(tmp_path: Path):
    """The same check holds for a Parquet file with a repeated column name."""
    path = tmp_path / "e.parquet"
    table = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array(["x"]), pa.array(["y"]), pa.array([1])],
        names=["u", "i", "i", "t"],
    )
    pq.write_table(table, path)
    with pytest.raises(InputError, match=r"column 'i' appears 2 times in e.parquet"):
        read_events(_config(path))


def test_a_header_with_spaces_after_the_commas_is_read_by_the_stripped_names(tmp_path: Path):
    """'u, i, t' names the columns u, i and t, both in the check and in the reading."""
    path = _write(tmp_path / "e.csv", "u, i, t\na,x,1600000000\nb,y,1600000001\n")
    frame = read_events(_config(path)).frame
    assert frame["item_id"].tolist() == ["x", "y"]


def test_duplicate_item_ids_in_the_items_file_warn_naming_them(tmp_path: Path, caplog):
    """The first title of a repeated id is kept, and a warning names the repeated ids."""
    path = _write(tmp_path / "items.csv", "id,name\n7,Seven\n8,Eight\n7,Other seven\n")
    with caplog.at_level("WARNING"):
        items = read_items(path, "id", "name")
    assert items["title"].tolist() == ["Seven", "Eight"]
    assert "items.csv" in caplog.text and "'7'" in caplog.text


def test_a_row_longer_than_the_large_block_is_one_error_naming_the_file(tmp_path, monkeypatch):
    """Past the second read's block size, the error names the file and the fix."""
    import item2vec.readers as readers

    monkeypatch.setattr(readers, "LONG_ROW", 1 << 20)
    path = _write(tmp_path / "e.csv", f"u,i,t,payload\na,x,1600000000,{'x' * 3_000_000}\n")
    with pytest.raises(InputError, match=r"a row of .*e\.csv is longer than 1 MB; drop or shorten"):
        read_events(_config(path))
