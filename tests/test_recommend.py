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


def test_users_the_model_cannot_rank_fall_back_to_item_knn_then_popularity(world):
    """Every user with a history gets rows; ``source`` says who served each."""
    sequences, vectors, _ = world
    known = sequences.column("items").to_pylist()
    strangers = pa.table(
        {
            "user_id": ["known", "knn", "lonely"],
            # "knn" has an item the model lacks but another history shares; "lonely"
            # an item nobody else has, which co-occurs with nothing.
            "items": pa.array(
                [known[0], ["never-seen", "also-new"], ["only-mine"]], type=pa.list_(pa.string())
            ),
        }
    )
    together = pa.concat_tables([sequences.select(["user_id", "items"]), strangers])
    seen = together.column("items").to_pylist()
    # One other history with "never-seen" and a model item, so item-kNN links them.
    extra = pa.table(
        {
            "user_id": ["bridge"],
            "items": pa.array([["never-seen", known[1][0]]], pa.list_(pa.string())),
        }
    )
    together = pa.concat_tables([together, extra])
    table = recommend_for_users(
        vectors, together, n=5, scoring="in-out", query_items=5, fallback_knn={"query_items": 2}
    ).to_pandas()
    assert set(table["user_id"]) == set(together.column("user_id").to_pylist())
    by_user = table.groupby("user_id")["source"].apply(list)
    assert set(by_user["known"]) == {"model"}
    assert by_user["knn"][0] == "item_knn"
    assert known[1][0] in table[table["user_id"] == "knn"]["item_id"].tolist()
    assert set(by_user["lonely"]) == {"popularity"}
    # Popularity rows are the most frequent items, the user's own left out.
    lonely = table[table["user_id"] == "lonely"].sort_values("rank")
    assert lonely["score"].is_monotonic_decreasing
    assert "only-mine" not in set(lonely["item_id"]) and len(seen) > 0
    # Without a fallback the same users get nothing, as before.
    plain = recommend_for_users(vectors, strangers, n=5, scoring="in-out", query_items=5)
    assert set(plain.column("user_id").to_pylist()) == {"known"}


def test_a_user_who_has_every_item_gets_rows_only_when_seen_items_may_return(world):
    """With every catalogue item in their history there is nothing new to recommend:
    no rows (not an error) under exclude_seen, and their items back without it."""
    _, vectors, _ = world
    everything = pa.table(
        {
            "user_id": ["all"],
            "items": pa.array([vectors.item_ids.tolist()], type=pa.list_(pa.string())),
        }
    )
    knn = {"query_items": 2}
    empty = recommend_for_users(vectors, everything, 5, "in-out", 5, True, knn)
    assert empty.num_rows == 0 and empty.schema == RECOMMENDATION_SCHEMA
    full = recommend_for_users(vectors, everything, 5, "in-out", 5, False, knn)
    assert full.column("user_id").to_pylist() == ["all"] * 5
    assert set(full.column("source").to_pylist()) == {"model"}
