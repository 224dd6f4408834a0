"""The sections of ``report.md``, each a list of Markdown lines.

Manifests are hand-editable JSON, so every section reads its part leniently:
a missing or wrongly shaped part gives a short note in place of the section's
body, never an error.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from item2vec.metric_table import metrics_markdown, neighbors_record
from item2vec.summary import (
    baselines_phrase,
    fallback_phrase,
    items_phrase,
    neighbors_phrase,
    users_phrase,
)

#: Neighbours listed per popular item.
NEIGHBOR_K = 5

#: Human names of the manifest's drop reasons (see item2vec.validation).
DROP_REASONS = {
    "null_user": "empty user id",
    "null_item": "empty item id",
    "bad_timestamp": "unparseable time",
}

#: Stages of ``manifest["counts"]`` in pipeline order, with a short explanation.
COUNT_STAGES = (
    ("events_read", "events read", "rows in the input files"),
    ("events_kept", "events kept", "after dropping bad rows and applying filters"),
    ("users", "users", "distinct users among the kept events"),
    ("items", "items", "distinct items among the kept events"),
    ("sequences", "sequences", "user histories or sessions"),
    ("train_events", "training events", "events left for training after the split"),
    ("test_users", "test users", "users with a held-out item"),
    ("vocabulary", "vocabulary", "items with a vector (seen at least min_count times)"),
)


def md_escape(text: Any) -> str:
    """Text made safe inside Markdown prose and table cells.

    Only the characters that would change the rendering are escaped (emphasis,
    code, links, HTML, table cells), so the file stays readable as plain text.
    """
    text = " ".join(str(text).split())
    for char in "\\`*_[]<|":
        text = text.replace(char, "\\" + char)
    return text


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return md_escape(value)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one."""
    # Manifests are hand-editable JSON: a wrong shape blanks a section, never crashes.
    return value if isinstance(value, dict) else {}


def gate_section(gate: dict[str, Any]) -> list[str]:
    """The gate decision, what it did to LATEST, and its checks (``manifest["gate"]``)."""
    lines = ["## Quality gate", ""]
    if "passed" not in gate:
        return [*lines, "_No gate decision is recorded in this version's manifest._", ""]
    verdict = "**passed**" if gate["passed"] else "**refused**"
    effect = (
        "This version was allowed to become LATEST."
        if gate["passed"]
        else "LATEST was not moved to this version."
    )
    reason = md_escape(gate.get("reason", "no reason recorded"))
    lines += [f"Gate {verdict}: {reason}. {effect}", ""]
    checks = [c for c in gate.get("checks") or [] if isinstance(c, dict)]
    if checks:
        lines += ["| check | passed | reason |", "| --- | --- | --- |"]
        lines += [
            f"| {md_escape(c.get('check', '?'))} | {'yes' if c.get('passed') else 'no'} "
            f"| {md_escape(c.get('reason', ''))} |"
            for c in checks
        ]
        lines.append("")
    return lines


def metrics_section(metrics: dict[str, Any]) -> list[str]:
    """How the evaluation ran, what each metric means, and the metrics table.

    The table (:func:`item2vec.metric_table.metrics_markdown`) bolds the best
    value of each column; ``metrics`` is ``manifest["metrics"]``.
    """
    lines = ["## Metrics", ""]
    table = metrics_markdown(metrics, mark_best=True)
    if not table:
        return [*lines, "_No metrics are recorded in this version's manifest._", ""]
    setup = [
        users_phrase(metrics) if isinstance(metrics.get("users"), int) else None,
        f"split {metrics['split']}" if metrics.get("split") else None,
        f"scoring {metrics['scoring']}" if metrics.get("scoring") else None,
        (
            f"query = last {items_phrase(metrics['query_items'])}"
            if metrics.get("query_items")
            else None
        ),
    ]
    if any(setup):
        lines += ["Evaluation: " + ", ".join(md_escape(s) for s in setup if s) + ".", ""]
    lines += [
        "HR@k: share of test users whose held-out item is in their top k. NDCG@k and MRR@k "
        "reward a hit ranked higher. coverage@k: share of the catalogue that appears in "
        "anyone's top k. unrankable: share of held-out items the method cannot score "
        "(counted as misses). Best value per column in bold (highest, lowest for unrankable).",
        "",
        table,
        "",
    ]
    notes = [baselines_phrase(metrics), fallback_phrase(metrics)]
    lines += [f"- {md_escape(note)}" for note in notes if note]
    return [*lines, ""]


def neighbor_table_section(metrics: dict[str, Any]) -> list[str]:
    """The neighbour tables measured item to item: the model's beside item-kNN's."""
    lines = ["## The neighbour table, item to item", ""]
    table = metrics_markdown(neighbors_record(metrics), mark_best=True)
    if not table:
        return [*lines, "_No neighbour-table figures in this version's manifest._", ""]
    lines += [
        "HR@k: share of test users whose next item is among the top k neighbours of their "
        "last training item in the table (only that item itself excluded). category@k: "
        "mean share of a queried item's top k neighbours in its own category. item-kNN: "
        "the neighbours by cosine over the user-item matrix.",
        "",
        table,
        "",
        f"- {md_escape(neighbors_phrase(metrics))}",
        "",
    ]
    return lines


def counts_section(counts: dict[str, Any]) -> list[str]:
    """Rows per stage in pipeline order, then drops at ingest by reason (``manifest["counts"]``)."""
    lines = ["## Counts per stage", ""]
    if not counts:
        return [*lines, "_No counts are recorded in this version's manifest._", ""]
    lines += ["| stage | rows | what it counts |", "| --- | ---: | --- |"]
    known = {key for key, _, _ in COUNT_STAGES} | {"dropped"}
    for key, label, meaning in COUNT_STAGES:
        if key in counts:
            lines.append(f"| {label} | {_fmt(counts[key])} | {meaning} |")
    for key, value in counts.items():
        if key not in known and not isinstance(value, dict | list):
            lines.append(f"| {md_escape(key.replace('_', ' '))} | {_fmt(value)} | |")
    lines.append("")
    dropped = as_dict(counts.get("dropped"))
    total = sum(v for v in dropped.values() if isinstance(v, int))
    read = counts.get("events_read")
    if dropped and not total:
        reasons = ", ".join(md_escape(DROP_REASONS.get(r, r.replace("_", " "))) for r in dropped)
        lines += [f"No rows were dropped at ingest (reasons checked: {reasons}).", ""]
    elif dropped:
        share = (
            f" ({total / read:.2%} of the events read)" if isinstance(read, int) and read else ""
        )
        lines += [
            f"Rows dropped at ingest, by reason: {total:,} in all{share}.",
            "",
            "| reason | rows |",
            "| --- | ---: |",
        ]
        lines += [
            f"| {md_escape(DROP_REASONS.get(reason, reason.replace('_', ' ')))} | {_fmt(rows)} |"
            for reason, rows in dropped.items()
        ]
        lines.append("")
    return lines


def figure_section(title: str, png: str | None, alt: str, note: str, caption: str) -> list[str]:
    """A figure with its caption, or ``note`` in its place when ``png`` is None.

    Parameters
    ----------
    title
        The section heading.
    png
        The PNG's file name, linked relatively; None when the figure was not drawn.
    alt
        The image's alternative text.
    note
        Why there is no figure, shown instead of it.
    caption
        How to read the figure, shown under it.
    """
    lines = [f"## {title}", ""]
    if png is None:
        return [*lines, f"_{note}_", ""]
    return [*lines, f"![{alt}]({png})", "", caption, ""]


def neighbors_section(
    popular: list[str], neighbors: pd.DataFrame, counts: dict[str, int], names: dict[str, str]
) -> list[str]:
    """Each popular item with its training count and nearest neighbours, by title.

    Parameters
    ----------
    popular
        The most frequent item ids, most frequent first.
    neighbors
        Rows of ``item_neighbors.parquet`` for those items.
    counts
        Training occurrences per popular item.
    names
        Title per item id; an item without one is shown by its id.
    """
    lines = [
        "## Nearest neighbours of popular items",
        "",
        f"The {len(popular)} most frequent items and their {NEIGHBOR_K} nearest neighbours "
        "by cosine similarity of the item vectors (from `item_neighbors.parquet`).",
        "",
    ]
    if not popular:
        return [*lines, "_This version has no items._", ""]

    def name(item: str) -> str:
        title = names.get(item)
        return f"{md_escape(title)} [{md_escape(item)}]" if title else f"item {md_escape(item)}"

    for item in popular:
        lines += [f"**{name(item)}**, {counts.get(item, 0):,} training occurrences", ""]
        near = neighbors[neighbors["item_id"] == item].sort_values("rank").head(NEIGHBOR_K)
        if near.empty:
            lines += ["_No neighbours published for this item._", ""]
            continue
        lines += [
            f"{int(row.rank)}. {name(row.neighbor_id)} (cosine {float(row.score):.3f})"
            for row in near.itertuples()
        ]
        lines.append("")
    return lines
