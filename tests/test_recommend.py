import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from item2vec.config import TrainConfig
from item2vec.recommend import RECOMMENDATION_SCHEMA, recommend_for_users
from item2vec.sequences import build_sequences, sequence_lists
from item2vec.synth import planted_clusters
from item2vec.train import train_word2vec


@pytest.fixture(scope="module")
def world():
    events, truth = planted_clusters(n_users=100, n_items=40, n_clusters=2, events_per_user=10)
    frame = events.rename(columns={"timestamp": "ts"})
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    sequences = build_sequences(frame)
    vectors = train_word2vec(sequence_lists(sequences), TrainConfig(epochs=10, workers=1))
    return sequences, vectors, truth.set_index("item_id")["cluster"]


@pytest.mark.parametrize("scoring", ["in-in", "in-out"])
def test_recommendations_exclude_seen_and_stay_in_world(world, scoring):
    sequences, vectors, cluster = world
    table = recommend_for_users(vectors, sequences, n=5, scoring=scoring, query_items=5)
    assert table.schema == RECOMMENDATION_SCHEMA
    recs = table.to_pandas()
    history = {
        user: set(items)
        for user, items in zip(
            sequences.column("user_id").to_pylist(),
            sequences.column("items").to_pylist(),
            strict=True,
        )
    }
    assert set(recs["user_id"]) == set(history)
    assert recs.groupby("user_id")["rank"].apply(list).map([1, 2, 3, 4, 5].__eq__).all()
    seen = recs.apply(lambda row: row["item_id"] in history[row["user_id"]], axis=1)
    assert not seen.any()
    user_world = {u: cluster[next(iter(items))] for u, items in history.items()}
    in_world = recs["item_id"].map(cluster) == recs["user_id"].map(user_world)
    assert in_world.mean() > 0.9
    assert (recs.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_users_without_known_items_get_nothing(world):
    _, vectors, _ = world
    strangers = pa.table(
        {"user_id": ["x"], "items": pa.array([["never-seen"]], type=pa.list_(pa.string()))}
    )
    table = recommend_for_users(vectors, strangers, n=5, scoring="in-out", query_items=5)
    assert table.num_rows == 0


def test_no_exclude_seen_can_recommend_history(world):
    sequences, vectors, _ = world
    table = recommend_for_users(
        vectors, sequences, n=20, scoring="in-in", query_items=5, exclude_seen=False
    ).to_pandas()
    history = dict(
        zip(
            sequences.column("user_id").to_pylist(),
            sequences.column("items").to_pylist(),
            strict=True,
        )
    )
    seen = table.apply(lambda row: row["item_id"] in history[row["user_id"]], axis=1)
    assert seen.any()
    assert np.isfinite(table["score"]).all()
