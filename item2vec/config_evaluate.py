"""The ``[evaluate]`` section: the split and how recommendations are scored."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from item2vec.config_section import _Section


class EvaluateConfig(_Section):
    """How recommendations are scored (the protocol: docs/evaluation.md).

    Parameters
    ----------
    k
        Cut-offs for HR, NDCG, MRR and coverage.
    query_items
        How many of the user's last training items make the query, the
        L2-normalised mean of their vectors.
    query
        Which items query: ``items``, the last ``query_items``; ``basket``, only
        those of them in the user's last basket (the events that share the
        latest timestamp: one order or invoice); ``auto``, ``basket`` on a
        basket-shaped log (half the events or more share their basket) and
        ``items`` elsewhere. On a basket log ``basket`` gained 0.135 HR@10
        (docs/baskets.md); on the sample it lost 0.016.
    query_half_life
        Recency weights over the query items, 0 for equal weights: the item
        ``p`` places before the latest weighs ``0.5 ** (p / query_half_life)``.
    knn_blend
        Weight of item-kNN in a blend with the model's score, from 0 (the model
        alone) to 1 (item-kNN alone): ``(1 - w) * cosine + w * knn / max(knn)``
        per user. Item-kNN counts co-occurrence exactly, the model generalises;
        the sweep chooses the weight on the validation target.
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
    query: Literal["auto", "items", "basket"] = "auto"
    query_half_life: float = Field(0.0, ge=0.0)
    knn_blend: float = Field(0.0, ge=0.0, le=1.0)
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
