import numpy as np
import pytest

from item2vec import cost
from item2vec.cost import context_pairs, estimate_training_cost


def _pairs_by_enumeration(lengths, window, shrink):
    """Every (centre, context) pair, averaged over the window each centre may draw."""
    widths = range(1, window + 1) if shrink else [window]
    total = 0.0
    for n in lengths:
        for i in range(n):
            total += np.mean(
                [sum(1 for j in range(n) if j != i and abs(i - j) <= w) for w in widths]
            )
    return total


@pytest.mark.parametrize("window,shrink", [(1, True), (3, True), (5, False), (12, False)])
def test_pair_count_matches_enumeration(window, shrink):
    lengths = np.array([1, 2, 3, 4, 7, 7, 15, 30])
    expected = _pairs_by_enumeration(lengths, window, shrink)
    assert context_pairs(lengths, window, shrink) == round(expected)


def test_no_sentences_make_no_pairs():
    assert context_pairs(np.array([], dtype=np.int64), 5, True) == 0


def _corpus(sentences, length, items=500, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"i{v}" for v in rng.integers(0, items, size=length)] for _ in range(sentences)]


def test_small_corpus_has_no_warmup_and_counts_tokens_and_memory():
    corpus = _corpus(50, 10)
    params = {"window": 2, "epochs": 3, "vector_size": 8, "negative": 5, "workers": 1}
    estimate = estimate_training_cost(corpus, params, vocabulary=400)
    assert estimate.tokens == 500 and estimate.sequences == 50 and estimate.epochs == 3
    # Input and output vectors, float32.
    assert estimate.vector_bytes == 400 * 8 * 4 * 2
    assert estimate.warmup_words_per_s is None and estimate.estimated_seconds is None
    assert "500 tokens x 3 epochs" in estimate.describe()


def test_large_corpus_is_timed_on_a_sample(monkeypatch):
    """A large corpus's training time is estimated from a timed warm-up on a sample."""
    monkeypatch.setattr(cost, "WARMUP_MIN_TOKENS", 1_000)
    monkeypatch.setattr(cost, "WARMUP_TOKENS", 2_000)
    corpus = _corpus(400, 20)
    params = {"window": 3, "epochs": 4, "vector_size": 8, "negative": 2, "workers": 1, "seed": 1}
    estimate = estimate_training_cost(corpus, params, vocabulary=500)
    assert estimate.warmup_words_per_s > 0
    assert estimate.estimated_seconds == pytest.approx(
        8_000 * 4 / estimate.warmup_words_per_s, rel=0.01, abs=0.05
    )
    assert "estimated" in estimate.describe()
    assert set(estimate.as_dict()) >= {"tokens", "pairs_per_epoch", "estimated_seconds"}
