"""``item2vec run`` and ``item2vec serve``: check the input, run or serve the flow, summarise."""

from __future__ import annotations

import argparse
import time
from typing import Any

from item2vec.config import PipelineConfig
from item2vec.errors import QualityGateError
from item2vec_flows.cli_common import (
    EXIT_OK,
    quiet_expected_tracebacks,
    set_verbosity,
    subcommand,
)
from item2vec_flows.cli_options import add_run_options, add_runner_options, config_from_args

RUN_DESCRIPTION = (
    "Turn a behaviour log into evaluated, published item vectors: "
    "ingest -> sequences -> leave-last-out split -> Word2Vec -> evaluation against "
    "popularity and item-kNN -> versioned Parquet tables. With no EVENTS the bundled "
    "MovieLens sample runs. Settings come from the defaults, then --preset, then "
    "--config, then the flags; later ones win."
)


def add_run_parsers(subparsers: argparse._SubParsersAction) -> None:
    parser = subcommand(
        subparsers,
        "run",
        "ingest, train, evaluate and publish (the whole pipeline)",
        RUN_DESCRIPTION,
    )
    add_run_options(parser)
    add_runner_options(parser)
    parser.set_defaults(handler=command_run)

    serve = subcommand(
        subparsers,
        "serve",
        "serve the pipeline as a Prefect deployment on a cron schedule",
        "Serve a deployment of the pipeline that runs on --cron, with the "
        "run options below as its default parameters; runs execute in this process "
        "until it is stopped. " + RUN_DESCRIPTION,
    )
    serve.add_argument("--cron", required=True, help='schedule, e.g. "0 3 * * *" (03:00 daily)')
    serve.add_argument(
        "--name",
        default="nightly",
        help="deployment name (default: nightly; prefect.yaml's is nightly-pool, so "
        "that `prefect deploy --all` never replaces this one)",
    )
    serve.add_argument(
        "--concurrency-limit",
        type=int,
        default=1,
        metavar="N",
        help="runs of the deployment at once; 0 for no limit (default: 1, so a slow "
        "run and the next scheduled one never overlap)",
    )
    serve.add_argument(
        "--collision-strategy",
        choices=("ENQUEUE", "CANCEL_NEW"),
        default="ENQUEUE",
        help="a run that finds the limit reached waits for the running one (ENQUEUE) "
        "or is cancelled (CANCEL_NEW) (default: ENQUEUE)",
    )
    add_run_options(serve)
    add_runner_options(serve)
    serve.set_defaults(handler=command_serve)


def validate_inputs(config: PipelineConfig) -> None:
    """Check paths and columns before a flow run starts (raises :class:`InputError`)."""
    from item2vec.discovery import input_files
    from item2vec.gate import check_primary_metric
    from item2vec.validation import check_columns, required_columns

    check_primary_metric(config)
    ingest = config.ingest
    for path in input_files(ingest, warn_skipped=False):
        check_columns(path, required_columns(ingest), ingest)
    if ingest.items_path:
        from item2vec.storage import as_path

        items = as_path(ingest.items_path)
        if not items.is_file():
            from item2vec.errors import InputError

            raise InputError(f"items file {items} does not exist; check --items")
        from item2vec.items import item_columns

        check_columns(
            items,
            item_columns(ingest.item_id_col, ingest.item_title_col, ingest.item_category_col),
        )


def print_summary(result: dict[str, Any], config: PipelineConfig, seconds: float) -> None:
    """Metrics table, version path and example neighbours by title."""
    import pandas as pd

    from item2vec.metric_table import metrics_text, neighbors_record
    from item2vec.storage import as_path, read_parquet
    from item2vec.summary import (
        baselines_phrase,
        example_neighbors,
        fallback_phrase,
        items_phrase,
        neighbors_phrase,
        published_titles,
        stages_phrase,
        users_phrase,
    )

    version_dir = as_path(result["version_dir"])
    metrics = result["metrics"]
    print()
    print(
        f"Evaluation: {users_phrase(metrics)}, {metrics['split']} split, "
        f"scoring {metrics['scoring']}, query = last {items_phrase(metrics['query_items'])}"
    )
    print(metrics_text(metrics))
    for phrase in (baselines_phrase(metrics), fallback_phrase(metrics)):
        if phrase:
            print(f"  {phrase}")
    if neighbors_record(metrics):
        print()
        print("Neighbour tables, item to item:")
        print(metrics_text(neighbors_record(metrics)))
        print(f"  {neighbors_phrase(metrics)}")
    print()
    print(
        f"Gate: {'passed' if result['gate']['passed'] else 'REFUSED'} ({result['gate']['reason']})"
    )
    print(f"Published: {version_dir}")
    if result.get("input_cached"):
        print("Input unchanged since an earlier run: ingest and sequences came from the cache.")
    # The version already holds the items table: no need to parse the items file again.
    titles = published_titles(version_dir)
    vectors = read_parquet(version_dir / "item_vectors.parquet", columns=["item_id", "count"])
    counts = pd.Series(
        vectors.column("count").to_numpy(), index=vectors.column("item_id").to_pylist()
    )
    neighbors = read_parquet(version_dir / "item_neighbors.parquet").to_pandas()
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


def command_run(args: argparse.Namespace) -> int:
    """``item2vec run``: validate, run the flow, print the summary."""
    config = config_from_args(args)
    validate_inputs(config)
    started = time.perf_counter()
    set_verbosity(args.quiet, args.verbose)
    from item2vec_flows.partitioned import refuse_without_cluster
    from item2vec_flows.pipeline import run_pipeline
    from item2vec_flows.runners import build_task_runner

    refuse_without_cluster(config, args.task_runner)
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
    from item2vec_flows.deployment import build_deployment, serve
    from item2vec_flows.partitioned import refuse_without_cluster
    from item2vec_flows.runners import runner_environment

    runner_environment(args.task_runner, args.dask_address)  # refused before serving
    refuse_without_cluster(config, args.task_runner)
    deployment = build_deployment(
        config, args.cron, args.name, args.concurrency_limit, args.collision_strategy
    )
    if not args.debug:
        quiet_expected_tracebacks()
    serve(deployment, config, args.task_runner, args.dask_address)
    return EXIT_OK
