"""Tune: search Word2Vec and scoring settings on the validation target only.

Why Optuna: its TPE sampler handles the conditional, mixed search space of
item2vec (categorical sg/context/scoring, log-scaled windows and epochs, a
``sample`` that is either off or on a log scale, a chunk size that exists only
in ``set`` context) far better than a grid or random search on the same budget;
``ask``/``tell`` lets trials run as Prefect tasks on any task runner; its
MedianPruner stops hopeless trials from intermediate scores; and its
parameter-importance analysis says which knobs mattered. A hand-written search
would have none of these and would need its own tests.

Protocol. Every trial trains on the sequences with the test targets removed
(:func:`item2vec.split.without_test_targets`) and is scored on what that split
then holds out: each user's second-to-last event, the validation target of
:func:`item2vec.split.leave_last_out`. Training on ``split.train`` and scoring
``split.validation`` instead would leak: ``split.train`` still contains the
validation target. The test target never reaches a trial. Only the winner (and
the starting configuration, for comparison) is trained once more on the full
training side and evaluated on the test target, beside the baselines.

Pruning. gensim trains all epochs in one call, but :func:`item2vec.train.train_word2vec`
calls a hook after every epoch with the vectors as they are. A trial scores the
validation target at 1/4, 2/4 and 3/4 of its epochs and reports them as steps
1, 2 and 3: trials of different lengths are compared at the same share of
their training (and of their learning-rate decay), not at the same epoch
number, which a 10-epoch and a 150-epoch trial would rarely share. A trial
whose score is below the median of earlier trials at the same step stops.

Budget. No trial starts once the time left is needed for the end of the sweep
(re-training the leaders, the final evaluation). A running trial stops as soon
as its measured pace says it would run past the budget, or take more than a
fifth of it: one slow corner of the space (whole-sequence context at 150
epochs takes minutes) may not eat the search.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from item2vec.config import EvaluateConfig, PipelineConfig, SequenceConfig, build_config
from item2vec.errors import ConfigError
from item2vec.evaluate import combine_metrics, evaluate_baselines, evaluate_model
from item2vec.split import Split, evaluation_sample, split_sequences, without_test_targets
from item2vec.train import train_word2vec

log = logging.getLogger(__name__)

#: The metric trials are ranked by (on the validation target).
OBJECTIVE = "hr@10"
#: Intermediate scores at 1/CHECKPOINTS .. (CHECKPOINTS-1)/CHECKPOINTS of the epochs.
CHECKPOINTS = 4
#: Share of the budget spent searching at most; the rest re-trains the leaders
#: and evaluates the winner.
SEARCH_SHARE = 0.75
#: Largest share of the budget one trial may take.
TRIAL_SHARE = 0.2
#: Extra seeds each leader is re-trained with.
CONFIRM_SEEDS = 2
#: Seeds the winner and the starting configuration are tested with.
FINAL_SEEDS = 3
#: Largest epoch count a trial may draw.
MAX_EPOCHS = 150


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
    tuning = split_sequences(
        without_test_targets(sampled, method, days), method, days, require_test=False
    )
    if len(tuning.test) == 0:
        raise ConfigError(
            "no user has enough events for a validation target (3 after removing the test "
            "target); tune on more data or a larger --sample-users"
        )
    final = split_sequences(sequences, method, days)
    # Trials are scored on at most evaluate.max_users of them (the same fixed sample).
    users = len(evaluation_sample(tuning.test, config.evaluate.max_users))
    return TuningData(tuning=tuning, final=final, users=users)


def suggest(trial: optuna.trial.Trial) -> dict[str, dict[str, Any]]:
    """Draw one configuration: partial ``[train]`` and ``[evaluate]`` sections.

    Parameters
    ----------
    trial
        The Optuna trial to draw from.

    Returns
    -------
    dict
        ``{"train": {...}, "evaluate": {...}}`` for :func:`trial_config`.
    """
    train: dict[str, Any] = {
        "sg": trial.suggest_categorical("sg", [0, 1]),
        "context": trial.suggest_categorical("context", ["window", "set"]),
        "window": trial.suggest_int("window", 1, 20, log=True),
        "ns_exponent": trial.suggest_float("ns_exponent", -1.0, 1.0),
        "negative": trial.suggest_int("negative", 2, 30, log=True),
        "epochs": trial.suggest_int("epochs", 5, MAX_EPOCHS, log=True),
        "vector_size": trial.suggest_categorical("vector_size", [16, 32, 64, 128]),
        "min_count": trial.suggest_int("min_count", 1, 10),
        "alpha": trial.suggest_float("alpha", 0.005, 0.1, log=True),
    }
    if train["context"] == "set":
        # Whole-sequence context costs the square of the chunk: keep chunks short
        # enough that a trial fits a budget of minutes on two cores.
        train["max_set_size"] = trial.suggest_int("max_set_size", 10, 60, log=True)
    # Down-sampling is either off, or on a log scale: one number cannot say both.
    if trial.suggest_categorical("subsample", [False, True]):
        train["sample"] = trial.suggest_float("sample", 1e-6, 1e-2, log=True)
    else:
        train["sample"] = 0.0
    evaluate = {
        "scoring": trial.suggest_categorical("scoring", ["in-in", "in-out"]),
        "query_items": trial.suggest_int("query_items", 1, 20, log=True),
    }
    return {"train": train, "evaluate": evaluate}


def trial_config(base: PipelineConfig, params: dict[str, dict[str, Any]]) -> PipelineConfig:
    """``base`` with a trial's sections laid over it (validated)."""
    return build_config(base.model_dump(), params, source="trial parameters")


def starting_params(config: PipelineConfig) -> dict[str, Any] | None:
    """``config`` as search-space parameters, or None if it lies outside the space."""
    train, evaluate = config.train, config.evaluate
    params: dict[str, Any] = {
        "sg": train.sg,
        "context": train.context,
        "window": train.window,
        "ns_exponent": train.ns_exponent,
        "negative": train.negative,
        "epochs": train.epochs,
        "vector_size": train.vector_size,
        "min_count": train.min_count,
        "alpha": train.alpha,
        "subsample": train.sample > 0,
        "scoring": evaluate.scoring,
        "query_items": evaluate.query_items,
    }
    if train.sample > 0:
        params["sample"] = train.sample
    if train.context == "set":
        params["max_set_size"] = train.max_set_size
    inside = (
        1 <= train.window <= 20
        and -1 <= train.ns_exponent <= 1
        and 2 <= train.negative <= 30
        and 5 <= train.epochs <= MAX_EPOCHS
        and train.vector_size in (16, 32, 64, 128)
        and 1 <= train.min_count <= 10
        and 0.005 <= train.alpha <= 0.1
        and (train.sample == 0 or 1e-6 <= train.sample <= 1e-2)
        and (train.context == "window" or 10 <= train.max_set_size <= 60)
        and 1 <= evaluate.query_items <= 20
    )
    if not inside:
        log.info("the starting configuration lies outside the search space; not enqueued")
        return None
    return params


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
) -> TrialResult:
    """Train ``config`` on the tuning split and score it on the validation target.

    Parameters
    ----------
    config
        The trial's full configuration.
    data
        From :func:`tuning_data`; only ``data.tuning`` is used.
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
            score = _score(vectors_now(), data, config)[OBJECTIVE]
            result.intermediate[steps[epoch]] = score
            if should_prune(steps[epoch], score):
                raise TrialPruned(
                    f"{OBJECTIVE} {score:.4f} after {steps[epoch]}/{CHECKPOINTS} of the epochs "
                    "below the median of earlier trials"
                )

    try:
        vectors = train_word2vec(data.tuning.train, config.train, on_epoch=on_epoch)
        result.metrics = _score(vectors, data, config)
        result.value = result.metrics[OBJECTIVE]
    except TrialPruned as stop:
        result.pruned, result.reason = True, str(stop)
    except ConfigError as exc:  # e.g. min_count leaves no vocabulary: a bad trial, not a crash
        result.pruned, result.reason = True, str(exc)
    result.seconds = time.perf_counter() - started
    return result


def _score(vectors: Any, data: TuningData, config: PipelineConfig) -> dict[str, float]:
    metrics = evaluate_model(vectors, data.tuning.train, data.tuning.test, config.evaluate)
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


class Sweep:
    """An Optuna study over :func:`suggest`, within a trial count and a time budget.

    The caller asks for trials, runs them anywhere (:func:`run_trial`) and tells
    the results; the study never sees anything but validation scores.

    Parameters
    ----------
    base
        Settings every trial starts from (columns, split, k...). When they lie
        inside the search space they are trial 0, so a sweep never ends below
        its starting point on validation.
    budget_minutes
        Wall-clock budget of the whole sweep.
    trials
        Most trials to run.
    seed
        Seed of the sampler and of every trial's training.
    workers
        Training threads per trial (trials themselves run in parallel).
    parallel
        Trials running at once; used to plan the end of the sweep.
    final_scale
        :attr:`TuningData.final_scale`: how much longer the final fit trains than
        a trial of the same settings; used to reserve time for it.
    validation_users
        Users the trials are scored on (:attr:`TuningData.users`), for the
        sampling error reported beside the gain.

    Raises
    ------
    ConfigError
        If ``trials`` < 1 or ``budget_minutes`` <= 0.
    """

    def __init__(
        self,
        base: PipelineConfig,
        budget_minutes: float,
        trials: int,
        seed: int = 0,
        workers: int = 1,
        parallel: int = 1,
        final_scale: float = 1.0,
        validation_users: int | None = None,
    ) -> None:
        if trials < 1:
            raise ConfigError(f"--trials must be at least 1; got {trials}")
        if not budget_minutes > 0:
            raise ConfigError(f"--budget-minutes must be positive, e.g. 10; got {budget_minutes}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.base = base
        self.trials = trials
        self.seed = seed
        self.workers = workers
        self.parallel = max(1, parallel)
        self.final_scale = max(1.0, final_scale)
        self.validation_users = validation_users
        self.budget_seconds = budget_minutes * 60
        self.started = time.time()
        self.deadline = self.started + self.budget_seconds
        self.time_limit = TRIAL_SHARE * self.budget_seconds
        self.confirmed: dict[int, list[float]] = {}
        with warnings.catch_warnings():
            # multivariate/group are flagged experimental; they are what a
            # conditional space (max_set_size, sample) needs to be modelled jointly.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=10,
                multivariate=True,
                group=True,
                # Trials run in parallel: without a "lie" for running trials, two
                # asked at once would be drawn from the same model, near each other.
                constant_liar=True,
            )
        self.study = optuna.create_study(
            direction="maximize",
            sampler=sampler,
            # Steps are quarters of a trial's epochs. At 1/4 the learning rate is still
            # high and scores are too close to call (on the sample the eventual winner
            # sat at the median there), so pruning starts at 2/4.
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
        )
        self.results: dict[int, TrialResult] = {}
        self.configs: dict[int, PipelineConfig] = {}
        self.asked = 0
        start = starting_params(base)
        self.start_number: int | None = 0 if start is not None else None
        if start is not None:
            self.study.enqueue_trial(start)

    def final_seconds(self) -> float:
        """Estimated seconds of the final evaluation (winner and start, :data:`FINAL_SEEDS`
        each, on the full training side), from the trials measured so far."""
        complete = [r for r in self.results.values() if not r.pruned]
        if not complete:
            return 0.0
        best = max(complete, key=lambda r: r.value).seconds
        start = self.results.get(self.start_number) if self.start_number is not None else None
        base = start.seconds if start and not start.pruned else best
        # Trials' times scaled to the final training side, with a 10% margin.
        return 1.1 * self.final_scale * (best + base) * FINAL_SEEDS / self.parallel

    def done(self) -> bool:
        """Whether no further trial may start: the count is reached, or the time left
        is needed for the leaders' re-training and the final evaluation."""
        reserve = max((1 - SEARCH_SHARE) * self.budget_seconds, self.final_seconds())
        return self.asked >= self.trials or time.time() >= self.deadline - reserve

    def ask(self) -> tuple[optuna.trial.Trial, PipelineConfig]:
        """The next trial and its validated configuration (seeded, ``workers`` threads)."""
        trial = self.study.ask()
        self.asked += 1
        params = suggest(trial)
        params["train"].update(seed=self.seed, workers=self.workers)
        config = trial_config(self.base, params)
        self.configs[trial.number] = config
        return trial, config

    def pruning_hook(self, trial: optuna.trial.Trial) -> PruneHook:
        """``should_prune(step, value)`` for :func:`run_trial`, reporting to the study.

        Only usable where the study lives (threads); a trial on another process
        runs unpruned and its intermediate scores are copied in by :meth:`tell`.
        """

        def should_prune(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return should_prune

    def tell(self, trial: optuna.trial.Trial, result: TrialResult) -> None:
        """Record a finished trial (complete or pruned) in the study."""
        self.results[trial.number] = result
        stored = self.study._storage.get_trial(trial._trial_id).intermediate_values
        for step, value in result.intermediate.items():
            if step not in stored:  # reported in another process (Dask): copy them here
                trial.report(value, step)
        if result.pruned:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, result.value)
        log.info(
            "trial %d: %s in %.1fs%s",
            trial.number,
            "pruned" if result.pruned else f"validation {OBJECTIVE} {result.value:.4f}",
            result.seconds,
            f" ({result.reason})" if result.reason else "",
        )

    def leaders(self, seeds: int, most: int = 5) -> list[int]:
        """The best complete trials worth re-training with ``seeds`` more seeds.

        As many of the top ``most`` as the time left before the final evaluation
        allows, judged by how long each took. Fewer than two means nothing to
        compare, so none.
        """
        complete = sorted(
            (n for n, r in self.results.items() if not r.pruned),
            key=lambda n: (-self.results[n].value, n),
        )
        remaining = max(0.0, self.deadline - time.time() - self.final_seconds()) * self.parallel
        chosen, cost = [], 0.0
        for number in complete[:most]:
            cost += self.results[number].seconds * seeds
            if cost > remaining:
                break
            chosen.append(number)
        return chosen if len(chosen) >= 2 else []

    def confirmation_runs(self, numbers: list[int], seeds: int) -> list[tuple[int, PipelineConfig]]:
        """(trial number, configuration with another seed) for every re-training."""
        runs = []
        for number in numbers:
            config = self.configs[number]
            for offset in range(1, seeds + 1):
                train = config.train.model_copy(update={"seed": self.seed + 1000 * offset})
                runs.append((number, config.model_copy(update={"train": train})))
        return runs

    def confirmation_deadline(self) -> float:
        """When re-trainings must end for the final evaluation to fit the budget."""
        return self.deadline - self.final_seconds()

    def record_confirmation(
        self, runs: list[tuple[int, PipelineConfig]], results: list[TrialResult]
    ) -> None:
        """Keep the validation scores of the re-trainings, beside each trial's own."""
        for (number, _), result in zip(runs, results, strict=True):
            if result.value is not None:
                self.confirmed.setdefault(number, [self.results[number].value]).append(result.value)

    def score(self, number: int) -> float:
        """A trial's validation score: its mean over seeds when it was re-trained."""
        scores = self.confirmed.get(number)
        return float(np.mean(scores)) if scores else float(self.results[number].value)

    def best(self) -> tuple[int, PipelineConfig]:
        """Number and configuration of the best trial: best mean over its seeds when
        leaders were re-trained, else best single score. Ties go to the earlier trial,
        so the choice does not depend on timing.

        Raises
        ------
        ConfigError
            If no trial completed within the budget.
        """
        complete = {n: r for n, r in self.results.items() if not r.pruned}
        if not complete:
            raise ConfigError(
                "no trial completed within the budget; raise --budget-minutes or lower --trials"
            )
        pool = self.confirmed or complete
        number = max(pool, key=lambda n: (self.score(n), -n))
        return number, self.configs[number]

    def trials_table(self) -> pa.Table:
        """One row per trial: number, state, parameters, validation metrics, seconds.

        ``value`` is the validation :data:`OBJECTIVE` of the trial's own run,
        ``step_1`` .. ``step_3`` its intermediate scores, and ``seeds_mean`` /
        ``seeds_std`` / ``seeds`` its scores over seeds when it was re-trained.
        """
        rows = []
        for number in sorted(self.results):
            result = self.results[number]
            config = self.configs[number]
            row: dict[str, Any] = {
                "trial": number,
                "state": "pruned" if result.pruned else "complete",
                "value": result.value,
                "seconds": round(result.seconds, 3),
                "reason": result.reason,
            }
            row.update({f"train.{k}": getattr(config.train, k) for k in TUNED_TRAIN})
            row["train.max_set_size"] = (
                config.train.max_set_size if config.train.context == "set" else None
            )
            row.update({f"evaluate.{k}": getattr(config.evaluate, k) for k in TUNED_EVALUATE})
            row.update({f"step_{n}": result.intermediate.get(n) for n in range(1, CHECKPOINTS)})
            row.update({f"validation.{k}": result.metrics.get(k) for k in self._metric_names()})
            scores = self.confirmed.get(number)
            row["seeds_mean"] = float(np.mean(scores)) if scores else None
            row["seeds_std"] = float(np.std(scores)) if scores else None
            row["seeds"] = len(scores) if scores else None
            rows.append(row)
        return pa.Table.from_pylist(rows)

    def _metric_names(self) -> list[str]:
        # The union over complete trials, in a stable order, so that every row has
        # the same columns whatever the first trial was.
        names: dict[str, None] = {}
        for result in self.results.values():
            names.update(dict.fromkeys(result.metrics))
        return list(names)

    def importance(self) -> dict[str, float]:
        """How much each parameter mattered (Optuna's default fANOVA evaluator).

        Returns
        -------
        dict
            Parameter name to importance (summing to 1), largest first; empty with
            fewer than 4 complete trials or when it cannot be computed.
        """
        complete = [t for t in self.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 4:
            return {}
        try:
            with warnings.catch_warnings():
                # Conditional parameters (sample, max_set_size) are drawn by few trials;
                # the figure says so, the log need not repeat it per parameter.
                warnings.simplefilter("ignore", UserWarning)
                importance = optuna.importance.get_param_importances(self.study)
        except (RuntimeError, ValueError) as exc:  # e.g. one distinct value per parameter
            log.warning("parameter importance unavailable: %s", exc)
            return {}
        return {name: float(value) for name, value in importance.items()}

    def elapsed_minutes(self) -> float:
        """Minutes since the sweep started."""
        return (time.time() - self.started) / 60


TUNED_TRAIN = (
    "sg",
    "context",
    "window",
    "ns_exponent",
    "negative",
    "epochs",
    "vector_size",
    "min_count",
    "alpha",
    "sample",
)
TUNED_EVALUATE = ("scoring", "query_items")
#: Ingest settings written into best.toml, so that it runs on the same log as it is.
INGEST_KEYS = (
    "paths",
    "user_col",
    "item_col",
    "time_col",
    "items_path",
    "item_id_col",
    "item_title_col",
    "sep",
    "header",
    "columns",
    "time_unit",
    "event_col",
    "keep_events",
    "weight_col",
    "min_weight",
    "drop_duplicates",
    "min_item_count",
    "min_user_count",
)


def best_sections(config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """The winner as config sections: tuned ``[train]``/``[evaluate]`` values, plus
    what makes a run see the same data and protocol (ingest columns, sequence
    settings and the split, when not the defaults; the model name)."""
    train = {k: getattr(config.train, k) for k in TUNED_TRAIN}
    if config.train.context == "set":
        train["max_set_size"] = config.train.max_set_size
    evaluate = {k: getattr(config.evaluate, k) for k in TUNED_EVALUATE}
    defaults = EvaluateConfig()
    for key in ("split", "test_days", "k", "exclude_seen"):
        if getattr(config.evaluate, key) != getattr(defaults, key):
            evaluate[key] = getattr(config.evaluate, key)
    document: dict[str, dict[str, Any]] = {
        "ingest": config.ingest.model_dump(include=set(INGEST_KEYS), exclude_none=True),
    }
    sequences = config.sequences.model_dump(exclude_none=True)
    defaults_seq = SequenceConfig().model_dump(exclude_none=True)
    changed = {k: v for k, v in sequences.items() if defaults_seq.get(k) != v}
    if changed:
        document["sequences"] = changed
    document["train"] = train
    document["evaluate"] = evaluate
    document["publish"] = {"model_name": config.publish.model_name}
    return document


def best_toml(config: PipelineConfig, provenance: dict[str, Any]) -> str:
    """The winner as a TOML config for ``item2vec run --config``, provenance on top.

    Parameters
    ----------
    config
        The winning configuration.
    provenance
        Written as ``# key: value`` comment lines (command, budget, seed, date...).
    """
    import tomli_w

    header = "".join(f"# {key}: {value}\n" for key, value in provenance.items())
    return header + "\n" + tomli_w.dumps(best_sections(config))


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_text(text)
    temporary.replace(path)


class SweepSettings(BaseModel):
    """How a sweep searches.

    Parameters
    ----------
    budget_minutes
        Wall-clock budget of the whole sweep. No trial starts once the time left
        is needed to finish; running trials stop when they would overrun it.
    trials
        Most trials to run; the budget usually ends the search first.
    sample_users
        Share of users the trials see (0 < share <= 1), drawn with ``seed``.
        The winner is still evaluated on everyone.
    parallel
        Trials running at once on the task runner. Each trains with one thread
        when it is above 1, so 2 fills a 2-core machine.
    seed
        Seed of the sampler, of the user sample and of every trial's training.
    output
        Folder for trials.parquet, best.toml and the summary.
    """

    model_config = ConfigDict(extra="forbid")

    budget_minutes: float = Field(10.0, gt=0)
    trials: int = Field(200, ge=1)
    sample_users: float = Field(1.0, gt=0, le=1)
    parallel: int = Field(2, ge=1)
    seed: int = 0
    output: str = "sweep"


def final_run(config: PipelineConfig, data: TuningData, offset: int) -> dict[str, Any]:
    """Train ``config`` with seed + ``offset`` on the full training side; its test metrics.

    This, and :func:`final_baselines`, are the only functions that read the
    test target; they run once the winner is chosen.
    """
    train = config.train.model_copy(update={"seed": config.train.seed + offset})
    vectors = train_word2vec(data.final.train, train)
    return evaluate_model(vectors, data.final.train, data.final.test, config.evaluate)


def final_baselines(evaluate: EvaluateConfig, data: TuningData) -> dict[str, dict[str, Any]]:
    """Popularity and item-kNN on the test target, with ``evaluate``'s query length."""
    return evaluate_baselines(data.final.train, data.final.test, evaluate)


def validation_baselines(evaluate: EvaluateConfig, data: TuningData) -> dict[str, float]:
    """Baselines' validation :data:`OBJECTIVE`: a reference line for the trials, never
    used to select anything."""
    results = evaluate_baselines(data.tuning.train, data.tuning.test, evaluate)
    return {name: float(metrics[OBJECTIVE]) for name, metrics in results.items()}


def mean_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics averaged over runs (seeds), the HR curve element-wise."""
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if key == "curve":
            merged[key] = [float(v) for v in np.mean([r[key] for r in runs], axis=0)]
        elif isinstance(value, int | float):
            merged[key] = float(np.mean([r[key] for r in runs]))
    return merged


def combine_final(
    runs: list[dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
    data: TuningData,
    evaluate: EvaluateConfig,
) -> dict[str, Any]:
    """A metrics record (:func:`item2vec.evaluate.combine_metrics`) of the model's mean
    over seeds beside the baselines, with ``seeds``: the test :data:`OBJECTIVE` per seed."""
    record = combine_metrics(
        mean_metrics(runs), {n: dict(m) for n, m in baselines.items()}, data.final.test, evaluate
    )
    record["seeds"] = [float(r[OBJECTIVE]) for r in runs]
    return record


def final_evaluation(
    best: PipelineConfig, base: PipelineConfig, data: TuningData, seeds: int = FINAL_SEEDS
) -> dict[str, Any]:
    """The winner and the starting configuration on the test target, serially.

    Each is trained ``seeds`` times on the full training side (seeds seed,
    seed + 1, ...) and evaluated beside the baselines with its own query length.
    The flow runs the same steps as parallel tasks.

    Returns
    -------
    dict
        ``best`` and ``base``: records of :func:`combine_final`.
    """
    results = {}
    for name, config in (("best", best), ("base", base)):
        runs = [final_run(config, data, offset) for offset in range(seeds)]
        baselines = final_baselines(config.evaluate, data)
        results[name] = combine_final(runs, baselines, data, config.evaluate)
    return results


def gains(sweep: Sweep, best_number: int, final: dict[str, Any]) -> dict[str, Any]:
    """How much of the validation gain over the starting configuration survives on test.

    Returns
    -------
    dict
        ``validation_start``/``validation_best`` (means over seeds where re-trained;
        start is None when it was not a trial), ``test_start``/``test_best`` (means
        over :data:`FINAL_SEEDS`), the two gains, ``survives``: test gain over
        validation gain (None when the validation gain is not positive), and
        ``validation_users`` with ``validation_error``: the binomial standard error
        of the winner's validation score on that many users (None if unknown).
    """
    start = sweep.start_number
    validation_start = (
        sweep.score(start)
        if start is not None and start in sweep.results and not sweep.results[start].pruned
        else None
    )
    validation_best = sweep.score(best_number)
    test_best = float(np.mean(final["best"]["seeds"]))
    test_start = float(np.mean(final["base"]["seeds"]))
    validation_gain = None if validation_start is None else validation_best - validation_start
    test_gain = test_best - test_start
    survives = test_gain / validation_gain if validation_gain and validation_gain > 0 else None
    users = sweep.validation_users
    error = (
        math.sqrt(validation_best * (1 - validation_best) / users)
        if users and 0 <= validation_best <= 1
        else None
    )
    return {
        "validation_start": validation_start,
        "validation_best": validation_best,
        "validation_gain": validation_gain,
        "test_start": test_start,
        "test_best": test_best,
        "test_gain": test_gain,
        "survives": survives,
        "validation_users": users,
        "validation_error": error,
    }


def provenance(command: str, settings: SweepSettings, users: int) -> dict[str, Any]:
    """The facts at the top of best.toml and sweep.md: what ran, on what, when."""
    return {
        "command": command,
        "budget minutes": settings.budget_minutes,
        "seed": settings.seed,
        "sample users": settings.sample_users,
        "validation users": users,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_outputs(
    folder: Path,
    sweep: Sweep,
    best_number: int,
    best: PipelineConfig,
    final: dict[str, Any],
    facts: dict[str, Any],
    references: dict[str, float] | None = None,
) -> dict[str, Path]:
    """Write trials.parquet, best.toml, sweep.json and sweep.md with its PNGs.

    Parameters
    ----------
    folder
        The sweep's ``--output``; created if missing.
    sweep
        The finished sweep.
    best_number, best
        From :meth:`Sweep.best`.
    final
        From :func:`final_evaluation` (or the flow's tasks).
    facts
        Provenance (:func:`provenance`) and counts, shown on top of the files.
    references
        Baselines' validation scores, drawn as reference lines.

    Returns
    -------
    dict
        Paths under ``trials``, ``best``, ``summary`` and ``report``.
    """
    import json

    import pyarrow.parquet as pq

    from item2vec.tune_report import write_sweep_report

    folder.mkdir(parents=True, exist_ok=True)
    table = sweep.trials_table()
    trials_path = folder / "trials.parquet"
    temporary = folder / ".tmp-trials.parquet"
    pq.write_table(table, temporary)
    temporary.replace(trials_path)
    best_path = folder / "best.toml"
    origin = {"tuned by": "item2vec sweep (Optuna TPE, median pruning, validation target only)"}
    write_text_atomically(best_path, best_toml(best, {**origin, **facts}))
    importance = sweep.importance()
    gain = gains(sweep, best_number, final)
    summary = {
        **facts,
        "best_trial": best_number,
        "best": best_sections(best),
        "validation": sweep.results[best_number].metrics,
        "validation_seeds": sweep.confirmed.get(best_number),
        "validation_baselines": references or {},
        "test": final["best"],
        "test_with_starting_config": final["base"],
        "gains": gain,
        "importance": importance,
    }
    json_path = folder / "sweep.json"
    write_text_atomically(json_path, json.dumps(summary, indent=2, default=str) + "\n")
    report_path = write_sweep_report(
        folder, table, importance, best_number, final, facts, gain, references or {}
    )
    return {"trials": trials_path, "best": best_path, "summary": json_path, "report": report_path}
