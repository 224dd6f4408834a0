"""Summaries of a run: example neighbours by title, phrases, and the Prefect run page.

The metrics table itself is built and rendered by :mod:`item2vec.metric_table`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa

from item2vec.layout import ITEMS_FILE
from item2vec.metric_table import metrics_markdown, metrics_rows, neighbors_record
from item2vec.storage import as_path, read_parquet, scheme
from item2vec.vectors import ItemVectors


def items_phrase(n: int) -> str:
    """``1 item`` or ``n items``: query lengths in messages and reports."""
    return f"{n} item" if n == 1 else f"{n} items"


def users_phrase(metrics: dict[str, Any]) -> str:
    """``610 test users``, or ``20,000 of 198,682 test users (a fixed sample)``."""
    if metrics.get("sampled_from"):
        return f"{metrics['users']:,} of {metrics['sampled_from']:,} test users (a fixed sample)"
    return f"{metrics['users']:,} test users"


def baselines_phrase(metrics: dict[str, Any]) -> str | None:
    """How item-kNN's settings were chosen, e.g. ``item-kNN at its best on the validation
    target: query = last 2 items, cosine (validation hr@10 by query length: 1 0.087, ...)``."""
    settings = (metrics.get("baseline_settings") or {}).get("item_knn")
    if not isinstance(settings, dict) or "query_items" not in settings:
        return None
    chosen = (
        f"query = last {items_phrase(settings['query_items'])}, {settings.get('similarity', '')}"
    )
    tried = settings.get("validation")
    if not isinstance(tried, dict):
        return f"item-kNN: {chosen} ({settings.get('chosen_on', '')})"
    scores = ", ".join(f"{q} {v:.3f}" for q, v in tried.items())
    by_similarity = settings.get("validation_similarity")
    similarities = (
        "; by similarity: " + ", ".join(f"{s} {v:.3f}" for s, v in by_similarity.items())
        if isinstance(by_similarity, dict)
        else ""
    )
    # A warm night keeps the settings an earlier version chose (item2vec.nightly_knn).
    kept = f", kept from {settings['chosen_in']}" if settings.get("chosen_in") else ""
    return (
        f"item-kNN at its best on the validation target ({settings.get('chosen_on', '')}"
        f"{kept}): {chosen} (by query length: {scores}{similarities})"
    )


def fallback_phrase(metrics: dict[str, Any]) -> str | None:
    """What the ``with fallback`` row means, with the share of test users it served."""
    fallback = metrics.get("model_with_fallback")
    if not isinstance(fallback, dict) or "fallback_share" not in fallback:
        return None
    return (
        f"with fallback: the {fallback['fallback_share']:.1%} of test users the model cannot "
        "query are served by item-kNN, then popularity, as in user_recommendations.parquet"
    )


def neighbors_phrase(metrics: dict[str, Any]) -> str | None:
    """How the neighbour tables were evaluated (``metrics["neighbors"]``)."""
    neighbors = metrics.get("neighbors")
    if not isinstance(neighbors, dict):
        return None
    category = neighbors.get("category")
    parts = [
        "query = each test user's last training item alone, target = their next item",
        f"the model's table scored {neighbors['scoring']}" if neighbors.get("scoring") else None,
        f"category@k: share of an item's top k in its category ({category})" if category else None,
    ]
    return "; ".join(p for p in parts if p)


def stages_phrase(stage_seconds: dict[str, float], shown: int = 8) -> str:
    """The slowest stages and their wall times, e.g. ``train 41.2s, recommend 3.1s``.

    Stages under 0.05 s are left out; the baselines run beside training, so
    the times need not add up to the run's.
    """
    slowest = sorted(stage_seconds.items(), key=lambda item: -item[1])[:shown]
    return ", ".join(f"{name} {seconds:,.1f}s" for name, seconds in slowest if seconds >= 0.05)


def example_neighbors(
    neighbors: pd.DataFrame,
    counts: pd.Series,
    titles: pd.Series | None,
    n_items: int = 3,
    k: int = 5,
) -> str:
    """The ``n_items`` most frequent items and their ``k`` nearest neighbours.

    Parameters
    ----------
    neighbors
        The published neighbour table (item_id, rank, neighbor_id, score).
    counts
        Training count per item id, to pick well-known items.
    titles
        Title per item id; ids are shown when it is None or lacks an item.
    """

    def name(item: str) -> str:
        if titles is not None and item in titles.index:
            return f"{titles[item]} [{item}]"
        return str(item)

    lines = []
    for item in counts.sort_values(ascending=False, kind="stable").index[:n_items]:
        lines.append(name(item))
        near = neighbors[(neighbors["item_id"] == item) & (neighbors["rank"] <= k)]
        for row in near.sort_values("rank").itertuples():
            lines.append(f"  {row.rank}. {name(row.neighbor_id)}  ({row.score:.3f})")
    return "\n".join(lines)


def title_series(items: pa.Table | None) -> pd.Series | None:
    """Title per item id from an items table (``item_id``, ``title``), or None without one."""
    if items is None:
        return None
    return pd.Series(items.column("title").to_pylist(), index=items.column("item_id").to_pylist())


def published_titles(version_dir: str | Path) -> pd.Series | None:
    """Title per item id from a version's ``items.parquet``, or None when it has none."""
    path = as_path(version_dir) / ITEMS_FILE
    if not path.is_file():
        return None
    return title_series(read_parquet(path, columns=["item_id", "title"]))


def counts_markdown(counts: dict[str, Any]) -> str:
    """Counts per stage, with drops by reason, as a Markdown list."""
    lines = []
    for key, value in counts.items():
        if isinstance(value, dict):
            detail = ", ".join(f"{reason} {n:,}" for reason, n in value.items())
            lines.append(f"- {key}: {detail or 'none'}")
        else:
            lines.append(f"- {key}: {value:,}")
    return "\n".join(lines)


def run_markdown(manifest: dict[str, Any], version_dir: str, neighbors_text: str) -> str:
    """A run's summary for a Prefect run page: metrics, gate, counts, neighbours."""
    gate = manifest["gate"]
    verdict = "passed" if gate["passed"] else "**refused**"
    return "\n\n".join(
        [
            f"# {manifest['model_name']} {manifest['version']}",
            f"Published at `{version_dir}`.",
            f"## Gate: {verdict}\n\n{gate['reason']}",
            "## Metrics\n\n"
            + metrics_markdown(manifest["metrics"])
            + _notes(baselines_phrase(manifest["metrics"]), fallback_phrase(manifest["metrics"])),
            "## Neighbour tables, item to item\n\n"
            + metrics_markdown(neighbors_record(manifest["metrics"]))
            + _notes(neighbors_phrase(manifest["metrics"])),
            "## Counts\n\n" + counts_markdown(manifest["counts"]),
            "## Nearest neighbours of the most frequent items\n\n```\n" + neighbors_text + "\n```",
        ]
    )


def _notes(*phrases: str | None) -> str:
    """Phrases as a Markdown list under a table; empty when there are none."""
    shown = [f"- {phrase}" for phrase in phrases if phrase]
    return "\n\n" + "\n".join(shown) if shown else ""


def artifact_key(text: str) -> str:
    """A Prefect artifact key from any name: lowercase letters, digits and dashes only."""
    key = "".join(c if c.isalnum() and c.isascii() else "-" for c in text.lower())
    return "-".join(part for part in key.split("-") if part) or "item2vec"


REPORT_FILE = "report.md"
#: Significant digits of the numbers in a run page's tables.
TABLE_DIGITS = 4


def significant(value: float, digits: int = TABLE_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits, as a plain float (0.1234)."""
    return float(f"{value:.{digits}g}")


def rounded_rows(rows: list[dict[str, Any]], digits: int = TABLE_DIGITS) -> list[dict[str, Any]]:
    """Table rows with every float rounded to ``digits`` significant digits."""
    return [
        {k: significant(v, digits) if isinstance(v, float) else v for k, v in row.items()}
        for row in rows
    ]


def version_location(version_dir: str | Path) -> str:
    """Where a version is, as a person would type it: an absolute path, or the URL as it
    is when the output is on an object store (``s3://bucket/out/m/v``).

    A ``file://`` URL is shown as its path: a browser will not open it from a run page,
    and it means nothing on another machine.
    """
    text = str(version_dir)
    found = scheme(text)
    if found == "file":
        text = unquote(urlparse(text).path)
    elif found is not None:
        return text.rstrip("/")
    return str(Path(text).resolve())


def join_location(location: str, name: str) -> str:
    """``name`` inside the folder at ``location`` (a path or a URL)."""
    return f"{location.rstrip('/')}/{name}" if scheme(location) else str(Path(location) / name)


@dataclass
class RunPage:
    """What a run page shows: Markdown summary, metrics rows and where the version is."""

    key: str
    markdown: str
    metrics: list[dict[str, Any]]
    location: str
    label: str
    report: str | None = None
    about: str = "Metrics against the baselines, gate decision, counts and example neighbours"

    def report_line(self, report_link: str | None = None) -> str | None:
        """Where the report is, with ``report_link`` to it on the run page; None without one."""
        if not self.report:
            return None
        link = f" ([on this run's page]({report_link}))" if report_link else ""
        return f"Report: `{self.report}`{link}."

    def version_markdown(self, report_link: str | None = None) -> str:
        """The version's name and location, and its report's (:meth:`report_line`)."""
        lines = [
            f"# {self.label}",
            f"Published at `{self.location}`.",
            self.report_line(report_link),
        ]
        return "\n\n".join(line for line in lines if line)


def run_page(
    version_dir: str | Path,
    vectors: ItemVectors,
    neighbors: pa.Table,
    items: pa.Table | None,
) -> RunPage:
    """Build a published version's run-page content from its manifest and tables.

    Numbers in the metrics table have :data:`TABLE_DIGITS` significant digits.
    """
    location = version_location(version_dir)
    version_dir = as_path(version_dir)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    counts = pd.Series(vectors.counts, index=vectors.item_ids)
    examples = example_neighbors(neighbors.to_pandas(), counts, title_series(items))
    has_report = (version_dir / REPORT_FILE).is_file()
    return RunPage(
        key=artifact_key(manifest["model_name"]),
        markdown=run_markdown(manifest, location, examples),
        metrics=rounded_rows(metrics_rows(manifest["metrics"])),
        location=location,
        label=f"{manifest['model_name']}/{manifest['version']}",
        report=join_location(location, REPORT_FILE) if has_report else None,
    )


#: Markdown image links to PNG files beside the report.
_PNG_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s/]+\.png)\)")


def report_markdown(version_dir: str | Path, report_file: str = REPORT_FILE) -> str | None:
    """The version's ``report.md`` (or ``report_file``) with its PNGs inlined as ``data:`` URIs.

    A run page cannot follow links to files on the machine that ran the flow,
    so the plots travel inside the markdown (about 300 KB on the sample).

    Returns
    -------
    str or None
        None when the version has no report (``--no-report``).
    """
    version_dir = as_path(version_dir)
    report = version_dir / report_file
    if not report.is_file():
        return None

    def inline(match: re.Match[str]) -> str:
        image = version_dir / match.group(2)
        if not image.is_file():
            return match.group(0)
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"![{match.group(1)}](data:image/png;base64,{data})"

    return _PNG_LINK.sub(inline, report.read_text())
