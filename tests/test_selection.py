import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from item2vec.selection import select_top_k


def _stable_top(row: np.ndarray, k: int) -> list[int]:
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
    return [j if np.isfinite(row[j]) else -1 for j in order]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 3_000),
    st.integers(1, 40),
    st.integers(0, 2**16),
    st.sampled_from(["random", "ties", "ascending", "unrankable"]),
)
def test_selection_is_exact_with_ties_to_the_lower_column(n_rows, n_cols, k, seed, kind):
    """Every kind of row (ties, worst-case ascending order, few finite scores) gives
    exactly the stable descending order's first k, -1 where nothing can be ranked."""
    k = min(k, n_cols)
    rng = np.random.default_rng(seed)
    if kind == "random":
        block = rng.standard_normal((n_rows, n_cols))
    elif kind == "ties":
        block = rng.integers(0, 3, size=(n_rows, n_cols)).astype(float)
    elif kind == "ascending":  # every score beats the last: the buffer compacts all the time
        block = np.tile(np.arange(n_cols, dtype=float), (n_rows, 1))
    else:
        block = np.full((n_rows, n_cols), -np.inf)
        block[:, rng.integers(0, n_cols, size=max(1, k // 2))] = 1.0
    block = block.astype(np.float32)
    top, scores = select_top_k(block, k)
    expected = np.array([_stable_top(row, k) for row in block])
    np.testing.assert_array_equal(top, expected)
    expected_scores = np.where(
        expected >= 0, np.take_along_axis(block, np.maximum(expected, 0), axis=1), -np.inf
    )
    np.testing.assert_array_equal(scores, expected_scores)
