"""The ``[train]`` section: gensim ``Word2Vec`` keywords."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from item2vec.config_section import _Section

#: The nightly-chain settings of :class:`TrainConfig`: how a run starts from the
#: previous version, never gensim keywords and never what shapes the model.
NIGHTLY_FIELDS = (
    "warm_start",
    "warm_epochs",
    "warm_data",
    "warm_alpha",
    "full_retrain_every",
    "cold_start",
)


class TrainConfig(_Section):
    """gensim ``Word2Vec`` keywords, under gensim's own names.

    The defaults differ from gensim's on purpose: gensim's are tuned for words,
    and on item histories they lose to plain popularity (HR@10 0.034 against
    0.043 on the bundled sample). These were chosen by a seeded random search of
    127 configurations on the sample's *validation* target (never the test
    target), then confirmed on three seeds; see "Defaults" in docs/evaluation.md.
    The big levers, in order: scoring with output vectors (``in-out``), no
    down-sampling (``sample=0``), a flat or rare-favouring negative distribution
    (``ns_exponent`` near 0), a high learning rate and enough epochs.

    Parameters
    ----------
    sg
        1 for skip-gram, 0 for CBOW. Both reach similar quality when scored
        ``in-out``; CBOW trains about twice as fast but its input vectors, which
        the neighbour table uses, are much weaker (in-in HR@10 0.058 vs 0.10).
    vector_size
        Embedding dimension. 32 measured as good as 64 or 128 on the sample and is
        cheaper to train, store and rank; raise it for catalogues far larger.
    window
        Context half-width in items. 3-5 beat whole-history windows on the sample.
    min_count
        Items seen fewer times in training get no vector. They count as
        unrankable in the evaluation and are absent from the tables. 5 measured
        better than 1: vectors of items seen once or twice are mostly noise.
    sample
        Down-sampling threshold for frequent items; 0 turns it off. Off was
        clearly best: frequent items are exactly what users consume next.
    negative
        Negative samples per positive pair; 10 or more beat gensim's 5.
    ns_exponent
        Exponent of the negative-sampling distribution. gensim's 0.75 is a word
        choice; 0 to 0.25 (flatter, so rare items are sampled more often)
        measured best, +-1 worst. Negative values are allowed.
    epochs
        Passes over the training sequences; at most 1000. The sweep draws at
        most 150 and tuned runs use 16-60, so more is a typo that would train
        for days.
    alpha, min_alpha
        Initial and final learning rate. 0.08 beat 0.05 and gensim's 0.025.
    seed
        Random seed. With ``workers=1`` and a fixed ``PYTHONHASHSEED`` the vectors
        are bit-identical on a re-run.
    workers
        Training threads.
    hs, cbow_mean, shrink_windows, sorted_vocab, batch_words, max_vocab_size,
    max_final_vocab, null_word
        Passed to gensim unchanged; see gensim's ``Word2Vec`` documentation.
    compute_loss
        Track the training loss, logged per epoch. Costs little.
    context
        What an item's context is: ``window`` slides a window over the time-ordered
        sequence, ``set`` takes the whole sequence, ``basket`` each basket (the
        events that share a timestamp: an order) with the next ``basket_window``;
        ``auto`` is ``basket`` on a basket-shaped log (half the training events
        or more share their basket) and ``window`` elsewhere.
        ``set`` is item2vec proper:
        every other item of the sequence is context (``shrink_windows=False``,
        window as long as the sequence). Its cost is quadratic in length, so
        sequences longer than ``max_set_size`` are shuffled (seeded) and cut into
        chunks of that size, keeping it linear. ``basket`` is the same over each
        basket joined with the ``basket_window`` baskets after it: items bought
        together are each other's context, whatever their arbitrary order inside
        the basket; chunked by ``max_set_size`` too, so the cost stays linear.
        On a log without shared timestamps every basket is one item and
        ``basket`` context learns nothing.
    basket_window
        In ``basket`` context, how many following baskets join each basket's
        set: 0 keeps baskets apart (complements only), 1 or 2 also relate what
        a customer buys in consecutive orders. Each item is trained in
        ``basket_window + 1`` sets, so the cost grows with it.
    max_set_size
        Longest chunk of a sequence in ``set`` (or ``basket``) context; longer
        sequences are shuffled (seeded) and cut into chunks of this size. 200 keeps a 2,700-item
        history at about the cost of a window of 100.
    corpus_file
        Train from a temporary text file with gensim's ``corpus_file`` mode
        instead of an in-memory iterable. Its threads do not share a job queue,
        which scales better on many cores; on 2 cores it measured no faster.
    deterministic
        Bit-identical vectors on a re-run: forces ``workers=1`` (gensim's
        threads race by design). Seeds and item hashing are always fixed.
    warm_start
        Start from LATEST's vectors and train only on what is new since it
        (docs/incremental.md). Needs the temporal split, so that no test target
        was ever trained on; falls back to a full training, saying why in the
        manifest, when LATEST is missing, incompatible or due a full retrain.
    warm_epochs
        Epochs of a warm-started run over its new data. 4 measured within the
        evaluation's noise of a full training on the 30-day bench.
    warm_data
        What a warm run trains on: ``users``, the whole training history of
        every user with events since the previous version, or ``new``, only
        those events with the ``window`` items before them as context.
    warm_alpha
        Initial learning rate of a warm-started run (decaying to ``min_alpha``);
        None uses ``alpha``. 0.02 beat ``alpha`` (0.08) on the 30-night bench:
        HR@10 0.166 against 0.160, neighbour stability 0.73 against 0.58.
    cold_start
        Give every item of the items file that has too few events for a vector
        the mean vector of the trained items of its category
        (``item_category_col``), flagged ``cold_start`` in the ``source`` column
        of ``item_vectors.parquet`` (docs/incremental.md).
    full_retrain_every
        Train from scratch every this many runs of a warm chain (the first
        counts), bounding drift; 1 means always from scratch.
    resource
        On a Dask cluster, train (and refit) only on a worker started with this
        resource (``dask worker ... --resources "NAME=1"``), the one sized for
        gensim: ``workers`` cores and the memory of a training. None lets any
        worker train. Ignored on threads.
    """

    sg: Literal[0, 1] = 1
    vector_size: int = Field(32, ge=1, le=4096)
    window: int = Field(5, ge=1)
    min_count: int = Field(5, ge=1)
    sample: float = Field(0.0, ge=0.0)
    negative: int = Field(10, ge=0)
    ns_exponent: float = Field(0.25, ge=-5.0, le=5.0)
    epochs: int = Field(16, ge=1, le=1000)
    alpha: float = Field(0.08, gt=0.0)
    min_alpha: float = Field(0.0001, ge=0.0)
    seed: int = 42
    workers: int = Field(2, ge=1)
    hs: Literal[0, 1] = 0
    cbow_mean: Literal[0, 1] = 1
    shrink_windows: bool = True
    sorted_vocab: Literal[0, 1] = 1
    batch_words: int = Field(10000, ge=1)
    max_vocab_size: int | None = None
    max_final_vocab: int | None = None
    null_word: Literal[0, 1] = 0
    compute_loss: bool = True
    context: Literal["auto", "window", "set", "basket"] = "auto"
    basket_window: int = Field(0, ge=0, le=10)
    max_set_size: int = Field(200, ge=2, le=10_000)
    corpus_file: bool = False
    deterministic: bool = False
    warm_start: bool = False
    warm_epochs: int = Field(4, ge=1, le=1000)
    warm_data: Literal["users", "new"] = "users"
    warm_alpha: float | None = Field(0.02, gt=0.0)
    full_retrain_every: int = Field(7, ge=1)
    cold_start: bool = False
    resource: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _negative_or_hs(self) -> TrainConfig:
        if self.negative == 0 and self.hs == 0:
            raise ValueError("negative=0 with hs=0 trains nothing; set negative >= 1 or hs = 1")
        return self
