"""``item2vec.fit``: events in, an evaluated model out, in three lines of Python.

    >>> import item2vec
    >>> model = item2vec.fit(df, user_col="user", item_col="sku", time_col="ts")
    >>> model.most_similar("sku-1", topn=5)

The events go through the same validation, drops and counts as files do; the
stages are the library functions ``item2vec run`` is made of: sequences, the
leave-last-out (or temporal) split, gensim training, and full-ranking metrics
beside the popularity and item-kNN baselines on the same split.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import pyarrow as pa

from item2vec import stages
from item2vec.config import PipelineConfig, build_config
from item2vec.errors import ConfigError
from item2vec.evaluate import evaluate
from item2vec.frames import read_table_events
from item2vec.ingest import Events, read_events
from item2vec.model import Evaluation, Item2VecModel
from item2vec.saving import FitRun
from item2vec.sequences import build_sequences

__all__ = ["EventSource", "fit"]

#: What ``fit`` accepts as events.
EventSource = pd.DataFrame | pa.Table | str | os.PathLike | list


def fit(
    events: EventSource,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    evaluate_model: bool = True,
    config: dict[str, Any] | PipelineConfig | None = None,
    **train: Any,
) -> Item2VecModel:
    """Train item vectors on a behaviour log and evaluate them beside the baselines.

    Parameters
    ----------
    events
        One row per event: a pandas DataFrame, an Arrow table, or a path (or
        list of paths, folders, globs) to CSV, TSV or Parquet files.
    user_col, item_col, time_col
        Columns of the user id, item id and time (epoch seconds or
        milliseconds, ISO-8601 text, or datetimes).
    evaluate_model
        Hold out each user's last event, train on the rest and measure HR@k,
        NDCG@k, MRR@k and coverage against popularity and item-kNN (the
        default). Off: train on every event, with no metrics.
    config
        Further settings by section, as in a ``--config`` TOML file
        (``{"sequences": {"session_gap": "30m"}, "evaluate": {"query_items": 3}}``),
        or a whole :class:`item2vec.config.PipelineConfig`.
    **train
        gensim Word2Vec keywords, under gensim's names (``epochs=30``,
        ``vector_size=64``, ``window=3``...); see :class:`item2vec.config.TrainConfig`.

    Returns
    -------
    Item2VecModel
        Query it with ``most_similar`` and ``recommend``; ``evaluate()`` gives the
        metrics, ``save(output, model_name)`` publishes it.

    Raises
    ------
    InputError
        On a missing column, null ids or unparseable times above the tolerated
        share (5%), or no usable event left; the message names the column.
    ConfigError
        On an unknown or out-of-range setting.
    """
    settings = _settings(events, user_col, item_col, time_col, config, train)
    read = _read(events, settings)
    sequences = build_sequences(read.table, settings.sequences)
    run = None
    if evaluate_model:
        split = stages.split(sequences, settings.evaluate)
        vectors = stages.train(split, settings.train)
        items = stages.items(settings.ingest)
        record = evaluate(
            vectors,
            split.training_sequences(),
            split.test,
            settings.evaluate,
            validation=stages.baseline_validation(sequences, settings.evaluate),
            neighbors_scoring=settings.publish.neighbors_scoring,
            categories=stages.categories(items, settings.ingest),
            category_col=settings.ingest.item_category_col,
        )
        evaluation = Evaluation.from_record(record)
        run = FitRun(read, sequences, split, vectors, items)
    else:
        vectors = stages.refit(sequences, settings.train)
        evaluation = None
    return Item2VecModel.of(
        vectors,
        settings,
        evaluation=evaluation,
        histories=sequences.select(["user_id", "items"]),
        counts_by_stage=read.counts,
        _run=run,
    )


def _settings(
    events: EventSource,
    user_col: str,
    item_col: str,
    time_col: str,
    config: dict[str, Any] | PipelineConfig | None,
    train: dict[str, Any],
) -> PipelineConfig:
    if isinstance(config, PipelineConfig):
        layers = [config.model_dump()]
    elif config is None:
        layers = []
    elif isinstance(config, dict):
        layers = [config]
    else:
        raise ConfigError(
            f"config must be a dict of sections or a PipelineConfig; got {type(config).__name__}"
        )
    columns = {"user_col": user_col, "item_col": item_col, "time_col": time_col}
    if _is_paths(events):
        paths = [events] if isinstance(events, str | os.PathLike) else list(events)
        columns["paths"] = [str(path) for path in paths]
    return build_config(*layers, {"ingest": columns, "train": train}, source="fit()")


def _is_paths(events: EventSource) -> bool:
    if isinstance(events, str | os.PathLike):
        return True
    return isinstance(events, list) and all(isinstance(e, str | os.PathLike) for e in events)


def _read(events: EventSource, settings: PipelineConfig) -> Events:
    if _is_paths(events):
        return read_events(settings.ingest)
    return read_table_events(events, settings.ingest)
