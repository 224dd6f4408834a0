"""The run flags are generated from the config models: names, types, help and layering."""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from item2vec.docstrings import docstring_parameters
from item2vec_flows.cli import build_parser, main
from item2vec_flows.cli_options import (
    DEFAULTS,
    EXPOSED_FIELDS,
    RUN_OPTIONS,
    argparse_keywords,
    config_from_args,
    first_sentence,
    plain_text,
)

#: The flags ``item2vec run`` had when they were still written out by hand, with the
#: config field each sets and the kind of value it reads. This is the contract: a
#: flag may be added on purpose, never lost or renamed by accident.
PREVIOUS_FLAGS: dict[str, tuple[str, str]] = {
    "--user-col": ("ingest.user_col", "str"),
    "--item-col": ("ingest.item_col", "str"),
    "--time-col": ("ingest.time_col", "str"),
    "--items": ("ingest.items_path", "str"),
    "--item-id-col": ("ingest.item_id_col", "str"),
    "--item-title-col": ("ingest.item_title_col", "str"),
    "--item-category-col": ("ingest.item_category_col", "str"),
    "--max-bad-fraction": ("ingest.max_bad_fraction", "float"),
    "--sep": ("ingest.sep", "str"),
    "--header": ("ingest.header", "bool"),
    "--columns": ("ingest.columns", "str list"),
    "--time-unit": ("ingest.time_unit", "str"),
    "--event-col": ("ingest.event_col", "str"),
    "--keep-events": ("ingest.keep_events", "str list"),
    "--weight-col": ("ingest.weight_col", "str"),
    "--min-weight": ("ingest.min_weight", "float"),
    "--drop-duplicates": ("ingest.drop_duplicates", "bool"),
    "--min-item-count": ("ingest.min_item_count", "int"),
    "--min-user-count": ("ingest.min_user_count", "int"),
    "--since": ("ingest.since", "day"),
    "--window-days": ("ingest.window_days", "int"),
    "--cache": ("ingest.cache", "bool"),
    "--cache-dir": ("ingest.cache_dir", "str"),
    "--always-hash": ("ingest.always_hash", "bool"),
    "--session-gap": ("sequences.session_gap", "str"),
    "--collapse-repeats": ("sequences.collapse_repeats", "bool"),
    "--min-length": ("sequences.min_length", "int"),
    "--max-length": ("sequences.max_length", "int"),
    "--write-sequences": ("sequences.write_sequences", "bool"),
    "--shuffle-partitions": ("sequences.shuffle_partitions", "int"),
    "--output": ("publish.output", "str"),
    "--model-name": ("publish.model_name", "str"),
    "--max-regression": ("publish.max_regression", "float"),
    "--min-stability": ("publish.min_stability", "float"),
    "--refit": ("publish.refit", "bool"),
    "--recommendations-n": ("publish.recommendations_n", "int"),
    "--keep": ("publish.keep", "int"),
    "--report": ("publish.report", "bool"),
    "--gate-margin": ("publish.gate_margin", "float"),
    "--neighbors-k": ("publish.neighbors_k", "int"),
    "--neighbors-scoring": ("publish.neighbors_scoring", "str"),
    "--sg": ("train.sg", "int"),
    "--vector-size": ("train.vector_size", "int"),
    "--window": ("train.window", "int"),
    "--negative": ("train.negative", "int"),
    "--ns-exponent": ("train.ns_exponent", "float"),
    "--sample": ("train.sample", "float"),
    "--epochs": ("train.epochs", "int"),
    "--min-count": ("train.min_count", "int"),
    "--seed": ("train.seed", "int"),
    "--workers": ("train.workers", "int"),
    "--context": ("train.context", "str"),
    "--basket-window": ("train.basket_window", "int"),
    "--max-set-size": ("train.max_set_size", "int"),
    "--corpus-file": ("train.corpus_file", "bool"),
    "--deterministic": ("train.deterministic", "bool"),
    "--warm-start": ("train.warm_start", "bool"),
    "--warm-epochs": ("train.warm_epochs", "int"),
    "--warm-data": ("train.warm_data", "str"),
    "--full-retrain-every": ("train.full_retrain_every", "int"),
    "--cold-start": ("train.cold_start", "bool"),
    "--train-resource": ("train.resource", "str"),
    "--scoring": ("evaluate.scoring", "str"),
    "--query-items": ("evaluate.query_items", "int"),
    "--query": ("evaluate.query", "str"),
    "--query-half-life": ("evaluate.query_half_life", "float"),
    "--knn-blend": ("evaluate.knn_blend", "float"),
    "--k": ("evaluate.k", "int list"),
    "--split": ("evaluate.split", "str"),
    "--test-days": ("evaluate.test_days", "float"),
    "--eval-users": ("evaluate.max_users", "int"),
    "--exclude-seen": ("evaluate.exclude_seen", "bool"),
}

#: Flags a value needs beside it to make a valid config (the sections' own rules).
COMPANIONS = {
    "ingest.keep_events": ["--event-col", "kind"],
    "ingest.min_weight": ["--weight-col", "rating"],
    "ingest.header": ["--columns", "user_id,item_id,timestamp"],
    "train.warm_start": ["--split", "temporal"],
    "train.cold_start": ["--items", "items.csv", "--item-category-col", "genres"],
}


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


def _generated_actions(command: str = "run") -> dict[str, argparse.Action]:
    """The parser's actions that set a config field, by dest (``section.field``)."""
    return {a.dest: a for a in _subparser(command)._actions if "." in a.dest}


def _kind(action: argparse.Action) -> str:
    if isinstance(action, argparse.BooleanOptionalAction):
        return "bool"
    return {"_str_list": "str list", "_int_list": "int list", "_iso_day": "day"}.get(
        action.type.__name__, action.type.__name__
    )


def _parse(*flags: str) -> Any:
    return config_from_args(build_parser().parse_args(["run", *flags]))


def _field(config: Any, dest: str) -> Any:
    section, name = dest.split(".")
    return getattr(getattr(config, section), name)


def _sample(action: argparse.Action, default: Any) -> tuple[str, Any]:
    """A flag text that differs from the default, and the value it must become."""
    if action.choices:
        value = next(choice for choice in action.choices if choice != default)
        return str(value), value
    kind = _kind(action)
    if kind == "int":
        value = 4 if default == 3 else 3
        return str(value), value
    if kind == "float":
        value = 0.25 if default == 0.5 else 0.5
        return str(value), value
    if kind == "str list":
        return "a, b", ["a", "b"]
    if kind == "int list":
        return "5,30", [5, 30]
    if kind == "day":
        return "2024-05-01", date(2024, 5, 1)
    # Valid for every string field: a session gap, a model name, a column or a path.
    return "30m", "30m"


def test_the_flag_set_is_the_previous_one():
    actions = _generated_actions()
    found = {action.option_strings[0]: (dest, _kind(action)) for dest, action in actions.items()}
    assert found == PREVIOUS_FLAGS


def test_every_exposed_field_has_a_flag_and_the_help_shows_them_all():
    actions = _generated_actions()
    for section, names in EXPOSED_FIELDS.items():
        model_fields = type(getattr(DEFAULTS, section)).model_fields
        for name in names:
            assert name in model_fields, f"{section}.{name} is not a config field"
            assert f"{section}.{name}" in actions
    help_text = _subparser("run").format_help()
    for option in RUN_OPTIONS:
        assert option.flag in help_text


@pytest.mark.parametrize("command", ["serve", "sweep"])
def test_serve_and_sweep_take_the_same_flags(command):
    assert _generated_actions(command).keys() == _generated_actions("run").keys()


def test_sweep_help_lists_the_run_flags(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--budget-minutes" in out and "--eval-users" in out and "(default: 16)" in out


@pytest.mark.parametrize("option", RUN_OPTIONS, ids=lambda option: option.flag)
def test_help_is_the_first_sentence_of_the_docstring_entry(option):
    action = _generated_actions()[option.dest]
    model = type(getattr(DEFAULTS, option.section))
    entry = docstring_parameters(model.__doc__ or "")[1][option.field].replace("``", "")
    default = getattr(getattr(DEFAULTS, option.section), option.field)
    if isinstance(action, argparse.BooleanOptionalAction):
        shown = "on" if default else "off"
    elif isinstance(default, list):
        shown = ",".join(map(str, default))
    else:
        shown = str(default)
    help_text = action.help.replace("%%", "%")
    sentence = help_text.removesuffix(f" (default: {shown})")
    assert sentence != help_text, f"{option.flag}: help must end with (default: {shown})"
    # The entry's opening, up to the first full stop that a space or the end follows
    # ("e.g." is no full stop).
    assert entry.startswith(sentence) and sentence.endswith("."), (option.flag, help_text)
    rest = entry[len(sentence) :]
    assert rest == "" or rest[0] == " ", (option.flag, rest)
    inner_stops = re.findall(r"(\S*[.!?])\s", sentence)
    assert set(inner_stops) <= {"(e.g.", "e.g."}, f"{option.flag}: more than a sentence"


def test_every_flag_has_its_own_help():
    sentences = [option.sentence for option in RUN_OPTIONS]
    shared = {sentence for sentence in sentences if sentences.count(sentence) > 1}
    assert shared == set(), "give each field its own first sentence in its docstring entry"


@pytest.mark.parametrize("option", RUN_OPTIONS, ids=lambda option: option.flag)
def test_every_flag_reaches_the_config_with_its_type(option):
    action = _generated_actions()[option.dest]
    default = _field(DEFAULTS, option.dest)
    companions = COMPANIONS.get(option.dest, [])
    if isinstance(action, argparse.BooleanOptionalAction):
        flags, expected = [f"--no-{option.flag[2:]}" if default else option.flag], not default
    else:
        text, expected = _sample(action, default)
        flags = [option.flag, text]
    value = _field(_parse(*flags, *companions), option.dest)
    assert value == expected and value != default, option.flag
    assert type(value) is type(expected), option.flag
    if isinstance(expected, list):
        assert [type(item) for item in value] == [type(item) for item in expected]


@pytest.mark.parametrize(
    "option",
    [o for o in RUN_OPTIONS if o.reading.get("action") is argparse.BooleanOptionalAction],
    ids=lambda option: option.flag,
)
def test_bool_flags_turn_on_and_off(option):
    companions = COMPANIONS.get(option.dest, [])
    on = _field(_parse(option.flag, *companions), option.dest)
    off = _field(_parse(f"--no-{option.flag[2:]}", *companions), option.dest)
    assert (on, off) == (True, False)


def test_unset_flags_leave_the_config_file_alone(tmp_path: Path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[ingest]\npaths = ["x.csv"]\ncache = false\n'
        "[train]\ndeterministic = true\nepochs = 3\n[evaluate]\nk = [5]\n"
    )
    args = build_parser().parse_args(["run", "--config", str(toml)])
    assert all(getattr(args, option.dest) is None for option in RUN_OPTIONS)
    config = config_from_args(args)
    assert (config.ingest.cache, config.train.deterministic) == (False, True)
    assert (config.train.epochs, config.evaluate.k) == (3, [5])


@pytest.mark.parametrize(
    "option", [o for o in RUN_OPTIONS if "choices" in o.reading], ids=lambda option: option.flag
)
def test_a_choice_field_refuses_other_values_naming_the_flag(option, capsys):
    bogus = "7" if option.reading["type"] is int else "bogus"
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", option.flag, bogus])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option.flag}: invalid choice: " in err
    for choice in option.reading["choices"]:
        assert repr(choice) in err


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("--k", "10,x", "expected comma-separated integers, got '10,x'"),
        ("--since", "2024-13-01", "expected a day as YYYY-MM-DD, got '2024-13-01'"),
    ],
)
def test_list_and_day_flags_keep_their_error_messages(flag, text, message, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", flag, text])
    assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_first_sentence_stops_at_a_full_stop_not_an_abbreviation_or_decimal():
    assert first_sentence("Types to keep (e.g. view). More.") == "Types to keep (e.g. view)."
    assert first_sentence("Share before failing. 0.05 catches it.") == "Share before failing."
    assert first_sentence("A threshold of 0.5 here") == "A threshold of 0.5 here"


def test_plain_text_drops_literal_and_role_markup():
    assert plain_text("see ``items_path`` and :func:`item2vec.split.sample`") == (
        "see items_path and item2vec.split.sample"
    )


def test_an_annotation_no_flag_reads_is_refused():
    with pytest.raises(TypeError, match="weights: no command-line flag reads"):
        argparse_keywords(dict[str, int], "weights")
