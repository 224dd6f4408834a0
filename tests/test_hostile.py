"""A corpus of hostile inputs: every case ends cleanly, and nothing is misread in silence.

Each case is a small world (a log as text or Parquet, a folder, a config file, a
published tree someone tampered with) and a command line. Whatever the case, the
command must either succeed with its drops counted, or exit 1 or 2 with one
``error:`` line; never a traceback. Cases that succeed also state what must come
out (rows kept, drops by reason, dates, ids), so a misreading fails as loudly
as a crash.

The default suite checks every case up to the point where a run would start its
flow: arguments, config, input columns, then the ingest stage itself for data
cases (what ``item2vec run`` does first), and every command on a published tree.
The slow suite (``-m slow``) runs every case through the whole ``item2vec`` command.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from item2vec.errors import Item2VecError

USERS, PER_USER, ITEMS = 12, 5, 6
#: The first event's time; every planted time lies in the hour after it.
START = 1_600_000_000


def truth() -> pd.DataFrame:
    """A log every reader must read exactly: 12 users, 5 events each, in one hour."""
    rows = [
        (f"u{u:03d}", f"0{(u + e) % ITEMS}", START + 60 * (u * PER_USER + e))
        for u in range(USERS)
        for e in range(PER_USER)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def csv_text(frame: pd.DataFrame, sep: str = ",") -> str:
    return frame.to_csv(index=False, sep=sep)


def with_rows(times: list[object], frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The truth plus one extra row per time (user zzz), as text."""
    frame = (frame if frame is not None else truth()).astype({"timestamp": object})
    extra = pd.DataFrame(
        {"user_id": "zzz", "item_id": "00", "timestamp": times}, columns=frame.columns
    )
    return pd.concat([frame, extra], ignore_index=True)


def iso(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True).map(
        lambda t: t.isoformat()
    )
    return frame


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def truth_table(times: pa.Array | None = None, **columns: pa.Array) -> pa.Table:
    frame = truth()
    data = {
        "user_id": pa.array(frame["user_id"]),
        "item_id": pa.array(frame["item_id"]),
        "timestamp": times if times is not None else pa.array(frame["timestamp"]),
    }
    data.update(columns)
    return pa.table(data)


def native_times(extra: list, kind: pa.DataType) -> pa.Table:
    """The truth's times as a native column of ``kind``, plus rows at ``extra`` times."""
    import datetime as dt

    base = [dt.datetime.fromtimestamp(t, dt.UTC).replace(tzinfo=None) for t in truth()["timestamp"]]
    if pa.types.is_date(kind):
        base = [b.date() for b in base]
    frame = truth()
    n = len(extra)
    return pa.table(
        {
            "user_id": pa.array(list(frame["user_id"]) + ["zzz"] * n),
            "item_id": pa.array(list(frame["item_id"]) + ["00"] * n),
            "timestamp": pa.array(base + extra, kind),
        }
    )


@dataclass
class Case:
    """One hostile world and the command run on it.

    ``files`` maps a relative path to its bytes (or text); ``argv`` may name
    ``{d}``, the case's folder. ``drops`` and ``kept`` are what a successful run
    must count; ``error`` is a fragment its one error line must hold (None: the
    case must succeed). ``check`` looks at the ingested frame for misreadings.
    """

    name: str
    argv: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    error: str | None = None
    drops: dict[str, int] = field(default_factory=dict)
    kept: int | None = None
    check: Callable[[pd.DataFrame], None] | None = None
    kind: str = "run"  # "run" reads a log; "tree" works on a published model
    setup: Callable[[Path], None] | None = None
    max_bad: float = 0.2


def run_case(name: str, text: str | bytes, error: str | None = None, **kw) -> Case:
    """A run over one log file ``events.<ext>`` (the extension from the name's suffix)."""
    ext = kw.pop("ext", "csv")
    extra = kw.pop("flags", [])
    return Case(name, ["run", f"{{d}}/events.{ext}", *extra], {f"events.{ext}": text}, error, **kw)


def times_within(frame: pd.DataFrame) -> None:
    """No time was misread: each lies in the truth's hour."""
    low = pd.Timestamp(START, unit="s", tz="UTC")
    assert frame["ts"].min() >= low and frame["ts"].max() <= low + pd.Timedelta(hours=2), (
        frame["ts"].min(),
        frame["ts"].max(),
    )


def ids_exact(frame: pd.DataFrame) -> None:
    """Ids come back as the exact text of the truth (leading zeros kept)."""
    known = set(truth()["item_id"]) | {"00"}
    assert set(frame["item_id"]) <= known, set(frame["item_id"]) - known
    times_within(frame)


N = USERS * PER_USER


def text_cases() -> list[Case]:
    t = truth()
    mixed = t.copy()
    mixed.loc[mixed.index % 3 == 0, "timestamp"] *= 1000  # a third in milliseconds
    three_units = t.copy()
    three_units.loc[three_units.index % 3 == 1, "timestamp"] *= 1000
    three_units.loc[three_units.index % 3 == 2, "timestamp"] *= 1_000_000
    quoted = t.copy()
    quoted.loc[0, "item_id"] = "0,1"
    quoted.loc[1, "item_id"] = 'say "0"'
    unicode = t.copy()
    unicode["user_id"] = unicode["user_id"] + "-ü☃"
    cases = [
        run_case("csv-good", csv_text(t), kept=N, check=ids_exact),
        run_case(
            "iso-9999", csv_text(with_rows(["9999-12-31"], iso(t))), drops={"bad_timestamp": 1}
        ),
        run_case(
            "iso-1600",
            csv_text(with_rows(["1600-01-01T00:00:00Z"], iso(t))),
            drops={"bad_timestamp": 1},
        ),
        run_case("epoch-year-3000", csv_text(with_rows([32503680000])), drops={"bad_timestamp": 1}),
        run_case(
            "epoch-negative-huge", csv_text(with_rows([-32503680000])), drops={"bad_timestamp": 1}
        ),
        run_case(
            "epoch-beyond-int64",
            csv_text(with_rows(["99999999999999999999999"])),
            drops={"bad_timestamp": 1},
        ),
        run_case(
            "epoch-nan-inf", csv_text(with_rows(["nan", "inf", "-inf"])), drops={"bad_timestamp": 3}
        ),
        run_case("epoch-empty-times", csv_text(with_rows(["", ""])), drops={"bad_timestamp": 2}),
        run_case(
            "epoch-float-text",
            csv_text(t.assign(timestamp=t["timestamp"].astype(float))),
            kept=N,
            check=times_within,
        ),
        run_case("mixed-seconds-milliseconds", csv_text(mixed), kept=N, check=times_within),
        run_case("mixed-three-units", csv_text(three_units), kept=N, check=times_within),
        run_case(
            "iso-mixed-offsets",
            csv_text(iso(t).assign(timestamp=lambda f: f["timestamp"].str.replace("+00:00", "Z"))),
            kept=N,
            check=times_within,
        ),
        run_case(
            "iso-date-only-sentinel",
            csv_text(with_rows(["2262-04-12"], iso(t))),
            drops={"bad_timestamp": 1},
        ),
        run_case("all-times-garbage", csv_text(t.assign(timestamp="soon")), error="bad_timestamp"),
        run_case(
            "half-users-null",
            csv_text(t.assign(user_id=np.where(t.index % 2, "", t["user_id"]))),
            error="null_user",
        ),
        run_case(
            "header-with-spaces",
            csv_text(t).replace("user_id,item_id,timestamp", "user_id, item_id , timestamp"),
            kept=N,
            check=ids_exact,
        ),
        run_case(
            "duplicated-time-header",
            csv_text(t.assign(extra=1)).replace(",extra", ",timestamp", 1),
            error="appears 2 times",
        ),
        run_case("bom-crlf", "\ufeff" + csv_text(t).replace("\n", "\r\n"), kept=N, check=ids_exact),
        run_case(
            "latin1-bytes",
            csv_text(unicode).encode("latin-1", "replace").replace(b"?", b"\xe9"),
            error="UTF-8",
        ),
        run_case("binary-garbage", bytes(range(256)) * 16, error="events.csv"),
        run_case("empty-file", "", error="empty"),
        run_case("header-only", "user_id,item_id,timestamp\n", error="no events"),
        run_case(
            "two-megabyte-field",
            csv_text(t.assign(payload=["x" * 2_000_000] + [""] * (N - 1))),
            kept=N,
            check=ids_exact,
        ),
        run_case("quoted-ids-with-commas", csv_text(quoted), kept=N),
        run_case("unicode-ids", csv_text(unicode), kept=N),
        run_case("tab-separated", csv_text(t, "\t"), kept=N, check=ids_exact, ext="tsv"),
        run_case("semicolon-separated", csv_text(t, ";"), kept=N, check=ids_exact),
        run_case("pipe-separated", csv_text(t, "|"), kept=N, check=ids_exact),
        run_case(
            "gzip", gzip.compress(csv_text(t).encode()), kept=N, check=ids_exact, ext="csv.gz"
        ),
        run_case(
            "gzip-truncated",
            gzip.compress(csv_text(t).encode())[:200],
            error="events.csv.gz",
            ext="csv.gz",
        ),
        run_case("ragged-rows", csv_text(t) + "a,b,1600000000,extra,fields\n", error="events.csv"),
        run_case("no-final-newline", csv_text(t).rstrip("\n"), kept=N),
        run_case("nul-in-id", csv_text(t).replace("u001", "u\x00001"), kept=N),
        run_case("one-user-only", csv_text(t.assign(user_id="same")), kept=N),
        run_case(
            "every-user-one-event",
            csv_text(t.assign(user_id=[f"v{n}" for n in range(N)])),
            error="leave-last-out",
        ),
        run_case("before-1970", csv_text(t.assign(timestamp=-t["timestamp"])), kept=N),
    ]
    # Whole-run cases: the split needs three events per user, and these pass ingest.
    for case in cases:
        if case.name in ("every-user-one-event",):
            case.kind = "run-only"
    return cases


def parquet_cases() -> list[Case]:
    import datetime as dt

    far = [dt.datetime(9999, 12, 31), dt.datetime(2999, 1, 1), dt.datetime(1600, 1, 1)]
    t = truth()
    mixed = t["timestamp"].to_numpy().copy()
    mixed[::2] *= 1000
    pq_case = lambda name, table, error=None, **kw: run_case(  # noqa: E731
        name,
        parquet_bytes(table) if isinstance(table, pa.Table) else table,
        error,
        ext="parquet",
        **kw,
    )
    dup = pa.Table.from_arrays(
        [
            pa.array(t["user_id"]),
            pa.array(t["item_id"]),
            pa.array(t["timestamp"]),
            pa.array(t["timestamp"]),
        ],
        names=["user_id", "item_id", "timestamp", "timestamp"],
    )
    good = parquet_bytes(truth_table())
    return [
        pq_case("parquet-good", truth_table(), kept=N, check=ids_exact),
        pq_case(
            "parquet-us-9999-2999-1600",
            native_times(far, pa.timestamp("us")),
            drops={"bad_timestamp": 3},
        ),
        pq_case(
            "parquet-ms-utc-far",
            native_times(far, pa.timestamp("ms", tz="UTC")),
            drops={"bad_timestamp": 3},
        ),
        pq_case(
            "parquet-date-far",
            native_times([f.date() for f in far], pa.date32()),
            drops={"bad_timestamp": 3},
        ),
        pq_case(
            "parquet-ns-native", native_times([], pa.timestamp("ns")), kept=N, check=times_within
        ),
        pq_case("parquet-mixed-units", truth_table(pa.array(mixed)), kept=N, check=times_within),
        pq_case(
            "parquet-float-ids",
            truth_table(user_id=pa.array(np.arange(N, dtype=float))),
            error="double",
        ),
        pq_case("parquet-int-ids", truth_table(item_id=pa.array(np.arange(N) % ITEMS)), kept=N),
        pq_case(
            "parquet-dictionary-ids",
            truth_table(item_id=pa.array(t["item_id"]).dictionary_encode()),
            kept=N,
            check=ids_exact,
        ),
        pq_case(
            "parquet-large-string-ids",
            truth_table(item_id=pa.array(t["item_id"], pa.large_string())),
            kept=N,
            check=ids_exact,
        ),
        pq_case(
            "parquet-null-times",
            truth_table(pa.array([None, *t["timestamp"][1:]], pa.int64())),
            drops={"bad_timestamp": 1},
            kept=N - 1,
        ),
        pq_case(
            "parquet-uint64-huge-times",
            truth_table(pa.array([2**63 + 5, *t["timestamp"][1:]], pa.uint64())),
            drops={"bad_timestamp": 1},
            kept=N - 1,
        ),
        pq_case("parquet-duplicate-column", dup, error="appears 2 times"),
        pq_case("parquet-truncated", good[: len(good) // 2], error="Parquet"),
        pq_case("parquet-zero-rows", truth_table().slice(0, 0), error="no events"),
        pq_case(
            "parquet-missing-column",
            truth_table().drop_columns(["timestamp"]),
            error="'timestamp' not found",
        ),
        pq_case(
            "parquet-string-times-far",
            truth_table(pa.array(["9999-12-31"] + list(iso(t)["timestamp"][1:]))),
            drops={"bad_timestamp": 1},
            kept=N - 1,
        ),
    ]


def folder_cases() -> list[Case]:
    t = truth()
    half = len(t) // 2
    parts = {"logs/day=1.csv": csv_text(t.iloc[:half]), "logs/day=2.csv": csv_text(t.iloc[half:])}
    return [
        Case(
            "folder-with-empty-parts", ["run", "{d}/logs"], {**parts, "logs/day=3.csv": ""}, kept=N
        ),
        Case(
            "folder-only-empty-parts",
            ["run", "{d}/logs"],
            {"logs/a.csv": "", "logs/b.csv": ""},
            error="empty",
        ),
        Case(
            "folder-hidden-and-notes",
            ["run", "{d}/logs"],
            {**parts, "logs/.x.csv": "junk", "logs/README.md": "hi"},
            kept=N,
        ),
        Case(
            "folder-corrupt-part",
            ["run", "{d}/logs"],
            {**parts, "logs/day=3.parquet": b"PAR1 broken"},
            error="day=3.parquet",
        ),
        Case("folder-empty", ["run", "{d}/logs"], {"logs/.keep": ""}, error="logs"),
        Case("glob-matching-nothing", ["run", "{d}/nothing-*.csv"], {}, error="nothing-"),
        Case("path-missing", ["run", "{d}/missing.csv"], {}, error="missing.csv"),
        Case(
            "folder-csv-and-parquet",
            ["run", "{d}/logs"],
            {
                "logs/a.csv": csv_text(t.iloc[:half]),
                "logs/b.parquet": parquet_bytes(
                    pa.Table.from_pandas(t.iloc[half:].astype(str), preserve_index=False)
                ),
            },
            kept=N,
            check=ids_exact,
        ),
    ]


def config_cases() -> list[Case]:
    log = {"events.csv": csv_text(truth())}

    def with_config(name: str, content: bytes | str, error: str) -> Case:
        return Case(
            name,
            ["run", "{d}/events.csv", "--config", "{d}/run.toml"],
            {**log, "run.toml": content},
            error,
        )

    return [
        with_config("config-binary", bytes(range(256)) * 4, "run.toml is not valid TOML"),
        with_config("config-nested", "a = " + "[" * 50_000, "run.toml is not valid TOML"),
        with_config(
            "config-utf16", "[train]\nepochs = 2\n".encode("utf-16"), "run.toml is not valid TOML"
        ),
        with_config("config-unknown-key", "[train]\nepochz = 2\n", "epochz"),
        with_config("config-wrong-type", '[train]\nepochs = "many"\n', "train.epochs"),
        with_config("config-epochs-huge", "[train]\nepochs = 100000\n", "train.epochs"),
        with_config(
            "config-bogus-metric", '[publish]\nprimary_metric = "accuracy"\n', "primary_metric"
        ),
        with_config("config-metric-never-computed", '[publish]\nprimary_metric = "hr@5"\n', "hr@5"),
        with_config("config-model-name-dotdot", '[publish]\nmodel_name = ".."\n', "model_name"),
        with_config("config-unknown-section", "[trian]\nepochs = 2\n", "trian"),
        Case(
            "config-is-a-folder",
            ["run", "{d}/events.csv", "--config", "{d}"],
            log,
            "does not exist",
        ),
        Case(
            "config-missing",
            ["run", "{d}/events.csv", "--config", "{d}/nope.toml"],
            log,
            "nope.toml",
        ),
    ]


def flag_cases() -> list[Case]:
    log = {"events.csv": csv_text(truth())}
    items_dup = "item_id,title\n00,Zero\n01,One\n00,Again\n"

    def flags(
        name: str, extra: list[str], error: str | None, files: dict | None = None, **kw
    ) -> Case:
        return Case(name, ["run", "{d}/events.csv", *extra], {**log, **(files or {})}, error, **kw)

    return [
        flags("flag-epochs-zero", ["--epochs", "0"], "train.epochs"),
        flags("flag-epochs-huge", ["--epochs", "100000"], "train.epochs"),
        flags("flag-epochs-text", ["--epochs", "ten"], "--epochs"),
        flags("flag-k-zero", ["--k", "0"], "k"),
        flags("flag-sg-two", ["--sg", "2"], "--sg"),
        flags("flag-model-name-traversal", ["--model-name", "../x"], "model_name"),
        flags("flag-model-name-dotdot", ["--model-name", ".."], "model_name"),
        flags("flag-bad-fraction-two", ["--max-bad-fraction", "2"], "max_bad_fraction"),
        flags("flag-time-unit-weeks", ["--time-unit", "weeks"], "--time-unit"),
        flags("flag-since-and-window", ["--since", "2020-01-01", "--window-days", "3"], "not both"),
        flags("flag-vector-size-huge", ["--vector-size", "100000"], "vector_size"),
        flags("flag-unknown", ["--frobnicate"], "--frobnicate"),
        flags("flag-keep-zero", ["--keep", "0"], "keep"),
        flags("flag-items-missing", ["--items", "{d}/nope.csv"], "nope.csv"),
        flags(
            "flag-items-binary",
            ["--items", "{d}/items.csv"],
            "items.csv",
            {"items.csv": bytes(range(256)) * 4},
        ),
        flags(
            "flag-items-duplicate-ids",
            ["--items", "{d}/items.csv"],
            None,
            {"items.csv": items_dup},
            kept=N,
        ),
        flags("flag-user-col-missing", ["--user-col", "visitor"], "'visitor' not found"),
        flags("flag-primary-metric-cutoff", ["--k", "5"], "hr@10"),
    ]


def _tamper(action: Callable[[Path], None]) -> Callable[[Path], None]:
    """Publish a small model under ``{d}/out/m``, then let ``action`` damage its tree."""

    def setup(root: Path) -> None:
        from conftest import publish_small_model

        version = publish_small_model(root / "out", "m")
        action(version)

    return setup


def _write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def action(version: Path) -> None:
        path = version / name if not name.startswith("../") else version.parent / name[3:]
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return action


def _link_latest(version: Path) -> None:
    secret = version.parent.parent.parent / "secret.txt"
    secret.write_text("top-secret-content\n")
    (version.parent / "LATEST").unlink()
    (version.parent / "LATEST").symlink_to(secret)


def _link_lock(version: Path) -> None:
    outside = version.parent.parent.parent / "outside.txt"
    outside.write_text("keep\n")
    (version.parent / ".lock").unlink(missing_ok=True)
    (version.parent / ".lock").symlink_to(outside)


def tree_cases() -> list[Case]:
    out = ["--output", "{d}/out", "--model-name", "m"]
    nested = "[" * 100_000 + "]" * 100_000
    wrong_recs = parquet_bytes(pa.table({"user_id": [1], "rank": [1]}))
    no_rank = parquet_bytes(pa.table({"item_id": ["a"], "neighbor_id": ["b"]}))
    readers = ("similar", "recommend")
    # damage -> (what it does, a fragment of the error, the commands that must refuse)
    damages = {
        "nested-manifest": (
            _write("manifest.json", nested),
            "nested too deeply",
            (*readers, "report"),
        ),
        "manifest-a-list": (
            _write("manifest.json", "[1, 2]"),
            "manifest.json",
            (*readers, "report"),
        ),
        "binary-latest": (_write("../LATEST", bytes(range(256))), "LATEST", readers),
        "ten-megabyte-latest": (_write("../LATEST", b"v" * (10 << 20)), "LATEST", readers),
        "latest-symlink": (_link_latest, "symbolic link", readers),
        "latest-dotdot": (_write("../LATEST", "..\n"), "LATEST", readers),
        "latest-missing-version": (
            _write("../LATEST", "20200101T000000Z-abcdef0\n"),
            "not found",
            readers,
        ),
        "recommendations-wrong-schema": (
            _write("user_recommendations.parquet", wrong_recs),
            "user_id",
            ("recommend",),
        ),
        "neighbours-wrong-schema": (_write("item_neighbors.parquet", no_rank), "rank", readers),
        "vectors-truncated": (
            _write("item_vectors.parquet", b"PAR1 truncated"),
            "item_vectors.parquet",
            (*readers, "report"),
        ),
    }
    commands = {
        "similar": ["similar", "a", *out],
        "recommend": ["recommend", "u1", *out],
        "versions": ["versions", *out],
        "report": ["report", "{v}", "--out", "{d}/report"],
    }
    cases = []
    for damage, (action, fragment, refusing) in damages.items():
        for command, argv in commands.items():
            error = fragment if command in refusing else None
            cases.append(
                Case(
                    f"tree-{damage}-{command}", argv, {}, error, kind="tree", setup=_tamper(action)
                )
            )
    log = {"events.csv": csv_text(truth())}
    for damage, action in {"lock-symlink": _link_lock, "latest-symlink": _link_latest}.items():
        cases.append(
            Case(
                f"tree-{damage}-run",
                ["run", "{d}/events.csv", *out],
                log,
                "symbolic link",
                kind="run-only",
                setup=_tamper(action),
            )
        )
    return cases


def all_cases() -> list[Case]:
    return [
        *text_cases(),
        *parquet_cases(),
        *folder_cases(),
        *config_cases(),
        *flag_cases(),
        *tree_cases(),
    ]


CASES = all_cases()


def _materialise(case: Case, root: Path) -> list[str]:
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    if case.setup is not None:
        case.setup(root)
    versions = [
        p for p in (root / "out" / "m").glob("*") if p.is_dir() and not p.name.startswith(".")
    ]
    version = str(versions[0]) if versions else ""
    return [part.replace("{d}", str(root)).replace("{v}", version) for part in case.argv]


def _one_error_line(err: str, code: int, case: Case) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert code in (1, 2), (code, err[-2000:])
    # Ours ("error: ...") or argparse's ("item2vec run: error: ..."), and no ERROR record.
    errors = [line for line in err.splitlines() if re.match(r"(item2vec[\w ]*: )?error: ", line)]
    assert len(errors) == 1, err[-2000:]
    assert "| ERROR" not in err, err[-2000:]
    assert "top-secret" not in err
    if case.error:
        assert case.error in errors[0], (case.error, errors[0])


def _until_the_flow(
    case: Case, argv: list[str], capsys
) -> tuple[int, str, pd.DataFrame | None, dict]:
    """What ``item2vec run`` does before its flow starts, then the ingest stage itself."""
    from item2vec.ingest import read_events
    from item2vec_flows.cli import build_parser
    from item2vec_flows.cli_options import config_from_args
    from item2vec_flows.cli_run import validate_inputs

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code), capsys.readouterr().err, None, {}
    try:
        config = config_from_args(args)
        validate_inputs(config)
        events = read_events(config.ingest.model_copy(update={"max_bad_fraction": case.max_bad}))
    except Item2VecError as exc:
        return 1, f"error: {exc}\n", None, {}
    return 0, capsys.readouterr().err, events.frame, events.counts


def _assert_counted(case: Case, counts: dict, frame: pd.DataFrame | None) -> None:
    dropped = counts.get("dropped", {})
    for reason, rows in case.drops.items():
        assert dropped.get(reason) == rows, (reason, dropped)
    if case.kept is not None:
        assert counts["events_kept"] == case.kept, counts
    elif case.drops:
        assert counts["events_kept"] == N, counts
    if case.check is not None and frame is not None:
        case.check(frame)


def test_the_corpus_is_large_and_covers_every_kind_of_input():
    """At least 100 cases: text, Parquet, folders, configs, flags and published trees."""
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and len(names) >= 100
    for prefix in ("csv-", "parquet-", "folder-", "config-", "flag-", "tree-"):
        assert any(name.startswith(prefix) for name in names), prefix


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "run"], ids=lambda c: c.name)
def test_a_hostile_input_is_counted_or_refused_in_one_line(case: Case, tmp_path, capsys):
    """Up to the flow: counted drops and the truth read back, or one error line."""
    argv = _materialise(case, tmp_path)
    code, err, frame, counts = _until_the_flow(case, argv, capsys)
    if case.error is None:
        assert code == 0, err
        assert "Traceback" not in err
        _assert_counted(case, counts, frame)
    else:
        _one_error_line(err, code, case)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "tree"], ids=lambda c: c.name)
def test_a_tampered_tree_is_one_error_line_never_its_content(case: Case, tmp_path, capsys):
    """similar, recommend, versions and report on a damaged tree: one line, no traceback."""
    from item2vec_flows.cli import main

    argv = _materialise(case, tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    _assert_tree_outcome(case, code, captured.out, captured.err)


def _assert_tree_outcome(case: Case, code: int, out: str, err: str) -> None:
    assert "top-secret" not in out + err
    if case.error is None and code == 0:  # a command that does not read the damaged file
        assert "Traceback" not in err
        return
    _one_error_line(err, code, case)


@pytest.mark.slow
@pytest.mark.flows
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_hostile_case_through_the_whole_command(case: Case, tmp_path, capfd, prefect_harness):
    """The whole ``item2vec`` command, flow included: exit 0 with the drops in the
    manifest, or exit 1 or 2 with one error line; never a traceback."""
    from item2vec_flows.cli import main

    argv = _materialise(case, tmp_path)
    if argv[0] == "run":
        # Small and quick, where the case does not set the flag itself.
        defaults = {"--output": str(tmp_path / "out"), "--min-count": "1"}
        defaults |= {"--max-bad-fraction": str(case.max_bad)}
        if "--config" not in argv:  # flags would override what the config file tries
            defaults |= {"--model-name": "m", "--epochs": "1"}
        for flag, value in defaults.items():
            if flag not in argv:
                argv += [flag, value]
        argv += ["--no-report", "--quiet"]
    _console_to_this_test()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code)
    captured = capfd.readouterr()
    err = captured.err
    if case.kind == "tree":
        _assert_tree_outcome(case, code, captured.out, err)
    elif case.error is None:
        assert code in (0, 3), err[-3000:]  # 3: published, but the gate refused LATEST
        assert "Traceback" not in err, err[-3000:]
        [version] = [
            p
            for p in (tmp_path / "out" / "m").iterdir()
            if not p.name.startswith(".") and p.is_dir()
        ]
        counts = json.loads((version / "manifest.json").read_text())["counts"]
        _assert_counted(case, counts, None)
    else:
        _one_error_line(err, code, case)


def _console_to_this_test() -> None:
    """Point the log handlers Prefect set up at this test's stderr.

    They keep the stream of the test that first imported Prefect, which pytest
    closes after it: the next run's log lines would fail to write.
    """
    import logging
    import sys

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if hasattr(handler, "console"):
                handler.console.file = sys.stderr
            elif type(handler) is logging.StreamHandler:
                handler.setStream(sys.stderr)
