"""Sharded evaluation, recommendations and neighbours equal the unsharded ones exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from item2vec import stages
from item2vec.config import build_config
from item2vec.evaluate import knn_choice
from item2vec.frames import read_table_events
from item2vec.ranking import RankTally
from item2vec.sequences import build_sequences
from item2vec.shards import (
    baseline_part,
    combine_parts,
    knn_validation_part,
    model_part,
    neighbors_part,
    recommendations_part,
    shard_rows,
)
from item2vec.synth import planted_clusters


@pytest.fixture(scope="module")
def world():
    """A small planted log, trained once; 90 of its 160 test users are the sample."""
    events, truth = planted_clusters(n_users=160, n_items=48, n_clusters=3, events_per_user=9)
    config = build_config(
        {
            "ingest": {"user_col": "user_id", "item_col": "item_id", "time_col": "timestamp"},
            "train": {"epochs": 2, "deterministic": True, "min_count": 2, "vector_size": 16},
            "evaluate": {"max_users": 90},
            "publish": {"recommendations_n": 5},
        }
    )
    read = read_table_events(events, config.ingest)
    sequences = build_sequences(read.table, config.sequences)
    split = stages.split(sequences, config.evaluate)
    vectors = stages.train(split, config.train)
    categories = pa.table(
        {"item_id": truth["item_id"].astype(str), "category": truth["cluster"].astype(str)}
    )
    return config, sequences, split, vectors, categories


def _unsharded(world) -> dict:
    config, sequences, split, vectors, categories = world
    model = stages.model_metrics(vectors, split, config.evaluate, "in-out", categories)
    baselines = stages.baseline_metrics(split, config.evaluate, sequences, categories)
    return stages.metrics(model, baselines, split, config.evaluate, "cluster")


def _sharded(world, shards: int) -> dict:
    config, sequences, split, vectors, categories = world
    validation = stages.baseline_validation(sequences, config.evaluate)
    tried = [knn_validation_part(validation, config.evaluate, s, shards) for s in range(shards)]
    settings = knn_choice(tried, config.evaluate)
    parts = []
    for shard in range(shards):
        base = baseline_part(split, config.evaluate, settings, categories, shard, shards)
        parts.append(
            model_part(vectors, split, config.evaluate, base, "in-out", categories, shard, shards)
        )
    return combine_parts(parts, config.evaluate, "cluster")


@pytest.mark.parametrize("shards", [1, 3, 97])
def test_sharded_metrics_equal_the_unsharded_ones_exactly(world, shards):
    """Every figure of the record, to the last bit; 97 shards of 90 cases leave some empty."""
    whole = _unsharded(world)
    sharded = _sharded(world, shards)
    assert sharded == whole
    # The world is not degenerate: the figures being compared are not all 0 or 1.
    assert 0 < whole["model"]["hr@10"] < 1
    assert 0 < whole["baselines"]["popularity"]["coverage@10"] < 1
    assert whole["users"] == 90 and whole["sampled_from"] == 160
    assert "category@10" in whole["neighbors"]["model"]


def test_a_lost_shard_changes_the_metrics(world):
    """The comparison above can fail: dropping one shard's part changes the record."""
    config, sequences, split, vectors, categories = world
    whole = _unsharded(world)
    settings = whole["baseline_settings"]["item_knn"]
    parts = []
    for shard in range(3):
        base = baseline_part(split, config.evaluate, settings, categories, shard, 3)
        parts.append(
            model_part(vectors, split, config.evaluate, base, "in-out", categories, shard, 3)
        )
    assert combine_parts(parts[:2], config.evaluate, "cluster") != whole


def _same_rows(parts: list[pa.Table], whole: pa.Table) -> None:
    """Ids, ranks and sources exactly; scores to float32 rounding, since a shard's rows
    go through BLAS in blocks of other sizes (4e-8 apart at most, measured)."""
    joined = pa.concat_tables(parts)
    assert joined.schema == whole.schema
    assert joined.num_rows == whole.num_rows
    for name in whole.column_names:
        got, want = (t.column(name).to_numpy(zero_copy_only=False) for t in (joined, whole))
        if name == "score":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        else:
            assert (got == want).all(), name


def test_sharded_tables_concatenate_to_the_whole_table(world):
    config, sequences, split, vectors, _ = world
    recommendations = stages.recommendations(vectors, sequences, config, 3)
    neighbors = stages.neighbors(vectors, config.publish)
    for shards in (2, 7):
        parts = [
            recommendations_part(vectors, sequences, config, 3, s, shards) for s in range(shards)
        ]
        _same_rows(parts, recommendations)
        blocks = [neighbors_part(vectors, config.publish, s, shards) for s in range(shards)]
        _same_rows(blocks, neighbors)
    with pytest.raises(AssertionError):  # the check can fail: a missing shard is seen
        _same_rows(parts[1:], recommendations)


def test_tallies_of_shards_add_up_to_the_whole():
    rng = np.random.default_rng(3)
    top = rng.integers(-1, 30, size=(101, 12))
    targets = rng.integers(-1, 30, size=101)
    unrankable = targets < 0
    whole = RankTally.of(top, targets, [5, 10], unrankable)
    halves = [
        RankTally.of(top[s], targets[s], [5, 10], unrankable[s])
        for s in (slice(0, 40), slice(40, 101))
    ]
    assert RankTally.merge(halves) == whole
    assert RankTally.merge(halves).metrics([5, 10], 30) == whole.metrics([5, 10], 30)
    assert RankTally.merge(halves[:1]) != whole


def test_shard_rows_cover_every_row_once_and_refuse_bad_shards():
    rows = [shard_rows(10, s, 3) for s in range(3)]
    assert [list(range(10))[r] for r in rows] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert shard_rows(2, 0, 5) == slice(0, 0)  # more shards than rows: some empty
    with pytest.raises(ValueError, match="0 <= shard < shards"):
        shard_rows(10, 3, 3)
    with pytest.raises(ValueError, match="shards >= 1"):
        shard_rows(10, 0, 0)


def test_no_case_in_any_shard_is_refused(world):
    config = world[0]
    with pytest.raises(ValueError, match="no shard held an evaluation case"):
        combine_parts([None, None], config.evaluate)
