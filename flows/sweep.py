"""The ``item2vec sweep`` flow: one task per trial, the winner tested once, outputs written.

Trials run ``parallel`` at a time on the flow's task runner (threads by default,
or Dask). On threads a trial reports intermediate scores to the study as it
trains and is pruned at once; a trial on a Dask worker cannot reach the study,
so it runs to its end and its scores are recorded when it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.pipeline import IO_RETRIES, STAGE, Opaque
from item2vec.cache import events_and_sequences
from item2vec.config import PipelineConfig
from item2vec.summary import metrics_rows, report_markdown
from item2vec.tune import (
    CONFIRM_SEEDS,
    Sweep,
    SweepSettings,
    TrialResult,
    TuningData,
    final_evaluation,
    run_trial,
    tuning_data,
    write_outputs,
)


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
) -> TrialResult:
    return run_trial(config, data.value, hook.value if hook else None, deadline)


@task(name="final-evaluation", **STAGE)
def final_task(best: PipelineConfig, base: PipelineConfig, data: TuningData) -> dict:
    return final_evaluation(best, base, data)


@task(name="write-outputs", **STAGE)
def outputs_task(
    sweep: Sweep, number: int, best: PipelineConfig, final: dict, facts: dict
) -> dict[str, Path]:
    return write_outputs(Path(facts["output"]), sweep, number, best, final, facts)


@task(name="artifacts", **STAGE)
def artifacts_task(paths: dict[str, Path], final: dict) -> None:
    create_markdown_artifact(
        report_markdown(paths["report"].parent, paths["report"].name),
        key="item2vec-sweep",
        description="Sweep: validation score over trials, importance, the winner on test",
    )
    create_table_artifact(metrics_rows(final["best"]), key="item2vec-sweep-test")


@flow(name="item2vec-sweep", log_prints=True)
def item2vec_sweep(
    config: PipelineConfig, settings: SweepSettings, command: str = "item2vec sweep"
) -> dict[str, Any]:
    """Search training and scoring settings on the validation target; test the winner once.

    Returns
    -------
    dict
        ``best_trial``, ``trials``, ``validation`` and ``test`` metrics of the winner,
        ``base_test`` (the starting configuration on the same split), and ``paths``.
    """
    data = prepare_task(config, settings)
    shared = Opaque(data)
    in_process = isinstance(item2vec_sweep_runner(), ThreadPoolTaskRunner)
    workers = 1 if settings.parallel > 1 else config.train.workers
    sweep = Sweep(config, settings.budget_minutes, settings.trials, settings.seed, workers)
    running: dict[Any, Any] = {}
    while running or not sweep.done():
        while len(running) < settings.parallel and not sweep.done():
            trial, trial_config = sweep.ask()
            hook = Opaque(sweep.pruning_hook(trial)) if in_process else None
            future = trial_task.submit(trial.number, trial_config, shared, hook, sweep.deadline)
            running[future] = trial
        finished = next(as_completed(list(running)))
        sweep.tell(running.pop(finished), finished.result())
    # The leaders again with other seeds: the winner is the best mean, not a lucky draw.
    runs = sweep.confirmation_runs(sweep.leaders(CONFIRM_SEEDS, settings.parallel), CONFIRM_SEEDS)
    confirming = [trial_task.submit(n, c, shared, None, None) for n, c in runs]
    sweep.record_confirmation(runs, [future.result() for future in confirming])
    number, best = sweep.best()
    final = final_task(best, config, quote(data))
    facts = {
        "command": command,
        "budget minutes": settings.budget_minutes,
        "seed": settings.seed,
        "trials run": len(sweep.results),
        "users in trials": data.users,
        "sample users": settings.sample_users,
        "minutes": round(sweep.elapsed_minutes(), 2),
        "output": settings.output,
    }
    paths = outputs_task(quote(sweep), number, best, final, facts)
    artifacts_task(paths, final)
    return {
        "best_trial": number,
        "trials": len(sweep.results),
        "validation": sweep.results[number].metrics,
        "validation_seeds": sweep.confirmed.get(number),
        "test_seeds": final["best_seeds"],
        "base_test_seeds": final["base_seeds"],
        "test": final["best"],
        "base_test": final["base"],
        "paths": {name: str(path) for name, path in paths.items()},
    }


def item2vec_sweep_runner() -> Any:
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
    """Run :func:`item2vec_sweep` in-process (embedded Prefect unless an API URL is set)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    runner = task_runner or ThreadPoolTaskRunner(max_workers=settings.parallel)
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return item2vec_sweep.with_options(task_runner=runner)(config, settings, command)
