"""What a finished sweep writes: trials.parquet, best.toml, sweep.json and sweep.md.

best.toml is the winner as a config for ``item2vec run --config``; sweep.json
and sweep.md hold its validation and test scores, how much of the validation
gain survived on test, and which parameters mattered.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from item2vec.atomicfile import replacing, write_text
from item2vec.config import EvaluateConfig, PipelineConfig, SequenceConfig
from item2vec.search_space import tuned_fields
from item2vec.tune import Sweep, SweepSettings
from item2vec.tune_report import write_sweep_report

#: Ingest settings written into best.toml, so that it runs on the same log as it is.
INGEST_KEYS = (
    "paths",
    "user_col",
    "item_col",
    "time_col",
    "items_path",
    "item_id_col",
    "item_title_col",
    "item_category_col",
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
    train = tuned_fields(config, "train")
    evaluate = tuned_fields(config, "evaluate")
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


def gains(sweep: Sweep, best_number: int, final: dict[str, Any]) -> dict[str, Any]:
    """How much of the validation gain over the starting configuration survives on test.

    Returns
    -------
    dict
        ``validation_start``/``validation_best`` (means over seeds where re-trained;
        start is None when it was not a trial), ``test_start``/``test_best`` (means
        over :data:`item2vec.final_evaluation.FINAL_SEEDS`), the two gains,
        ``survives``: test gain over validation gain (None when the validation gain
        is not positive), and
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
        "objective": sweep.objective,
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
        From :func:`item2vec.final_evaluation.final_evaluation` (or the flow's tasks).
    facts
        Provenance (:func:`provenance`) and counts, shown on top of the files.
    references
        Baselines' validation scores, drawn as reference lines.

    Returns
    -------
    dict
        Paths under ``trials``, ``best``, ``summary`` and ``report``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    table = sweep.trials_table()
    trials_path = folder / "trials.parquet"
    with replacing(trials_path) as temporary:
        pq.write_table(table, temporary)
    best_path = folder / "best.toml"
    origin = {"tuned by": "item2vec sweep (Optuna TPE, median pruning, validation target only)"}
    write_text(best_path, best_toml(best, {**origin, **facts}))
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
    write_text(json_path, json.dumps(summary, indent=2, default=str) + "\n")
    report_path = write_sweep_report(
        folder, table, importance, best_number, final, facts, gain, references or {}
    )
    return {"trials": trials_path, "best": best_path, "summary": json_path, "report": report_path}
