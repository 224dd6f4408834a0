"""Train: gensim Word2Vec over item sequences, with items as words.

The result is an :class:`ItemVectors`, plain arrays with no pickle involved, so
it can be evaluated, published and passed between processes safely.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from item2vec.config import TrainConfig
from item2vec.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class ItemVectors:
    """Trained item embeddings.

    Attributes
    ----------
    item_ids
        Vocabulary, as exact item id strings.
    vectors
        Input vectors, float32, one row per item.
    context_vectors
        gensim's output vectors (``syn1neg``) when negative sampling was used, else None.
    counts
        Training occurrences of each item.
    """

    item_ids: np.ndarray
    vectors: np.ndarray
    context_vectors: np.ndarray | None
    counts: np.ndarray

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.item_ids)


class EpochLogger(CallbackAny2Vec):
    """Logs one line per epoch: its number, duration and (when computed) its loss."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.epoch = 0
        self.started = 0.0
        self.previous_loss = 0.0

    def on_epoch_begin(self, model: Word2Vec) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.epoch += 1
        # gensim reports the loss accumulated since training began; log the epoch's share.
        total = model.get_latest_training_loss()
        loss = total - self.previous_loss
        self.previous_loss = total
        loss_text = f", loss {loss:,.0f}" if model.compute_loss else ""
        log.info(
            "epoch %d/%d done in %.2fs%s",
            self.epoch,
            self.epochs,
            time.perf_counter() - self.started,
            loss_text,
        )


def train_word2vec(sequences: list[list[str]], config: TrainConfig) -> ItemVectors:
    """Train Word2Vec on item sequences.

    Parameters
    ----------
    sequences
        Item id sequences in time order (the training side of the split).
    config
        gensim keywords; see :class:`item2vec.config.TrainConfig`.

    Returns
    -------
    ItemVectors
        Input vectors, output vectors (if negative sampling) and counts.

    Raises
    ------
    ConfigError
        If no item reaches ``min_count``.
    """
    params = config.model_dump()
    log.info(
        "training Word2Vec (sg=%d, dim=%d, window=%d, epochs=%d) on %s sequences",
        config.sg,
        config.vector_size,
        config.window,
        config.epochs,
        f"{len(sequences):,}",
    )
    started = time.perf_counter()
    model = Word2Vec(**params)
    model.build_vocab(sequences)
    if not model.wv.index_to_key:
        raise ConfigError(
            f"no item occurs at least min_count={config.min_count} times in training; "
            "lower train.min_count"
        )
    model.train(
        sequences,
        total_examples=model.corpus_count,
        epochs=model.epochs,
        callbacks=[EpochLogger(config.epochs)],
    )
    log.info(
        "trained %s item vectors in %.1fs",
        f"{len(model.wv.index_to_key):,}",
        time.perf_counter() - started,
    )
    wv = model.wv
    context = np.asarray(model.syn1neg, dtype=np.float32).copy() if config.negative > 0 else None
    return ItemVectors(
        item_ids=np.asarray(wv.index_to_key, dtype=object),
        vectors=np.asarray(wv.vectors, dtype=np.float32).copy(),
        context_vectors=context,
        counts=np.asarray([wv.get_vecattr(k, "count") for k in wv.index_to_key], dtype=np.int64),
    )
