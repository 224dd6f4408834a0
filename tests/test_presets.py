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
