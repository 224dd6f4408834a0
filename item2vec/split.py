"""Split: leave-last-out, as in the evaluation protocol.

For a user with at least ``MIN_EVENTS_FOR_TEST`` events the last event is the test
target and every earlier event is training; the second-to-last event is the
validation target, used only for tuning. Users with fewer events only train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from item2vec.errors import InputError
from item2vec.progress import Progress
from item2vec.sequences import FlatSequences, as_lists, flat_arrow, flat_items

MIN_EVENTS_FOR_TEST = 3


@dataclass
class Holdout:
    """Users held out for evaluation, with their training history and target.

    Attributes
    ----------
    user_ids
        One entry per evaluated user.
    history_items, history_offsets
        Flat training items of those users, in time order, and offsets into them
        (user ``u`` owns ``history_items[history_offsets[u]:history_offsets[u + 1]]``).
    targets
        The held-out item of each user, or None for histories with nothing held
        out (when recommending rather than evaluating).
    history_baskets
        Boolean per history item: it opens a basket (the first event of a
        sequence, or the first at a new timestamp; :func:`basket_starts`).
        None when the sequences carried no times.
    """

    user_ids: np.ndarray
    history_items: np.ndarray | pa.Array
    history_offsets: np.ndarray
    targets: np.ndarray | None
    history_baskets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass
class Split:
    """Training sequences plus the held-out test and validation cases.

    Attributes
    ----------
    train
        The training sequences as Python lists, the form gensim trains on.
    test, validation
        The held-out cases.
    train_flat
        The same training sequences as flat Arrow items and offsets, for the
        catalogue and the baselines: built in Arrow's kernels, which release
        the GIL while the model trains beside them. None when not built.
    train_baskets
        Boolean per training item, in the order of ``train`` flattened: the
        item opens a basket (:func:`basket_starts`). None without times.
    """

    train: list[list[str]]
    test: Holdout
    validation: Holdout
    train_flat: FlatSequences | None = None
    train_baskets: np.ndarray | None = None

    def training_sequences(self) -> FlatSequences | list[list[str]]:
        """The training side for the catalogue and baselines: flat when it was built."""
        return self.train_flat if self.train_flat is not None else self.train


def _cut_tail(values: np.ndarray, offsets: np.ndarray, eligible: np.ndarray, n: int):
    """Remove the last ``n`` items of eligible sequences.

    Returns (values, offsets, removed, kept): ``kept`` marks the values left.
    """
    ends = offsets[1:]
    lengths = np.diff(offsets)
    drop = np.zeros(len(values), dtype=bool)
    removed = []
    for back in range(1, n + 1):
        positions = ends[eligible] - back
        drop[positions] = True
        removed.append(values[positions])
    new_lengths = lengths - n * eligible.astype(np.int64)
    new_offsets = np.concatenate(([0], np.cumsum(new_lengths))).astype(np.int64)
    return values[~drop], new_offsets, removed, ~drop


def basket_starts(sequences: pa.Table) -> np.ndarray | None:
    """Which items of the flat sequences open a basket; None without a ``times`` column.

    A basket is the events of one sequence that share a timestamp (an order,
    an invoice): an item opens one when it is its sequence's first or its time
    differs from the item before it. Linear, in numpy.
    """
    if "times" not in sequences.column_names:
        return None
    times, offsets = flat_items(sequences, "times")
    stamps = np.asarray(times).astype("datetime64[ns]").astype(np.int64)
    opens = np.ones(len(stamps), dtype=bool)
    opens[1:] = stamps[1:] != stamps[:-1]
    starts = offsets[:-1][offsets[:-1] < len(stamps)]
    opens[starts] = True
    return opens


#: Share of items in baskets of two or more above which a log counts as basket-shaped
#: (``auto`` context and query): 1.0 on an invoice log, 0.23 on the MovieLens sample,
#: whose ratings share a second now and then, 0 on a clickstream.
BASKET_SHARE = 0.5


def basket_share(opens: np.ndarray | None) -> float:
    """Share of items whose basket holds at least one other item (0 without baskets)."""
    if opens is None or not len(opens):
        return 0.0
    basket = np.cumsum(opens) - 1
    sizes = np.bincount(basket)
    return float((sizes[basket] > 1).mean())


def is_basket_log(opens: np.ndarray | None) -> bool:
    """Whether items mostly come in baskets of several: :data:`BASKET_SHARE` or more."""
    return basket_share(opens) >= BASKET_SHARE


def _holdout(user_ids, values, offsets, eligible, targets, baskets=None) -> Holdout:
    """Holdout of the eligible users, with histories taken from ``values``/``offsets``
    (numpy arrays, or Arrow arrays, which are taken from without Python objects),
    and their basket openings from ``baskets`` (aligned with ``values``) when given."""
    lengths = np.diff(offsets)[eligible]
    starts = offsets[:-1][eligible]
    index = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    index = index + np.arange(lengths.sum())
    if isinstance(user_ids, pa.Array):
        user_ids = user_ids.filter(pa.array(eligible))
    else:
        user_ids = user_ids[eligible]
    return Holdout(
        user_ids=user_ids,
        history_items=values.take(pa.array(index))
        if isinstance(values, pa.Array)
        else values[index],
        history_offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        targets=targets,
        history_baskets=None if baskets is None else baskets[index],
    )


def select_cases(holdout: Holdout, keep: np.ndarray) -> Holdout:
    """The cases of ``holdout`` where ``keep`` (a boolean per case) is true, in order."""
    targets = holdout.targets[keep] if holdout.targets is not None else None
    return _holdout(
        holdout.user_ids,
        holdout.history_items,
        holdout.history_offsets,
        keep,
        targets,
        holdout.history_baskets,
    )


def select_rows(holdout: Holdout, rows: slice) -> Holdout:
    """The cases ``rows`` (a slice, as a shard of the cases) of ``holdout``, in order."""
    keep = np.zeros(len(holdout), dtype=bool)
    keep[rows] = True
    return select_cases(holdout, keep)


def evaluation_sample(holdout: Holdout, max_users: int) -> Holdout:
    """The holdout's cases, or a fixed sample of at most ``max_users`` when it has more.

    Parameters
    ----------
    holdout
        Test (or validation) cases: one per user, or one per session.
    max_users
        Most cases to keep; 0 keeps them all.

    Returns
    -------
    Holdout
        The cases of the users whose ids hash lowest, in their original order,
        all of a user's sessions together. The hash depends on the id alone, so
        a user stays in or out of the sample from run to run as the log grows,
        and every method is evaluated on the same users.
    """
    if not max_users or len(holdout) <= max_users:
        return holdout
    users = np.asarray(holdout.user_ids, dtype=object)
    # Hash-based and linear in cases: ``np.unique``/``np.isin`` on object arrays
    # compare Python strings pairwise (1M cases x 20k ids took 20 minutes).
    codes, ids = pd.factorize(users, sort=False)
    cases = np.bincount(codes, minlength=len(ids))
    # Stable on the order of first appearance; a 64-bit collision among a
    # million ids has a chance of about 3e-8.
    by_hash = np.argsort(pd.util.hash_array(ids.astype(object)), kind="stable")
    # A prefix of the hash order, and never empty (one user may hold many sessions).
    fits = int(np.searchsorted(np.cumsum(cases[by_hash]), max_users, side="right"))
    chosen = np.zeros(len(ids), dtype=bool)
    chosen[by_hash[: max(1, fits)]] = True
    return select_cases(holdout, chosen[codes])


def leave_last_out(sequences: pa.Table, lists: bool = True) -> Split:
    """Split per-user sequences into training sequences and test/validation cases.

    Parameters
    ----------
    sequences
        One time-ordered sequence per user (:func:`item2vec.sequences.build_sequences`).
    lists
        Build ``train`` as Python lists (gensim's form); off leaves it empty and
        only ``train_flat`` holds the training side.

    Returns
    -------
    Split
        ``train`` holds every sequence without its test target. ``test`` pairs each
        eligible user's training history with their last item. ``validation`` pairs
        the history without the last two items with the second-to-last item; it is
        for tuning only.
    """
    with Progress("split", total=4, unit="steps") as progress:
        values, offsets = flat_items(sequences)
        user_ids = sequences.column("user_id").to_numpy(zero_copy_only=False)
        eligible = np.diff(offsets) >= MIN_EVENTS_FOR_TEST
        progress.advance()
        opens = basket_starts(sequences)
        cut = _cut_tail(values, offsets, eligible, 1)
        train_values, train_offsets, (test_targets,), kept = cut
        val_cut = _cut_tail(values, offsets, eligible, 2)
        val_values, val_offsets, (_, val_targets), val_kept = val_cut
        # Items removed are sequence ends, so no kept item changes basket.
        train_opens = None if opens is None else opens[kept]
        val_opens = None if opens is None else opens[val_kept]
        test = _holdout(user_ids, train_values, train_offsets, eligible, test_targets, train_opens)
        validation = _holdout(user_ids, val_values, val_offsets, eligible, val_targets, val_opens)
        progress.advance()
        train = as_lists(train_values, train_offsets) if lists else []
        progress.advance()
        strings, _ = flat_arrow(sequences)
        flat = FlatSequences(strings.filter(pa.array(kept)), train_offsets)
        progress.advance()
    return Split(
        train=train, test=test, validation=validation, train_flat=flat, train_baskets=train_opens
    )


def _first_after(times: np.ndarray, offsets: np.ndarray, cutoff: int, until: int | None):
    """Per sequence: how many events are at or before ``cutoff``, and whether an event
    follows it (before ``until`` when given). Events are in time order within a sequence."""
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    before = np.bincount(owner[times <= cutoff], minlength=len(offsets) - 1)
    next_position = offsets[:-1] + before
    has_next = next_position < offsets[1:]
    if until is not None:
        safe = np.minimum(next_position, len(times) - 1)
        has_next &= times[safe] <= until
    return before, next_position, has_next


def temporal_cutoff(times: np.ndarray, test_days: float) -> int:
    """The temporal split's cut-off in epoch nanoseconds: ``test_days`` before the last
    of ``times`` (epoch nanoseconds); events after it are held out."""
    return int(times.max()) - int(test_days * 86_400 * 1e9) if len(times) else 0


def temporal(sequences: pa.Table, test_days: float, lists: bool = True) -> Split:
    """Split at a time cut-off ``test_days`` before the last event.

    Training is every event at or before the cut-off. A user with training
    history and at least one later event is a test case whose target is their
    first event after the cut-off. Validation repeats this one period earlier:
    history up to ``cut-off - test_days``, target the first event in the period
    that follows.

    Parameters
    ----------
    sequences
        Per-user sequences with their ``times`` column.
    test_days
        Length of the test period in days.
    lists
        As for :func:`leave_last_out`.
    """
    values, offsets = flat_items(sequences)
    times, _ = flat_items(sequences, "times")
    times = times.astype("datetime64[ns]").astype(np.int64)
    user_ids = sequences.column("user_id").to_numpy(zero_copy_only=False)
    period = int(test_days * 86_400 * 1e9)
    cutoff = temporal_cutoff(times, test_days)
    opens = basket_starts(sequences)
    holdouts = []
    for cut, until in ((cutoff, None), (cutoff - period, cutoff)):
        before, target_position, has_next = _first_after(times, offsets, cut, until)
        eligible = has_next & (before > 0)
        kept = np.repeat(np.arange(len(before)), before)
        history_index = offsets[:-1][kept] + (
            np.arange(len(kept)) - np.repeat(np.concatenate(([0], np.cumsum(before)[:-1])), before)
        )
        history_values = values[history_index]
        history_offsets = np.concatenate(([0], np.cumsum(before))).astype(np.int64)
        holdouts.append(
            _holdout(
                user_ids,
                history_values,
                history_offsets,
                eligible,
                values[target_position[eligible]],
                None if opens is None else opens[history_index],
            )
        )
        if until is None:
            train_values, train_offsets = history_values, history_offsets
            train_index = history_index
    train = as_lists(train_values, train_offsets) if lists else []
    strings, _ = flat_arrow(sequences)
    flat = FlatSequences(strings.take(pa.array(train_index)), train_offsets)
    return Split(
        train=train,
        test=holdouts[0],
        validation=holdouts[1],
        train_flat=flat,
        train_baskets=None if opens is None else opens[train_index],
    )


def split_sequences(
    sequences: pa.Table,
    method: str = "leave-last-out",
    test_days: float = 7.0,
    require_test: bool = True,
    lists: bool = True,
) -> Split:
    """Split by ``method``: ``leave-last-out`` (the protocol default) or ``temporal``.

    With ``lists`` off, ``Split.train`` is left empty: only the flat training
    side is built, for callers that train nothing (baselines).

    Raises
    ------
    InputError
        When no user is left to evaluate (unless ``require_test`` is off, for a
        caller with its own message): the run could only report zeros.
    """
    if method == "temporal":
        split = temporal(sequences, test_days, lists)
    elif method == "leave-last-out":
        split = leave_last_out(sequences, lists)
    else:
        raise ValueError(f"unknown split {method!r}; use 'leave-last-out' or 'temporal'")
    if require_test and not len(split.test):
        raise InputError(_nothing_to_evaluate(sequences, method, test_days))
    return split


def _nothing_to_evaluate(sequences: pa.Table, method: str, test_days: float) -> str:
    lengths = np.diff(flat_items(sequences)[1])
    longest = int(lengths.max()) if len(lengths) else 0
    events = "1 event" if longest == 1 else f"{longest:,} events"
    found = f"{len(lengths):,} sequences, the longest with {events}"
    if method == "temporal":
        return (
            f"no user has events both before and within the last {test_days:g} days, so "
            f"the temporal split leaves nothing to evaluate ({found}); raise "
            "test_days (--test-days) "
            "or use split='leave-last-out' (--split leave-last-out)"
        )
    return (
        f"no sequence has the {MIN_EVENTS_FOR_TEST} events leave-last-out needs ({found}): "
        "the last event is the test target and the earlier ones train and query; check "
        "that user_col (--user-col) names a person rather than an event, and that "
        "session_gap, max_length (--session-gap, --max-length) or the filters do not cut "
        "histories that short"
    )


def validation_split(
    sequences: pa.Table, method: str = "leave-last-out", test_days: float = 7.0, lists: bool = True
) -> Split:
    """The split whose test cases are the validation targets, with no leak.

    The sequences lose their test targets (:func:`without_test_targets`) and
    are split again: the training side then excludes the validation targets,
    which ``Split.train`` of the ordinary split still holds. It may hold no
    case (short histories); callers check.
    """
    return split_sequences(
        without_test_targets(sequences, method, test_days),
        method,
        test_days,
        require_test=False,
        lists=lists,
    )


def without_test_targets(
    sequences: pa.Table, method: str = "leave-last-out", test_days: float = 7.0
) -> pa.Table:
    """The sequences with every test target (and, temporally, the test period) removed.

    Splitting the result the same way gives a split whose test cases are the
    validation targets of the original: this is what tuning may look at. No
    item held out for the final test can reach a tuning run through it.
    """
    values, offsets = flat_items(sequences)
    times, _ = flat_items(sequences, "times")
    lengths = np.diff(offsets)
    drop = np.zeros(len(values), dtype=bool)
    if method == "temporal":
        stamps = times.astype("datetime64[ns]").astype(np.int64)
        if len(stamps):
            drop = stamps > int(stamps.max()) - int(test_days * 86_400 * 1e9)
    else:
        eligible = lengths >= MIN_EVENTS_FOR_TEST
        drop[offsets[1:][eligible] - 1] = True
    owner = np.repeat(np.arange(len(lengths)), lengths)
    new_lengths = np.bincount(owner[~drop], minlength=len(lengths))
    keep_rows = new_lengths > 0
    new_offsets = np.concatenate(([0], np.cumsum(new_lengths[keep_rows]))).astype(np.int32)
    time_type = sequences.schema.field("times").type.value_type
    table = pa.table(
        {
            "user_id": sequences.column("user_id").filter(pa.array(keep_rows)),
            "items": pa.ListArray.from_arrays(
                pa.array(new_offsets), pa.array(values[~drop], type=pa.string())
            ),
            "times": pa.ListArray.from_arrays(
                pa.array(new_offsets), pa.array(times[~drop], type=time_type)
            ),
        }
    )
    return table
