"""What a training will cost, said before it starts.

A Word2Vec training over tens of millions of tokens runs for many minutes with
nothing else to show. Before it starts the run logs, and the manifest keeps, the
number of training tokens, the (centre, context) pairs they make for the chosen
context, the memory of the vectors and a time estimate from a short measured
warm-up on a sample of the same sequences with the same settings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Tokens the warm-up trains on: about a second of training on 2 cores.
WARMUP_TOKENS = 200_000

#: Below this many tokens per epoch the whole training takes about as long as a
#: warm-up would, so none is run.
WARMUP_MIN_TOKENS = 2_000_000


@dataclass(frozen=True)
class TrainingCost:
    """The cost of one training, estimated before it runs.

    Attributes
    ----------
    sequences, tokens
        Sentences and tokens per epoch, as gensim sees them.
    epochs
        Passes over the corpus.
    pairs_per_epoch
        Expected (centre, context) pairs per epoch for the context chosen: with
        ``shrink_windows`` each centre's window is uniform in 1..window, in
        ``set`` mode every other item of its sentence.
    vocabulary
        Items with a vector (those reaching ``min_count``).
    vector_bytes
        Memory of the input and output vectors (float32).
    warmup_words_per_s
        Training speed measured on a sample, or None when the corpus is too
        small to be worth one.
    estimated_seconds
        ``tokens * epochs / warmup_words_per_s``, or None without a warm-up.
    """

    sequences: int
    tokens: int
    epochs: int
    pairs_per_epoch: int
    vocabulary: int
    vector_bytes: int
    warmup_words_per_s: float | None
    estimated_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the manifest."""
        return asdict(self)

    def describe(self) -> str:
        """One line for the log."""
        eta = (
            f"; estimated {_duration(self.estimated_seconds)} "
            f"(warm-up {self.warmup_words_per_s:,.0f} tokens/s)"
            if self.estimated_seconds is not None
            else ""
        )
        return (
            f"training cost: {self.tokens:,} tokens x {self.epochs} epochs, "
            f"~{self.pairs_per_epoch:,} (centre, context) pairs per epoch, "
            f"{self.vocabulary:,} items, vectors {self.vector_bytes / 2**20:,.1f} MiB{eta}"
        )


def context_pairs(lengths: np.ndarray, window: int, shrink_windows: bool) -> int:
    """Expected (centre, context) pairs of sentences of these lengths.

    Parameters
    ----------
    lengths
        Tokens of each sentence.
    window
        Largest distance between a centre and its context.
    shrink_windows
        gensim's default: each centre draws its window uniformly from 1..window.

    Returns
    -------
    int
        The expected number of pairs, computed per distinct length (linear in
        the number of sentences).
    """
    if len(lengths) == 0 or window < 1:
        return 0
    distinct, times = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    widths = np.arange(1, window + 1) if shrink_windows else np.array([window])
    n = distinct[None, :].astype(np.float64)
    w = widths[:, None].astype(np.float64)
    # Per side, sum over positions i of min(i, w): a triangle, then a band of width w.
    one_side = np.where(n - 1 <= w, n * (n - 1) / 2, w * (w + 1) / 2 + (n - 1 - w) * w)
    per_length = 2 * one_side.mean(axis=0)
    return int(round(float((per_length * times).sum())))


def estimate_training_cost(
    corpus: list[list[str]], params: dict[str, Any], vocabulary: int
) -> TrainingCost:
    """Estimate a training of ``params`` (gensim keywords) on ``corpus``.

    Parameters
    ----------
    corpus
        The sentences gensim will train on.
    params
        The Word2Vec keywords of the training (window, epochs, workers, ...).
    vocabulary
        Items with a vector after ``build_vocab``.

    Returns
    -------
    TrainingCost
        The estimate; a warm-up is trained only for corpora of at least
        :data:`WARMUP_MIN_TOKENS` tokens.
    """
    lengths = np.fromiter(map(len, corpus), dtype=np.int64, count=len(corpus))
    tokens = int(lengths.sum())
    epochs = int(params.get("epochs", 5))
    dim = int(params.get("vector_size", 100))
    outputs = 2 if params.get("negative", 5) or params.get("hs", 0) else 1
    speed = _warmup_speed(corpus, lengths, params) if tokens >= WARMUP_MIN_TOKENS else None
    return TrainingCost(
        sequences=len(corpus),
        tokens=tokens,
        epochs=epochs,
        pairs_per_epoch=context_pairs(
            lengths, int(params.get("window", 5)), bool(params.get("shrink_windows", True))
        ),
        vocabulary=vocabulary,
        vector_bytes=vocabulary * dim * 4 * outputs,
        warmup_words_per_s=round(speed, 1) if speed else None,
        estimated_seconds=round(tokens * epochs / speed, 1) if speed else None,
    )


def _warmup_speed(corpus: list[list[str]], lengths: np.ndarray, params: dict[str, Any]) -> float:
    """Tokens per second of one epoch over an evenly spaced sample of the corpus."""
    from gensim.models import Word2Vec

    step = max(1, int(lengths.sum() // WARMUP_TOKENS))
    sample = corpus[::step]
    warmup = {**params, "epochs": 1, "min_count": 1, "compute_loss": False}
    model = Word2Vec(**warmup)
    model.build_vocab(sample)
    started = time.perf_counter()
    model.train(sample, total_examples=len(sample), epochs=1)
    seconds = max(time.perf_counter() - started, 1e-6)
    return float(sum(map(len, sample)) / seconds)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
