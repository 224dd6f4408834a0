"""Train: gensim Word2Vec over item sequences, with items as words.

The result is an :class:`ItemVectors`, plain arrays with no pickle involved, so
it can be evaluated, published and passed between processes safely.
"""

from __future__ import annotations

import logging
import tempfile
import time
import zlib
from collections.abc import Callable
from itertools import chain
from pathlib import Path

import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from item2vec.config import TrainConfig
from item2vec.config_train import NIGHTLY_FIELDS
from item2vec.cost import estimate_training_cost
from item2vec.errors import ConfigError
from item2vec.progress import Progress
from item2vec.split import basket_share, is_basket_log
from item2vec.vectors import ItemVectors

log = logging.getLogger(__name__)


class EpochLogger(CallbackAny2Vec):
    """Reports each epoch to a :class:`Progress` (with its loss) and records the losses.

    A debug line per epoch gives its number, duration and loss; at INFO the
    progress shows a bar on a terminal, or a few plain lines elsewhere.
    """

    def __init__(
        self,
        epochs: int,
        progress: Progress | None = None,
        on_epoch: EpochHook | None = None,
        config: TrainConfig | None = None,
    ) -> None:
        self.epochs = epochs
        self.progress = progress
        self.on_epoch = on_epoch
        self.config = config
        # Item id of each vocabulary row; corpus_file mode trains on integer codes.
        self.keys: Callable[[Word2Vec], list[str]] = lambda model: list(model.wv.index_to_key)
        self.epoch = 0
        self.started = 0.0
        self.previous_loss = 0.0
        self.losses: list[float] = []
        #: Tokens to advance the progress by at each epoch's end (when nothing else does).
        self.epoch_tokens = 0

    def on_epoch_begin(self, model: Word2Vec) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.epoch += 1
        # gensim reports the loss accumulated since training began; log the epoch's share.
        total = model.get_latest_training_loss()
        loss = total - self.previous_loss
        self.previous_loss = total
        if model.compute_loss:
            self.losses.append(float(loss))
        loss_text = f", loss {loss:,.0f}" if model.compute_loss else ""
        log.debug(
            "epoch %d/%d done in %.2fs%s",
            self.epoch,
            self.epochs,
            time.perf_counter() - self.started,
            loss_text,
        )
        if self.progress is not None:
            # Tokens advance from the corpus as gensim reads it; this adds the epoch's loss.
            self.progress.advance(
                self.epoch_tokens, **({"loss": f"{loss:,.0f}"} if model.compute_loss else {})
            )
        if self.on_epoch is not None:
            # Raising here (e.g. a tuner pruning the trial) stops training cleanly:
            # gensim calls this after the epoch's worker threads have finished.
            self.on_epoch(self.epoch, lambda: snapshot(model, self.keys(model), self.config))


#: gensim silently truncates sentences longer than this many tokens.
GENSIM_MAX_SENTENCE = 10_000

#: TrainConfig fields that are item2vec's own, not gensim keywords.
OWN_FIELDS = {
    "context",
    "basket_window",
    "max_set_size",
    "corpus_file",
    "deterministic",
    "resource",
    *NIGHTLY_FIELDS,
}


def stable_hash(text: str) -> int:
    """A hash of ``text`` that does not change between processes.

    gensim seeds each initial vector with ``hashfxn(word + str(seed))``; Python's
    own ``hash`` is salted per process unless PYTHONHASHSEED is set, which would
    make seeded runs differ.
    """
    return zlib.crc32(text.encode("utf-8"))


def training_corpus(
    sequences: list[list[str]], config: TrainConfig, baskets: np.ndarray | None = None
) -> list[list[str]]:
    """The sentences gensim sees: chunked for ``set`` mode and for gensim's length limit.

    In ``set`` mode a sequence longer than ``max_set_size`` is shuffled with a
    generator seeded by ``config.seed`` and cut into chunks of at most that size.
    In ``basket`` mode the sentences are baskets, each joined with the next
    ``basket_window`` baskets of its sequence (:func:`basket_sets`), then
    chunked as in ``set`` mode. In ``window`` mode a sequence longer than
    gensim's 10,000-token limit is cut into consecutive chunks, so nothing is
    silently truncated.

    Raises
    ------
    ConfigError
        In ``basket`` mode without ``baskets``.
    """
    if config.context == "basket":
        if baskets is None:
            raise ConfigError(
                "context 'basket' needs the baskets of the training events (event times in "
                "the sequences); use train.context = 'set' or 'window'"
            )
        sequences = basket_sets(sequences, baskets, config.basket_window)
    if config.context in ("set", "basket"):
        limit = config.max_set_size
        rng = np.random.default_rng(config.seed)
    else:
        limit = GENSIM_MAX_SENTENCE
        rng = None
    corpus: list[list[str]] = []
    for sequence in sequences:
        if len(sequence) <= limit:
            corpus.append(sequence)
            continue
        items = [sequence[i] for i in rng.permutation(len(sequence))] if rng else sequence
        corpus.extend(items[start : start + limit] for start in range(0, len(items), limit))
    return corpus


def resolve_context(config: TrainConfig, baskets: np.ndarray | None) -> TrainConfig:
    """``config`` with an ``auto`` context decided: ``basket`` on a basket-shaped log
    (:func:`item2vec.split.is_basket_log`), else ``window``."""
    if config.context != "auto":
        return config
    chosen = "basket" if is_basket_log(baskets) else "window"
    log.info(
        "context auto: %s (%.0f%% of the training items share their basket)",
        chosen,
        100 * basket_share(baskets),
    )
    return config.model_copy(update={"context": chosen})


def basket_sets(
    sequences: list[list[str]], baskets: np.ndarray, window: int = 0
) -> list[list[str]]:
    """Each basket of each sequence, joined with the ``window`` baskets after it.

    Parameters
    ----------
    sequences
        Training sequences in time order.
    baskets
        Boolean per item of the flattened sequences: the item opens a basket
        (:func:`item2vec.split.basket_starts`).
    window
        Following baskets joined to each. A sequence with fewer than
        ``window + 1`` baskets gives one set of all its items; otherwise a set
        starts at every basket that has ``window`` baskets after it. Two items
        ``d <= window`` baskets apart share ``window + 1 - d`` sets.

    Raises
    ------
    ValueError
        If ``baskets`` does not have one flag per item.
    """
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    if len(baskets) != lengths.sum():
        raise ValueError(
            f"baskets has {len(baskets):,} flags for {int(lengths.sum()):,} training items"
        )
    flat = list(chain.from_iterable(sequences))
    ends = np.cumsum(lengths)
    opens = np.asarray(baskets, dtype=bool).copy()
    opens[ends[lengths > 0] - lengths[lengths > 0]] = True  # every sequence opens one
    starts = np.flatnonzero(opens)
    # Per basket: its sequence, and where the set that starts at it ends.
    owner = np.searchsorted(ends, starts, side="right")
    last_in_owner = np.searchsorted(owner, owner, side="right") - 1
    first_in_owner = np.searchsorted(owner, owner, side="left")
    index = np.arange(len(starts))
    reach = np.minimum(index + window, last_in_owner)
    keep = (index + window <= last_in_owner) | (index == first_in_owner)
    stop = np.where(reach + 1 < len(starts), starts[np.minimum(reach + 1, len(starts) - 1)], 0)
    stop = np.where(reach == last_in_owner, ends[owner], stop)
    return [flat[a:b] for a, b in zip(starts[keep].tolist(), stop[keep].tolist(), strict=True)]


def gensim_parameters(config: TrainConfig, corpus: list[list[str]]) -> dict:
    """Word2Vec keywords for ``config``, with the ``set`` mode and determinism applied."""
    params = config.model_dump(exclude=OWN_FIELDS)
    params["hashfxn"] = stable_hash
    if config.context in ("set", "basket"):
        longest = max((len(s) for s in corpus), default=1)
        params["window"] = max(longest, 1)
        params["shrink_windows"] = False
    if config.deterministic:
        params["workers"] = 1
    return params


def train_word2vec(
    sequences: list[list[str]],
    config: TrainConfig,
    on_epoch: EpochHook | None = None,
    baskets: np.ndarray | None = None,
) -> ItemVectors:
    """Train Word2Vec on item sequences.

    Parameters
    ----------
    sequences
        Item id sequences in time order (the training side of the split).
    config
        gensim keywords and item2vec's own training options; see
        :class:`item2vec.config.TrainConfig`.
    on_epoch
        Called after every epoch with its number (from 1) and a function that
        returns the vectors as they are at that point; an exception it raises
        stops training and propagates (a tuner prunes trials this way).
    baskets
        Boolean per item of the flattened ``sequences``: it opens a basket
        (``Split.train_baskets``); needed by ``basket`` context only.

    Returns
    -------
    ItemVectors
        Input vectors, output vectors (if negative sampling) and counts.

    Raises
    ------
    ConfigError
        If no item reaches ``min_count``.
    """
    config = resolve_context(config, baskets)
    corpus = training_corpus(sequences, config, baskets)
    params = gensim_parameters(config, corpus)
    log.info(
        "training Word2Vec (sg=%d, dim=%d, %s context, window=%d, epochs=%d, workers=%d) "
        "on %s sequences",
        config.sg,
        config.vector_size,
        config.context,
        params["window"],
        config.epochs,
        params["workers"],
        f"{len(corpus):,}",
    )
    started = time.perf_counter()
    model = Word2Vec(**params)
    tokens = sum(map(len, corpus))
    with Progress("train", total=tokens * config.epochs, unit="tokens") as progress:
        callbacks = [EpochLogger(config.epochs, progress, on_epoch, config)]
        if config.corpus_file:
            keys, cost = _train_from_file(model, corpus, config, callbacks, params)
        else:
            model.build_vocab(corpus)
            _check_vocabulary(model, config)
            cost = _announce_cost(corpus, params, len(model.wv))
            model.train(
                CountedCorpus(corpus, progress),
                total_examples=model.corpus_count,
                epochs=model.epochs,
                callbacks=callbacks,
                # train() has its own compute_loss, which overrides the constructor's.
                compute_loss=config.compute_loss,
            )
            keys = list(model.wv.index_to_key)
    seconds = time.perf_counter() - started
    log.info("trained %s item vectors in %.1fs", f"{len(keys):,}", seconds)
    vectors = snapshot(model, keys, config)
    vectors.history = {
        "loss": callbacks[0].losses,
        "seconds": round(seconds, 3),
        "context": config.context,
        "cost": cost.as_dict(),
    }
    return vectors


def _announce_cost(corpus: list[list[str]], params: dict, vocabulary: int):
    """Estimate the training's cost and log it before it starts."""
    cost = estimate_training_cost(corpus, params, vocabulary)
    log.info(cost.describe())
    return cost


class CountedCorpus:
    """The corpus as gensim reads it, advancing ``progress`` by the tokens handed out.

    gensim's job producer reads a few batches ahead of its workers, so progress
    runs at most that far ahead of the training itself. It advances every
    ``every`` sentences, so the cost is one counter per sentence.
    """

    def __init__(self, corpus: list[list[str]], progress: Progress, every: int = 10_000) -> None:
        self.corpus = corpus
        self.progress = progress
        self.every = every

    def __len__(self) -> int:
        return len(self.corpus)

    def __iter__(self):
        pending = 0
        for index, sentence in enumerate(self.corpus, start=1):
            yield sentence
            pending += len(sentence)
            if index % self.every == 0:
                self.progress.advance(pending)
                pending = 0
        if pending:
            self.progress.advance(pending)


#: ``on_epoch(epoch, vectors_now)`` of :func:`train_word2vec`.
EpochHook = Callable[[int, Callable[[], ItemVectors]], None]


def snapshot(model: Word2Vec, keys: list[str], config: TrainConfig | None) -> ItemVectors:
    """Copies of the model's current vectors as :class:`ItemVectors`."""
    wv = model.wv
    negative = config.negative if config is not None else model.negative
    context = np.asarray(model.syn1neg, dtype=np.float32).copy() if negative > 0 else None
    return ItemVectors(
        item_ids=np.asarray(keys, dtype=object),
        vectors=np.asarray(wv.vectors, dtype=np.float32).copy(),
        context_vectors=context,
        counts=np.asarray(wv.expandos["count"], dtype=np.int64).copy(),
    )


def _check_vocabulary(model: Word2Vec, config: TrainConfig) -> None:
    if not model.wv.index_to_key:
        raise ConfigError(
            f"no item occurs at least min_count={config.min_count} times in training; "
            "lower train.min_count"
        )


def _train_from_file(
    model: Word2Vec, corpus: list[list[str]], config: TrainConfig, callbacks: list, params: dict
):
    """Train through gensim's ``corpus_file`` mode; return the item id of each vocabulary row.

    The file holds integer codes rather than ids, because ids may contain
    whitespace, which the file format cannot represent.
    """
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="item2vec-corpus-") as folder:
        path = Path(folder) / "corpus.txt"
        with path.open("w", encoding="utf-8") as handle:
            for sentence in corpus:
                handle.write(" ".join(str(codes.setdefault(i, len(codes))) for i in sentence))
                handle.write("\n")
        model.build_vocab(corpus_file=str(path))
        _check_vocabulary(model, config)
        cost = _announce_cost(corpus, params, len(model.wv))
        ids = np.empty(len(codes), dtype=object)
        ids[list(codes.values())] = list(codes.keys())
        callbacks[0].keys = lambda m: [ids[int(code)] for code in m.wv.index_to_key]
        # gensim reads the file in its own threads: progress moves an epoch at a time.
        callbacks[0].epoch_tokens = model.corpus_total_words
        model.train(
            corpus_file=str(path),
            total_examples=model.corpus_count,
            total_words=model.corpus_total_words,
            epochs=model.epochs,
            callbacks=callbacks,
            compute_loss=config.compute_loss,
        )
    return callbacks[0].keys(model), cost
