"""The commands that read published versions (``similar``, ``recommend``, ``versions``,
``report``), and ``synth``, which writes a synthetic log to try them on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from item2vec_flows.cli_common import EXIT_OK, print_frame
from item2vec_flows.cli_options import DEFAULTS


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


def add_published_parsers(subparsers: argparse._SubParsersAction) -> None:
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
    synth.add_argument(
        "--shape",
        choices=("clusters", "baskets"),
        default="clusters",
        help="clusters: browsing sessions over planted clusters (the default); baskets: "
        "orders of several items at one timestamp with planted complements, substitutes "
        "and repeat purchases, and a ground-truth <stem>.truth.csv (docs/baskets.md)",
    )
    synth.add_argument(
        "--events", type=int, help="number of events (rows); required with --shape clusters"
    )
    synth.add_argument("--users", type=int, required=True, help="number of users")
    synth.add_argument(
        "--items",
        type=int,
        help="catalogue size; required with --shape clusters, and with baskets rounded down "
        "to whole groups of 9 (default 540)",
    )
    synth.add_argument("--clusters", type=int, default=20, help="planted clusters (default: 20)")
    synth.add_argument(
        "--out", required=True, help="output file: .parquet, or CSV (.csv, .csv.gz) otherwise"
    )
    synth.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    synth.add_argument(
        "--days",
        type=int,
        default=None,
        help="write a growing folder instead: one events-YYYY-MM-DD.csv a day for DAYS days, "
        "new items appearing daily, and <out>-items.csv with each item's category "
        "(docs/incremental.md)",
    )
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
        help="a version directory, e.g. output/movielens/20261124T101500Z-3f2a9c1, "
        "or its URL in an object store (s3://bucket/out/movielens/<version>; needs --out)",
    )
    report.add_argument(
        "--out",
        default=None,
        help="write the report here instead of into VERSION_DIR (required for a version "
        "in an object store, which is never rewritten)",
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
    from item2vec.storage import as_path

    root = as_path(args.output)
    # Hidden folders are not models: the default cache lives in OUTPUT/.cache.
    names = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if root.is_dir()
        else []
    )
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError(
            f"no published model under {root}; run `item2vec run` first or pass --output"
        )
    raise InputError(f"several models under {root}: {', '.join(names)}; pass --model-name")


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
    print_frame(frame)
    return EXIT_OK


def command_recommend(args: argparse.Namespace) -> int:
    """``item2vec recommend``: a user's recommendations from the published table."""
    from item2vec.lookup import recommendations
    from item2vec.reader import load

    model = load(args.output, _model_name(args), args.version)
    frame = recommendations(model, args.user, args.n)
    print(f"Recommendations for user {args.user} from {model.model_name}/{model.version}:")
    print_frame(frame)
    return EXIT_OK


def command_synth(args: argparse.Namespace) -> int:
    """``item2vec synth``: write a synthetic log and its ground truth."""
    from item2vec.errors import ConfigError
    from item2vec.synth import write_synthetic_log

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.shape == "baskets":
        return _synth_baskets(args)
    if args.events is None or args.items is None:
        raise ConfigError("--shape clusters needs --events and --items, e.g. --events 100000")
    try:
        if args.days is not None:  # a daily folder (item2vec.synth_daily)
            from item2vec.synth_daily import write_daily_folder

            summary = write_daily_folder(
                args.out, args.days, args.events, args.users, args.items, args.clusters, args.seed
            )
        else:
            summary = write_synthetic_log(
                args.out, args.events, args.users, args.items, args.clusters, args.seed
            )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(json.dumps(summary, indent=2, default=str))
    return EXIT_OK


def _synth_baskets(args: argparse.Namespace) -> int:
    from item2vec.errors import ConfigError
    from item2vec.synth_baskets import ITEMS_PER_GROUP, write_basket_log

    if args.events is not None:
        raise ConfigError("--events is for --shape clusters; baskets size by --users")
    groups = {} if args.items is None else {"groups": args.items // ITEMS_PER_GROUP}
    try:
        summary = write_basket_log(args.out, args.users, args.seed, **groups)
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
    path = write_report(args.version_dir, out)
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
    print_frame(frame[columns])
    return EXIT_OK
