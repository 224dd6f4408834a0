"""Tune: search Word2Vec and scoring settings on the validation target only.

Why Optuna: its TPE sampler handles the conditional, mixed search space of
item2vec (categorical sg/context/scoring, log-scaled sample and epochs, a sample
that is either off or on a log scale) far better than a grid or random search
on the same budget; its pruners stop hopeless trials from intermediate scores;
and its parameter-importance analysis says which knobs mattered. A
hand-written search would have none of these and would need its own tests.

Protocol. Every trial trains on the sequences with the test targets removed
(:func:`item2vec.split.without_test_targets`) and is scored on what is then
held out: the validation target. The test target never reaches a trial. Only
the winner is trained once more on the full training side and evaluated on the
test target, next to the baselines on the same split.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from item2vec.config import PipelineConfig, build_config
from item2vec.errors import ConfigError
from item2vec.evaluate import evaluate_model
from item2vec.split import Split, split_sequences, without_test_targets
from item2vec.train import train_word2vec

log = logging.getLogger(__name__)

#: The metric trials are ranked by (on the validation target).
OBJECTIVE = "hr@10"
#: Intermediate scores per trial, for the pruner.
CHECKPOINTS = 4
#: Share of the budget spent searching; the rest re-trains the leaders.
SEARCH_SHARE = 0.75
#: Extra seeds each leader is re-trained with.
CONFIRM_SEEDS = 2
#: Largest epoch count a trial may draw.
MAX_EPOCHS = 150


@dataclass
class TuningData:
    """What trials train and score on, and what the winner is finally tested on.

    Attributes
    ----------
    tuning
        Split of the sequences without test targets: its ``test`` holds the
        validation targets.
    final
        The ordinary split of the full sequences (test targets held out).
    users
        Users the trials saw (all, or the ``--sample-users`` share).
    """

    tuning: Split
    final: Split
    users: int


def sample_users(sequences: pa.Table, share: float, seed: int) -> pa.Table:
    """A seeded random share of the users' sequences (all of a user's, or none).

    Raises
    ------
    ConfigError
        If ``share`` is not in (0, 1].
    """
    if not 0 < share <= 1:
        raise ConfigError(f"--sample-users must be in (0, 1], e.g. 0.2; got {share}")
    if share == 1:
        return sequences
    users = np.unique(sequences.column("user_id").to_numpy(zero_copy_only=False))
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(users, size=max(1, round(share * len(users))), replace=False))
    mask = [user in chosen for user in sequences.column("user_id").to_pylist()]
    return sequences.filter(pa.array(mask))


def tuning_data(
    sequences: pa.Table, config: PipelineConfig, share: float = 1.0, seed: int = 0
) -> TuningData:
    """Splits for a sweep: trials on (a sample of) the validation view, final on all."""
    method, days = config.evaluate.split, config.evaluate.test_days
    sampled = sample_users(sequences, share, seed)
    tuning = split_sequences(without_test_targets(sampled, method, days), method, days)
    if len(tuning.test) == 0:
        raise ConfigError(
            "no user has enough events for a validation target (3 after removing the test "
            "target); tune on more data or a larger --sample-users"
        )
    final = split_sequences(sequences, method, days)
    return TuningData(tuning=tuning, final=final, users=len(tuning.test))


def suggest(trial: optuna.trial.Trial) -> dict[str, dict[str, Any]]:
    """Draw one configuration: partial ``[train]`` and ``[evaluate]`` sections."""
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
    """``base`` with a trial's sections laid over it."""
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
    """What one trial measured: validation metrics, intermediate scores, seconds."""

    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    pruned: bool = False
    reason: str = ""
    seconds: float = 0.0


def run_trial(
    config: PipelineConfig,
    data: TuningData,
    should_prune: Any = None,
    deadline: float | None = None,
) -> TrialResult:
    """Train ``config`` on the tuning split and score it on the validation target.

    Parameters
    ----------
    config
        The trial's full configuration.
    data
        From :func:`tuning_data`.
    should_prune
        ``should_prune(step, value) -> bool``, asked at :data:`CHECKPOINTS` points
        during training (Optuna's pruner); None never prunes.
    deadline
        ``time.time()`` after which the trial stops (the sweep's budget); wall-clock
        time, so that it means the same on every worker of a cluster.
    """
    started = time.perf_counter()
    result = TrialResult(value=None)
    epochs = config.train.epochs
    checkpoints = {max(1, round(epochs * n / CHECKPOINTS)) for n in range(1, CHECKPOINTS)}

    def on_epoch(epoch: int, vectors_now: Any) -> None:
        if deadline is not None and time.time() > deadline and epoch < epochs:
            raise TrialPruned("time budget used up")
        if epoch in checkpoints and should_prune is not None:
            score = _score(vectors_now(), data, config)[OBJECTIVE]
            result.intermediate[epoch] = score
            if should_prune(epoch, score):
                raise TrialPruned(f"{OBJECTIVE} {score:.4f} at epoch {epoch} below the median")

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

    Parameters
    ----------
    base
        Settings every trial starts from (columns, split, k...).
    budget_minutes
        No trial starts after this, and running trials stop at it.
    trials
        Most trials to run.
    seed
        Seed of the sampler and of every trial's training.
    workers
        Training threads per trial (trials themselves run in parallel).
    """

    def __init__(
        self,
        base: PipelineConfig,
        budget_minutes: float,
        trials: int,
        seed: int = 0,
        workers: int = 1,
    ) -> None:
        if trials < 1:
            raise ConfigError(f"--trials must be at least 1; got {trials}")
        if not budget_minutes > 0:
            raise ConfigError(f"--budget-minutes must be positive; got {budget_minutes}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.base = base
        self.trials = trials
        self.seed = seed
        self.workers = workers
        self.started = time.time()
        self.deadline = self.started + budget_minutes * 60
        # The search stops at this share of the budget; the rest re-trains the
        # leaders with other seeds, so that the winner is not just a lucky draw.
        self.search_deadline = self.started + SEARCH_SHARE * budget_minutes * 60
        self.confirmed: dict[int, list[float]] = {}
        self.study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        )
        self.results: dict[int, TrialResult] = {}
        self.asked = 0
        # The starting point is trial 0: a sweep never ends below what it started from.
        start = starting_params(base)
        if start is not None:
            self.study.enqueue_trial(start)
        self.configs: dict[int, PipelineConfig] = {}

    def done(self) -> bool:
        """Whether no further trial may start."""
        return self.asked >= self.trials or time.time() >= self.search_deadline

    def ask(self) -> tuple[optuna.trial.Trial, PipelineConfig]:
        """The next trial and its configuration."""
        trial = self.study.ask()
        self.asked += 1
        params = suggest(trial)
        params["train"].update(seed=self.seed, workers=self.workers)
        config = trial_config(self.base, params)
        self.configs[trial.number] = config
        return trial, config

    def pruning_hook(self, trial: optuna.trial.Trial) -> Any:
        """``should_prune(step, value)`` for :func:`run_trial`, reporting to the study."""

        def should_prune(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return should_prune

    def tell(self, trial: optuna.trial.Trial, result: TrialResult) -> None:
        """Record a finished trial."""
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

    def leaders(self, seeds: int, parallel: int, most: int = 5) -> list[int]:
        """The best complete trials worth re-training with ``seeds`` more seeds.

        As many of the top ``most`` as the remaining budget allows, judged by
        how long each took, and always the best one.
        """
        complete = sorted(
            (n for n, r in self.results.items() if not r.pruned),
            key=lambda n: (-self.results[n].value, n),
        )
        chosen, cost = [], 0.0
        remaining = max(0.0, self.deadline - time.time()) * parallel
        for number in complete[:most]:
            cost += self.results[number].seconds * seeds
            if chosen and cost > remaining:
                break
            chosen.append(number)
        return chosen

    def confirmation_runs(self, numbers: list[int], seeds: int) -> list[tuple[int, PipelineConfig]]:
        """(trial number, configuration with another seed) for every re-training."""
        runs = []
        for number in numbers:
            config = self.configs[number]
            for offset in range(1, seeds + 1):
                train = config.train.model_copy(update={"seed": self.seed + 1000 * offset})
                runs.append((number, config.model_copy(update={"train": train})))
        return runs

    def record_confirmation(
        self, runs: list[tuple[int, PipelineConfig]], results: list[TrialResult]
    ) -> None:
        """Keep the validation scores of the re-trainings, beside each trial's own."""
        for (number, _), result in zip(runs, results, strict=True):
            if result.value is not None:
                self.confirmed.setdefault(number, [self.results[number].value]).append(result.value)

    def best(self) -> tuple[int, PipelineConfig]:
        """Number and configuration of the best trial: best mean over its seeds when
        leaders were re-trained, else best single score.

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
        if self.confirmed:
            number = max(self.confirmed, key=lambda n: (float(np.mean(self.confirmed[n])), -n))
            return number, self.configs[number]
        # Ties go to the earlier trial, so the choice does not depend on timing.
        number = max(complete, key=lambda n: (complete[n].value, -n))
        return number, self.configs[number]

    def trials_table(self) -> pa.Table:
        """One row per trial: number, state, parameters, validation metrics, seconds."""
        rows = []
        for frozen in self.study.get_trials(deepcopy=False):
            result = self.results.get(frozen.number)
            if result is None:
                continue
            config = self.configs[frozen.number]
            row = {
                "trial": frozen.number,
                "state": "pruned" if result.pruned else "complete",
                "value": result.value,
                "seconds": round(result.seconds, 3),
                "reason": result.reason,
            }
            row.update({f"train.{k}": getattr(config.train, k) for k in TUNED_TRAIN})
            row.update({f"evaluate.{k}": getattr(config.evaluate, k) for k in TUNED_EVALUATE})
            row.update({f"validation.{k}": v for k, v in result.metrics.items()})
            scores = self.confirmed.get(frozen.number)
            row["seeds_mean"] = float(np.mean(scores)) if scores else None
            row["seeds_std"] = float(np.std(scores)) if scores else None
            row["seeds"] = len(scores) if scores else None
            rows.append(row)
        return pa.Table.from_pylist(rows)

    def importance(self) -> dict[str, float]:
        """How much each parameter mattered (Optuna's default evaluator); {} if too few."""
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


def best_toml(config: PipelineConfig, provenance: dict[str, Any]) -> str:
    """The winner as a TOML config for ``item2vec run --config``, provenance on top.

    The ingest columns come along, so the file runs on the same log as it is.
    """
    import tomli_w

    ingest = config.ingest.model_dump(
        include={"paths", "user_col", "item_col", "time_col", "items_path"}
        | {"item_id_col", "item_title_col", "sep", "time_unit", "event_col", "keep_events"}
        | {"weight_col", "min_weight", "min_item_count", "min_user_count"},
        exclude_none=True,
    )
    document = {
        "ingest": ingest,
        "train": {k: getattr(config.train, k) for k in TUNED_TRAIN},
        "evaluate": {k: getattr(config.evaluate, k) for k in TUNED_EVALUATE},
    }
    header = "".join(f"# {key}: {value}\n" for key, value in provenance.items())
    return header + "\n" + tomli_w.dumps(document)


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
        Wall-clock budget: no trial starts after it, running trials stop at it.
    trials
        Most trials to run.
    sample_users
        Share of users the trials see (0 < share <= 1); the winner is still
        evaluated on everyone.
    parallel
        Trials running at once on the task runner.
    seed
        Seed of the search, of the user sample and of every trial's training.
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


def final_evaluation(
    best: PipelineConfig, base: PipelineConfig, data: TuningData, seeds: int = 3
) -> dict:
    """The winner and the starting configuration, each trained on the full training side
    with ``seeds`` seeds and evaluated on the test target, beside the baselines.

    Returns
    -------
    dict
        ``best`` and ``base``: the metrics record (:func:`item2vec.evaluate.evaluate`)
        of the first seed; ``best_seeds`` and ``base_seeds``: test HR@10 per seed.
    """
    from item2vec.evaluate import evaluate

    results: dict[str, Any] = {}
    for name, config in (("best", best), ("base", base)):
        scores = []
        for offset in range(seeds):
            train = config.train.model_copy(update={"seed": config.train.seed + offset})
            vectors = train_word2vec(data.final.train, train)
            metrics = evaluate(vectors, data.final.train, data.final.test, config.evaluate)
            results.setdefault(name, metrics)
            scores.append(float(metrics["model"][OBJECTIVE]))
        results[f"{name}_seeds"] = scores
    return results


def write_outputs(
    folder: Path,
    sweep: Sweep,
    best_number: int,
    best: PipelineConfig,
    final: dict,
    facts: dict[str, Any],
) -> dict[str, Path]:
    """trials.parquet, best.toml, sweep.json and sweep.md with its PNGs, in ``folder``."""
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
    summary = {
        **facts,
        "best_trial": best_number,
        "validation": sweep.results[best_number].metrics,
        "validation_seeds": sweep.confirmed.get(best_number),
        "test_seeds": final["best_seeds"],
        "test_seeds_with_starting_config": final["base_seeds"],
        "test": final["best"],
        "test_with_starting_config": final["base"],
        "importance": importance,
    }
    json_path = folder / "sweep.json"
    write_text_atomically(json_path, json.dumps(summary, indent=2, default=str) + "\n")
    report_path = write_sweep_report(
        folder,
        table,
        importance,
        best_number,
        {**final["best"], "best_seeds": final["best_seeds"], "base_seeds": final["base_seeds"]},
        facts,
    )
    return {"trials": trials_path, "best": best_path, "summary": json_path, "report": report_path}
