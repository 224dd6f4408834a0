"""The splits a sweep sees: trials on the validation target, the winner on the test target.

Every trial trains on the sequences with the test targets removed
(:func:`item2vec.split.without_test_targets`) and is scored on what that split
then holds out: each user's second-to-last event, the validation target of
:func:`item2vec.split.leave_last_out`. Training on ``split.train`` and scoring
``split.validation`` instead would leak: ``split.train`` still contains the
validation target. The test target never reaches a trial. Only the winner (and
the starting configuration, for comparison) is trained once more on the full
training side and evaluated on the test target, beside the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.config import PipelineConfig
from item2vec.errors import ConfigError
from item2vec.split import Split, evaluation_sample, split_sequences, validation_split


@dataclass
class TuningData:
    """What trials train and score on, and what the winner is finally tested on.

    Attributes
    ----------
    tuning
        Split of the sequences without test targets: its ``test`` holds the
        validation targets, its ``train`` excludes them.
    final
        The ordinary split of the full sequences (test targets held out).
    users
        Validation users the trials are scored on (all, or the ``--sample-users`` share).
    """

    tuning: Split
    final: Split
    users: int

    @property
    def final_scale(self) -> float:
        """Training events of the final fit per training event of a trial.

        About 1 on all users; about 1/share with ``--sample-users``, which is what
        the final evaluation costs more than a trial.
        """
        tuned = sum(len(sequence) for sequence in self.tuning.train)
        return sum(len(sequence) for sequence in self.final.train) / max(1, tuned)


def sample_users(sequences: pa.Table, share: float, seed: int) -> pa.Table:
    """A seeded random share of the users, with all of their sequences.

    Parameters
    ----------
    sequences
        Sequences with a ``user_id`` column (one or several rows per user).
    share
        Share of distinct users to keep, in (0, 1]; 1 keeps the table as it is.
    seed
        Seed of the draw: the same seed keeps the same users.

    Raises
    ------
    ConfigError
        If ``share`` is not in (0, 1].
    """
    if not 0 < share <= 1:
        raise ConfigError(f"--sample-users must be in (0, 1], e.g. 0.2; got {share}")
    if share == 1:
        return sequences
    users = pc.unique(sequences.column("user_id")).sort()
    rng = np.random.default_rng(seed)
    size = max(1, round(share * len(users)))
    chosen = users.take(pa.array(np.sort(rng.choice(len(users), size=size, replace=False))))
    return sequences.filter(pc.is_in(sequences.column("user_id"), value_set=chosen))


def tuning_data(
    sequences: pa.Table, config: PipelineConfig, share: float = 1.0, seed: int = 0
) -> TuningData:
    """Splits for a sweep: trials on (a user sample of) the validation view, final on all.

    Parameters
    ----------
    sequences
        All sequences (:func:`item2vec.sequences.build_sequences`).
    config
        Its ``evaluate.split`` and ``test_days`` choose the split.
    share, seed
        ``--sample-users``: trials see this seeded share of users; the final
        evaluation always sees everyone.

    Raises
    ------
    ConfigError
        If no user is left with a validation target.
    """
    method, days = config.evaluate.split, config.evaluate.test_days
    sampled = sample_users(sequences, share, seed)
    tuning = validation_split(sampled, method, days)
    if len(tuning.test) == 0:
        raise ConfigError(
            "no user has enough events for a validation target (3 after removing the test "
            "target); tune on more data or a larger --sample-users"
        )
    final = split_sequences(sequences, method, days)
    # Trials are scored on at most evaluate.max_users of them (the same fixed sample).
    users = len(evaluation_sample(tuning.test, config.evaluate.max_users))
    return TuningData(tuning=tuning, final=final, users=users)
