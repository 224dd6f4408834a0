"""``item2vec sweep``: the tuner's command line.

:func:`add_sweep_parser` and :func:`command_sweep` plug into :mod:`item2vec_flows.cli`
(``add_sweep_parser(subparsers)`` in ``build_parser``); the run options, the
config layering and the input checks are ``item2vec run``'s own, imported from
there. Settings are validated and the input's columns checked before the flow
starts, so bad input ends with one line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from item2vec.errors import ConfigError
from item2vec_flows.cli_common import (
    EXIT_OK,
    quiet_expected_tracebacks,
    set_verbosity,
    subcommand,
)
from item2vec_flows.cli_options import add_run_options, add_runner_options, config_from_args
from item2vec_flows.cli_run import validate_inputs

SWEEP_DESCRIPTION = (
    "Search Word2Vec and scoring settings (sg/CBOW, context, window, ns_exponent, "
    "sample, negative, epochs, vector_size, min_count, alpha, scoring, query_items) "
    "with Optuna's TPE sampler (seeded by --seed) and median pruning. Trials train "
    "without the test targets and are scored on the validation target only (each "
    "user's second-to-last event); the winner is then trained on the full training "
    "side and evaluated once on the test target, next to popularity and item-kNN.\n\n"
    "Writes into --output (default: sweep): trials.parquet, best.toml (run it with "
    "item2vec run --config best.toml), sweep.json, and sweep.md with its plots. The "
    "run options below name the columns and set the starting point of the search."
)

#: Default folder of a sweep's outputs (``--output``).
DEFAULT_OUTPUT = "sweep"


def add_sweep_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``item2vec``'s subparsers.

    Parameters
    ----------
    subparsers
        From ``parser.add_subparsers()`` of :func:`item2vec_flows.cli.build_parser`.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser (its handler is :func:`command_sweep`).
    """
    sweep = subcommand(
        subparsers,
        "sweep",
        "tune the model on the validation target (Optuna), write best.toml",
        SWEEP_DESCRIPTION,
    )
    sweep.add_argument(
        "--budget-minutes",
        type=float,
        default=10.0,
        metavar="M",
        help="wall-clock budget of the whole sweep; no trial starts once the rest is "
        "needed to finish (default: 10)",
    )
    sweep.add_argument(
        "--trials", type=int, default=200, metavar="N", help="most trials (default: 200)"
    )
    sweep.add_argument(
        "--sample-users",
        type=float,
        default=1.0,
        metavar="F",
        help="tune on this seeded share of users, in (0, 1], e.g. 0.2; the winner is "
        "still tested on everyone (default: 1.0)",
    )
    sweep.add_argument(
        "--parallel",
        type=int,
        default=2,
        metavar="P",
        help="trials at once, one training thread each (default: 2)",
    )
    sweep.add_argument(
        "--objective",
        choices=("user", "neighbors"),
        default="user",
        help="what trials are ranked by on the validation target: user = HR@10 of the next "
        "item after a user's history; neighbors = the neighbour table's item-to-item HR@10 "
        "(the last item's neighbours against the next item), for similar-item carousels "
        "(default: user)",
    )
    add_run_options(sweep)
    add_runner_options(sweep)
    sweep.set_defaults(handler=command_sweep)
    return sweep


def sweep_settings(args: argparse.Namespace, output: str, seed: int) -> Any:
    """The validated :class:`item2vec.tune.SweepSettings` of the parsed flags.

    Raises
    ------
    ConfigError
        Naming the flag, what it must be and the value given.
    """
    from pydantic import ValidationError

    from item2vec.tune import SweepSettings

    try:
        return SweepSettings(
            budget_minutes=args.budget_minutes,
            trials=args.trials,
            sample_users=args.sample_users,
            parallel=args.parallel,
            seed=seed,
            output=output,
            objective=args.objective,
        )
    except ValidationError as exc:
        # The allowed ranges live once, on SweepSettings; here they get flag names.
        problems = "; ".join(
            f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg'].lower()}, "
            f"got {error.get('input')!r}"
            for error in exc.errors()
        )
        raise ConfigError(problems) from None


def command_sweep(args: argparse.Namespace) -> int:
    """``item2vec sweep``: validate, run the sweep flow, print the winner and where it is.

    Returns
    -------
    int
        ``EXIT_OK``; errors are raised as :class:`item2vec.errors.Item2VecError`
        for ``item2vec``'s ``main`` to print as one line.
    """
    # --output names the sweep's folder here, not a publish root.
    output = getattr(args, "publish.output") or DEFAULT_OUTPUT
    seed_flag = getattr(args, "train.seed")
    settings = sweep_settings(args, output, seed_flag if seed_flag is not None else 0)
    config = config_from_args(args)
    validate_inputs(config)
    from item2vec_flows.runners import build_task_runner

    # Build (and so check) a requested runner before the flow starts.
    runner = None
    if args.task_runner != "threads" or args.dask_address:
        runner = build_task_runner(args.task_runner, args.dask_address)
    started = time.perf_counter()
    set_verbosity(args.quiet, args.verbose)
    from item2vec_flows.sweep import run_sweep

    if not args.debug:
        quiet_expected_tracebacks()
    words = sys.argv[1:]
    if words[:1] == ["sweep"]:  # run through item2vec's main, not this module's
        words = words[1:]
    command = " ".join(["item2vec sweep", *words])
    result = run_sweep(config, settings, runner, command)
    print_sweep_summary(result, time.perf_counter() - started)
    return EXIT_OK


def print_sweep_summary(result: dict[str, Any], seconds: float) -> None:
    """The winner's validation score, its test metrics beside the baselines, the files."""
    from item2vec.metric_table import metrics_text
    from item2vec.summary import items_phrase
    from item2vec.tune_report import figure_of, noise_note, seed_spread, survival

    objective = result["objective"]
    validation = f"{result['validation'][objective]:.4f}"
    if result["validation_seeds"]:
        validation += f", over seeds {seed_spread(result['validation_seeds'])}"
    print()
    print(f"Best of {result['trials']} trials: #{result['best_trial']}, validation {validation}")
    if result["references"]:
        print(
            "Baselines on validation (reference only): "
            + ", ".join(f"{n} {v:.4f}" for n, v in result["references"].items())
        )
    print("On the test target (trained again on the full training side; model = seed mean):")
    print(metrics_text(result["test"]))
    print(f"Test {objective} of the winner: {seed_spread(result['test']['seeds'])}")
    start = seed_spread(result["base_test"]["seeds"])
    print(f"Test {objective} of the starting configuration: {start}")
    for name, record in (("winner's", result["test"]), ("starting", result["base_test"])):
        baselines = record["baselines"]
        print(
            f"Baselines with the {name} query of {items_phrase(record['query_items'])}: item-kNN "
            f"{figure_of(baselines['item_knn'], objective)}, popularity "
            f"{figure_of(baselines['popularity'], objective)}"
        )
    gains = result["gains"]
    if gains["validation_gain"] is not None:
        print(
            f"Gain over the start: validation {gains['validation_gain']:+.4f}, test "
            f"{gains['test_gain']:+.4f} ({survival(gains)})"
        )
    note = noise_note(gains)
    if note:
        print(note)
    for name, path in result["paths"].items():
        print(f"{name:>8}: {path}")
    print(f"Run it: item2vec run --config {result['paths']['best']}")
    print(f"Done in {seconds:.1f}s.")
