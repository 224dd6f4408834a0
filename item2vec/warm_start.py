"""Warm start: a nightly run that continues LATEST's model on what is new since it.

A warm run loads LATEST's input vectors, output vectors and counts, adds the
items that are new (gensim ``build_vocab(update=True)``) and trains a few
epochs on the new data only. It never sees a test target: the temporal split
holds out every event after its cut-off, and a previous version is used only
when everything it trained on lies at or before that cut-off
(``trained_until`` in its manifest). Anything else falls back to a full
training, and the manifest's ``warm_start`` record says why.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.config import PipelineConfig, TrainConfig
from item2vec.config_train import NIGHTLY_FIELDS
from item2vec.errors import ConfigError, InputError, UnsafePathError
from item2vec.nightly_knn import kept_knn_settings
from item2vec.sequences import as_lists, flat_items
from item2vec.split import Split, basket_starts, temporal_cutoff
from item2vec.storage import as_path
from item2vec.vectors import ItemVectors

__all__ = [
    "MEANING_FIELDS",
    "RUN_ONLY_FIELDS",
    "WarmPlan",
    "plan_warm_start",
    "train_nightly",
    "train_warm",
    "training_counts",
    "warm_corpus",
]

log = logging.getLogger(__name__)

#: Train fields that do not shape the model: a previous version trained with
#: other values of these is still a valid start.
RUN_ONLY_FIELDS = frozenset(
    {
        "seed",
        "workers",
        "deterministic",
        "corpus_file",
        "compute_loss",
        "batch_words",
        "epochs",
        "resource",
        *NIGHTLY_FIELDS,
    }
)


#: Ingest fields that change what an event means; the others (paths, windows,
#: caching) change from night to night without making a previous version invalid.
MEANING_FIELDS = (
    "user_col",
    "item_col",
    "event_col",
    "keep_events",
    "weight_col",
    "min_weight",
    "drop_duplicates",
)


@dataclass
class WarmPlan:
    """Whether a run starts warm, from what, and why (or why not).

    Attributes
    ----------
    warm
        True to continue ``base``; False to train from scratch.
    reason
        One sentence for the log and the manifest.
    previous
        The version the run starts from (None for a full training).
    since, cutoff
        Epoch nanoseconds: everything ``base`` trained on is at or before
        ``since``; this run trains on events up to ``cutoff``.
    chain
        Warm runs since the last full training, this one included (0 for a full one).
    knn_settings
        Item-kNN's settings LATEST chose on its validation target, kept on a
        warm night (:func:`item2vec.nightly_knn.kept_knn_settings`); None when chosen again.
    latest
        LATEST's name, what it trained until (epoch ns, None when unrecorded)
        and its vectors, whenever they could be read, warm or not: the gate
        scores them on tonight's holdout (:func:`item2vec.latest_holdout.latest_on_holdout`).
    """

    warm: bool
    reason: str
    cutoff: int
    previous: str | None = None
    since: int | None = None
    chain: int = 0
    knn_settings: dict[str, Any] | None = None
    latest: tuple[str, int | None, ItemVectors] | None = None

    @property
    def base(self) -> ItemVectors | None:
        """The vectors a warm run continues: LATEST's; None for a full training."""
        return self.latest[2] if self.warm and self.latest is not None else None


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_times(sequences: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values, offsets = flat_items(sequences)
    times, _ = flat_items(sequences, "times")
    return values, offsets, times.astype("datetime64[ns]").astype(np.int64)


def _config_changes(previous: dict[str, Any], config: PipelineConfig) -> list[str]:
    """``section.field old -> new`` for every model-shaping setting that changed."""
    changes = []
    current = config.model_dump(mode="json")
    for section in ("train", "sequences", "ingest"):
        old, new = previous.get(section) or {}, current[section]
        for name, value in new.items():
            if (section == "train" and name in RUN_ONLY_FIELDS) or (
                section == "ingest" and name not in MEANING_FIELDS
            ):
                continue
            if old.get(name) != value:
                changes.append(f"{section}.{name} {old.get(name)!r} -> {value!r}")
    return changes


def _full(
    cutoff: int, reason: str, latest: tuple[str, int | None, ItemVectors] | None = None
) -> WarmPlan:
    log.info("warm start: training from scratch, %s", reason)
    return WarmPlan(False, reason, cutoff, latest=latest)


def plan_warm_start(config: PipelineConfig, sequences: pa.Table) -> WarmPlan:
    """Decide whether this run may continue LATEST's model, and load it if so.

    Parameters
    ----------
    config
        The run's settings; the model is ``publish.output``/``publish.model_name``.
    sequences
        The run's sequences with their ``times``: they give the split's cut-off.

    Returns
    -------
    WarmPlan
        Warm from LATEST, or full with the reason: warm start off, no LATEST, a
        newest version the gate refused, a damaged or unreadable version, one that
        does not record what it trained on, a changed config or dimension, a
        periodic full retrain, or a previous version trained past this run's cut-off.
    """
    from item2vec.publish import VECTORS_FILE, list_version_dirs, read_latest, read_manifest
    from item2vec.publish import sha256_file as file_sha256
    from item2vec.reader import load

    train = config.train
    cutoff = temporal_cutoff(_event_times(sequences)[2], config.evaluate.test_days)
    if not train.warm_start:
        return WarmPlan(False, "warm start is off", cutoff)
    model_dir = as_path(config.publish.output) / config.publish.model_name
    try:
        latest = read_latest(model_dir)
    except (InputError, UnsafePathError) as exc:
        return _full(cutoff, f"LATEST is unreadable ({exc})")
    if latest is None:
        return _full(cutoff, "no previous version (no LATEST)")
    try:
        published = load(config.publish.output, config.publish.model_name, latest)
        recorded = (published.manifest.get("files") or {}).get(VECTORS_FILE, {}).get("sha256")
        if recorded != file_sha256(published.path / VECTORS_FILE):
            raise InputError(f"{VECTORS_FILE} does not match the SHA-256 its manifest records")
    except (InputError, OSError) as exc:
        return _full(cutoff, f"previous version {latest} is damaged: {exc}")
    record = published.manifest.get("warm_start") or {}
    until = record.get("trained_until_ns")
    base = ItemVectors(
        item_ids=published.item_ids,
        vectors=np.array(published.vectors, dtype=np.float32),
        context_vectors=None
        if published.context_vectors is None
        else np.array(published.context_vectors, dtype=np.float32),
        counts=published.counts,
    )
    # Read once: scored on tonight's holdout for the gate even when the night is full.
    previous = (latest, until if isinstance(until, int) else None, base)
    versions = list_version_dirs(model_dir)
    if versions and versions[-1].name != latest:
        try:
            gate = read_manifest(versions[-1]).get("gate") or {}
        except InputError:
            gate = {"passed": False, "reason": "its manifest is unreadable"}
        if not gate.get("passed", False):
            return _full(
                cutoff,
                f"the newest version {versions[-1].name} was refused by the gate "
                f"({gate.get('reason', 'no reason recorded')})",
                previous,
            )
    if not isinstance(until, int):
        return _full(
            cutoff, f"previous version {latest} does not record what it trained on", previous
        )
    changes = _config_changes(published.manifest.get("config") or {}, config)
    if changes:
        return _full(cutoff, f"config changed since {latest}: {'; '.join(changes)}", previous)
    if published.vectors.shape[1] != train.vector_size or (
        train.negative and published.context_vectors is None
    ):
        return _full(
            cutoff,
            f"previous version {latest} has vectors of dimension {published.vectors.shape[1]} "
            f"{'without' if published.context_vectors is None else 'with'} output vectors; "
            f"this run needs dimension {train.vector_size}",
            previous,
        )
    if train.hs:
        return _full(
            cutoff, "hs = 1: a published version holds no hierarchical-softmax weights", previous
        )
    chain = int(record.get("chain", 0)) + 1
    if chain >= train.full_retrain_every:
        return _full(
            cutoff,
            f"periodic full retrain: {chain - 1} warm runs since the last full training "
            f"(train.full_retrain_every = {train.full_retrain_every})",
            previous,
        )
    since = until
    if since > cutoff:
        return _full(
            cutoff,
            f"previous version {latest} trained on events up to {_iso(since)}, after this "
            f"run's test cut-off {_iso(cutoff)}: starting from it would evaluate on events it saw",
            previous,
        )
    knn = kept_knn_settings(published.manifest, config, latest)
    log.info("warm start from %s: training on events after %s", latest, _iso(since))
    return WarmPlan(True, f"warm start from {latest}", cutoff, latest, since, chain, knn, previous)


def warm_corpus(
    sequences: pa.Table, since: int, cutoff: int, mode: str, window: int
) -> list[list[str]]:
    """The sequences a warm run trains on: what is new after ``since``, up to ``cutoff``.

    Parameters
    ----------
    sequences
        The run's sequences with ``times``.
    since, cutoff
        Epoch nanoseconds: events after ``since`` and at or before ``cutoff`` are new.
    mode
        ``users``: the whole history up to ``cutoff`` of every sequence with a new
        event. ``new``: only the new events, each sequence's ``window`` earlier items
        before them as context.
    window
        Items of context kept before the first new event in ``new`` mode.

    Returns
    -------
    list of list of str
        Sequences in time order, none empty; no event after ``cutoff``.
    """
    return _warm_selection(sequences, since, cutoff, mode, window)[0]


def _warm_selection(
    sequences: pa.Table, since: int, cutoff: int, mode: str, window: int
) -> tuple[list[list[str]], np.ndarray]:
    """:func:`warm_corpus` and, per item of it flattened, whether it opens a basket."""
    if mode not in ("users", "new"):
        raise ValueError(f"unknown warm_data {mode!r}; use 'users' or 'new'")
    values, offsets, times = _event_times(sequences)
    lengths = np.diff(offsets)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    trained = times <= cutoff
    old = np.bincount(owner[times <= since], minlength=len(lengths))
    active = np.bincount(owner[trained & (times > since)], minlength=len(lengths)) > 0
    keep = trained & active[owner]
    if mode == "new":
        first_new = offsets[:-1] + old
        keep &= np.arange(len(values)) >= (first_new - window)[owner]
    kept = np.bincount(owner[keep], minlength=len(lengths))
    new_offsets = np.concatenate(([0], np.cumsum(kept))).astype(np.int64)
    # A kept sequence may start inside a basket (``new`` mode): its first item opens one.
    opens = basket_starts(sequences)[keep]
    opens[new_offsets[:-1][kept > 0]] = True
    return as_lists(values[keep], new_offsets), opens


def training_counts(split: Split) -> pd.Series:
    """Occurrences of each item on the split's whole training side, by item id."""
    if split.train_flat is not None:
        counts = pc.value_counts(split.train_flat.items)
        return pd.Series(
            counts.field("counts").to_numpy(),
            index=counts.field("values").to_numpy(zero_copy_only=False),
        )
    return pd.Series([i for s in split.train for i in s], dtype=object).value_counts()


def train_warm(
    base: ItemVectors,
    corpus: list[list[str]],
    counts: pd.Series,
    config: TrainConfig,
    baskets: np.ndarray | None = None,
) -> ItemVectors:
    """Continue ``base`` on ``corpus`` for ``config.warm_epochs`` epochs.

    Parameters
    ----------
    base
        The previous version's input and output vectors and counts.
    corpus
        The new sequences (:func:`warm_corpus`).
    counts
        Each item's occurrences on the run's whole training side: they set the
        negative-sampling distribution, as in a full training, and which items
        keep a vector (``min_count``).
    config
        The gensim keywords; ``warm_epochs`` replaces ``epochs`` and
        ``warm_alpha`` (when set) ``alpha``. An ``auto`` context is decided
        on ``baskets`` as a full training decides it on its training side.
    baskets
        Per item of ``corpus`` flattened, whether it opens a basket; needed by
        ``basket`` context only.

    Returns
    -------
    ItemVectors
        Old items continued, new items of ``corpus`` added when they occur at
        least ``min_count`` times on the training side; items under ``min_count``
        there are left out, as a full training leaves them out.

    Raises
    ------
    ConfigError
        When ``corpus`` is empty: there is nothing new to train on.
    """
    from gensim.models import Word2Vec

    from item2vec.train import (
        EpochLogger,
        gensim_parameters,
        resolve_context,
        snapshot,
        training_corpus,
    )

    config = resolve_context(config, baskets)
    corpus = training_corpus(corpus, config, baskets)
    if not corpus:
        raise ConfigError("warm start has no new sequences to train on; run a full training")
    started = time.perf_counter()
    params = gensim_parameters(config, corpus) | {"epochs": config.warm_epochs}
    model = Word2Vec(**params)
    # Every old item is kept: its published count is at least min_count.
    model.build_vocab_from_freq(
        {
            item: max(int(c), config.min_count)
            for item, c in zip(base.item_ids, base.counts, strict=True)
        }
    )
    rows = np.fromiter((model.wv.key_to_index[i] for i in base.item_ids), np.int64, len(base))
    model.wv.vectors[rows] = base.vectors
    if config.negative:
        model.syn1neg[rows] = base.context_vectors
    # New items are admitted on their count over the whole training side, as in a
    # full training, not on their count in the new data alone.
    seen = pd.unique(np.fromiter((i for s in corpus for i in s), dtype=object))
    model.build_vocab_from_freq(
        counts.reindex(seen).fillna(0).astype(np.int64).to_dict(),
        corpus_count=len(corpus),
        update=True,
    )
    keys = list(model.wv.index_to_key)
    today = counts.reindex(keys).fillna(0).astype(np.int64).to_numpy()
    model.wv.expandos["count"] = today.copy()
    if config.negative:
        model.make_cum_table()
    logger = EpochLogger(config.warm_epochs, config=config)
    model.train(
        corpus,
        total_examples=len(corpus),
        epochs=config.warm_epochs,
        start_alpha=config.warm_alpha or config.alpha,
        end_alpha=config.min_alpha,
        callbacks=[logger],
        compute_loss=config.compute_loss,
    )
    vectors = snapshot(model, keys, config)
    keep = today >= config.min_count
    seconds = time.perf_counter() - started
    log.info("warm-trained %s item vectors in %.1fs", f"{int(keep.sum()):,}", seconds)
    return ItemVectors(
        item_ids=vectors.item_ids[keep],
        vectors=vectors.vectors[keep],
        context_vectors=None if vectors.context_vectors is None else vectors.context_vectors[keep],
        counts=today[keep],
        history={"loss": logger.losses, "seconds": round(seconds, 3)},
    )


def train_nightly(
    split: Split, sequences: pa.Table, config: PipelineConfig, plan: WarmPlan | None = None
) -> ItemVectors:
    """Train warm from LATEST when :func:`plan_warm_start` allows it, else from scratch.

    ``plan`` is :func:`plan_warm_start`'s answer when the caller already has it
    (the flow plans once, for training, item-kNN and the gate).

    The result's ``history["warm_start"]`` is the manifest's ``warm_start``
    record: ``mode`` (``warm``/``full``), ``reason``, ``previous_version``,
    ``chain``, ``trained_until`` (what every event the vectors saw is at or
    before, which the next night checks), ``new_since``, the ``sequences``,
    ``events`` and ``epochs`` trained, and ``knn_settings``: ``kept`` from
    LATEST or ``chosen`` on tonight's validation target.
    """
    from item2vec.train import resolve_context, train_word2vec

    plan = plan or plan_warm_start(config, sequences)
    if plan.warm:
        corpus, baskets = _warm_selection(
            sequences, plan.since, plan.cutoff, config.train.warm_data, config.train.window
        )
        if not corpus:
            plan = _full(plan.cutoff, f"no new events since {plan.previous}")
    if plan.warm:
        # ``auto`` is decided on the whole training side, as a full night decides it.
        train = resolve_context(config.train, split.train_baskets)
        vectors = train_warm(plan.base, corpus, training_counts(split), train, baskets)
        epochs, data = config.train.warm_epochs, config.train.warm_data
    else:
        corpus = split.train
        vectors = train_word2vec(corpus, config.train, baskets=split.train_baskets)
        epochs, data = config.train.epochs, "all"
    vectors.history["warm_start"] = {
        "mode": "warm" if plan.warm else "full",
        "reason": plan.reason,
        "previous_version": plan.previous,
        "chain": plan.chain,
        "trained_on": data,
        "new_since": None if plan.since is None else _iso(plan.since),
        "trained_until": _iso(plan.cutoff),
        "trained_until_ns": plan.cutoff,
        "sequences": len(corpus),
        "events": int(sum(map(len, corpus))),
        "epochs": epochs,
        "knn_settings": "chosen" if plan.knn_settings is None else "kept",
    }
    return vectors
