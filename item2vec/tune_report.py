"""The sweep's summary: validation score over trials, parameter importance, final test.

Figures are drawn on a bare Agg figure (see :func:`item2vec.plots._figure`), so a
sweep never touches pyplot's global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.atomicfile import write_text
from item2vec.final_evaluation import FINAL_SEEDS
from item2vec.metric_table import metrics_markdown
from item2vec.plots import _figure, _save
from item2vec.search_space import OBJECTIVE
from item2vec.summary import items_phrase

TRIALS_PLOT = "sweep_trials.png"
IMPORTANCE_PLOT = "sweep_importance.png"
SUMMARY_FILE = "sweep.md"
#: Colours of the baselines' reference lines.
REFERENCE_COLOURS = {"popularity": "#7f7f7f", "item_knn": "#ff7f0e"}


def plot_trials(
    trials: pa.Table,
    path: Path,
    references: dict[str, float] | None = None,
    objective: str = OBJECTIVE,
) -> Path:
    """Validation score of every trial, with the best so far as a step line.

    Parameters
    ----------
    trials
        :meth:`item2vec.tune.Sweep.trials_table`.
    path
        PNG to write.
    references
        Baselines' validation scores, drawn as dashed horizontal lines.
    """
    figure = _figure()
    axes = figure.add_subplot()
    number = np.asarray(trials.column("trial").to_pylist())
    value = np.asarray([np.nan if v is None else v for v in trials.column("value").to_pylist()])
    complete = ~np.isnan(value)
    axes.scatter(number[complete], value[complete], s=14, color="#1f77b4", label="trial")
    pruned = ~complete
    if pruned.any():
        # A pruned trial has no final score: draw its last intermediate one, if any.
        steps = [c for c in trials.column_names if c.startswith("step_")]
        last = np.full(len(number), np.nan)
        for column in steps:
            values = np.asarray(
                [np.nan if v is None else v for v in trials.column(column).to_pylist()]
            )
            last = np.where(np.isnan(values), last, values)
        floor = np.nanmin(value) if complete.any() else 0.0
        shown = np.where(np.isnan(last), floor, last)[pruned]
        axes.scatter(
            number[pruned],
            shown,
            s=12,
            marker="x",
            color="#999999",
            label="pruned (last intermediate score)",
        )
    if complete.any():
        best = np.fmax.accumulate(np.where(complete, value, -np.inf))
        best[best == -np.inf] = np.nan
        axes.step(number, best, where="post", color="#d62728", label="best so far")
    for name, score in (references or {}).items():
        axes.axhline(
            score,
            linestyle="--",
            linewidth=1,
            color=REFERENCE_COLOURS.get(name, "#333333"),
            label=f"{name} (validation)",
        )
    axes.set_xlabel("trial")
    axes.set_ylabel(f"validation {objective}")
    axes.set_title(f"Sweep: validation {objective} per trial")
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_importance(importance: dict[str, float], path: Path) -> Path:
    """Horizontal bars: share of the score's variance each parameter explains."""
    figure = _figure()
    axes = figure.add_subplot()
    names = list(importance)[::-1]
    axes.barh(names, [importance[n] for n in names], color="#2ca02c")
    axes.set_xlabel("importance (Optuna fANOVA, sums to 1)")
    axes.set_title("Which settings mattered for the validation score")
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def write_sweep_report(
    folder: Path,
    trials: pa.Table,
    importance: dict[str, float],
    best_number: int,
    final: dict[str, Any],
    facts: dict[str, Any],
    gains: dict[str, Any],
    references: dict[str, float],
) -> Path:
    """Write ``sweep.md`` and its PNGs into ``folder``.

    Parameters
    ----------
    folder
        The sweep's output folder.
    trials
        :meth:`item2vec.tune.Sweep.trials_table`.
    importance
        :meth:`item2vec.tune.Sweep.importance` (may be empty).
    best_number
        The winning trial.
    final
        ``best`` and ``base`` test records (:func:`item2vec.final_evaluation.combine_final`).
    facts
        Provenance lines for the top of the page.
    gains
        :func:`item2vec.sweep_outputs.gains`.
    references
        Baselines' validation scores.

    Returns
    -------
    Path
        The markdown file.
    """
    objective = final["best"].get("objective", OBJECTIVE)
    plot_trials(trials, folder / TRIALS_PLOT, references, objective)
    states = trials.column("state").to_pylist()
    lines = [
        "# item2vec sweep",
        "",
        *(f"- {key}: {value}" for key, value in facts.items()),
        f"- trials: {len(states)} ({states.count('complete')} complete, "
        f"{states.count('pruned')} pruned)",
        "",
        f"## Validation {objective} over trials",
        "",
        f"![validation {objective} per trial]({TRIALS_PLOT})",
        "",
    ]
    if references:
        lines += [
            "Baselines on the same validation target (reference only, never used to select): "
            + ", ".join(f"{name} {score:.4f}" for name, score in references.items()),
            "",
        ]
    best = trials.filter(pc.equal(trials.column("trial"), best_number)).to_pylist()[0]
    lines += [
        f"## Best trial: {best_number} (validation {objective} {best['value']:.4f}"
        + (
            f", {best['seeds_mean']:.4f} ± {best['seeds_std']:.4f} over {best['seeds']} seeds)"
            if best.get("seeds")
            else ")"
        ),
        "",
        "| setting | value |",
        "|---|---|",
        *(
            f"| {name} | {value} |"
            for name, value in best.items()
            if name.startswith(("train.", "evaluate.")) and value is not None
        ),
        "",
        "## On the test target, next to the baselines",
        "",
        f"The winner trained again on the full training side with {FINAL_SEEDS} seeds (model",
        "row: their mean), the only time a sweep looks at the test target; the baselines",
        "use the winner's query length.",
        "",
        metrics_markdown(final["best"]),
        "",
        f"Test {objective} over seeds: winner {seed_spread(final['best']['seeds'])}, "
        f"starting configuration {seed_spread(final['base']['seeds'])}; item-kNN "
        f"{figure_of(final['best']['baselines']['item_knn'], objective)}, popularity "
        f"{figure_of(final['best']['baselines']['popularity'], objective)} with the winner's query "
        f"of {items_phrase(final['best']['query_items'])}; item-kNN "
        f"{figure_of(final['base']['baselines']['item_knn'], objective)} with the starting "
        f"query of {items_phrase(final['base']['query_items'])}.",
        "",
        "## How much of the gain survives",
        "",
        _gain_text(gains),
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
    write_text(path, "\n".join(lines))
    return path


def _gain_text(gains: dict[str, Any]) -> str:
    objective = gains.get("objective", OBJECTIVE)
    if gains.get("validation_gain") is None:
        return (
            f"The starting configuration was not a complete trial; on test the winner "
            f"scores {gains['test_best']:.4f} against its {gains['test_start']:.4f}."
        )
    return (
        f"Validation {objective}: starting configuration {gains['validation_start']:.4f}, "
        f"winner {gains['validation_best']:.4f} (gain {gains['validation_gain']:+.4f}). "
        f"Test {objective}: {gains['test_start']:.4f} and {gains['test_best']:.4f} "
        f"(gain {gains['test_gain']:+.4f}): {survival(gains)}. {noise_note(gains)}"
    ).strip()


def survival(gains: dict[str, Any]) -> str:
    """How much of the validation gain held on test, in words."""
    survives = gains.get("survives")
    if survives is None:
        return "no validation gain to carry"
    if survives <= 0:
        return "none of it survives" + (
            ": the winner scores below the start on test" if gains["test_gain"] < 0 else ""
        )
    return f"{survives:.0%} of it survives"


def noise_note(gains: dict[str, Any]) -> str:
    """How far the validation score can move by chance; empty when unknown.

    The winner is the best of many noisy validation scores, so its lead is
    inflated by luck: for the best of n equally good trials by about
    sqrt(2 ln n) standard errors, 3 for 100 trials. A gain within three
    standard errors may be that luck, most often on a small ``--sample-users``.
    """
    users, error = gains.get("validation_users"), gains.get("validation_error")
    objective = gains.get("objective", OBJECTIVE)
    if not users or error is None:
        return ""
    note = (
        f"Validation is scored on {users:,} users: one hit moves {objective} by "
        f"{1 / users:.4f}, and the winner's score has a standard error of about {error:.4f}."
    )
    gain = gains.get("validation_gain")
    if gain is not None and gain < 3 * error:
        note += (
            f" The validation gain ({gain:+.4f}) is within three of those, so it may not "
            "carry over to test; tune on more users for a steadier choice."
        )
    return note


def seed_spread(scores: list[float] | None) -> str:
    """``mean ± std (n seeds)`` of scores over seeds (population std), or ``n/a``."""
    if not scores:
        return "n/a"
    return f"{np.mean(scores):.4f} ± {np.std(scores):.4f} ({len(scores)} seeds)"


def figure_of(metrics: dict[str, Any], objective: str) -> str:
    """A baseline's ``objective`` to 4 decimals, or ``n/a`` (popularity has no neighbour table)."""
    value = metrics.get(objective)
    return f"{value:.4f}" if isinstance(value, int | float) else "n/a"
