"""Tune: search Word2Vec and scoring settings on the validation target only.

Why Optuna: its TPE sampler handles the conditional, mixed search space of
item2vec (categorical sg/context/scoring, log-scaled windows and epochs, a
``sample`` that is either off or on a log scale, a chunk size that exists only
in ``set`` context) far better than a grid or random search on the same budget;
``ask``/``tell`` lets trials run as Prefect tasks on any task runner; its
MedianPruner stops hopeless trials from intermediate scores; and its
parameter-importance analysis says which knobs mattered. A hand-written search
would have none of these and would need its own tests.

This module holds the study (:class:`Sweep`) and its settings. What a trial
sees is :mod:`item2vec.tuning_split`, what it draws :mod:`item2vec.search_space`,
how it runs and is pruned :mod:`item2vec.trial`; the winner's test is
:mod:`item2vec.final_evaluation` and the files :mod:`item2vec.sweep_outputs`.

Budget. No trial starts once the time left is needed for the end of the sweep
(re-training the leaders, the final evaluation). A running trial stops as soon
as its measured pace says it would run past the budget, or take more than
:data:`item2vec.trial.TRIAL_SHARE` of it (see :mod:`item2vec.trial`).
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Literal

import numpy as np
import optuna
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from item2vec.config import PipelineConfig
from item2vec.errors import ConfigError
from item2vec.final_evaluation import FINAL_SEEDS
from item2vec.search_space import (
    CONDITIONAL_TRAIN,
    OBJECTIVE,
    OBJECTIVES,
    TUNED_TRAIN,
    starting_params,
    suggest,
    trial_config,
    tuned_fields,
)
from item2vec.trial import CHECKPOINTS, TRIAL_SHARE, PruneHook, TrialResult

log = logging.getLogger(__name__)

#: Share of the budget spent searching at most; the rest re-trains the leaders
#: and evaluates the winner.
SEARCH_SHARE = 0.75
#: Extra seeds each leader is re-trained with.
CONFIRM_SEEDS = 2


class Sweep:
    """An Optuna study over :func:`suggest`, within a trial count and a time budget.

    The caller asks for trials, runs them anywhere
    (:func:`item2vec.trial.run_trial`) and tells the results; the study never
    sees anything but validation scores.

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
        :attr:`item2vec.tuning_split.TuningData.final_scale`: how much longer
        the final fit trains than a trial of the same settings; used to reserve
        time for it.
    validation_users
        Users the trials are scored on
        (:attr:`item2vec.tuning_split.TuningData.users`), for the sampling error
        reported beside the gain.
    objective
        The flat metric trials are ranked by (:data:`item2vec.search_space.OBJECTIVES`).

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
        objective: str = OBJECTIVE,
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
        self.objective = objective
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
        """``should_prune(step, value)`` for :func:`item2vec.trial.run_trial`, reporting
        to the study.

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
            "pruned" if result.pruned else f"validation {self.objective} {result.value:.4f}",
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
            # Every row has every tuned column: None where a trial did not set it.
            train = tuned_fields(config, "train")
            row.update({f"train.{k}": train.get(k) for k in (*TUNED_TRAIN, *CONDITIONAL_TRAIN)})
            evaluate = tuned_fields(config, "evaluate")
            row.update({f"evaluate.{k}": v for k, v in evaluate.items()})
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
    objective
        What trials are ranked by on the validation target: ``user``, the user
        metric (HR@10 of the next item after a user's history), or ``neighbors``,
        the published neighbour table's item-to-item HR@10 (the last training
        item's neighbours against the held-out next item), for a sweep that
        tunes the embedding for "similar items" carousels.
    """

    model_config = ConfigDict(extra="forbid")

    budget_minutes: float = Field(10.0, gt=0)
    trials: int = Field(200, ge=1)
    sample_users: float = Field(1.0, gt=0, le=1)
    parallel: int = Field(2, ge=1)
    seed: int = 0
    output: str = "sweep"
    objective: Literal["user", "neighbors"] = "user"

    @property
    def objective_key(self) -> str:
        """The flat metric of :attr:`objective` (:data:`item2vec.search_space.OBJECTIVES`)."""
        return OBJECTIVES[self.objective]
