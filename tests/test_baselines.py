import numpy as np
import pandas as pd
import pytest

from item2vec.baselines import ItemKNNScorer, PopularityScorer
from item2vec.catalogue import build_catalogue, encode_cases, user_item_matrix
from item2vec.sequences import build_sequences
from item2vec.split import Holdout


def _toy():
    # a and b always together; c with a once; d alone.
    train = [["a", "b"], ["a", "b", "c"], ["b", "d"], ["d"]]
    catalogue = build_catalogue(train)
    holdout = Holdout(
        user_ids=np.array(["x"], dtype=object),
        history_items=np.array(["c", "a"], dtype=object),
        history_offsets=np.array([0, 2]),
        targets=np.array(["b"], dtype=object),
    )
    return train, catalogue, encode_cases(holdout, catalogue, query_items=1)


def test_popularity_counts():
    """Popularity ranks by training count; equal counts go to the lower id."""
    train, catalogue, cases = _toy()
    assert catalogue.item_ids.tolist() == ["a", "b", "c", "d"]
    scores = PopularityScorer(catalogue)(cases, 0, 1)[0]
    # Counts a=2, b=3, c=1, d=2: b first, then a and d tied (a has the lower id), then c.
    assert list(np.argsort(-scores, kind="stable")) == [1, 0, 3, 2]


def test_popularity_ties_follow_natural_id_order():
    from item2vec.catalogue import Catalogue

    catalogue = Catalogue(
        item_ids=np.array(["10", "2", "b", "a"], dtype=object), counts=np.array([1, 1, 1, 5])
    )
    assert catalogue.natural_order().tolist() == [1, 0, 3, 2]
    scores = PopularityScorer(catalogue).popularity
    assert [catalogue.item_ids[i] for i in np.argsort(-scores)] == ["a", "2", "10", "b"]


def test_catalogue_codes_and_counts():
    """The catalogue holds ids sorted as strings with their counts; unknown ids code to -1."""
    train = [["10", "b", "2"], ["b", "é"], ["10"]]
    catalogue = build_catalogue(train)
    # Sorted as strings, like the sequences' ids; each counted once per occurrence.
    assert catalogue.item_ids.tolist() == sorted({"10", "b", "2", "é"})
    assert dict(zip(catalogue.item_ids, catalogue.counts.tolist(), strict=True)) == {
        "10": 2,
        "2": 1,
        "b": 2,
        "é": 1,
    }
    items = np.array(["é", "missing", "10", "2", "b"], dtype=object)
    codes = catalogue.codes(items)
    assert codes[1] == -1
    assert [catalogue.item_ids[c] for c in codes[[0, 2, 3, 4]]] == ["é", "10", "2", "b"]
    assert catalogue.codes(np.array([], dtype=object)).tolist() == []


def test_item_knn_by_hand():
    """Item-kNN scores are cosines over the users of each item, worked out by hand."""
    train, catalogue, cases = _toy()
    # Query is the last history item only: "a". Users: a in {0,1}, b in {0,1,2},
    # c in {1}, d in {2,3}. cos(a,b)=2/sqrt(2*3), cos(a,c)=1/sqrt(2), cos(a,d)=0, cos(a,a)=1.
    scores = ItemKNNScorer(user_item_matrix(train, catalogue))(cases, 0, 1)[0]
    expected = [1.0, 2 / np.sqrt(6), 1 / np.sqrt(2), 0.0]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_cases_encoding():
    """A test case codes its seen items, its query (the last item) and its target."""
    _, _, cases = _toy()
    assert cases.seen.toarray().tolist() == [[1, 0, 1, 0]]
    assert cases.query.toarray().tolist() == [[1, 0, 0, 0]]
    assert cases.targets.tolist() == [1]


def test_baselines_on_the_sample_match_the_reference_figures(sample_ratings):
    from item2vec.config import build_config
    from item2vec.evaluate import evaluate_baselines
    from item2vec.ingest import read_events
    from item2vec.presets import bundled_sample
    from item2vec.sequences import build_sequences
    from item2vec.split import split_sequences

    # DESIGN §3's reference protocol: leave-last-out, query = the last 5 items.
    config = build_config(bundled_sample(), {"evaluate": {"query_items": 5}})
    split = split_sequences(build_sequences(read_events(config.ingest).table))
    metrics = evaluate_baselines(split.train, split.test, config.evaluate)
    popularity, knn = metrics["popularity"], metrics["item_knn"]
    # Reference: popularity HR@10 0.043, HR@20 0.069; item-kNN 0.107, 0.156.
    # One hit is 0.0016 here; allow two hits of difference for tie-breaking.
    for measured, reference in (
        (popularity["hr@10"], 0.043),
        (popularity["hr@20"], 0.069),
        (knn["hr@10"], 0.107),
        (knn["hr@20"], 0.156),
    ):
        assert abs(measured - reference) <= 0.0033


def test_user_item_matrix_is_binary_with_repeats():
    """A repeated item is one 1 in the user-item matrix, whose indices are sorted."""
    train = [["b", "a", "b", "b"], ["c"], ["a", "c", "a"]]
    catalogue = build_catalogue(train)
    matrix = user_item_matrix(train, catalogue)
    assert matrix.toarray().tolist() == [[1, 1, 0], [0, 0, 1], [1, 0, 1]]
    assert matrix.has_sorted_indices and matrix.nnz == 5


def _zipf_world(seed, items, sequences, longest, users, longest_history):
    """Training sequences with Zipf popularity, and random held-out users encoded on them."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, items + 1)
    train = [
        [
            f"i{v}"
            for v in rng.choice(items, size=rng.integers(1, longest), p=weights / weights.sum())
        ]
        for _ in range(sequences)
    ]
    catalogue = build_catalogue(train)
    lengths = rng.integers(1, longest_history, size=users)
    holdout = Holdout(
        user_ids=np.array([f"u{n}" for n in range(users)], dtype=object),
        history_items=rng.choice(catalogue.item_ids, size=lengths.sum()),
        history_offsets=np.concatenate(([0], np.cumsum(lengths))),
        targets=rng.choice(catalogue.item_ids, size=users),
    )
    return train, catalogue, encode_cases(holdout, catalogue, query_items=5)


def test_popularity_shortlist_ranks_exactly_like_the_whole_catalogue():
    """Ranking only the head of the popularity list gives the full ranking's top-k."""
    from item2vec.evaluate import evaluate_scorer

    train, catalogue, cases = _zipf_world(
        3, items=300, sequences=200, longest=60, users=150, longest_history=80
    )
    popularity = PopularityScorer(catalogue)

    class WholeCatalogue:  # the same scores, without the shortlist
        rankable = popularity.rankable

        def __call__(self, cases, start, stop):
            return popularity(cases, start, stop)

    for exclude_seen in (True, False):
        fast, full = (
            evaluate_scorer(s, cases, [10, 20], len(catalogue), exclude_seen, curve_k=50)
            for s in (popularity, WholeCatalogue())
        )
        assert fast == full


def test_item_knn_head_rows_give_the_same_scores_as_the_sparse_products():
    """Precomputed similarity rows of popular items change no score (beyond float rounding)."""
    train, catalogue, cases = _zipf_world(
        5, items=200, sequences=300, longest=30, users=80, longest_history=12
    )
    matrix = user_item_matrix(train, catalogue)
    items = len(catalogue)
    sparse_only = ItemKNNScorer(matrix, head_bytes=0)
    all_head = ItemKNNScorer(matrix, head_bytes=4 * items * items)
    some_head = ItemKNNScorer(matrix, head_bytes=4 * items * 7)
    assert len(sparse_only.head) == 0 and len(all_head.head) == items
    assert len(some_head.head) == 7
    expected = sparse_only(cases, 0, 80)
    for scorer in (all_head, some_head):
        np.testing.assert_allclose(scorer(cases, 0, 80), expected, rtol=1e-5, atol=1e-6)


def test_item_knn_query_length_is_chosen_on_validation_never_on_test():
    """The same validation split gives the same choice whatever the test targets are."""
    from item2vec.config import EvaluateConfig
    from item2vec.evaluate import KNN_QUERY_ITEMS, evaluate_baselines
    from item2vec.split import leave_last_out, validation_split
    from item2vec.synth import planted_clusters

    events, _ = planted_clusters(n_users=150, n_items=40, n_clusters=4, events_per_user=12)
    frame = events.rename(columns={"timestamp": "ts"})
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    sequences = build_sequences(frame)
    split = leave_last_out(sequences)
    validation = validation_split(sequences)
    config = EvaluateConfig(query_items=3)
    first = evaluate_baselines(split.train, split.test, config, validation)["item_knn"]
    shuffled = np.random.default_rng(0).permutation(split.test.targets)
    other_test = Holdout(
        split.test.user_ids, split.test.history_items, split.test.history_offsets, shuffled
    )
    second = evaluate_baselines(split.train, other_test, config, validation)["item_knn"]
    assert first["settings"] == second["settings"]
    tried = first["settings"]["validation"]
    assert set(tried) == {str(q) for q in (*KNN_QUERY_ITEMS, 3)}
    assert first["settings"]["query_items"] == int(max(tried, key=lambda q: (tried[q], -int(q))))
    # Without a validation split item-kNN keeps the model's query length.
    fixed = evaluate_baselines(split.train, split.test, config)["item_knn"]["settings"]
    assert fixed["query_items"] == 3 and "validation" not in fixed


def test_fallback_metrics_take_the_model_where_it_served_and_item_knn_elsewhere():
    from item2vec.fallback import fallback_metrics

    targets = np.array([5, 6, 7])
    model = {
        "top": np.array([[5, 1], [-1, -1], [2, 7]]),
        "targets": targets,
        "unrankable": np.array([False, True, False]),
        "catalogue_size": 10,
    }
    knn = {
        "top": np.array([[0, 1], [6, 2], [3, 4]]),
        "targets": targets,
        "unrankable": np.zeros(3, dtype=bool),
        "catalogue_size": 10,
    }
    served = np.array([True, False, True])
    result = fallback_metrics(model, served, knn, [1, 2])
    # Case 0: model hit at 1; case 1: item-kNN hit at 1; case 2: model hit at 2.
    assert result["hr@1"] == pytest.approx(2 / 3) and result["hr@2"] == pytest.approx(1.0)
    assert result["fallback_share"] == pytest.approx(1 / 3) and result["unrankable"] == 0.0


def test_users_without_a_vector_in_their_query_are_served_by_the_fallback():
    """A case whose query items all lack a vector counts as the fallback's, and only those."""
    from item2vec.config import EvaluateConfig
    from item2vec.evaluate import combine_metrics, evaluate_baselines, evaluate_model
    from item2vec.vectors import ItemVectors

    train = [["a", "b", "c"], ["a", "b"], ["c", "d"], ["d", "e"]]
    holdout = Holdout(
        user_ids=np.array(["u1", "u2"], dtype=object),
        history_items=np.array(["a", "b", "d", "e"], dtype=object),
        history_offsets=np.array([0, 2, 4]),
        targets=np.array(["c", "c"], dtype=object),
    )
    rng = np.random.default_rng(0)
    # Only a, b and c have vectors: u2's query (d, e) has none.
    vectors = ItemVectors(
        item_ids=np.array(["a", "b", "c"], dtype=object),
        vectors=rng.normal(size=(3, 4)).astype(np.float32),
        context_vectors=rng.normal(size=(3, 4)).astype(np.float32),
        counts=np.array([2, 2, 2]),
    )
    config = EvaluateConfig(k=[1, 2], query_items=2)
    model = evaluate_model(vectors, train, holdout, config)
    assert model["served"].tolist() == [True, False]
    record = combine_metrics(model, evaluate_baselines(train, holdout, config), holdout, config)
    assert record["model_with_fallback"]["fallback_share"] == 0.5
    # Item-kNN ranks c first for u2 (d co-occurs with c), so the fallback adds that hit.
    fallback_hr = record["model_with_fallback"]["hr@1"]
    assert fallback_hr == pytest.approx(record["model"]["hr@1"] + 0.5)


def test_asymmetric_cosine_by_hand():
    """Asymmetric cosine divides co-occurrence by |U_query|^alpha |U_candidate|^(1-alpha)."""
    from item2vec.baselines import ASYMMETRIC_ALPHA

    train, catalogue, cases = _toy()
    scores = ItemKNNScorer(user_item_matrix(train, catalogue), similarity="asymmetric")(
        cases, 0, 1
    )[0]
    # Query "a" has 2 users; candidates a, b, c, d have 2, 3, 1, 2 users and share 2, 2, 1, 0.
    alpha = ASYMMETRIC_ALPHA
    expected = [2 / (2**alpha * 2 ** (1 - alpha)), 2 / (2**alpha * 3 ** (1 - alpha))]
    expected += [1 / (2**alpha * 1 ** (1 - alpha)), 0.0]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_bm25_weighs_users_with_many_items_less():
    """Under BM25 a co-occurrence through a user with many items counts for less than one
    through a user with few, where the cosine counts both alike."""
    # Query "q" co-occurs with "x" through a user who has only q and x, and with "y"
    # through a user who has q, y and many other items.
    # (The busy user has a third of the catalogue, so their idf stays above 0.)
    busy = ["q", "y", *[f"z{i}" for i in range(20)]]
    train = [["q", "x"], busy, *[[f"z{i}"] for i in range(60)]]
    catalogue = build_catalogue(train)
    holdout = Holdout(
        user_ids=np.array(["u"], dtype=object),
        history_items=np.array(["q"], dtype=object),
        history_offsets=np.array([0, 1]),
        targets=np.array(["x"], dtype=object),
    )
    cases = encode_cases(holdout, catalogue, query_items=1)
    matrix = user_item_matrix(train, catalogue)
    x, y = catalogue.codes(np.array(["x", "y"], dtype=object))
    cosine = ItemKNNScorer(matrix)(cases, 0, 1)[0]
    bm25 = ItemKNNScorer(matrix, similarity="bm25")(cases, 0, 1)[0]
    assert cosine[x] == pytest.approx(cosine[y])
    assert bm25[x] > bm25[y] > 0


def test_an_unknown_similarity_names_the_choices():
    """A similarity that does not exist is refused with the ones that do."""
    train, catalogue, _ = _toy()
    with pytest.raises(ValueError, match="cosine, bm25, asymmetric"):
        ItemKNNScorer(user_item_matrix(train, catalogue), similarity="jaccard")


def test_item_knn_settings_are_the_best_on_validation_and_used_on_test():
    """The query length and the similarity are each the argmax of their validation scores,
    and the test evaluation runs item-kNN with exactly those settings."""
    from item2vec.baselines import KNN_SIMILARITIES
    from item2vec.config import EvaluateConfig
    from item2vec.evaluate import evaluate_baselines, knn_settings
    from item2vec.split import split_sequences, validation_split

    rng = np.random.default_rng(3)
    rows = [
        {"user_id": f"u{u}", "item_id": f"i{item}", "ts": t}
        for u in range(150)
        for t, item in enumerate(rng.choice(40, size=8, replace=False) + (u % 3) * 13)
    ]
    sequences = build_sequences(pd.DataFrame(rows))
    config = EvaluateConfig(query_items=4)
    validation = validation_split(sequences)
    settings = knn_settings(validation, config)
    by_length, by_similarity = settings["validation"], settings["validation_similarity"]
    assert set(by_similarity) == set(KNN_SIMILARITIES)
    assert by_length[str(settings["query_items"])] == max(by_length.values())
    assert by_similarity[settings["similarity"]] == max(by_similarity.values())
    assert by_similarity["cosine"] == by_length[str(settings["query_items"])]
    results = evaluate_baselines(
        split_sequences(sequences).training_sequences(),
        split_sequences(sequences).test,
        config,
        validation=validation,
    )
    assert results["item_knn"]["settings"] == settings
    assert knn_settings(None, config) == {
        "query_items": 4,
        "similarity": "cosine",
        "chosen_on": "the model's query length",
    }
