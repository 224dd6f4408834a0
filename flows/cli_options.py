"""The run options of ``item2vec run``, ``serve`` and ``sweep``, and their layering into a config.

Settings come from the defaults, then ``--preset`` (or the bundled sample), then
``--config``, then the flags; later ones win.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from item2vec.config import PipelineConfig, build_config, read_toml
from item2vec.presets import PRESETS, bundled_sample, preset

DEFAULTS = PipelineConfig()


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


def add_runner_options(parser: argparse.ArgumentParser) -> None:
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


def add_run_options(parser: argparse.ArgumentParser) -> None:
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
