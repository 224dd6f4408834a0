"""One trial: train a configuration on the tuning split, score it on the validation target.

Pruning. gensim trains all epochs in one call, but :func:`item2vec.train.train_word2vec`
calls a hook after every epoch with the vectors as they are. A trial scores the
validation target at 1/4, 2/4 and 3/4 of its epochs and reports them as steps
1, 2 and 3: trials of different lengths are compared at the same share of
their training (and of their learning-rate decay), not at the same epoch
number, which a 10-epoch and a 150-epoch trial would rarely share. A trial
whose score is below the median of earlier trials at the same step stops.

Time. A running trial stops as soon as its measured pace says it would run
past the sweep's budget, or take more than :data:`TRIAL_SHARE` of it: one slow
corner of the space (whole-sequence context at 150 epochs takes minutes) may
not eat the search.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from item2vec.config import EvaluateConfig, PipelineConfig
from item2vec.errors import ConfigError
from item2vec.evaluate import evaluate_baselines, evaluate_model
from item2vec.search_space import OBJECTIVE, flat_metrics, needs_neighbors
from item2vec.train import train_word2vec
from item2vec.tuning_split import TuningData

#: Intermediate scores at 1/CHECKPOINTS .. (CHECKPOINTS-1)/CHECKPOINTS of the epochs.
CHECKPOINTS = 4
#: Largest share of the budget one trial may take.
TRIAL_SHARE = 0.2


class TrialPruned(Exception):
    """Raised from the epoch hook to stop a trial (hopeless, or out of time)."""


@dataclass
class TrialResult:
    """What one trial measured.

    Attributes
    ----------
    value
        Validation :data:`OBJECTIVE`, or None when the trial stopped early.
    metrics
        Every validation metric of a complete trial.
    intermediate
        Validation :data:`OBJECTIVE` per pruning step (1 .. CHECKPOINTS-1).
    pruned, reason
        Whether the trial stopped early, and why.
    seconds
        Wall-clock seconds of the trial.
    """

    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    pruned: bool = False
    reason: str = ""
    seconds: float = 0.0


#: ``should_prune(step, value) -> bool`` of :func:`run_trial`.
PruneHook = Callable[[int, float], bool]


def run_trial(
    config: PipelineConfig,
    data: TuningData,
    should_prune: PruneHook | None = None,
    deadline: float | None = None,
    time_limit: float | None = None,
    objective: str = OBJECTIVE,
) -> TrialResult:
    """Train ``config`` on the tuning split and score it on the validation target.

    Parameters
    ----------
    config
        The trial's full configuration.
    data
        From :func:`item2vec.tuning_split.tuning_data`; only ``data.tuning`` is used.
    should_prune
        ``should_prune(step, value) -> bool``, asked at 1/4, 2/4 and 3/4 of the
        epochs (steps 1, 2, 3) with the validation score then (Optuna's pruner);
        None never prunes and skips those evaluations.
    deadline
        ``time.time()`` after which the trial may not run; it also stops as soon
        as its pace says it would end later. Wall-clock time, so that it means
        the same on every worker of a cluster.
    time_limit
        Most seconds the trial may take, judged from its pace after two epochs.
    objective
        The flat metric the trial is scored by (a value of
        :data:`item2vec.search_space.OBJECTIVES`).

    Returns
    -------
    TrialResult
        Never raises for a bad trial: a configuration that trains nothing
        (e.g. ``min_count`` above every count) is returned as pruned, with why.
    """
    started = time.perf_counter()
    result = TrialResult(value=None)
    epochs = config.train.epochs
    steps = {max(1, round(epochs * n / CHECKPOINTS)): n for n in range(1, CHECKPOINTS)}
    first_epoch_end: list[float] = []

    def on_epoch(epoch: int, vectors_now: Any) -> None:
        now = time.perf_counter()
        if epoch == 1:
            first_epoch_end.append(now)
        elif epoch < epochs:
            # Pace from epoch 2 on: the first one also pays for building the vocabulary.
            per_epoch = (now - first_epoch_end[0]) / (epoch - 1)
            left = per_epoch * (epochs - epoch)
            if deadline is not None and time.time() + left > deadline:
                raise TrialPruned(f"would end {left:.0f}s from now, after the time budget")
            if time_limit is not None and (now - started) + left > time_limit:
                raise TrialPruned(
                    f"would take {now - started + left:.0f}s, over the per-trial limit "
                    f"of {time_limit:.0f}s ({TRIAL_SHARE:.0%} of the budget)"
                )
        if epoch in steps and should_prune is not None:
            score = _score(vectors_now(), data, config, objective)[objective]
            result.intermediate[steps[epoch]] = score
            if should_prune(steps[epoch], score):
                raise TrialPruned(
                    f"{objective} {score:.4f} after {steps[epoch]}/{CHECKPOINTS} of the epochs "
                    "below the median of earlier trials"
                )

    try:
        vectors = train_word2vec(
            data.tuning.train, config.train, on_epoch=on_epoch, baskets=data.tuning.train_baskets
        )
        result.metrics = _score(vectors, data, config, objective)
        result.value = result.metrics[objective]
    except TrialPruned as stop:
        result.pruned, result.reason = True, str(stop)
    except ConfigError as exc:  # e.g. min_count leaves no vocabulary: a bad trial, not a crash
        result.pruned, result.reason = True, str(exc)
    result.seconds = time.perf_counter() - started
    return result


def _score(
    vectors: Any, data: TuningData, config: PipelineConfig, objective: str
) -> dict[str, float]:
    # The neighbour table is evaluated only when the objective reads it: it is the
    # table's scoring (publish.neighbors_scoring) that is then being tuned for.
    scoring = config.publish.neighbors_scoring if needs_neighbors(objective) else None
    metrics = evaluate_model(
        vectors, data.tuning.train, data.tuning.test, config.evaluate, neighbors_scoring=scoring
    )
    return flat_metrics(metrics)


def validation_baselines(
    evaluate: EvaluateConfig, data: TuningData, objective: str = OBJECTIVE
) -> dict[str, float]:
    """Baselines' validation ``objective``: a reference line for the trials, never used
    to select anything. Popularity has no neighbour table, so it has no figure for the
    neighbour objective."""
    results = evaluate_baselines(data.tuning.train, data.tuning.test, evaluate)
    flat = {name: flat_metrics(metrics) for name, metrics in results.items()}
    return {name: metrics[objective] for name, metrics in flat.items() if objective in metrics}
