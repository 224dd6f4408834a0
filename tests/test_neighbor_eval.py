"""The neighbour table measured item to item, the scorings it offers, and its categories."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from item2vec.baselines import ItemKNNScorer, PopularityScorer
from item2vec.catalogue import Catalogue, build_catalogue, user_item_matrix
from item2vec.errors import ConfigError
from item2vec.neighbor_eval import (
    category_consistency,
    category_table,
    item_categories,
    item_to_item_cases,
    model_neighbor_top,
    neighbor_metrics,
    scorer_neighbor_top,
)
from item2vec.neighbors import NEIGHBOR_SCORINGS, nearest_neighbors, neighbor_factors
from item2vec.split import Holdout
from item2vec.vectors import ItemVectors


def _vectors(n: int = 30, dim: int = 6, seed: int = 0, context: bool = True) -> ItemVectors:
    rng = np.random.default_rng(seed)
    return ItemVectors(
        item_ids=np.array([f"i{i:02d}" for i in range(n)], dtype=object),
        vectors=rng.normal(size=(n, dim)).astype(np.float32),
        context_vectors=rng.normal(size=(n, dim)).astype(np.float32) if context else None,
        counts=np.arange(n, 0, -1, dtype=np.int64),
    )


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.mark.parametrize("scoring", NEIGHBOR_SCORINGS)
def test_each_scoring_is_its_formula_and_the_table_ranks_by_it(scoring):
    """in-in, in-out and symmetric scores equal their formulas; the table is their top-k."""
    vectors = _vectors()
    inputs, outputs = _unit(vectors.vectors), _unit(vectors.context_vectors)
    expected = {
        "in-in": inputs @ inputs.T,
        "in-out": inputs @ outputs.T,
        "symmetric": (inputs @ outputs.T + outputs @ inputs.T) / 2,
    }[scoring]
    queries, candidates = neighbor_factors(vectors, scoring)
    np.testing.assert_allclose(queries @ candidates.T, expected, atol=1e-5)
    table = nearest_neighbors(vectors, 5, scoring).to_pandas()
    for row, item in enumerate(vectors.item_ids[:5]):
        scores = expected[row].copy()
        scores[row] = -np.inf
        best = vectors.item_ids[np.argsort(-scores, kind="stable")[:5]].tolist()
        assert table[table["item_id"] == item].sort_values("rank")["neighbor_id"].tolist() == best


def test_symmetric_scoring_is_symmetric():
    queries, candidates = neighbor_factors(_vectors(), "symmetric")
    scores = queries @ candidates.T
    np.testing.assert_allclose(scores, scores.T, atol=1e-6)


def test_unknown_scoring_and_missing_output_vectors_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown neighbour scoring 'cosine'"):
        neighbor_factors(_vectors(), "cosine")
    with pytest.raises(ConfigError, match="--neighbors-scoring"):
        neighbor_factors(_vectors(context=False), "in-out")


def _catalogue(n: int) -> Catalogue:
    return Catalogue(
        item_ids=np.array([f"i{i:02d}" for i in range(n)], dtype=object),
        counts=np.ones(n, dtype=np.int64),
    )


def _holdout(histories: list[list[str]], targets: list[str]) -> Holdout:
    lengths = [len(h) for h in histories]
    return Holdout(
        user_ids=np.array([f"u{i}" for i in range(len(histories))], dtype=object),
        history_items=np.array([i for h in histories for i in h], dtype=object),
        history_offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        targets=np.array(targets, dtype=object),
    )


def test_a_case_hits_exactly_when_the_table_lists_its_target_under_its_last_item():
    """The metric reads the published table: the target among the last item's top k."""
    vectors = _vectors()
    catalogue = _catalogue(30)
    table = nearest_neighbors(vectors, 10, "in-out").to_pandas()
    listed = table.groupby("item_id")["neighbor_id"].apply(list)
    rng = np.random.default_rng(1)
    histories = [list(rng.choice(vectors.item_ids, size=3)) for _ in range(40)]
    targets = list(rng.choice(vectors.item_ids, size=40))
    cases = item_to_item_cases(_holdout(histories, targets), catalogue)
    top, rankable = model_neighbor_top(vectors, catalogue, cases.distinct, 10, "in-out")
    metrics = neighbor_metrics(top, cases, rankable, [10])
    hits = [t in listed[h[-1]] for h, t in zip(histories, targets, strict=True)]
    assert metrics["hr@10"] == pytest.approx(np.mean(hits))
    assert metrics["unrankable"] == 0.0


def test_items_without_a_vector_are_unrankable_misses():
    vectors = _vectors(n=10)
    catalogue = _catalogue(12)  # i10 and i11 have no vector
    cases = item_to_item_cases(_holdout([["i00", "i10"], ["i01"]], ["i02", "i11"]), catalogue)
    top, rankable = model_neighbor_top(vectors, catalogue, cases.distinct, 5, "in-in")
    metrics = neighbor_metrics(top, cases, rankable, [5])
    assert metrics["unrankable"] == 1.0 and metrics["hr@5"] == 0.0


def test_item_knn_neighbours_are_the_cosine_of_the_user_item_matrix():
    """Brute force: binary matrix, column cosine, self excluded, ties to the lower code."""
    rng = np.random.default_rng(2)
    train = [list(rng.choice([f"i{i:02d}" for i in range(15)], size=4)) for _ in range(60)]
    catalogue = build_catalogue(train)
    matrix = user_item_matrix(train, catalogue)
    dense = matrix.toarray()
    unit = dense / np.linalg.norm(dense, axis=0, keepdims=True)
    cosine = unit.T @ unit
    np.fill_diagonal(cosine, -np.inf)
    scorer = ItemKNNScorer(matrix, popularity=PopularityScorer(catalogue).popularity)
    codes = np.arange(len(catalogue))
    top = scorer_neighbor_top(scorer, codes, len(catalogue), 3)
    for code in codes:
        assert np.allclose(cosine[code, top[code]], np.sort(cosine[code])[::-1][:3], atol=1e-5)


def test_zero_similarity_candidates_follow_in_popularity_order():
    """Item-kNN ranks candidates nobody had with the query item by popularity, below the rest."""
    train = [["a", "b"], ["c"], ["c"], ["c", "d"], ["d"]]
    catalogue = build_catalogue(train)
    scorer = ItemKNNScorer(
        user_item_matrix(train, catalogue), popularity=PopularityScorer(catalogue).popularity
    )
    top = scorer_neighbor_top(scorer, np.array([0]), len(catalogue), 3)  # neighbours of "a"
    # b co-occurs with a; then c (3 events) before d (2 events), by popularity.
    assert catalogue.item_ids[top[0]].tolist() == ["b", "c", "d"]


def test_category_is_the_first_value_and_placeholders_are_none():
    items = pa.table(
        {
            "item_id": ["1", "2", "3", "4"],
            "genres": ["Comedy|Drama", " Drama ", "(no genres listed)", None],
        }
    )
    table = category_table(items, "genres")
    assert table.column("category").to_pylist() == ["Comedy", "Drama", None, None]
    assert category_table(items, None) is None and category_table(None, "genres") is None
    catalogue = Catalogue(item_ids=np.array(["1", "2", "5"], dtype=object), counts=np.ones(3))
    codes = item_categories(table, catalogue)
    assert codes[0] >= 0 and codes[1] >= 0 and codes[0] != codes[1] and codes[2] == -1


def test_category_consistency_by_hand():
    # Items 0 and 1 are "x", 2 is "y", 3 has none. Item 0's neighbours: 1 (x), 2 (y).
    categories = np.array([0, 0, 1, -1])
    top = np.array([[1, 2], [3, -1], [0, 1]])
    result = category_consistency(top, np.array([0, 1, 3]), categories, [1, 2])
    # Item 0: 1/1 at k=1, 1/2 at k=2; item 1: neighbour 3 has no category: 0; item 3 none.
    assert result["category@1"] == pytest.approx(0.5)
    assert result["category@2"] == pytest.approx(0.25)
    assert result["category_items"] == 2


def test_a_missing_category_column_is_one_clear_error(tmp_path):
    from item2vec.errors import InputError
    from item2vec.items import read_items

    path = tmp_path / "movies.csv"
    path.write_text("movieId,title\n1,Toy Story\n")
    with pytest.raises(InputError, match=r"genres.*movies\.csv|movies\.csv.*genres") as error:
        read_items(path, "movieId", "title", "genres")
    assert "item_category_col" in str(error.value)
    assert read_items(path, "movieId", "title").shape == (1, 2)
