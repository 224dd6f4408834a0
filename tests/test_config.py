import re
from pathlib import Path

import pytest

from item2vec.config import PipelineConfig, build_config
from item2vec.config_file import read_toml
from item2vec.errors import ConfigError


def test_layers_later_wins_and_none_is_ignored():
    config = build_config(
        {"train": {"epochs": 7, "window": 3}},
        {"train": {"epochs": 9, "window": None}},
    )
    assert config.train.epochs == 9
    assert config.train.window == 3


def test_toml_file_round_trip(tmp_path: Path):
    """Settings in a TOML file reach the config (k comes out sorted)."""
    path = tmp_path / "c.toml"
    path.write_text('[ingest]\nuser_col = "visitor"\n[evaluate]\nk = [20, 5]\n')
    config = build_config(read_toml(path))
    assert config.ingest.user_col == "visitor"
    assert config.evaluate.k == [5, 20]


def test_unknown_key_is_refused_with_its_path():
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        build_config({"train": {"epoch": 3}})


def test_out_of_range_value_names_field():
    with pytest.raises(ConfigError, match=r"ingest\.max_bad_fraction"):
        build_config({"ingest": {"max_bad_fraction": 2}})


def test_unsafe_model_name_refused():
    with pytest.raises(ConfigError, match="model_name"):
        build_config({"publish": {"model_name": "../escape"}})


def test_no_negative_and_no_hs_refused():
    """negative=0 with hs=0 would train nothing, and is refused."""
    with pytest.raises(ConfigError, match="negative=0"):
        build_config({"train": {"negative": 0, "hs": 0}})


def test_missing_and_broken_toml(tmp_path: Path):
    """A missing or malformed TOML file is a ConfigError saying which."""
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nepochs = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(broken)


def test_train_fields_are_gensim_keywords():
    import inspect

    from gensim.models import Word2Vec

    from item2vec.train import OWN_FIELDS

    accepted = set(inspect.signature(Word2Vec.__init__).parameters)
    assert set(PipelineConfig().train.model_dump(exclude=OWN_FIELDS)) <= accepted


def test_every_setting_has_its_own_help_in_the_run_form():
    # Prefect renders this schema as the deployment's run form.
    from item2vec.config import PipelineConfig

    schema = PipelineConfig.model_json_schema()
    for section, definition in schema["$defs"].items():
        assert "Parameters" not in definition["description"], section
        undocumented = [
            name for name, field in definition["properties"].items() if not field.get("description")
        ]
        assert undocumented == [], f"{section}: document {undocumented} in its docstring"


def test_docstring_parameters_reads_wrapped_and_shared_entries():
    from item2vec.docstrings import docstring_parameters

    summary, fields = docstring_parameters(
        """Summary line.

        Parameters
        ----------
        a, b,
        c
            Shared text
            over two lines.
        d
            Own text.
        """
    )
    assert summary == "Summary line."
    assert fields == {
        "a": "Shared text over two lines.",
        "b": "Shared text over two lines.",
        "c": "Shared text over two lines.",
        "d": "Own text.",
    }


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b"a = " + b"[" * 100_000, b"\xff\xfe[train]\n"],
    ids=["binary", "nested", "utf16-bom"],
)
def test_a_config_file_that_is_not_toml_text_is_one_config_error(tmp_path: Path, content: bytes):
    """Binary bytes, absurd nesting or another encoding: ConfigError naming the file."""
    path = tmp_path / "run.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"run\.toml is not valid TOML"):
        read_toml(path)


def test_a_folder_given_as_config_is_one_config_error(tmp_path: Path):
    """--config pointing at a directory says so, instead of an IsADirectoryError."""
    with pytest.raises(ConfigError, match="does not exist|not a file"):
        read_toml(tmp_path)


@pytest.mark.parametrize(
    "layer, fragment",
    [
        ({"publish": {"model_name": ".."}}, "publish.model_name"),
        ({"publish": {"model_name": "."}}, "publish.model_name"),
        ({"publish": {"primary_metric": "accuracy"}}, "primary_metric 'accuracy'"),
        ({"publish": {"primary_metric": "hr@ten"}}, "primary_metric 'hr@ten'"),
        ({"train": {"epochs": 100_000}}, "train.epochs"),
    ],
)
def test_settings_that_would_fail_after_training_are_refused_by_the_config(layer, fragment):
    """'..' as model name, a metric never computed, 100,000 epochs: refused when built."""
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        build_config(layer)


def test_a_primary_metric_at_a_cutoff_never_evaluated_is_refused_before_training():
    """hr@5 with evaluate.k = [10, 20] would fail at the gate; the pre-flight check says so."""
    from item2vec.gate import check_primary_metric

    check_primary_metric(
        build_config({"evaluate": {"k": [5, 10]}, "publish": {"primary_metric": "ndcg@5"}})
    )
    with pytest.raises(ConfigError, match=r"primary_metric 'hr@5' is never computed.*10, 20"):
        check_primary_metric(build_config({"publish": {"primary_metric": "hr@5"}}))
