"""The ``item2vec sweep`` flow: one task per trial, the winner tested once, outputs written.

Trials run ``parallel`` at a time on the flow's task runner (threads by default,
or Dask through :func:`item2vec_flows.runners.build_task_runner`). On threads a trial
reports intermediate scores to the study as it trains and is pruned at once; a
trial on a Dask worker cannot reach the study, so it runs to its end (still
within the budget) and its scores are recorded when it returns.

The flow only orders the steps; what a trial, a selection or a final evaluation
is lives in the library (:mod:`item2vec.tune`, :mod:`item2vec.trial`,
:mod:`item2vec.final_evaluation`, :mod:`item2vec.sweep_outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from item2vec.cache import events_and_sequences
from item2vec.config import EvaluateConfig, PipelineConfig
from item2vec.final_evaluation import FINAL_SEEDS, combine_final, final_baselines, final_run
from item2vec.metric_table import metrics_rows
from item2vec.summary import report_markdown
from item2vec.sweep_outputs import gains, provenance, write_outputs
from item2vec.trial import TrialResult, run_trial, validation_baselines
from item2vec.tune import CONFIRM_SEEDS, Sweep, SweepSettings
from item2vec.tuning_split import TuningData, tuning_data
from item2vec_flows.pipeline import IO_RETRIES, STAGE, Opaque

#: Rows of the trials table artifact (the best trials).
ARTIFACT_TRIALS = 20


@task(name="prepare", **IO_RETRIES, **STAGE)
def prepare_task(config: PipelineConfig, settings: SweepSettings) -> TuningData:
    _, sequences = events_and_sequences(config)
    return tuning_data(sequences, config, settings.sample_users, settings.seed)


@task(name="trial", task_run_name="trial-{number}", **STAGE)
def trial_task(
    number: int,
    config: PipelineConfig,
    data: Opaque,
    hook: Opaque | None,
    deadline: float | None,
    time_limit: float | None,
    objective: str,
) -> TrialResult:
    return run_trial(
        config, data.value, hook.value if hook else None, deadline, time_limit, objective
    )


@task(name="validation-baselines", **STAGE)
def validation_baselines_task(
    evaluate: EvaluateConfig, data: Opaque, objective: str
) -> dict[str, float]:
    return validation_baselines(evaluate, data.value, objective)


@task(name="final-run", task_run_name="final-{name}-seed-{offset}", **STAGE)
def final_run_task(name: str, offset: int, config: PipelineConfig, data: Opaque) -> dict:
    return final_run(config, data.value, offset)


@task(name="final-baselines", **STAGE)
def final_baselines_task(evaluate: EvaluateConfig, data: Opaque) -> dict:
    return final_baselines(evaluate, data.value)


@task(name="write-outputs", **STAGE)
def outputs_task(
    folder: str,
    sweep: Sweep,
    number: int,
    best: PipelineConfig,
    final: dict,
    facts: dict,
    references: dict,
) -> dict[str, Path]:
    return write_outputs(Path(folder), sweep, number, best, final, facts, references)


@task(name="artifacts", **STAGE)
def artifacts_task(paths: dict[str, Path], final: dict, trials: list[dict]) -> None:
    create_markdown_artifact(
        report_markdown(paths["report"].parent, paths["report"].name),
        key="item2vec-sweep",
        description="Sweep: validation score over trials, importance, the winner on test",
    )
    create_table_artifact(
        metrics_rows(final["best"]),
        key="item2vec-sweep-test",
        description=f"The winner on the test target (mean of {FINAL_SEEDS} seeds) and baselines",
    )
    create_table_artifact(
        trials, key="item2vec-sweep-trials", description="Best trials on the validation target"
    )


def _bounded(calls: list[tuple[Callable, tuple]], parallel: int) -> list[Any]:
    """Submit ``(task, args)`` calls, at most ``parallel`` at a time; results in order."""
    results: list[Any] = [None] * len(calls)
    pending = list(enumerate(calls))
    running: dict[Any, int] = {}
    while pending or running:
        while pending and len(running) < parallel:
            index, (function, args) = pending.pop(0)
            running[function.submit(*args)] = index
        finished = next(as_completed(list(running)))
        results[running.pop(finished)] = finished.result()
    return results


def _plain(value: Any) -> Any:
    # Table artifacts want plain Python values: numpy float32 shows as 0.10000000149.
    return float(value) if isinstance(value, float) else value


@flow(name="item2vec-sweep", log_prints=True)
def item2vec_sweep(
    config: PipelineConfig, settings: SweepSettings, command: str = "item2vec sweep"
) -> dict[str, Any]:
    """Search training and scoring settings on the validation target; test the winner once.

    Returns
    -------
    dict
        ``best_trial``, ``trials``, ``validation`` (metrics of the winner),
        ``validation_seeds``, ``test`` and ``base_test`` (records of the winner and
        the starting configuration on the test target), ``gains``, ``references``,
        ``minutes`` and ``paths``.
    """
    data = prepare_task(config, settings)
    shared = Opaque(data)
    in_process = isinstance(_current_runner(), ThreadPoolTaskRunner)
    workers = 1 if settings.parallel > 1 else config.train.workers
    sweep = Sweep(
        config,
        settings.budget_minutes,
        settings.trials,
        settings.seed,
        workers,
        settings.parallel,
        final_scale=data.final_scale,
        validation_users=data.users,
        objective=settings.objective_key,
    )
    running: dict[Any, Any] = {}
    while running or not sweep.done():
        while len(running) < settings.parallel and not sweep.done():
            trial, trial_config = sweep.ask()
            hook = Opaque(sweep.pruning_hook(trial)) if in_process else None
            future = trial_task.submit(
                trial.number,
                trial_config,
                shared,
                hook,
                sweep.deadline,
                sweep.time_limit,
                settings.objective_key,
            )
            running[future] = trial
        finished = next(as_completed(list(running)))
        sweep.tell(running.pop(finished), finished.result())

    # The leaders again with other seeds: the winner is the best mean, not a lucky draw.
    runs = sweep.confirmation_runs(sweep.leaders(CONFIRM_SEEDS), CONFIRM_SEEDS)
    deadline = sweep.confirmation_deadline()
    results = _bounded(
        [
            (trial_task, (n, c, shared, None, deadline, sweep.time_limit, settings.objective_key))
            for n, c in runs
        ],
        settings.parallel,
    )
    sweep.record_confirmation(runs, results)
    number, best = sweep.best()

    # The only look at the test target: winner and starting point, FINAL_SEEDS each.
    base = config.model_copy(
        update={
            "train": config.train.model_copy(update={"seed": settings.seed, "workers": workers})
        }
    )
    candidates = {"best": best, "base": base}
    calls: list[tuple[Callable, tuple]] = [
        (final_run_task, (name, offset, candidate, shared))
        for name, candidate in candidates.items()
        for offset in range(FINAL_SEEDS)
    ]
    queries = {candidate.evaluate.query_items: candidate.evaluate for candidate in (best, base)}
    calls += [(final_baselines_task, (evaluate, shared)) for evaluate in queries.values()]
    calls.append((validation_baselines_task, (base.evaluate, shared, settings.objective_key)))
    outcomes = _bounded(calls, settings.parallel)
    baselines = dict(zip(queries, outcomes[2 * FINAL_SEEDS : -1], strict=True))
    references = outcomes[-1]
    final = {
        name: combine_final(
            outcomes[i * FINAL_SEEDS : (i + 1) * FINAL_SEEDS],
            baselines[candidate.evaluate.query_items],
            data,
            candidate.evaluate,
            settings.objective_key,
        )
        for i, (name, candidate) in enumerate(candidates.items())
    }
    facts = {
        **provenance(command, settings, data.users),
        "trials run": len(sweep.results),
        "minutes": round(sweep.elapsed_minutes(), 2),
    }
    paths = outputs_task(
        settings.output, quote(sweep), number, best, quote(final), facts, references
    )
    complete = [r for r in sweep.trials_table().to_pylist() if r["state"] == "complete"]
    complete.sort(key=lambda r: (-r["value"], r["trial"]))
    shown = [{k: _plain(v) for k, v in r.items() if v is not None} for r in complete]
    artifacts_task(paths, quote(final), shown[:ARTIFACT_TRIALS])
    return {
        "best_trial": number,
        "trials": len(sweep.results),
        "validation": sweep.results[number].metrics,
        "validation_seeds": sweep.confirmed.get(number),
        "test": final["best"],
        "base_test": final["base"],
        "gains": gains(sweep, number, final),
        "references": references,
        "objective": settings.objective_key,
        "minutes": round(sweep.elapsed_minutes(), 2),
        "paths": {name: str(path) for name, path in paths.items()},
    }


def _current_runner() -> Any:
    """The task runner of the flow run in progress."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context.task_runner if context else None


def run_sweep(
    config: PipelineConfig,
    settings: SweepSettings,
    task_runner: Any = None,
    command: str = "item2vec sweep",
) -> dict[str, Any]:
    """Run :func:`item2vec_sweep` in-process (embedded Prefect unless an API URL is set).

    Parameters
    ----------
    config
        Columns, split and the starting point of the search.
    settings
        Budget, trials, user sample, parallelism, seed and output folder.
    task_runner
        From :func:`item2vec_flows.runners.build_task_runner`; default a thread pool of
        ``settings.parallel`` threads.
    command
        The command line, recorded as provenance.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    runner = task_runner or ThreadPoolTaskRunner(max_workers=settings.parallel)
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return item2vec_sweep.with_options(task_runner=runner)(config, settings, command)
