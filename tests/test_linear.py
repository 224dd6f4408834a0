"""Cheap guards against quadratic patterns, in the default test run.

A stage can be fast on every benchmark and still stall at the reference size on
a step quadratic in users (DESIGN §4). The classic one here is ``np.isin`` (or
``==`` broadcasting) on object arrays of ids: numpy compares the Python strings
pairwise, ``len(a) * len(b)`` calls of ``__eq__`` (1M cases x 20k sampled ids took
20 minutes). These tests count the comparisons instead of timing anything, so
they are exact, fast, and immune to a busy machine.

``tests/test_scale.py`` (marker ``slow``) times whole stages at two sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

from item2vec.split import Holdout, evaluation_sample


class CountingId(str):
    """A user id that counts how often it is compared for (in)equality.

    ``__hash__`` stays ``str.__hash__``, so hash-based code (dicts, pandas'
    factorize, Arrow) treats it exactly like a ``str``; only ``==`` and ``!=``
    are instrumented, and only through Python's rich comparison, which is how
    numpy compares the elements of object arrays.
    """

    comparisons = 0
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        CountingId.comparisons += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        CountingId.comparisons += 1
        return str.__ne__(self, other)


def _ids(n: int, counting: bool = True) -> np.ndarray:
    kind = CountingId if counting else str
    return np.array([kind(f"u{number:07d}") for number in range(n)], dtype=object)


def _holdout(user_ids: np.ndarray, history: int = 2) -> Holdout:
    """One case per user, each with ``history`` training items and a target."""
    n = len(user_ids)
    items = np.array([f"i{number:05d}" for number in range(1_000)], dtype=object)
    return Holdout(
        user_ids=user_ids,
        history_items=items[np.arange(n * history) % len(items)],
        history_offsets=np.arange(0, n * history + 1, history, dtype=np.int64),
        targets=items[np.arange(n) % len(items)],
    )


@pytest.fixture(autouse=True)
def _reset_counter():
    CountingId.comparisons = 0
    yield
    CountingId.comparisons = 0


def test_counter_sees_pairwise_isin():
    """The counter observes the quadratic pattern, so the test below can fail.

    ``np.isin`` with an object array takes its per-element loop (``ar1 == a`` for
    every ``a`` in the second array) whatever the sizes: exactly one ``__eq__``
    per pair. If a numpy release stopped doing that, this test says so, instead
    of the guard below passing for the wrong reason.
    """
    users = _ids(2_000)
    np.isin(users, users[:100])
    assert CountingId.comparisons >= 2_000 * 100


def test_evaluation_sample_does_not_compare_users_pairwise():
    """Sampling 1,000 of 50,000 users compares ids O(users) times, not O(users x sample).

    What it proves: :func:`item2vec.split.evaluation_sample` finds the sampled
    users' cases by hashing (or by codes), not by comparing every case's user id
    with every sampled id. A pairwise ``np.isin`` here would make about 5e7
    ``__eq__`` calls (about 50,000 x 1,000); the bound allows a few per user, which
    any hash table or sort-and-compare-neighbours pass stays within. It does not
    bound ``<`` comparisons (an O(n log n) sort of the ids would pass), nor time
    spent outside Python-level comparisons; ``tests/test_scale.py`` times that.
    """
    n_users, sample = 50_000, 1_000
    holdout = _holdout(_ids(n_users))
    CountingId.comparisons = 0
    sampled = evaluation_sample(holdout, sample)
    comparisons = CountingId.comparisons
    assert comparisons <= 4 * n_users, (
        f"evaluation_sample made {comparisons:,} id comparisons for {n_users:,} users "
        f"sampled down to {sample:,}: pairwise, where a hash lookup needs O(users)"
    )
    # It still samples: the same users as with plain strings, at most `sample` of them.
    plain = evaluation_sample(_holdout(_ids(n_users, counting=False)), sample)
    assert 0 < len(sampled) <= sample
    assert [str(user) for user in sampled.user_ids] == list(plain.user_ids)
    assert list(sampled.targets) == list(plain.targets)


def test_evaluation_sample_with_many_cases_per_user_is_linear():
    """Sessions: several cases share a user id (distinct but equal string objects).

    Equal ids that are different objects defeat the identity shortcut of hash
    lookups, so each repeated case may cost a comparison or two: still linear.
    """
    n_users, sessions, sample = 10_000, 5, 1_000
    user_ids = np.array(
        [CountingId(f"u{number % n_users:07d}") for number in range(n_users * sessions)],
        dtype=object,
    )
    holdout = _holdout(user_ids)
    CountingId.comparisons = 0
    sampled = evaluation_sample(holdout, sample)
    cases = n_users * sessions
    assert CountingId.comparisons <= 4 * cases, (
        f"evaluation_sample made {CountingId.comparisons:,} id comparisons for {cases:,} "
        f"cases sampled down to {sample:,}: pairwise, where a hash lookup needs O(cases)"
    )
    # All of a user's sessions together: every sampled user keeps all five cases.
    kept, per_user = np.unique(sampled.user_ids.astype(str), return_counts=True)
    assert 0 < len(sampled) <= sample
    assert (per_user == sessions).all(), per_user
    assert len(kept) == len(sampled) // sessions
