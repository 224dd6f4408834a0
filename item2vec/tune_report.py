"""The sweep's summary: validation score over trials, parameter importance, final test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from item2vec.report import _figure, _save
from item2vec.summary import metrics_markdown
from item2vec.tune import OBJECTIVE

TRIALS_PLOT = "sweep_trials.png"
IMPORTANCE_PLOT = "sweep_importance.png"
SUMMARY_FILE = "sweep.md"


def plot_trials(trials: pa.Table, path: Path) -> Path:
    """Validation score of every complete trial, with the best so far as a line."""
    figure = _figure()
    axes = figure.add_subplot()
    number = np.asarray(trials.column("trial").to_pylist())
    value = np.asarray([np.nan if v is None else v for v in trials.column("value").to_pylist()])
    complete = ~np.isnan(value)
    axes.scatter(number[complete], value[complete], s=14, color="#1f77b4", label="trial")
    pruned = ~complete
    if pruned.any():
        axes.scatter(
            number[pruned],
            np.full(pruned.sum(), np.nanmin(value) if complete.any() else 0),
            s=10,
            marker="x",
            color="#999999",
            label="pruned (drawn at the bottom)",
        )
    if complete.any():
        best = np.fmax.accumulate(np.where(complete, value, -np.inf))
        best[best == -np.inf] = np.nan
        axes.step(number, best, where="post", color="#d62728", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(f"validation {OBJECTIVE}")
    axes.set_title(f"Sweep: validation {OBJECTIVE} per trial")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_importance(importance: dict[str, float], path: Path) -> Path:
    """Horizontal bars: share of the score's variance each parameter explains."""
    figure = _figure()
    axes = figure.add_subplot()
    names = list(importance)[::-1]
    axes.barh(names, [importance[n] for n in names], color="#2ca02c")
    axes.set_xlabel("importance (Optuna, normalised to sum to 1)")
    axes.set_title(f"Which settings mattered for validation {OBJECTIVE}")
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def write_sweep_report(
    folder: Path,
    trials: pa.Table,
    importance: dict[str, float],
    best_number: int,
    final_metrics: dict[str, Any],
    facts: dict[str, Any],
) -> Path:
    """Write ``sweep.md`` and its PNGs into ``folder``; return the markdown's path."""
    plot_trials(trials, folder / TRIALS_PLOT)
    lines = [
        "# item2vec sweep",
        "",
        *(f"- {key}: {value}" for key, value in facts.items()),
        "",
        f"## Validation {OBJECTIVE} over trials",
        "",
        f"![validation {OBJECTIVE} per trial]({TRIALS_PLOT})",
        "",
    ]
    best = trials.filter(pa.compute.equal(trials.column("trial"), best_number)).to_pylist()[0]
    lines += [
        f"## Best trial: {best_number} (validation {OBJECTIVE} {best['value']:.4f})",
        "",
        "| setting | value |",
        "|---|---|",
        *(
            f"| {name} | {value} |"
            for name, value in best.items()
            if name.startswith(("train.", "evaluate."))
        ),
        "",
        "## The best configuration on the test target, next to the baselines",
        "",
        "Trained once more on the full training side; the only time a sweep looks at",
        "the test target.",
        "",
        metrics_markdown(final_metrics),
        "",
        f"Test {OBJECTIVE} over seeds: winner {_spread(final_metrics.get('best_seeds'))}, "
        f"starting configuration {_spread(final_metrics.get('base_seeds'))}.",
        "",
    ]
    if importance:
        plot_importance(importance, folder / IMPORTANCE_PLOT)
        lines += [
            "## Parameter importance",
            "",
            f"![parameter importance]({IMPORTANCE_PLOT})",
            "",
            *(f"- {name}: {value:.3f}" for name, value in importance.items()),
            "",
        ]
    path = folder / SUMMARY_FILE
    path.write_text("\n".join(lines))
    return path


def _spread(scores: list[float] | None) -> str:
    if not scores:
        return "n/a"
    return f"{np.mean(scores):.4f} ± {np.std(scores):.4f} ({len(scores)} seeds)"
