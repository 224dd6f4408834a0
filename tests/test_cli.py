import os
from pathlib import Path

import pytest

from item2vec_flows.cli import build_parser, main
from item2vec_flows.cli_common import EXIT_ERROR
from item2vec_flows.cli_options import config_from_args


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


def _assert_one_clear_line(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_explains_every_option_with_default(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--user-col",
        "--item-col",
        "--time-col",
        "--output",
        "--model-name",
        "--items",
        "--item-id-col",
        "--item-title-col",
        "--config",
        "--epochs",
    ):
        assert flag in out
    assert "(default: output)" in out
    assert "(default: user_id)" in out


def test_no_events_means_bundled_sample():
    """``run`` without a path runs the bundled MovieLens sample with its preset."""
    args = build_parser().parse_args(["run"])
    config = config_from_args(args)
    assert config.ingest.paths[0].endswith("ratings.csv")
    assert config.ingest.user_col == "userId"
    assert config.publish.model_name == "movielens"


def test_flags_override_config_file(tmp_path: Path):
    toml = tmp_path / "c.toml"
    toml.write_text('[ingest]\npaths = ["x.csv"]\nuser_col = "a"\n[train]\nepochs = 3\n')
    args = build_parser().parse_args(["run", "--config", str(toml), "--epochs", "4"])
    config = config_from_args(args)
    assert config.ingest.paths == ["x.csv"] and config.ingest.user_col == "a"
    assert config.train.epochs == 4


def test_eval_users_flag_and_its_default():
    assert config_from_args(build_parser().parse_args(["run"])).evaluate.max_users == 20_000
    args = build_parser().parse_args(["run", "--eval-users", "0"])
    assert config_from_args(args).evaluate.max_users == 0


def test_missing_column(capsys, tmp_path: Path):
    """A missing column is one error line naming the file, the columns there and the flag."""
    path = tmp_path / "log.csv"
    path.write_text("visitor,product,when\na,b,1\n")
    code, err = _run(capsys, "run", str(path), "--output", str(tmp_path / "out"))
    assert code == EXIT_ERROR
    _assert_one_clear_line(
        err, "'user_id' not found in log.csv", "visitor, product, when", "--user-col"
    )


def test_empty_file(capsys, tmp_path: Path):
    """An empty events file is one error line naming it."""
    path = tmp_path / "log.csv"
    path.write_text("")
    code, err = _run(capsys, "run", str(path))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "log.csv is empty")


def test_folder_of_empty_parts(capsys, tmp_path: Path):
    """A folder whose parts are all empty is one error line naming every part."""
    for name in ("part-0.csv", "part-1.csv"):
        (tmp_path / "days" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "days" / name).write_text("")
    code, err = _run(capsys, "run", str(tmp_path / "days"))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "all events files (", "part-0.csv", "part-1.csv", "are empty")


def test_nonexistent_path(capsys, tmp_path: Path):
    """A path that does not exist is one error line naming it."""
    code, err = _run(capsys, "run", str(tmp_path / "nope.csv"))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "nope.csv does not exist")


def test_invalid_flag_value_names_field(capsys):
    code, err = _run(capsys, "run", "--model-name", "../up")
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "publish.model_name")


def test_missing_items_title_column(capsys, tmp_path: Path):
    """An items file without the title column is one error line naming the flag."""
    events = tmp_path / "log.csv"
    events.write_text("user_id,item_id,timestamp\na,b,1\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,name\nb,Bee\n")
    code, err = _run(capsys, "run", str(events), "--items", str(items))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "'title' not found in items.csv", "--item-title-col")


@pytest.fixture
def published(tmp_path: Path) -> Path:
    from conftest import publish_small_model

    publish_small_model(tmp_path / "out", "shop")
    return tmp_path / "out"


def test_similar_recommend_versions(capsys, published: Path):
    """``similar``, ``recommend`` and ``versions`` answer from the published tables."""
    assert main(["similar", "a", "-k", "2", "--output", str(published)]) == 0
    out = capsys.readouterr().out
    assert "Alpha [a]" in out and out.count("\n") == 4
    assert main(["recommend", "u1", "--output", str(published)]) == 0
    out = capsys.readouterr().out
    assert "Gamma" in out and "Delta" in out
    assert main(["versions", "--output", str(published), "--model-name", "shop"]) == 0
    assert "<- LATEST" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["similar", "zzz"], "item 'zzz' is not in shop/"),
        (["recommend", "nobody"], "user 'nobody' has no recommendations"),
        (["similar", "a", "--model-name", "../x"], "model name '../x' is not allowed"),
        (["similar", "a", "--version", "20990101T000000Z-0000000"], "20990101T000000Z"),
    ],
)
def test_reader_errors_are_one_line(capsys, published: Path, argv, fragment):
    code, err = _run(capsys, *argv, "--output", str(published))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, fragment)


def test_the_cache_folder_is_never_taken_for_a_model(capsys, published: Path):
    """With OUTPUT/.cache beside the one model, the readers find that model on their own."""
    (published / ".cache" / "partitions").mkdir(parents=True)
    code, _ = _run(capsys, "versions", "--output", str(published))
    assert code == 0
    code, err = _run(capsys, "similar", "a", "-k", "2", "--output", str(published))
    assert code == 0, err
    (published / "second").mkdir()
    code, err = _run(capsys, "versions", "--output", str(published))
    assert code == EXIT_ERROR and "several models" in err and ".cache" not in err


#: What a reader must not load: each costs seconds to import (gensim 10-13 s once).
HEAVY_MODULES = ("gensim", "prefect", "matplotlib")
#: The reader commands start and answer in under this on 2 cores (median of 3 runs,
#: interpreter included), counted in CPU seconds of the command's process: on a
#: shared machine its wall time measures the neighbours too. Measured 0.6-0.7 s of
#: CPU (2.2-2.5 s of wall time at a load average of 10 on 2 cores; the wall time
#: is the CPU time on an idle one); the issue asks for 2 s.
READER_START_S = 2.0
READER_CALLS = {
    "similar": "from item2vec_flows.cli import main; main(['similar', 'a', '-k', '2', *where])",
    "recommend": "from item2vec_flows.cli import main; main(['recommend', 'u1', *where])",
    "versions": "from item2vec_flows.cli import main; main(['versions', *where])",
    "reader.load": "from item2vec.reader import load; load(where[1], 'shop').most_similar('a')",
}


@pytest.mark.parametrize("call", sorted(READER_CALLS))
def test_the_readers_load_nothing_heavy_and_start_in_under_two_seconds(published: Path, call):
    """``similar``, ``recommend``, ``versions`` and ``item2vec.reader.load``, each in a fresh
    interpreter as a user starts them: no gensim, Prefect or matplotlib, and quick."""
    import json
    import resource
    import statistics
    import subprocess
    import sys
    import time

    code = (
        "import json, sys\n"
        f"where = ['--output', {str(published)!r}]\n"
        f"{READER_CALLS[call]}\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    cpu, wall = [], []
    for _ in range(3):
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall.append(time.perf_counter() - started)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        assert json.loads(done.stdout.splitlines()[-1]) == [], done.stdout
    assert statistics.median(cpu) < READER_START_S, f"CPU {cpu}, wall {wall}"


def test_reader_without_any_run(capsys, tmp_path: Path):
    """``versions`` before any run says to run ``item2vec run`` first."""
    code, err = _run(capsys, "versions", "--output", str(tmp_path / "none"))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "run `item2vec run` first")


def test_synth_command_writes_log_and_truth(capsys, tmp_path: Path):
    out = tmp_path / "new" / "log.parquet"
    assert (
        main(
            [
                "synth",
                "--events",
                "3000",
                "--users",
                "100",
                "--items",
                "50",
                "--clusters",
                "5",
                "--out",
                str(out),
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert out.is_file() and (tmp_path / "new" / "log.clusters.csv").is_file()
    assert '"events": 3000' in capsys.readouterr().out
    code, err = _run(
        capsys,
        "synth",
        "--events",
        "10",
        "--users",
        "100",
        "--items",
        "5",
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "users")


def test_quiet_and_verbose_set_log_levels(monkeypatch):
    import logging

    from item2vec_flows.cli_common import set_verbosity

    logger = logging.getLogger("item2vec")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    gensim_logger = logging.getLogger("gensim")
    monkeypatch.setattr(gensim_logger, "level", gensim_logger.level)  # restored afterwards
    monkeypatch.delenv("PREFECT_LOGGING_LEVEL", raising=False)
    set_verbosity(quiet=True, verbose=False)
    assert logger.level == logging.WARNING
    import os

    assert os.environ["PREFECT_LOGGING_LEVEL"] == "WARNING"
    monkeypatch.delenv("PREFECT_LOGGING_LEVEL")
    set_verbosity(quiet=False, verbose=True)
    assert logger.level == logging.DEBUG
    assert "PREFECT_LOGGING_LEVEL" not in os.environ


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--quiet", "--verbose"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--epochs", "100000"], "train.epochs"),
        (["--model-name", ".."], "model_name"),
        (["--k", "5"], "primary_metric 'hr@10' is never computed"),
    ],
)
def test_run_refuses_late_failing_settings_before_any_work(tmp_path, capsys, flags, fragment):
    """One error line and no output folder: the refusal comes before ingest or training."""
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\na,b,1\n")
    output = tmp_path / "out"
    code, err = _run(capsys, "run", str(events), "--output", str(output), *flags)
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, fragment)
    assert not output.exists()


def test_a_csv_field_over_a_megabyte_is_read(tmp_path):
    """One 3 MB field (a JSON payload column) no longer trips Arrow's 1 MB block size."""
    from item2vec.config import IngestConfig
    from item2vec.ingest import read_events

    path = tmp_path / "e.csv"
    payload = "x" * 3_000_000
    path.write_text(f"u,i,t,payload\na,x,1600000000,{payload}\nb,y,1600000001,small\n")
    config = IngestConfig(paths=[str(path)], user_col="u", item_col="i", time_col="t")
    assert read_events(config).frame["item_id"].tolist() == ["x", "y"]


def test_the_embedded_server_logs_only_critical_records_unless_debug(monkeypatch):
    """Without --debug the temporary Prefect server inherits a CRITICAL log level, so its
    shutdown noise (CancelledError tracebacks of a busy shared database) never shows."""
    import item2vec_flows.cli as cli

    monkeypatch.delenv("PREFECT_SERVER_LOGGING_LEVEL", raising=False)
    cli.quiet_embedded_server(debug=False)
    assert os.environ["PREFECT_SERVER_LOGGING_LEVEL"] == "CRITICAL"
    monkeypatch.delenv("PREFECT_SERVER_LOGGING_LEVEL")
    cli.quiet_embedded_server(debug=True)
    assert "PREFECT_SERVER_LOGGING_LEVEL" not in os.environ
    monkeypatch.setenv("PREFECT_SERVER_LOGGING_LEVEL", "INFO")
    cli.quiet_embedded_server(debug=False)
    assert os.environ["PREFECT_SERVER_LOGGING_LEVEL"] == "INFO"  # the user's own value wins


def test_prefect_drops_server_errors_below_the_server_logging_level(tmp_path):
    """What the server process does with that level: its task-run recorder's ERROR record
    with a CancelledError traceback prints nothing."""
    import subprocess
    import sys

    code = (
        "import asyncio, logging\n"
        "from prefect.logging.configuration import setup_logging\n"
        "setup_logging()\n"
        "try:\n    raise asyncio.CancelledError('cancel scope')\n"
        "except BaseException:\n"
        "    logging.getLogger('prefect.server.services.task_run_recorder')"
        ".error('Error flushing 1 events', exc_info=True)\n"
    )
    env = {**os.environ, "PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL"}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    env["PREFECT_SERVER_LOGGING_LEVEL"] = "WARNING"
    loud = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "Traceback" in loud.stderr  # the check can fail: the record does print by default
    assert quiet.stderr == "" and quiet.returncode == 0


def test_a_failures_prefect_records_are_kept_from_the_console_others_are_not():
    """The task's exception record and the failed-state records quoting it are dropped;
    an unrelated error stays, and a warning keeps its text without the traceback."""
    import logging

    from item2vec.errors import InputError
    from item2vec_flows.cli_common import ExpectedErrorFilter

    def record(level: int, message: str, exc: BaseException | None = None) -> logging.LogRecord:
        info = (type(exc), exc, None) if exc else None
        return logging.LogRecord("prefect.task_runs", level, __file__, 1, message, (), info)

    error = InputError("column 'u' not found in e.csv; available: a, b; set user_col")
    keep = ExpectedErrorFilter()
    assert not keep.filter(
        record(logging.ERROR, f"Task run failed with exception: {error!r}", error)
    )
    assert not keep.filter(
        record(logging.ERROR, f"Finished in state Failed('InputError: {error}')")
    )
    assert keep.filter(record(logging.ERROR, "database is locked"))
    warning = record(logging.WARNING, "retrying", error)
    assert keep.filter(warning) and warning.exc_info is None


def test_debug_shows_the_traceback_behind_an_error(tmp_path):
    """--debug lets the error propagate, so Python prints its traceback."""
    from item2vec.errors import InputError

    with pytest.raises(InputError, match="no published model"):
        main(["similar", "a", "--output", str(tmp_path), "--debug"])
