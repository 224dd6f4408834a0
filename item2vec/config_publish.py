"""The ``[publish]`` section: where versions go and the gate that guards LATEST."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from item2vec.config_section import NAME_PATTERN, _Section

#: Metrics the quality gate may compare, each at a cut-off of ``evaluate.k``.
GATE_METRICS = ("hr", "ndcg", "mrr", "coverage")


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
