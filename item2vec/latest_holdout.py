"""LATEST scored on tonight's holdout, so that the gate compares like with like."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from item2vec.config import PipelineConfig
from item2vec.split import Split
from item2vec.warm_start import WarmPlan, plan_warm_start

__all__ = ["latest_on_holdout"]


def latest_on_holdout(
    config: PipelineConfig, sequences: pa.Table, split: Split, plan: WarmPlan | None = None
) -> dict[str, Any] | None:
    """LATEST's metrics on this run's own test cases, for the gate's regression check.

    Under the temporal split LATEST's manifest holds its figures on another day's
    events; this scores LATEST's published vectors on tonight's holdout instead,
    which compares like with like. Only when LATEST records ``trained_until`` at
    or before tonight's cut-off, so that it never saw these events. ``plan`` is
    :func:`plan_warm_start`'s answer when the caller has it: LATEST is then not
    read again.

    Returns
    -------
    dict or None
        ``version`` and LATEST's metrics at every ``evaluate.k`` (plain floats);
        None with warm start off, without a readable LATEST, or when LATEST
        trained past the cut-off (or does not say until when).
    """
    from item2vec.stages import model_metrics

    if not config.train.warm_start:
        return None
    plan = plan or plan_warm_start(config, sequences)
    if plan.latest is None:
        return None
    version, until, vectors = plan.latest
    if until is None or until > plan.cutoff:
        return None
    scored = model_metrics(vectors, split, config.evaluate)
    names = [f"{m}@{k}" for m in ("hr", "ndcg", "mrr", "coverage") for k in config.evaluate.k]
    return {"version": version, **{n: float(scored[n]) for n in names if n in scored}}
