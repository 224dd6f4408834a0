import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from item2vec.ranking import hit_rate_curve, ranking_metrics, top_k


def _brute(scores, exclude, k):
    scores = scores.astype(np.float32).copy()
    scores[exclude.toarray() > 0] = -np.inf
    result = []
    for row in scores:
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
        result.append([j if np.isfinite(row[j]) else -1 for j in order])
    return np.array(result)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 30), st.integers(1, 25)),
        elements=st.floats(-1, 1, width=32),
        unique=True,
    ),
    st.integers(1, 30),
    st.integers(0, 2**16),
)
def test_top_k_matches_brute_force(scores, k, seed):
    rng = np.random.default_rng(seed)
    exclude = sp.csr_matrix(rng.random(scores.shape) < 0.2)
    top, _ = top_k(
        lambda a, b: scores[a:b], scores.shape[0], scores.shape[1], k, exclude, threads=2
    )
    expected = _brute(scores, exclude, min(k, scores.shape[1]))
    np.testing.assert_array_equal(top[:, : expected.shape[1]], expected)
    assert (top[:, expected.shape[1] :] == -1).all()


def test_top_k_uses_several_blocks_in_threads():
    """top_k over many row blocks in two threads equals a full argsort."""
    rng = np.random.default_rng(1)
    scores = rng.random((1500, 40)).astype(np.float32)
    top, values = top_k(lambda a, b: scores[a:b], 1500, 40, 5, threads=2)
    np.testing.assert_array_equal(top, np.argsort(-scores, axis=1)[:, :5])
    assert np.all(np.diff(values, axis=1) <= 0)


def test_metrics_hand_example():
    """HR, NDCG, MRR, coverage and the unrankable share on a worked example."""
    top = np.array([[3, 1, 2], [0, 2, 1], [1, 0, 2]])
    targets = np.array([1, 5, -1])
    unrankable = np.array([False, False, True])
    m = ranking_metrics(top, targets, [1, 2], catalogue_size=6, unrankable=unrankable)
    assert m["hr@1"] == 0.0
    assert m["hr@2"] == 1 / 3
    assert np.isclose(m["ndcg@2"], (1 / np.log2(3)) / 3)
    assert np.isclose(m["mrr@2"], 0.5 / 3)
    assert m["coverage@1"] == 3 / 6
    assert m["unrankable"] == 1 / 3


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(2, 30), st.integers(0, 2**16))
@example(n=7, m=23, seed=58)  # mrr@11 summed to 0.175 + 2e-17 and mrr@23 to 0.175
def test_metrics_bounded_and_monotone(n, m, seed):
    rng = np.random.default_rng(seed)
    top = np.stack([rng.permutation(m) for _ in range(n)])
    targets = rng.integers(-1, m, size=n)
    ks = sorted({1, max(1, m // 2), m})
    metrics = ranking_metrics(top, targets, ks, m, targets < 0)
    for value in metrics.values():
        assert 0.0 <= value <= 1.0
    for name in ("hr", "ndcg", "mrr", "coverage"):
        series = [metrics[f"{name}@{k}"] for k in ks]
        assert series == sorted(series)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(2, 30), st.integers(0, 2**16))
def test_hit_rate_curve_agrees_with_metrics(n, m, seed):
    rng = np.random.default_rng(seed)
    top = np.stack([rng.permutation(m) for _ in range(n)])
    targets = rng.integers(-1, m, size=n)
    curve = hit_rate_curve(top, targets, m)
    metrics = ranking_metrics(top, targets, list(range(1, m + 1)), m, targets < 0)
    assert curve == [metrics[f"hr@{k}"] for k in range(1, m + 1)]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**16), st.sampled_from(["random", "ties", "sparse"]))
def test_sampled_selection_matches_brute_force_on_wide_rows(k, seed, kind):
    # Wide enough rows to take the sampled-bound path of the selection.
    rng = np.random.default_rng(seed)
    n_rows, n_cols = 7, 2_500
    if kind == "random":
        scores = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    elif kind == "ties":
        scores = rng.integers(0, 4, size=(n_rows, n_cols)).astype(np.float32)
    else:  # mostly unrankable rows, as for users with little history
        scores = np.full((n_rows, n_cols), -np.inf, dtype=np.float32)
        scores[:, rng.integers(0, n_cols, size=k + 1)] = rng.random(k + 1)
        scores[0] = -np.inf
    top, values = top_k(lambda a, b: scores[a:b], n_rows, n_cols, k, None, threads=1)
    expected = _brute(scores, sp.csr_matrix((n_rows, n_cols)), k)
    expected_values = np.where(
        expected >= 0, np.take_along_axis(scores, np.maximum(expected, 0), axis=1), -np.inf
    )
    np.testing.assert_array_equal(values, expected_values)
    if kind != "ties":  # which of several equal scores fills the last place is unspecified
        np.testing.assert_array_equal(top, expected)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 25), st.integers(3, 40), st.integers(0, 2**16))
def test_evaluate_scorer_matches_brute_force_metrics(n_users, n_items, seed):
    from item2vec.catalogue import Cases
    from item2vec.evaluate import evaluate_scorer

    rng = np.random.default_rng(seed)
    # Distinct scores, so the brute-force rank is unambiguous.
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float32)
    seen = sp.csr_matrix(rng.random((n_users, n_items)) < 0.3, dtype=np.float32)
    targets = rng.integers(-1, n_items, size=n_users)
    cases = Cases(seen=seen, query=seen, targets=targets)

    class Fixed:
        rankable = np.ones(n_items, dtype=bool)

        def __call__(self, cases, start, stop):
            return scores[start:stop]

    ks = [1, 5, 10]
    got = evaluate_scorer(Fixed(), cases, ks, n_items)
    dense_seen = seen.toarray() > 0
    for k in ks:
        hr = ndcg = mrr = 0.0
        for user in range(n_users):
            target = targets[user]
            if target < 0 or dense_seen[user, target]:
                continue  # a seen or unknown target can never be recommended
            better = (scores[user] > scores[user, target]) & ~dense_seen[user]
            rank = int(better.sum()) + 1
            if rank <= k:
                hr += 1
                ndcg += 1 / np.log2(rank + 1)
                mrr += 1 / rank
        assert got[f"hr@{k}"] == pytest.approx(hr / n_users)
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg / n_users)
        assert got[f"mrr@{k}"] == pytest.approx(mrr / n_users)
