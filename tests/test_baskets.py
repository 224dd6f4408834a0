"""Basket-shaped logs: the synthetic log's known answer, basket boundaries through the
split, basket context, the last-basket and recency-weighted queries, the item-kNN blend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from item2vec.blend import BlendScorer, knn_scorer
from item2vec.catalogue import build_catalogue, encode_cases
from item2vec.config import EvaluateConfig, TrainConfig
from item2vec.errors import ConfigError
from item2vec.evaluate import EmbeddingScorer, evaluate_baselines, evaluate_model
from item2vec.neighbors import nearest_neighbors
from item2vec.sequences import build_sequences
from item2vec.split import Holdout, basket_starts, select_cases, split_sequences
from item2vec.synth_baskets import basket_log, complement_pairs, write_basket_log
from item2vec.train import basket_sets, train_word2vec, training_corpus


def _events(**sizes) -> tuple[pd.DataFrame, pd.DataFrame]:
    events, truth = basket_log(**sizes)
    events = events.rename(columns={"timestamp": "ts"})
    events["ts"] = pd.to_datetime(events["ts"], unit="s", utc=True)
    return events, truth


@pytest.fixture(scope="module")
def shop():
    """600 customers, 270 items (30 groups of 3 roles x 3 variants), split leave-last-out."""
    events, truth = _events(users=600, groups=30, seed=3)
    split = split_sequences(build_sequences(events))
    return events, truth, split


# --- The synthetic log ------------------------------------------------------------------


def test_basket_log_is_deterministic_and_basket_shaped():
    events, truth = basket_log(users=300, groups=20, seed=5)
    again, _ = basket_log(users=300, groups=20, seed=5)
    other, _ = basket_log(users=300, groups=20, seed=6)
    pd.testing.assert_frame_equal(events, again)
    assert not events.equals(other)
    # Every row of an order shares its customer and timestamp; orders hold several items.
    per_order = events.groupby("order_id").agg(
        users=("user_id", "nunique"), times=("timestamp", "nunique"), rows=("item_id", "size")
    )
    assert (per_order["users"] == 1).all() and (per_order["times"] == 1).all()
    assert per_order["rows"].min() >= 2
    assert not events.duplicated(["order_id", "item_id"]).any()
    # Repeat purchases: a good share of rows is an item the customer bought before.
    assert events.duplicated(["user_id", "item_id"]).mean() > 0.1
    assert list(events["timestamp"]) == sorted(events["timestamp"])
    assert len(truth) == 20 * 3 * 3 and set(truth["item_id"]) >= set(events["item_id"])


def test_complements_share_baskets_and_substitutes_do_not():
    events, truth = basket_log(users=800, groups=20, seed=2)
    pairs = complement_pairs(truth)
    assert set(pairs["relation"]) == {"complement", "substitute"}
    # Per item: 2 other roles x 3 variants are complements, 2 other variants substitutes.
    per_item = pairs.groupby(["item_id", "relation"]).size().unstack()
    assert (per_item["complement"] == 6).all() and (per_item["substitute"] == 2).all()
    together = events.merge(events, on="order_id")
    together = together[together["item_id_x"] != together["item_id_y"]]
    relation = together.merge(
        pairs, left_on=["item_id_x", "item_id_y"], right_on=["item_id", "other_id"]
    )["relation"].value_counts()
    # Loyalty 0.85: complements share baskets far more often than substitutes do.
    assert relation["complement"] > 5 * relation["substitute"]


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"users": 0}, "users"),
        ({"roles": 1}, "roles"),
        ({"groups": 3, "departments": 4}, "departments"),
        ({"orders": 1.5}, "orders"),
        ({"loyalty": 1.5}, "loyalty"),
        ({"repeat_share": -0.1}, "repeat_share"),
    ],
)
def test_basket_log_refuses_sizes_out_of_range(sizes, message):
    with pytest.raises(ValueError, match=message):
        basket_log(**sizes)


def test_write_basket_log_writes_the_log_and_its_truth(tmp_path: Path):
    info = write_basket_log(tmp_path / "shop.csv", users=50, seed=1, groups=10)
    written = pd.read_csv(info["path"], dtype=str)
    truth = pd.read_csv(info["truth_path"], dtype={"item_id": str})
    assert list(written.columns) == ["user_id", "item_id", "order_id", "timestamp"]
    assert info["events"] == len(written) and info["items"] == len(truth) == 90
    assert info["orders"] == written["order_id"].nunique()
    assert info["repeat_rows"] == int(written.duplicated(["user_id", "item_id"]).sum())
    parquet = write_basket_log(tmp_path / "shop.parquet", users=50, seed=1, groups=10)
    assert pd.read_parquet(parquet["path"])["item_id"].tolist() == written["item_id"].tolist()
    assert Path(parquet["truth_path"]).name == "shop.truth.csv"


def test_synth_command_writes_baskets_and_refuses_mixed_shapes(capsys, tmp_path: Path):
    from item2vec_flows.cli import main

    out = tmp_path / "shop.csv"
    assert main(["synth", "--shape", "baskets", "--users", "40", "--out", str(out)]) == 0
    assert out.is_file() and (tmp_path / "shop.truth.csv").is_file()
    assert '"mean_basket"' in capsys.readouterr().out
    for argv in (["--shape", "baskets", "--events", "10"], ["--items", "10"]):
        assert main(["synth", "--users", "5", "--out", str(out), *argv]) != 0
        assert "--events" in capsys.readouterr().err


# --- Basket boundaries through the split --------------------------------------------------


def test_basket_starts_open_at_each_new_time_and_sequence():
    events = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", "v", "v"],
            "item_id": ["a", "b", "c", "d", "a", "b"],
            "ts": pd.to_datetime([1, 1, 2, 2, 2, 3], unit="s", utc=True),
        }
    )
    sequences = build_sequences(events)
    assert basket_starts(sequences).tolist() == [True, False, True, False, True, True]
    assert basket_starts(sequences.drop_columns(["times"])) is None


def test_split_carries_basket_openings_aligned_with_items(shop):
    events, _, split = shop
    flat = [item for sequence in split.train for item in sequence]
    assert len(split.train_baskets) == len(flat)
    # Count baskets in the training side directly: (user, time) pairs, minus test targets'
    # own baskets where the target was alone in it.
    assert split.train_baskets.sum() <= events.groupby(["user_id", "ts"]).ngroups
    test = split.test
    assert len(test.history_baskets) == len(test.history_items)
    assert test.history_baskets[test.history_offsets[:-1]].all()
    kept = select_cases(test, np.arange(len(test)) % 2 == 0)
    assert len(kept.history_baskets) == len(kept.history_items)


def test_temporal_split_carries_basket_openings(shop):
    events, _, _ = shop
    split = split_sequences(build_sequences(events), "temporal", test_days=30)
    assert len(split.train_baskets) == sum(map(len, split.train))
    assert len(split.test.history_baskets) == len(split.test.history_items)


# --- Basket context -------------------------------------------------------------------------


def test_basket_sets_join_following_baskets_within_a_sequence():
    sequences = [["a", "b", "c", "d", "e"], ["f", "g"], [], ["h"]]
    # Baskets: [a b] [c] [d e] | [f g] | | [h]
    opens = np.array([1, 0, 1, 1, 0, 1, 0, 1], dtype=bool)
    assert basket_sets(sequences, opens, 0) == [["a", "b"], ["c"], ["d", "e"], ["f", "g"], ["h"]]
    assert basket_sets(sequences, opens, 1) == [
        ["a", "b", "c"],
        ["c", "d", "e"],
        ["f", "g"],
        ["h"],
    ]
    assert basket_sets(sequences, opens, 5) == [["a", "b", "c", "d", "e"], ["f", "g"], ["h"]]
    with pytest.raises(ValueError, match="flags"):
        basket_sets(sequences, opens[:-1], 0)


def test_basket_context_needs_baskets_and_chunks_big_baskets():
    config = TrainConfig(context="basket", max_set_size=2)
    with pytest.raises(ConfigError, match="basket"):
        training_corpus([["a", "b"]], config)
    corpus = training_corpus([["a", "b", "c"]], config, np.array([1, 0, 0], dtype=bool))
    assert sorted(len(sentence) for sentence in corpus) == [1, 2]
    assert sorted(item for sentence in corpus for item in sentence) == ["a", "b", "c"]


def test_basket_context_ranks_planted_complements_above_chance_and_popularity(shop):
    _, truth, split = shop
    config = TrainConfig(context="basket", epochs=20, workers=1, deterministic=True, min_count=2)
    vectors = train_word2vec(split.train, config, baskets=split.train_baskets)
    pairs = complement_pairs(truth)
    k = 6  # an item has 6 complements
    table = nearest_neighbors(vectors, k=k, scoring="in-out").to_pandas()
    found = table.merge(pairs, left_on=["item_id", "neighbor_id"], right_on=["item_id", "other_id"])
    complement_share = (found["relation"] == "complement").sum() / len(table)
    substitute_share = (found["relation"] == "substitute").sum() / len(table)
    chance = 6 / (len(vectors.item_ids) - 1)
    # The same k most popular items for every item, as a popularity "neighbour table".
    popular = set(vectors.item_ids[np.argsort(-vectors.counts, kind="stable")[: k + 1]])
    popular_pairs = pairs[pairs["other_id"].isin(popular)]
    popularity_share = (popular_pairs["relation"] == "complement").sum() / (len(truth) * k)
    # Measured 0.71 complements (chance 0.022, popularity 0.026, substitutes 0.01);
    # 0.4 leaves ample margin.
    assert complement_share > 0.4
    assert complement_share > 10 * chance and complement_share > 10 * popularity_share
    # Substitutes are bought instead, never together: in-out scoring keeps them out.
    assert substitute_share < complement_share / 5


# --- Queries and scoring --------------------------------------------------------------------


def _holdout(baskets: bool = True) -> Holdout:
    return Holdout(
        user_ids=np.array(["x", "y"], dtype=object),
        history_items=np.array(["a", "b", "c", "d", "a", "b"], dtype=object),
        history_offsets=np.array([0, 4, 6]),
        targets=np.array(["b", "c"], dtype=object),
        history_baskets=np.array([1, 1, 0, 0, 1, 1], dtype=bool) if baskets else None,
    )


def test_recency_weights_halve_every_half_life():
    catalogue = build_catalogue([["a", "b", "c", "d"]])
    cases = encode_cases(_holdout(), catalogue, query_items=3, half_life=1.0)
    # x's last three items are b, c, d (latest): weights 0.25, 0.5, 1.
    assert cases.query[0].toarray().ravel().tolist() == [0.0, 0.25, 0.5, 1.0]
    flat = encode_cases(_holdout(), catalogue, query_items=3)
    assert flat.query[0].toarray().ravel().tolist() == [0.0, 1.0, 1.0, 1.0]


def test_last_basket_query_takes_only_the_latest_basket():
    catalogue = build_catalogue([["a", "b", "c", "d"]])
    cases = encode_cases(_holdout(), catalogue, query_items=20, last_basket=True)
    assert cases.query[0].toarray().ravel().tolist() == [0.0, 1.0, 1.0, 1.0]  # [b c d]
    assert cases.query[1].toarray().ravel().tolist() == [0.0, 1.0, 0.0, 0.0]  # [b]
    with pytest.raises(ValueError, match="basket boundaries"):
        encode_cases(_holdout(baskets=False), catalogue, 5, last_basket=True)


def test_blend_at_its_ends_ranks_like_the_model_and_like_item_knn(shop):
    _, _, split = shop
    config = TrainConfig(context="basket", epochs=5, workers=1, deterministic=True)
    vectors = train_word2vec(split.train, config, baskets=split.train_baskets)
    catalogue = build_catalogue(split.train)
    cases = encode_cases(split.test, catalogue, 5)
    model = EmbeddingScorer(vectors, catalogue, "in-out")
    knn = knn_scorer(split.train, catalogue)
    assert knn_scorer(split.train, catalogue) is knn  # built once per training set
    model_scores, knn_scores = model(cases, 0, 50), knn(cases, 0, 50)
    alone = BlendScorer(model, knn, 0.0)(cases, 0, 50)
    np.testing.assert_allclose(alone, model_scores, rtol=1e-6)
    only_knn = BlendScorer(model, knn, 1.0)(cases, 0, 50)
    finite = np.isfinite(model_scores)
    same_order = np.argsort(-only_knn, axis=1)[:, :10] == np.argsort(-knn_scores, axis=1)[:, :10]
    assert same_order[finite.all(axis=1)].mean() > 0.99
    with pytest.raises(ValueError, match="knn_blend"):
        BlendScorer(model, knn, 1.5)


def test_basket_options_beat_the_plain_model_and_popularity(shop):
    _, _, split = shop
    config = TrainConfig(context="basket", epochs=20, workers=1, deterministic=True, min_count=2)
    vectors = train_word2vec(split.train, config, baskets=split.train_baskets)

    def hr(**options) -> float:
        evaluate = EvaluateConfig(**options)
        return evaluate_model(vectors, split.train, split.test, evaluate)["hr@10"]

    plain = hr(query="items")
    assert hr() == hr(query="basket")  # auto: the log is basket-shaped
    basket = hr(query="basket", query_items=20)
    blended = hr(query="basket", query_items=20, knn_blend=0.5)
    popularity = evaluate_baselines(split.train, split.test, EvaluateConfig())["popularity"]
    # Measured on 600 test users: plain 0.305, last basket 0.442, blended 0.458,
    # popularity 0.053. One hit is 0.0017; each bound sits 0.05 or more below.
    assert basket > plain + 0.05
    assert blended > plain + 0.05
    assert min(plain, basket, blended) > popularity["hr@10"] + 0.2


def test_recommendations_are_served_with_the_measured_query_and_blend(shop):
    from item2vec.recommend import recommend_for_users

    events, _, split = shop
    sequences = build_sequences(events)
    config = TrainConfig(context="basket", epochs=5, workers=1, deterministic=True)
    vectors = train_word2vec(split.train, config, baskets=split.train_baskets)
    plain = recommend_for_users(vectors, sequences, 10, "in-out", 20).to_pandas()
    served = recommend_for_users(
        vectors, sequences, 10, "in-out", 20, last_basket=True, knn_blend=0.5, half_life=2.0
    ).to_pandas()
    assert len(served) == len(plain) == 10 * sequences.num_rows
    # The last basket and the blend change what users are shown.
    assert (served["item_id"].to_numpy() != plain["item_id"].to_numpy()).mean() > 0.2
    # Never an item the user has.
    had = set(zip(events["user_id"], events["item_id"], strict=True))
    assert not any((u, i) in had for u, i in zip(served["user_id"], served["item_id"], strict=True))


def test_auto_context_and_query_follow_the_shape_of_the_log(shop):
    from item2vec.split import BASKET_SHARE, basket_share, is_basket_log
    from item2vec.train import resolve_context

    _, _, split = shop
    # Every order holds two or more; a held-out target may leave one item behind.
    assert basket_share(split.train_baskets) > 0.95
    assert basket_share(np.ones(5, dtype=bool)) == 0.0 and basket_share(None) == 0.0
    assert basket_share(np.array([1, 0, 1, 1], dtype=bool)) == 0.5 >= BASKET_SHARE
    auto = TrainConfig()
    assert auto.context == "auto"
    assert resolve_context(auto, split.train_baskets).context == "basket"
    assert resolve_context(auto, np.ones(9, dtype=bool)).context == "window"
    assert resolve_context(auto, None).context == "window"
    assert resolve_context(TrainConfig(context="set"), split.train_baskets).context == "set"
    quick = TrainConfig(epochs=1, workers=1)
    trained = train_word2vec(split.train, quick, baskets=split.train_baskets)
    assert trained.history["context"] == "basket"  # what the manifest records
    # The query: auto limits to the last basket on basket-shaped histories only.
    catalogue = build_catalogue(split.train)
    holdout = split.test
    auto_cases = encode_cases(holdout, catalogue, 20, last_basket=None)
    basket_cases = encode_cases(holdout, catalogue, 20, last_basket=True)
    assert is_basket_log(holdout.history_baskets)
    assert (auto_cases.query != basket_cases.query).nnz == 0
    singles = Holdout(
        user_ids=holdout.user_ids,
        history_items=holdout.history_items,
        history_offsets=holdout.history_offsets,
        targets=holdout.targets,
        history_baskets=np.ones(len(holdout.history_items), dtype=bool),
    )
    items_cases = encode_cases(singles, catalogue, 20)
    assert (
        encode_cases(singles, catalogue, 20, last_basket=None).query != items_cases.query
    ).nnz == 0
