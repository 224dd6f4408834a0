"""The run page's artifacts: the summary, the metrics table, where the version is, the report.

What they say is built by :mod:`item2vec.summary`; this module hands it to Prefect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from item2vec.summary import report_markdown, run_page
from item2vec.vectors import ItemVectors

REPORT_ABOUT = "Report: plots, counts, neighbours"


def run_page_url() -> str | None:
    """The Prefect UI page of the current flow run, or None when no UI address is known."""
    from prefect.runtime import flow_run
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=flow_run.id) if flow_run.id else None


def report_link(run_url: str | None) -> str | None:
    """A link to the report artifact on the run page ``run_url`` (its Artifacts tab)."""
    return f"{run_url}?tab=Artifacts" if run_url else None


def create_run_artifacts(
    version_dir: str | Path, vectors: ItemVectors, neighbors: pa.Table, items: pa.Table | None
) -> dict[str, Any]:
    """Create the run page's artifacts for a published version; returns their keys by kind.

    - ``<model>-summary``: metrics against the baselines, the gate, counts, neighbours;
    - ``<model>-metrics``: the metrics table, 4 significant digits;
    - ``<model>-version``: where the version is, as a path (or its object-store URL),
      and its report, linked on the run page;
    - ``<model>-report``: the report with its plots inlined, when the run wrote one.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    page = run_page(version_dir, vectors, neighbors, items)
    keys = {kind: f"{page.key}-{kind}" for kind in ("summary", "metrics", "version")}
    report = report_markdown(version_dir)
    link = None
    if report is not None:
        keys["report"] = f"{page.key}-report"
        create_markdown_artifact(report, key=keys["report"], description=REPORT_ABOUT)
        link = report_link(run_page_url())
    summary = "\n\n".join(p for p in (page.markdown, page.report_line(link)) if p)
    create_markdown_artifact(summary, key=keys["summary"], description=page.about)
    create_table_artifact(page.metrics, key=keys["metrics"], description="Model vs baselines")
    create_markdown_artifact(
        page.version_markdown(link), key=keys["version"], description="Where the version is"
    )
    return keys
