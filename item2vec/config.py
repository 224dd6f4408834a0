"""Validated configuration, one model per stage, shared by the CLI, the flows and the library.

A TOML file holds the same sections as :class:`PipelineConfig`::

    [ingest]
    paths = ["events.parquet"]
    user_col = "visitor"

    [train]
    epochs = 40

CLI flags override the file; the file overrides the defaults below.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from item2vec.docstrings import docstring_parameters
from item2vec.errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
#: Metrics the quality gate may compare, each at a cut-off of ``evaluate.k``.
GATE_METRICS = ("hr", "ndcg", "mrr", "coverage")


class _Section(BaseModel):
    # Unknown keys are typos far more often than intent: refuse them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # Prefect renders the JSON schema as the run form: give every field its own
        # help text from the numpy docstring instead of one wall of text per section.
        schema = handler.resolve_ref_schema(handler(core_schema))
        summary, fields = docstring_parameters(cls.__doc__ or "")
        schema["description"] = summary
        for name, text in fields.items():
            if name in schema.get("properties", {}):
                schema["properties"][name]["description"] = text
        return schema


class IngestConfig(_Section):
    """Where the events are and which columns hold what.

    Parameters
    ----------
    paths
        Event files (CSV, TSV or Parquet, optionally gzip-compressed CSV). Empty means
        the bundled MovieLens sample.
    user_col
        Column holding the user id, kept as an exact string (``00123`` stays
        ``00123``).
    item_col
        Column holding the item id, kept as an exact string.
    time_col
        Column holding the event time: epoch seconds, epoch milliseconds or ISO-8601
        text.
    items_path
        Optional item metadata file (CSV or Parquet) used for titles in summaries.
    item_id_col
        Column of the items file holding the item id.
    item_title_col
        Column of the items file holding a human-readable title.
    item_category_col
        Optional column of the items file holding a category, for the neighbour
        table's category consistency; a ``|``-separated list (MovieLens
        ``genres``) counts by its first value.
    max_bad_fraction
        Largest share of rows that may be dropped as invalid (null id, unparseable
        time) before the run fails. 0.05 catches a wrong column or a wrong time
        format while tolerating ordinary dirt.
    sep
        CSV delimiter; None detects comma, tab, semicolon or pipe from the first line.
    header
        Files start with a header line; header-less files need ``columns``.
    columns
        Column names of header-less files, in order.
    time_unit
        Unit of numeric times: ``auto`` picks seconds, milliseconds, microseconds
        or nanoseconds from their magnitude.
    event_col
        Optional event-type column.
    keep_events
        Event types to keep (e.g. view, cart); needs ``event_col``.
    weight_col
        Optional weight or rating column.
    min_weight
        Drop events with a smaller weight; needs ``weight_col``. For example 4 keeps
        ratings >= 4 as positive feedback.
    drop_duplicates
        Remove exact duplicate events (same user, item, time and event type).
    min_item_count
        Drop items with fewer events, in turn with ``min_user_count`` until both hold.
    min_user_count
        Drop users with fewer events, in turn with ``min_item_count`` until both hold.
    since
        Rolling window: read only daily partitions dated on or after this day
        (YYYY-MM-DD). A partition's date is read from its file name or a parent
        folder's; files without a date in their path are refused when a window is
        set. Give ``since`` or ``window_days``, not both.
    window_days
        Rolling window: read only the daily partitions of the last ``window_days``
        days, up to the newest partition's date. Dates are read as for ``since``.
    cache
        Reuse the validated events, and the sequences built from them, of unchanged
        input files. They are kept per input file under ``cache_dir``: a re-run over
        unchanged files reads nothing again, and a growing folder of partitions
        reads only the new ones.
    cache_dir
        Where the cache lives; None puts it under ``<output>/.cache``.
    always_hash
        Hash every input file's content on every run, instead of trusting the
        hash of a file whose size and modification time are unchanged. Turn it
        on where files are edited in place with their time restored (rsync
        --times, some sync tools); it costs reading each file once per run.
    """

    paths: list[str] = Field(default_factory=list)
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    items_path: str | None = None
    item_id_col: str = "item_id"
    item_title_col: str = "title"
    item_category_col: str | None = None
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)
    sep: str | None = None
    header: bool = True
    columns: list[str] | None = None
    time_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"
    event_col: str | None = None
    keep_events: list[str] | None = None
    weight_col: str | None = None
    min_weight: float | None = None
    drop_duplicates: bool = True
    min_item_count: int = Field(1, ge=1)
    min_user_count: int = Field(1, ge=1)
    since: date | None = None
    window_days: int | None = Field(None, ge=1)
    cache: bool = True
    cache_dir: str | None = None
    always_hash: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> IngestConfig:
        if self.since is not None and self.window_days is not None:
            raise ValueError("give since (--since) or window_days (--window-days), not both")
        if not self.header and not self.columns:
            raise ValueError("header=false needs columns, e.g. --columns user,item,ts")
        if self.keep_events and not self.event_col:
            raise ValueError("keep_events needs event_col (--event-col)")
        if self.min_weight is not None and not self.weight_col:
            raise ValueError("min_weight needs weight_col (--weight-col)")
        return self


class SequenceConfig(_Section):
    """How events become sequences.

    Parameters
    ----------
    session_gap
        Cut a user's history into sessions wherever two events are further apart
        than this (``30m``, ``2h``, ``1d`` or seconds); None keeps one sequence per
        user.
    collapse_repeats
        Merge consecutive repeats of the same item into one event.
    min_length
        Drop sequences shorter than this.
    max_length
        Keep at most this many items of a sequence, the most recent ones. None
        keeps them all.
    write_sequences
        Also publish the sequences as ``sequences.parquet``.
    """

    session_gap: str | None = None
    collapse_repeats: bool = False
    min_length: int = Field(1, ge=1)
    max_length: int | None = Field(None, ge=1)
    write_sequences: bool = False

    @field_validator("session_gap")
    @classmethod
    def _parse_gap(cls, value: str | None) -> str | None:
        if value is not None:
            gap_seconds(value)
        return value


GAP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def gap_seconds(text: str) -> float:
    """Seconds of a gap written as ``90``, ``90s``, ``30m``, ``2h`` or ``1d``."""
    cleaned = text.strip().lower()
    unit = GAP_UNITS.get(cleaned[-1:]) if cleaned[-1:].isalpha() else 1
    number = cleaned[:-1] if cleaned[-1:].isalpha() else cleaned
    try:
        seconds = float(number) * unit if unit else None
    except ValueError:
        seconds = None
    if not seconds or seconds <= 0:
        raise ValueError(f"session gap {text!r} is not a duration; write e.g. 30m, 2h, 1d or 900")
    return seconds


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
        sequence, ``set`` takes the whole sequence. ``set`` is item2vec proper:
        every other item of the sequence is context (``shrink_windows=False``,
        window as long as the sequence). Its cost is quadratic in length, so
        sequences longer than ``max_set_size`` are shuffled (seeded) and cut into
        chunks of that size, keeping it linear.
    max_set_size
        Longest chunk of a sequence in ``set`` context; longer sequences are
        shuffled (seeded) and cut into chunks of this size. 200 keeps a 2,700-item
        history at about the cost of a window of 100.
    corpus_file
        Train from a temporary text file with gensim's ``corpus_file`` mode
        instead of an in-memory iterable. Its threads do not share a job queue,
        which scales better on many cores; on 2 cores it measured no faster.
    deterministic
        Bit-identical vectors on a re-run: forces ``workers=1`` (gensim's
        threads race by design). Seeds and item hashing are always fixed.
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
    context: Literal["window", "set"] = "window"
    max_set_size: int = Field(200, ge=2, le=10_000)
    corpus_file: bool = False
    deterministic: bool = False

    @model_validator(mode="after")
    def _negative_or_hs(self) -> TrainConfig:
        if self.negative == 0 and self.hs == 0:
            raise ValueError("negative=0 with hs=0 trains nothing; set negative >= 1 or hs = 1")
        return self


class EvaluateConfig(_Section):
    """How recommendations are scored (the protocol: docs/evaluation.md).

    Parameters
    ----------
    k
        Cut-offs for HR, NDCG, MRR and coverage.
    query_items
        How many of the user's last training items make the query, the
        L2-normalised mean of their vectors.
    scoring
        How candidates are scored: ``in-out`` with gensim's output vectors
        (``syn1neg``), ``in-in`` by cosine between input vectors as the neighbour
        table does. ``in-out`` is what skip-gram with negative sampling optimises.
    split
        How the test targets are chosen: ``leave-last-out`` takes each user's last
        event, ``temporal`` each user's first event after a cut-off. The temporal
        cut-off lies ``test_days`` before the end; the events after it are held
        out.
    test_days
        Length of the held-out period of the temporal split.
    exclude_seen
        Remove the user's training items from the ranking; turn it off where people
        consume the same item again (groceries, music).
    max_users
        Most test users evaluated, 0 for all; with more, every method sees the same
        fixed sample of this many, chosen by a hash of the user id. The sample is
        :func:`item2vec.split.evaluation_sample`. Exact item-kNN costs milliseconds
        per user on a large catalogue, so 200k users would take the better part of
        an hour.
    """

    k: list[int] = Field(default_factory=lambda: [10, 20])
    query_items: int = Field(5, ge=1)
    scoring: Literal["in-in", "in-out"] = "in-out"
    split: Literal["leave-last-out", "temporal"] = "leave-last-out"
    test_days: float = Field(7.0, gt=0)
    exclude_seen: bool = True
    max_users: int = Field(20_000, ge=0)

    @field_validator("k")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("k must be a non-empty list of positive integers, e.g. [10, 20]")
        return sorted(set(value))


class PublishConfig(_Section):
    """Where and how the tables are written.

    Parameters
    ----------
    output
        Root directory; a version lands in ``<output>/<model_name>/<version>/``.
    model_name
        Name of the model family: letters, digits, ``.``, ``_`` and ``-`` only. The
        bundled sample publishes as ``movielens``.
    neighbors_k
        Neighbours per item in ``item_neighbors.parquet``.
    neighbors_scoring
        How the neighbour table scores an item's neighbours: ``in-in`` by cosine
        of input vectors, ``in-out`` of the item's input with the neighbour's
        output vector, ``symmetric`` the mean of both directions. ``in-out`` was
        best item to item on the validation target of the sample and of a
        synthetic log (docs/evaluation.md, "The neighbour table"); it needs
        output vectors (``negative`` >= 1).
    primary_metric
        Metric the quality gate compares with the popularity baseline:
        ``hr``, ``ndcg``, ``mrr`` or ``coverage`` at one of ``evaluate.k``.
    gate_margin
        The model must beat popularity's primary metric times this, or LATEST does
        not move.
    refit
        After evaluation, train the published model again from scratch on all
        events (the test targets included). Off by default: the evaluated model
        is published, the one the metrics describe. A refit costs a second full
        training and, measured on the next event of every user (``bench/run
        refit``), recommends no better; recommendations and queries use every
        user's whole history either way.
    recommendations_n
        Recommendations per user in ``user_recommendations.parquet`` (0 = none).
    keep
        Keep only this many versions, the newest; LATEST is never deleted. None
        keeps everything.
    max_regression
        Refuse a model more than this share below LATEST's primary metric, when
        LATEST was evaluated on the same inputs under the same protocol.
    min_stability
        Optional floor on the mean overlap of each item's top-10 neighbours
        with LATEST's (0..1). The overlap is always recorded in the manifest.
    report
        Write ``report.md`` with plots (HR@k curve, embedding map, training loss)
        into every version. The embedding map's t-SNE costs a few seconds.
    """

    output: str = "output"
    model_name: str = Field("item2vec", pattern=NAME_PATTERN)
    neighbors_k: int = Field(20, ge=1)
    neighbors_scoring: Literal["in-in", "in-out", "symmetric"] = "in-out"
    primary_metric: str = "hr@10"
    gate_margin: float = Field(1.0, ge=0.0)
    refit: bool = False
    recommendations_n: int = Field(20, ge=0)
    keep: int | None = Field(None, ge=1)
    max_regression: float = Field(0.10, ge=0.0, le=1.0)
    min_stability: float | None = Field(None, ge=0.0, le=1.0)
    report: bool = True

    @field_validator("model_name")
    @classmethod
    def _not_a_relative_folder(cls, value: str) -> str:
        if value in {".", ".."}:
            raise ValueError("'.' and '..' are folders, not names; choose a name such as my-model")
        return value

    @field_validator("primary_metric")
    @classmethod
    def _a_gate_metric(cls, value: str) -> str:
        # The form is checked here; that its cut-off is evaluated, by gate.check_primary_metric.
        name, _, cutoff = value.partition("@")
        if name not in GATE_METRICS or not cutoff.isdigit() or int(cutoff) < 1:
            raise ValueError(
                f"primary_metric {value!r} is not a metric the gate can compare; use "
                f"{', '.join(GATE_METRICS)} at a cut-off of evaluate.k, e.g. hr@10"
            )
        return value


class PipelineConfig(_Section):
    """Every parameter of one ``item2vec run``."""

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    sequences: SequenceConfig = Field(default_factory=SequenceConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; ``None`` values in it are ignored."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(*layers: dict[str, Any], source: str = "configuration") -> PipelineConfig:
    """Validate layered settings (later layers win) into a :class:`PipelineConfig`.

    Raises
    ------
    ConfigError
        Naming every invalid field as ``section.field`` with what was expected.
    """
    data: dict[str, Any] = {}
    for layer in layers:
        data = merge(data, layer)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid {source}: {problems}") from exc
