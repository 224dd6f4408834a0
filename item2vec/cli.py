"""The ``item2vec`` command line.

Arguments are validated, and the input's columns checked, before any flow run
starts, so bad input ends with one readable line and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from item2vec.config import PipelineConfig, build_config, read_toml
from item2vec.errors import Item2VecError, QualityGateError
from item2vec.presets import PRESETS, bundled_sample, preset

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_GATE = 3

DEFAULTS = PipelineConfig()

log = logging.getLogger("item2vec.cli")


def _default(section: str, name: str) -> Any:
    return getattr(getattr(DEFAULTS, section), name)


def _str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


# (flag, section, field, type, help). One table drives parsing, help and the config layer.
RUN_OPTIONS: list[tuple[str, str, str, Any, str]] = [
    ("--user-col", "ingest", "user_col", str, "column holding the user id"),
    ("--item-col", "ingest", "item_col", str, "column holding the item id"),
    (
        "--time-col",
        "ingest",
        "time_col",
        str,
        "column holding the event time (epoch s/ms or ISO-8601)",
    ),
    (
        "--items",
        "ingest",
        "items_path",
        str,
        "item metadata file (CSV/Parquet) for titles in the summary",
    ),
    ("--item-id-col", "ingest", "item_id_col", str, "item id column of --items"),
    ("--item-title-col", "ingest", "item_title_col", str, "title column of --items"),
    (
        "--max-bad-fraction",
        "ingest",
        "max_bad_fraction",
        float,
        "largest share of invalid rows (null id, bad time) tolerated before failing",
    ),
    ("--sep", "ingest", "sep", str, "CSV delimiter; detected from the first line when not given"),
    (
        "--header",
        "ingest",
        "header",
        bool,
        "files start with a header line (--no-header: name columns with --columns)",
    ),
    (
        "--columns",
        "ingest",
        "columns",
        _str_list,
        "column names of header-less files, comma-separated",
    ),
    ("--time-unit", "ingest", "time_unit", str, "unit of numeric times: auto, s, ms, us or ns"),
    ("--event-col", "ingest", "event_col", str, "optional event-type column"),
    (
        "--keep-events",
        "ingest",
        "keep_events",
        _str_list,
        "event types to keep, e.g. view,cart,purchase",
    ),
    ("--weight-col", "ingest", "weight_col", str, "optional weight or rating column"),
    ("--min-weight", "ingest", "min_weight", float, "drop events with a lower weight"),
    ("--drop-duplicates", "ingest", "drop_duplicates", bool, "remove exact duplicate events"),
    (
        "--min-item-count",
        "ingest",
        "min_item_count",
        int,
        "drop items with fewer events (iterated with --min-user-count)",
    ),
    (
        "--min-user-count",
        "ingest",
        "min_user_count",
        int,
        "drop users with fewer events (iterated with --min-item-count)",
    ),
    (
        "--since",
        "ingest",
        "since",
        _iso_day,
        "rolling window: read only daily partitions dated on or after this day (YYYY-MM-DD)",
    ),
    (
        "--window-days",
        "ingest",
        "window_days",
        int,
        "rolling window: read only the last N days of daily partitions",
    ),
    (
        "--cache",
        "ingest",
        "cache",
        bool,
        "reuse validated events and sequences of unchanged input files",
    ),
    ("--cache-dir", "ingest", "cache_dir", str, "cache location (default: OUTPUT/.cache)"),
    (
        "--session-gap",
        "sequences",
        "session_gap",
        str,
        "cut sessions at inactivity gaps such as 30m; unset = one sequence per user",
    ),
    (
        "--collapse-repeats",
        "sequences",
        "collapse_repeats",
        bool,
        "merge consecutive repeats of an item",
    ),
    ("--min-length", "sequences", "min_length", int, "drop shorter sequences"),
    (
        "--max-length",
        "sequences",
        "max_length",
        int,
        "keep only the most recent N items of a sequence",
    ),
    ("--write-sequences", "sequences", "write_sequences", bool, "also publish sequences.parquet"),
    ("--output", "publish", "output", str, "output root; versions go to OUTPUT/MODEL_NAME/VERSION"),
    (
        "--model-name",
        "publish",
        "model_name",
        str,
        "model family name (letters, digits, . _ -); 'movielens' for the bundled sample",
    ),
    (
        "--max-regression",
        "publish",
        "max_regression",
        float,
        "refuse a model this share below LATEST's primary metric (comparable runs)",
    ),
    (
        "--min-stability",
        "publish",
        "min_stability",
        float,
        "refuse a model whose top-10 neighbours overlap LATEST's less than this",
    ),
    (
        "--refit",
        "publish",
        "refit",
        bool,
        "also retrain from scratch on all events and publish that (default: the evaluated model)",
    ),
    (
        "--recommendations-n",
        "publish",
        "recommendations_n",
        int,
        "recommendations per user in user_recommendations.parquet (0 = none)",
    ),
    ("--keep", "publish", "keep", int, "keep only the newest N versions (never deletes LATEST)"),
    (
        "--report",
        "publish",
        "report",
        bool,
        "write report.md with plots into the version (--no-report saves a few seconds)",
    ),
    (
        "--gate-margin",
        "publish",
        "gate_margin",
        float,
        "LATEST moves only if the model beats popularity's primary metric times this",
    ),
    (
        "--neighbors-k",
        "publish",
        "neighbors_k",
        int,
        "neighbours per item in item_neighbors.parquet",
    ),
    ("--sg", "train", "sg", int, "1 = skip-gram, 0 = CBOW"),
    ("--vector-size", "train", "vector_size", int, "embedding dimension"),
    ("--window", "train", "window", int, "context half-width in items"),
    ("--negative", "train", "negative", int, "negative samples per positive pair"),
    (
        "--ns-exponent",
        "train",
        "ns_exponent",
        float,
        "exponent of the negative-sampling distribution",
    ),
    ("--sample", "train", "sample", float, "down-sampling threshold of frequent items (0 = off)"),
    ("--epochs", "train", "epochs", int, "passes over the training sequences"),
    ("--min-count", "train", "min_count", int, "items seen fewer times get no vector"),
    ("--seed", "train", "seed", int, "random seed"),
    ("--workers", "train", "workers", int, "training threads"),
    (
        "--context",
        "train",
        "context",
        str,
        "window: sliding window; set: the whole (chunked) sequence is the context",
    ),
    (
        "--max-set-size",
        "train",
        "max_set_size",
        int,
        "set context: longer sequences are shuffled and cut into chunks of this size",
    ),
    (
        "--corpus-file",
        "train",
        "corpus_file",
        bool,
        "train through gensim's corpus_file mode (a temporary text file)",
    ),
    (
        "--deterministic",
        "train",
        "deterministic",
        bool,
        "bit-identical vectors on a re-run (forces workers=1)",
    ),
    (
        "--scoring",
        "evaluate",
        "scoring",
        str,
        "in-out: output vectors score candidates; in-in: cosine of input vectors",
    ),
    (
        "--query-items",
        "evaluate",
        "query_items",
        int,
        "the query is the mean vector of the user's last N training items",
    ),
    ("--k", "evaluate", "k", _int_list, "cut-offs of the metrics, comma-separated"),
    (
        "--split",
        "evaluate",
        "split",
        str,
        "leave-last-out: last event per user is the target; temporal: a time cut-off",
    ),
    ("--test-days", "evaluate", "test_days", float, "held-out period of --split temporal"),
    (
        "--eval-users",
        "evaluate",
        "max_users",
        int,
        "test users evaluated; with more, every method sees the same fixed sample "
        "(chosen by a hash of the user id); 0 evaluates all",
    ),
    (
        "--exclude-seen",
        "evaluate",
        "exclude_seen",
        bool,
        "never recommend items the user already has (--no-exclude-seen for repeat domains)",
    ),
]


RUN_DESCRIPTION = (
    "Turn a behaviour log into evaluated, published item vectors: "
    "ingest -> sequences -> leave-last-out split -> Word2Vec -> evaluation against "
    "popularity and item-kNN -> versioned Parquet tables. With no EVENTS the bundled "
    "MovieLens sample runs. Settings come from the defaults, then --preset, then "
    "--config, then the flags; later ones win."
)


def _subcommand(
    subparsers: argparse._SubParsersAction, name: str, help_text: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help keeps the description's own line breaks."""
    return subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_run_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = _subcommand(
        subparsers,
        "run",
        "ingest, train, evaluate and publish (the whole pipeline)",
        RUN_DESCRIPTION,
    )
    _add_run_options(parser)
    _add_runner_options(parser)
    parser.set_defaults(handler=command_run)

    serve = _subcommand(
        subparsers,
        "serve",
        "serve the pipeline as a Prefect deployment on a cron schedule",
        "Serve a deployment of the pipeline that runs on --cron, with the "
        "run options below as its default parameters; runs execute in this process "
        "until it is stopped. " + RUN_DESCRIPTION,
    )
    serve.add_argument("--cron", required=True, help='schedule, e.g. "0 3 * * *" (03:00 daily)')
    serve.add_argument("--name", default="nightly", help="deployment name (default: nightly)")
    _add_run_options(serve)
    _add_runner_options(serve)
    serve.set_defaults(handler=command_serve)


def _add_runner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-runner",
        choices=("threads", "dask"),
        default="threads",
        help="where the flow's tasks run: threads in this process, or a Dask cluster "
        "(per-file ingest, model and baseline evaluation in parallel) (default: threads)",
    )
    parser.add_argument(
        "--dask-address",
        metavar="tcp://HOST:8786",
        help="scheduler of an existing Dask cluster; without it --task-runner dask "
        "starts a local cluster of 2 single-threaded workers",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "events",
        nargs="*",
        metavar="EVENTS",
        help="event files (CSV, TSV, Parquet, .csv.gz); default: the bundled MovieLens sample",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="TOML file with [ingest] [train] [evaluate] [publish] sections",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="built-in column layout (movielens: userId, movieId, timestamp)",
    )
    for flag, section, name, kind, text in RUN_OPTIONS:
        default = _default(section, name)
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        if kind is bool:
            parser.add_argument(
                flag,
                dest=f"{section}.{name}",
                default=None,
                action=argparse.BooleanOptionalAction,
                help=f"{text} (default: {'on' if default else 'off'})",
            )
        else:
            parser.add_argument(
                flag,
                dest=f"{section}.{name}",
                type=kind,
                metavar=name.upper(),
                help=f"{text} (default: {shown})",
            )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "--quiet", action="store_true", help="only warnings, errors and the final summary"
    )
    loudness.add_argument(
        "--verbose", action="store_true", help="also debug lines and gensim's own progress"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``item2vec`` command."""
    parser = argparse.ArgumentParser(
        prog="item2vec",
        description="Item embeddings from user-behaviour logs, evaluated against baselines.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run_parser(subparsers)
    from item2vec.sweep_cli import add_sweep_parser  # it imports this module's helpers

    add_sweep_parser(subparsers)
    _add_reader_parsers(subparsers)
    return parser


def _add_published_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        default=DEFAULTS.publish.output,
        help="output root of the runs (default: %(default)s)",
    )
    parser.add_argument(
        "--model-name", default=None, help="model family; default: the only one under --output"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _add_reader_parsers(subparsers: argparse._SubParsersAction) -> None:
    similar = subparsers.add_parser(
        "similar",
        help="nearest neighbours of an item, from the published tables",
        description="Show an item's nearest neighbours (cosine of input vectors) from a "
        "published version, with titles when the run had an items file.",
    )
    similar.add_argument("item", metavar="ITEM", help="item id, exactly as in the log")
    similar.add_argument("-k", type=int, default=10, help="neighbours to show (default: 10)")
    similar.add_argument(
        "--version", default="latest", help="version id, or 'latest' (default: latest)"
    )
    _add_published_options(similar)
    similar.set_defaults(handler=command_similar)

    recommend = subparsers.add_parser(
        "recommend",
        help="a user's recommendations, from the published tables",
        description="Show a user's top recommendations from user_recommendations.parquet.",
    )
    recommend.add_argument("user", metavar="USER", help="user id, exactly as in the log")
    recommend.add_argument("-n", type=int, default=10, help="items to show (default: 10)")
    recommend.add_argument(
        "--version", default="latest", help="version id, or 'latest' (default: latest)"
    )
    _add_published_options(recommend)
    recommend.set_defaults(handler=command_recommend)

    synth = subparsers.add_parser(
        "synth",
        help="write a synthetic behaviour log with planted item clusters",
        description="Write a deterministic synthetic log (user_id, item_id, timestamp, "
        "event_type): Zipf item popularity, planted clusters browsed in sessions, and a "
        "ground-truth <stem>.clusters.csv beside it. Streams in chunks, so 20M events fit "
        "in well under 1 GB.",
    )
    synth.add_argument("--events", type=int, required=True, help="number of events (rows)")
    synth.add_argument("--users", type=int, required=True, help="number of users")
    synth.add_argument("--items", type=int, required=True, help="catalogue size")
    synth.add_argument("--clusters", type=int, default=20, help="planted clusters (default: 20)")
    synth.add_argument(
        "--out", required=True, help="output file: .parquet, or CSV (.csv, .csv.gz) otherwise"
    )
    synth.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    synth.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    synth.set_defaults(handler=command_synth)

    report = subparsers.add_parser(
        "report",
        help="regenerate a version's report.md and plots from its tables",
        description="Write report.md and its PNGs (HR@k curve, embedding map, training loss) "
        "for a published version, from its tables and manifest; nothing is retrained.",
    )
    report.add_argument(
        "version_dir",
        metavar="VERSION_DIR",
        help="a version directory, e.g. output/movielens/20261124T101500Z-3f2a9c1",
    )
    report.add_argument(
        "--out", default=None, help="write the report here instead of into VERSION_DIR"
    )
    report.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    report.set_defaults(handler=command_report)

    versions = subparsers.add_parser(
        "versions",
        help="list published versions with their gate result",
        description="List a model's versions: date, gate result, primary metric, LATEST.",
    )
    _add_published_options(versions)
    versions.set_defaults(handler=command_versions)


def _model_name(args: argparse.Namespace) -> str:
    """--model-name, or the only model under --output."""
    from item2vec.errors import InputError

    if args.model_name:
        return args.model_name
    root = Path(args.output)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError(
            f"no published model under {root}; run `item2vec run` first or pass --output"
        )
    raise InputError(f"several models under {root}: {', '.join(names)}; pass --model-name")


def _print_frame(frame: Any) -> None:
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def command_similar(args: argparse.Namespace) -> int:
    """``item2vec similar``: an item's neighbours from the published table."""
    from item2vec.lookup import similar, titles
    from item2vec.reader import load

    model = load(args.output, _model_name(args), args.version)
    names = titles(model)
    label = (
        f"{names[args.item]} [{args.item}]"
        if names is not None and args.item in names
        else args.item
    )
    frame = similar(model, args.item, args.k)
    print(f"Nearest neighbours of {label} in {model.model_name}/{model.version}:")
    _print_frame(frame)
    return EXIT_OK


def command_recommend(args: argparse.Namespace) -> int:
    """``item2vec recommend``: a user's recommendations from the published table."""
    from item2vec.lookup import recommendations
    from item2vec.reader import load

    model = load(args.output, _model_name(args), args.version)
    frame = recommendations(model, args.user, args.n)
    print(f"Recommendations for user {args.user} from {model.model_name}/{model.version}:")
    _print_frame(frame)
    return EXIT_OK


def command_synth(args: argparse.Namespace) -> int:
    """``item2vec synth``: write a synthetic log and its ground truth."""
    from item2vec.errors import ConfigError
    from item2vec.synth import write_synthetic_log

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = write_synthetic_log(
            args.out, args.events, args.users, args.items, args.clusters, args.seed
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(json.dumps(summary, indent=2, default=str))
    return EXIT_OK


def command_report(args: argparse.Namespace) -> int:
    """``item2vec report``: regenerate the report of a published version."""
    from item2vec.report import write_report

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    path = write_report(Path(args.version_dir), out)
    print(f"Report written: {path}")
    return EXIT_OK


def command_versions(args: argparse.Namespace) -> int:
    """``item2vec versions``: every version with its gate result and primary metric."""
    import pandas as pd

    from item2vec.reader import list_versions

    rows = list_versions(args.output, _model_name(args))
    frame = pd.DataFrame(rows)
    if frame.empty:
        print("no versions yet")
        return EXIT_OK
    frame["latest"] = frame["is_latest"].map({True: "<- LATEST", False: ""})
    frame["gate"] = frame["gate_passed"].map({True: "passed", False: "refused"}).fillna("?")
    columns = ["version", "created_at", "gate", "metric", "metric_value", "latest"]
    _print_frame(frame[columns])
    return EXIT_OK


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Layer defaults, preset or bundled sample, config file and flags into one config."""
    file_layer = read_toml(args.config) if args.config else {}
    flag_layer: dict[str, dict[str, Any]] = {}
    for _, section, name, _, _ in RUN_OPTIONS:
        value = getattr(args, f"{section}.{name}")
        if value is not None:
            flag_layer.setdefault(section, {})[name] = value
    if args.events:
        flag_layer.setdefault("ingest", {})["paths"] = list(args.events)
    layers = []
    if args.preset:
        layers.append(preset(args.preset))
    if not args.events and not file_layer.get("ingest", {}).get("paths"):
        layers.append(bundled_sample())
    source = f"config file {args.config} or flags" if args.config else "flags"
    return build_config(*layers, file_layer, flag_layer, source=source)


def validate_inputs(config: PipelineConfig) -> None:
    """Check paths and columns before a flow run starts (raises :class:`InputError`)."""
    from item2vec.ingest import check_columns, input_files, required_columns

    ingest = config.ingest
    for path in input_files(ingest, warn_skipped=False):
        check_columns(path, required_columns(ingest), ingest)
    if ingest.items_path:
        items = Path(ingest.items_path)
        if not items.is_file():
            from item2vec.errors import InputError

            raise InputError(f"items file {items} does not exist; check --items")
        check_columns(
            items, {"item_id_col": ingest.item_id_col, "item_title_col": ingest.item_title_col}
        )


def print_summary(result: dict[str, Any], config: PipelineConfig, seconds: float) -> None:
    """Metrics table, version path and example neighbours by title."""
    import pandas as pd
    import pyarrow.parquet as pq

    from item2vec.metric_table import metrics_text
    from item2vec.summary import (
        example_neighbors,
        items_phrase,
        published_titles,
        stages_phrase,
        users_phrase,
    )

    version_dir = Path(result["version_dir"])
    metrics = result["metrics"]
    print()
    print(
        f"Evaluation: {users_phrase(metrics)}, {metrics['split']} split, "
        f"scoring {metrics['scoring']}, query = last {items_phrase(metrics['query_items'])}"
    )
    print(metrics_text(metrics))
    print()
    print(
        f"Gate: {'passed' if result['gate']['passed'] else 'REFUSED'} ({result['gate']['reason']})"
    )
    print(f"Published: {version_dir}")
    if result.get("input_cached"):
        print("Input unchanged since an earlier run: ingest and sequences came from the cache.")
    # The version already holds the items table: no need to parse the items file again.
    titles = published_titles(version_dir)
    vectors = pq.read_table(version_dir / "item_vectors.parquet", columns=["item_id", "count"])
    counts = pd.Series(
        vectors.column("count").to_numpy(), index=vectors.column("item_id").to_pylist()
    )
    neighbors = pq.read_table(version_dir / "item_neighbors.parquet").to_pandas()
    print()
    print("Nearest neighbours of the most frequent items:")
    print(example_neighbors(neighbors, counts, titles))
    print()
    if result.get("stage_seconds"):
        print(
            f"Stages (wall time; the baselines run beside training): "
            f"{stages_phrase(result['stage_seconds'])}"
        )
    print(f"Done in {seconds:.1f}s.")


class ExpectedErrorFilter(logging.Filter):
    """Drops the traceback from console records of errors item2vec raised on purpose.

    Prefect logs every task failure with its traceback. For bad input the message
    already says what to fix, and the CLI prints it once; ``--debug`` keeps them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], Item2VecError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_expected_tracebacks() -> None:
    """Install :class:`ExpectedErrorFilter` on the console handlers of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ExpectedErrorFilter) for f in handler.filters):
            handler.addFilter(ExpectedErrorFilter())


def set_verbosity(quiet: bool, verbose: bool) -> None:
    """Log levels for --quiet / --verbose; must run before Prefect is imported."""
    if quiet:
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        logging.getLogger("item2vec").setLevel(logging.WARNING)
    elif verbose:
        logging.getLogger("item2vec").setLevel(logging.DEBUG)
        logging.getLogger("gensim").setLevel(logging.INFO)


def command_run(args: argparse.Namespace) -> int:
    """``item2vec run``: validate, run the flow, print the summary."""
    config = config_from_args(args)
    validate_inputs(config)
    started = time.perf_counter()
    set_verbosity(args.quiet, args.verbose)
    from flows.pipeline import run_pipeline
    from flows.runners import build_task_runner

    runner = build_task_runner(args.task_runner, args.dask_address)
    if not args.debug:
        quiet_expected_tracebacks()

    try:
        result = run_pipeline(config, task_runner=runner)
    except QualityGateError as exc:
        # The refused version is published: show what was measured, then the refusal.
        if exc.result is not None:
            print_summary(exc.result, config, time.perf_counter() - started)
        raise
    print_summary(result, config, time.perf_counter() - started)
    return EXIT_OK


def command_serve(args: argparse.Namespace) -> int:
    """``item2vec serve``: validate, then serve the deployment until interrupted."""
    config = config_from_args(args)
    validate_inputs(config)
    set_verbosity(args.quiet, args.verbose)
    from flows.deployment import build_deployment, serve
    from flows.runners import build_task_runner

    runner = build_task_runner(args.task_runner, args.dask_address)
    build_deployment(config, args.cron, args.name, runner)  # refuses a bad cron before serving
    if not args.debug:
        quiet_expected_tracebacks()
    serve(config, args.cron, args.name, runner)
    return EXIT_OK


#: Environment defaults the command sets for its own process; a value the user set wins.
#: Arrow's allocator (mimalloc) commits its 1 GiB arenas eagerly by default. On
#: machines that hand freed memory back to the host (virtual machines) that memory
#: then arrives as transparent huge pages, whose first touch costs more: reading the
#: 20M-event, 1M-user Parquet log in a fresh process took 1.60-2.76 s (median 1.76 s,
#: 4 runs) with commit on demand against 1.72-2.20 s (median 2.04 s) without. It must
#: be set before pyarrow allocates anything: here, before any command imports it.
PROCESS_DEFAULTS = {"MIMALLOC_ARENA_EAGER_COMMIT": "0"}


def apply_process_defaults() -> None:
    """Set :data:`PROCESS_DEFAULTS` in this process's environment, unless already set."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``item2vec`` console script; returns the exit code."""
    apply_process_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except QualityGateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_GATE
    except Item2VecError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
