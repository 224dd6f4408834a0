"""The metrics table: the model beside the baselines, one row per method.

The rows are built once, by :func:`metrics_rows`, from an evaluation record
(``manifest["metrics"]``, a run's metrics or a sweep's test record), and
rendered for each place that shows them:

* :func:`metrics_rows` itself: plain-float dicts for Prefect table artifacts;
* :func:`metrics_markdown`: a Markdown table for ``report.md``, ``sweep.md``
  and the run pages;
* :func:`metrics_text`: a fixed-width table for the terminal.

Records are read leniently, since a manifest is hand-editable JSON: a method
without metrics is left out, a column no method has is left out, and a value
that is not a number shows as ``–``.
"""

from __future__ import annotations

from typing import Any

#: Methods in table order, with their row label: the model first, then the model
#: with its fallback (item-kNN, then popularity, for users it cannot rank), then
#: the baselines.
METHODS = (
    ("model", "item2vec"),
    ("model_with_fallback", "with fallback"),
    ("popularity", "popularity"),
    ("item_knn", "item-kNN"),
)
#: Measures reported at each cut-off k, in column order; ``unrankable`` follows
#: them. ``category`` is the neighbour tables' category consistency.
MEASURES = ("hr", "ndcg", "mrr", "coverage", "category")
#: What a cell shows when the method has no value for the column.
MISSING = "–"


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per method (model first, then baselines) with plain-float metric values.

    Parameters
    ----------
    metrics
        An evaluation record: ``model`` and ``baselines`` (``popularity``,
        ``item_knn``), each a dict of metric name to value.

    Returns
    -------
    list of dict
        ``{"method": label, name: float, ...}`` per method that has metrics.
        The values are plain Python floats, which Prefect's table artifacts
        need (numpy float32 shows as 0.10000000149).
    """
    baselines = _as_dict(metrics.get("baselines"))
    rows = []
    for key, label in METHODS:
        top_level = key in ("model", "model_with_fallback")
        values = _as_dict(metrics.get(key) if top_level else baselines.get(key))
        numbers = {name: float(v) for name, v in values.items() if isinstance(v, int | float)}
        if numbers:
            rows.append({"method": label, **numbers})
    return rows


def metric_columns(metrics: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The table's metric columns: each measure at each k, then ``unrankable``.

    The cut-offs are ``metrics["k"]``, or those of the ``hr@k`` values when
    the record does not list them; columns that no row has are left out.
    """
    ks = metrics.get("k") or sorted(
        {int(name.split("@")[1]) for row in rows for name in row if name.startswith("hr@")}
    )
    names = [f"{m}@{k}" for k in ks for m in MEASURES] + ["unrankable"]
    return [name for name in names if any(name in row for row in rows)]


def neighbors_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """The neighbour tables' figures (``metrics["neighbors"]``) as an evaluation record,
    so that :func:`metrics_markdown` and :func:`metrics_text` render them: the
    model's table, then item-kNN's. Empty when the record has none."""
    neighbors = _as_dict(metrics.get("neighbors"))
    if not neighbors:
        return {}
    return {
        "k": metrics.get("k"),
        "model": neighbors.get("model"),
        "baselines": {"item_knn": neighbors.get("item_knn")},
    }


def _cell(row: dict[str, Any], name: str) -> str:
    return f"{row[name]:.4f}" if name in row else MISSING


def _best(rows: list[dict[str, Any]], names: list[str]) -> dict[str, float]:
    """The best value per column (highest; lowest for ``unrankable``), where methods differ."""
    best = {}
    for name in names:
        values = [row[name] for row in rows if name in row]
        # Only when methods differ at the shown precision, so a tie marks nothing.
        if len({round(value, 4) for value in values}) > 1:
            best[name] = min(values) if name == "unrankable" else max(values)
    return best


def metrics_markdown(metrics: dict[str, Any], mark_best: bool = False) -> str:
    """The metrics table as Markdown, model first, then the baselines.

    Parameters
    ----------
    metrics
        An evaluation record, as for :func:`metrics_rows`.
    mark_best
        Bold the best value of each column (the highest; the lowest for
        ``unrankable``). Nothing is bolded in a column where all methods tie.

    Returns
    -------
    str
        The table, numbers right-aligned; empty when no method has metrics.
    """
    rows = metrics_rows(metrics)
    if not rows:
        return ""
    names = metric_columns(metrics, rows)
    best = _best(rows, names) if mark_best else {}
    lines = ["| method | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for row in rows:
        cells = [
            f"**{_cell(row, n)}**" if n in best and row.get(n) == best[n] else _cell(row, n)
            for n in names
        ]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metrics_text(metrics: dict[str, Any]) -> str:
    """Fixed-width table of HR, NDCG, MRR and coverage per k, model beside the baselines.

    Parameters
    ----------
    metrics
        An evaluation record, as for :func:`metrics_rows`.

    Returns
    -------
    str
        A header, a rule and one line per method, for a terminal.
    """
    rows = metrics_rows(metrics)
    names = metric_columns(metrics, rows)
    width = max((len(n) for n in names), default=0) + 1
    label = max((len(row["method"]) + 2 for row in rows), default=12)
    header = "method".ljust(label) + "".join(n.rjust(width) for n in names)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            row["method"].ljust(label) + "".join(_cell(row, n).rjust(width) for n in names)
        )
    return "\n".join(lines)


def _as_dict(value: Any) -> dict[str, Any]:
    # A wrong shape leaves a method out, never crashes the page that shows the table.
    return value if isinstance(value, dict) else {}
