"""The quality gate: does the model beat the popularity baseline?"""

from __future__ import annotations

from typing import Any


def quality_gate(metrics: dict[str, Any], primary: str = "hr@10", margin: float = 1.0) -> dict:
    """Decide whether a model may become LATEST.

    Parameters
    ----------
    metrics
        Output of :func:`item2vec.evaluate.evaluate`.
    primary
        Metric to compare, for example ``hr@10``.
    margin
        The model must reach ``margin`` times the popularity baseline's figure.

    Returns
    -------
    dict
        ``{"passed": bool, "reason": str, "metric": primary}``.
    """
    if primary not in metrics["model"]:
        known = ", ".join(sorted(metrics["model"]))
        raise ValueError(f"primary metric {primary!r} was not computed; choose one of: {known}")
    model = metrics["model"][primary]
    popularity = metrics["baselines"]["popularity"][primary]
    required = popularity * margin
    passed = model > required
    relation = ">" if passed else "<="
    factor = f" x {margin:g}" if margin != 1.0 else ""
    return {
        "passed": bool(passed),
        "metric": primary,
        "reason": f"{primary} {model:.4f} {relation} popularity {popularity:.4f}{factor}",
    }
