import hashlib

from item2vec.presets import BUNDLED_SAMPLE_DIR, PRESETS, bundled_sample


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundled_sample_is_the_shared_copy_with_its_licence(shared_sample):
    # The licence (README.txt) must travel with the data.
    for name in ("ratings.csv", "movies.csv", "README.txt"):
        assert _digest(BUNDLED_SAMPLE_DIR / name) == _digest(shared_sample / name), name


def test_bundled_sample_config_uses_the_movielens_preset(sample_ratings):
    config = bundled_sample()
    assert config["ingest"]["paths"] == [str(sample_ratings)]
    assert config["ingest"]["user_col"] == PRESETS["movielens"]["ingest"]["user_col"]
    assert config["publish"]["model_name"] == "movielens"


def test_bundled_sample_runs_the_tuned_settings_and_flags_override_them(sample_ratings):
    from item2vec.presets import BUNDLED_SAMPLE_TUNED
    from item2vec_flows.cli import build_parser
    from item2vec_flows.cli_options import config_from_args

    config = config_from_args(build_parser().parse_args(["run"]))
    for section, values in BUNDLED_SAMPLE_TUNED.items():
        for key, value in values.items():
            assert getattr(getattr(config, section), key) == value, (section, key)
    overridden = config_from_args(build_parser().parse_args(["run", "--epochs", "3"]))
    assert overridden.train.epochs == 3
    assert overridden.train.window == BUNDLED_SAMPLE_TUNED["train"]["window"]
    # Someone else's log starts from the general defaults, not the sample's tuning.
    other = config_from_args(build_parser().parse_args(["run", str(sample_ratings)]))
    assert other.train.epochs != BUNDLED_SAMPLE_TUNED["train"]["epochs"]
