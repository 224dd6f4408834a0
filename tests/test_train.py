import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from item2vec.config import EvaluateConfig, TrainConfig
from item2vec.errors import ConfigError
from item2vec.evaluate import evaluate
from item2vec.neighbors import nearest_neighbors
from item2vec.sequences import build_sequences
from item2vec.split import leave_last_out
from item2vec.synth import planted_clusters
from item2vec.train import (
    train_word2vec,
)


def _split(events: pd.DataFrame):
    frame = events.rename(columns={"timestamp": "ts"})
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    return leave_last_out(build_sequences(frame))


@pytest.fixture(scope="module")
def clustered():
    events, truth = planted_clusters(n_users=200, n_items=60, n_clusters=2, events_per_user=20)
    split = _split(events)
    vectors = train_word2vec(split.train, TrainConfig(epochs=10, workers=1))
    return split, vectors, truth.set_index("item_id")["cluster"]


def test_neighbours_stay_in_their_world(clustered):
    _, vectors, cluster = clustered
    table = nearest_neighbors(vectors, k=5).to_pandas()
    same = table["item_id"].map(cluster) == table["neighbor_id"].map(cluster)
    assert len(table) == 5 * len(vectors)
    assert same.all(), table[~same].head()
    assert (table["item_id"] != table["neighbor_id"]).all()


def test_model_beats_popularity_on_planted_worlds(clustered):
    split, vectors, _ = clustered
    metrics = evaluate(vectors, split.train, split.test, EvaluateConfig(k=[5]))
    # Within a 30-item world a user's 5 recommendations hit far more often than
    # popularity's, which mixes both worlds.
    assert metrics["model"]["hr@5"] > metrics["baselines"]["popularity"]["hr@5"]
    assert metrics["users"] == 200


def test_vectors_shape_counts_and_context(clustered):
    """float32 vectors, context vectors of the same shape, counts summing to the events."""
    split, vectors, _ = clustered
    assert vectors.vectors.dtype == np.float32
    assert vectors.context_vectors.shape == vectors.vectors.shape
    assert vectors.counts.sum() == sum(map(len, split.train))


def test_min_count_too_high_is_a_clear_error(clustered):
    split, _, _ = clustered
    with pytest.raises(ConfigError, match="min_count"):
        train_word2vec(split.train, TrainConfig(min_count=10_000, epochs=1))


def test_in_out_needs_negative_sampling(clustered):
    """in-out scoring needs output vectors: without negative sampling it is refused."""
    split, _, _ = clustered
    vectors = train_word2vec(split.train, TrainConfig(negative=0, hs=1, epochs=1, workers=1))
    with pytest.raises(ConfigError, match="in-out"):
        evaluate(vectors, split.train, split.test, EvaluateConfig(scoring="in-out"))


DETERMINISTIC_SCRIPT = """
import sys, numpy as np
from item2vec.config import TrainConfig
from item2vec.synth import planted_clusters
from item2vec.train import (
    GENSIM_MAX_SENTENCE,
    gensim_parameters,
    train_word2vec,
    training_corpus,
)
events, _ = planted_clusters(n_users=50, n_items=20, events_per_user=10, seed=3)
seqs = events.groupby('user_id')['item_id'].agg(list).tolist()
v = train_word2vec(seqs, TrainConfig(workers=1, seed=7, epochs=3))
np.save(sys.argv[1], v.vectors)
"""


def test_single_worker_seeded_run_is_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    targets = [tmp_path / f"v{n}.npy" for n in range(2)]
    # Two fresh interpreters, side by side: each pays its imports at the same time.
    runs = [
        subprocess.Popen([sys.executable, "-c", DETERMINISTIC_SCRIPT, str(target)], env=env)
        for target in targets
    ]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    np.testing.assert_array_equal(np.load(targets[0]), np.load(targets[1]))


def test_history_has_loss_per_epoch(clustered):
    split, _, _ = clustered
    vectors = train_word2vec(split.train, TrainConfig(epochs=3, workers=1))
    assert len(vectors.history["loss"]) == 3
    assert all(loss > 0 for loss in vectors.history["loss"])
    assert vectors.history["seconds"] >= 0


def test_capped_evaluation_is_the_same_fixed_sample_for_every_method(clustered):
    """With more test users than max_users, model and baselines are evaluated on
    one sample, and the metrics equal those of evaluating that sample in full."""
    from item2vec.split import evaluation_sample

    split, vectors, _ = clustered
    capped = evaluate(vectors, split.train, split.test, EvaluateConfig(k=[5], max_users=60))
    sample = evaluation_sample(split.test, 60)
    full = evaluate(vectors, split.train, sample, EvaluateConfig(k=[5], max_users=0))
    assert capped["users"] == len(sample) == 60
    assert capped["sampled_from"] == len(split.test) == 200
    assert "sampled_from" not in full
    for method in ("popularity", "item_knn"):
        assert capped["baselines"][method] == full["baselines"][method]
    assert capped["model"] == full["model"]
    from item2vec.summary import users_phrase

    assert users_phrase(capped) == "60 of 200 test users (a fixed sample)"
    assert users_phrase(full) == "60 test users"
