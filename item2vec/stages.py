"""The pipeline's stages, each a plain function of its inputs and its config section.

``item2vec run`` (the Prefect flow, one task per stage) and the Python API
(:func:`item2vec.fit`, ``Item2VecModel.save``) call these same functions, so
there is one path from events to published tables, whichever drives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from item2vec.blend import LAST_BASKET
from item2vec.config import (
    EvaluateConfig,
    IngestConfig,
    PipelineConfig,
    PublishConfig,
    TrainConfig,
)
from item2vec.evaluate import evaluate_baselines, evaluate_model
from item2vec.items import items_table, read_items
from item2vec.metrics_record import combine_metrics
from item2vec.neighbor_eval import category_table
from item2vec.neighbors import nearest_neighbors
from item2vec.publish import ITEMS_FILE, RECOMMENDATIONS_FILE, SEQUENCES_FILE, publish_version
from item2vec.recommend import recommend_for_users
from item2vec.report import write_report
from item2vec.split import Split, split_sequences, validation_split
from item2vec.vectors import ItemVectors


def split(sequences: pa.Table, config: EvaluateConfig) -> Split:
    """Hold out each user's target (leave-last-out or temporal), as ``config.split`` says."""
    return split_sequences(sequences, config.split, config.test_days)


def train(split: Split, config: TrainConfig) -> ItemVectors:
    """Word2Vec on the training side of ``split`` (the held-out targets never seen)."""
    from item2vec.train import train_word2vec  # gensim: only where training happens

    return train_word2vec(split.train, config, baskets=split.train_baskets)


def refit(sequences: pa.Table, config: TrainConfig) -> ItemVectors:
    """Word2Vec on every event, targets included (``publish.refit``)."""
    from item2vec.sequences import sequence_lists
    from item2vec.split import basket_starts
    from item2vec.train import train_word2vec

    return train_word2vec(sequence_lists(sequences), config, baskets=basket_starts(sequences))


def model_metrics(
    vectors: ItemVectors,
    split: Split,
    config: EvaluateConfig,
    neighbors_scoring: str | None = None,
    categories: pa.Table | None = None,
) -> dict[str, Any]:
    """The model's metrics on the test target of ``split``; with ``neighbors_scoring``,
    its neighbour table's too (item to item, category consistency from ``categories``)."""
    return evaluate_model(
        vectors, split.training_sequences(), split.test, config, neighbors_scoring, categories
    )


def baseline_metrics(
    split: Split,
    config: EvaluateConfig,
    sequences: pa.Table | None = None,
    categories: pa.Table | None = None,
) -> dict[str, dict]:
    """Popularity and item-kNN on the same split; needs no model, so it runs beside training.

    With ``sequences``, item-kNN's query length is chosen on their validation
    target (:func:`item2vec.split.validation_split`), never the test target.
    """
    validation = baseline_validation(sequences, config) if sequences is not None else None
    return evaluate_baselines(
        split.training_sequences(), split.test, config, validation, categories
    )


def baseline_validation(sequences: pa.Table, config: EvaluateConfig) -> Split:
    """The validation split the baselines' own settings are chosen on (never the test target)."""
    # Flat only: item-kNN trains nothing, and 20M items as Python lists cost seconds.
    return validation_split(sequences, config.split, config.test_days, lists=False)


def metrics(
    model: dict[str, Any],
    baselines: dict[str, dict],
    split: Split,
    config: EvaluateConfig,
    category_col: str | None = None,
) -> dict[str, Any]:
    """The model beside both baselines, as the manifest, the gate and the report hold them."""
    return combine_metrics(model, baselines, split.test, config, category_col)


def neighbors(vectors: ItemVectors, config: PublishConfig, rows: slice | None = None) -> pa.Table:
    """``item_neighbors.parquet``: each item's ``neighbors_k`` nearest items (of the
    vocabulary ``rows`` only, a block of items, when given)."""
    return nearest_neighbors(vectors, config.neighbors_k, config.neighbors_scoring, rows)


def recommendations(
    vectors: ItemVectors,
    sequences: pa.Table,
    config: PipelineConfig,
    fallback_knn: Mapping[str, Any] | None = None,
    rows: slice | None = None,
) -> pa.Table:
    """``user_recommendations.parquet``: every user's top items from their whole history.

    With ``fallback_knn`` (item-kNN's validated settings, ``metrics
    ["baseline_settings"]["item_knn"]``), users the model cannot rank are served
    by item-kNN with those settings, then popularity. With ``rows``, only those
    rows of ``sequences`` get recommendations (a shard of the users).
    """
    return recommend_for_users(
        vectors,
        sequences,
        config.publish.recommendations_n,
        config.evaluate.scoring,
        config.evaluate.query_items,
        config.evaluate.exclude_seen,
        fallback_knn,
        rows,
        half_life=config.evaluate.query_half_life,
        last_basket=LAST_BASKET[config.evaluate.query],
        knn_blend=config.evaluate.knn_blend,
    )


def categories(items: pa.Table | None, config: IngestConfig) -> pa.Table | None:
    """Each item's category (``item_category_col``'s first value), or None without one."""
    return category_table(items, config.item_category_col)


def items(config: IngestConfig) -> pa.Table | None:
    """The items table (ids and titles) from ``items_path``, or None without one."""
    if not config.items_path:
        return None
    items = read_items(
        config.items_path, config.item_id_col, config.item_title_col, config.item_category_col
    )
    return items_table(items)


def extra_tables(
    user_recommendations: pa.Table | None,
    sequences: pa.Table,
    item_titles: pa.Table | None,
    config: PipelineConfig,
) -> dict[str, pa.Table]:
    """The optional tables a version holds beside vectors and neighbours, by file name."""
    tables = {}
    if user_recommendations is not None:
        tables[RECOMMENDATIONS_FILE] = user_recommendations
    if config.sequences.write_sequences:
        tables[SEQUENCES_FILE] = sequences
    if item_titles is not None:
        tables[ITEMS_FILE] = item_titles
    return tables


def publish(
    vectors: ItemVectors,
    neighbors: pa.Table,
    tables: dict[str, pa.Table],
    manifest: dict[str, Any],
    config: PublishConfig,
) -> Path:
    """Write a new version atomically; LATEST moves only if the manifest's gate passed."""
    return publish_version(
        config.output,
        config.model_name,
        vectors,
        neighbors,
        manifest,
        move_latest=manifest["gate"]["passed"],
        extra_tables=tables,
        keep=config.keep,
        finalize=write_report if config.report else None,
    )
