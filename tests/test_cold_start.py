"""Cold start: category-mean vectors for items with too few events, flagged in the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from item2vec.cold_start import COLD_START, TRAINED, with_cold_start
from item2vec.config import build_config
from item2vec.errors import ConfigError
from item2vec.publish import VECTORS_FILE, publish_version
from item2vec.reader import load
from item2vec.vectors import ItemVectors


def _trained() -> ItemVectors:
    return ItemVectors(
        item_ids=np.array(["a", "b", "c"], dtype=object),
        vectors=np.array([[1, 0], [0, 1], [3, 3]], dtype=np.float32),
        context_vectors=np.array([[2, 0], [0, 2], [1, 1]], dtype=np.float32),
        counts=np.array([9, 7, 5], dtype=np.int64),
    )


CATEGORIES = pa.table(
    {
        "item_id": ["a", "b", "c", "d", "e", "f", "g", "d"],
        "category": ["x", "x", "y", "x", "y", "z", None, "x"],
    }
)


def test_items_without_a_vector_get_their_category_mean_and_a_flag():
    vectors = with_cold_start(_trained(), CATEGORIES, pd.Series({"d": 2, "a": 9}))
    assert vectors.item_ids.tolist() == ["a", "b", "c", "d", "e"]  # f's category has none
    assert vectors.source.tolist() == [TRAINED] * 3 + [COLD_START] * 2
    np.testing.assert_allclose(vectors.vectors[3], [0.5, 0.5])  # mean of a and b
    np.testing.assert_allclose(vectors.context_vectors[3], [1.0, 1.0])
    np.testing.assert_allclose(vectors.vectors[4], [3, 3])  # c alone
    assert vectors.counts.tolist() == [9, 7, 5, 2, 0]
    assert vectors.history["cold_start"] == {"items": 2, "categories": 2}
    np.testing.assert_array_equal(vectors.vectors[:3], _trained().vectors)  # trained unchanged


def test_cold_start_needs_categories():
    with pytest.raises(ValueError, match="item_category_col"):
        with_cold_start(_trained(), None)
    with pytest.raises(ConfigError, match="cold_start needs an items file"):
        build_config({"train": {"cold_start": True}})
    build_config(
        {
            "train": {"cold_start": True},
            "ingest": {"items_path": "items.csv", "item_category_col": "genres"},
        }
    )


def test_the_flag_is_published_and_the_version_reads_back(tmp_path):
    vectors = with_cold_start(_trained(), CATEGORIES)
    neighbors = pa.table(
        {
            "item_id": pa.array([], pa.string()),
            "rank": pa.array([], pa.int32()),
            "neighbor_id": pa.array([], pa.string()),
            "score": pa.array([], pa.float32()),
        }
    )
    manifest = {"gate": {"passed": True, "reason": "test"}}
    version = publish_version(tmp_path, "cold", vectors, neighbors, manifest, move_latest=True)
    table = pq.read_table(version / VECTORS_FILE)
    assert table.column("source").to_pylist() == vectors.source.tolist()
    assert load(tmp_path, "cold").item_ids.tolist() == vectors.item_ids.tolist()
