from pathlib import Path

import pytest

from item2vec.cli import EXIT_ERROR, build_parser, config_from_args, main


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


def test_missing_column(capsys, tmp_path: Path):
    path = tmp_path / "log.csv"
    path.write_text("visitor,product,when\na,b,1\n")
    code, err = _run(capsys, "run", str(path), "--output", str(tmp_path / "out"))
    assert code == EXIT_ERROR
    _assert_one_clear_line(
        err, "'user_id' not found in log.csv", "visitor, product, when", "--user-col"
    )


def test_empty_file(capsys, tmp_path: Path):
    path = tmp_path / "log.csv"
    path.write_text("")
    code, err = _run(capsys, "run", str(path))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "log.csv is empty")


def test_nonexistent_path(capsys, tmp_path: Path):
    code, err = _run(capsys, "run", str(tmp_path / "nope.csv"))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "nope.csv does not exist")


def test_invalid_flag_value_names_field(capsys):
    code, err = _run(capsys, "run", "--model-name", "../up")
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "publish.model_name")


def test_missing_items_title_column(capsys, tmp_path: Path):
    events = tmp_path / "log.csv"
    events.write_text("user_id,item_id,timestamp\na,b,1\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,name\nb,Bee\n")
    code, err = _run(capsys, "run", str(events), "--items", str(items))
    assert code == EXIT_ERROR
    _assert_one_clear_line(err, "'title' not found in items.csv", "--item-title-col")
