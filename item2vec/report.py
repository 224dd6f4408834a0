"""Report: a human-readable ``report.md`` with figures for one published version.

Everything is rebuilt from what :mod:`item2vec.publish` wrote (the Parquet
tables and ``manifest.json``), so a report can be regenerated at any time, on
any copy of a version, without retraining::

    from item2vec.report import write_report
    write_report(Path("output/movielens/20261124T101500Z-3f2a9c1"))

The report holds the gate decision, the metrics table, counts per stage with
drops by reason, the nearest neighbours of popular items by title, and three
figures: HR@k for k = 1..50 beside both baselines, the training loss per
epoch, and a 2-D map of the most frequent items coloured by category.

:func:`write_report` assembles it: the version's tables are read by
:mod:`item2vec.report_inputs`, the figures drawn by :mod:`item2vec.plots`
(labels by :mod:`item2vec.labels`), the sections written by
:mod:`item2vec.report_sections`, the metrics table by
:mod:`item2vec.metric_table`. A figure whose data the manifest lacks (older
versions have no curve or loss) is replaced by a note in the report, never by
an empty plot.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from item2vec.atomicfile import write_text
from item2vec.discovery import first_few
from item2vec.errors import ConfigError
from item2vec.labels import MAX_LABELS, _shorten
from item2vec.metric_table import METHODS
from item2vec.plots import (
    MAX_CATEGORIES,
    plot_embedding_map,
    plot_hit_rate_curve,
    plot_training_loss,
    project_embeddings,
)
from item2vec.publish import NEIGHBORS_FILE, VECTORS_FILE
from item2vec.reader import read_manifest, vector_matrix
from item2vec.report_inputs import (
    category_column,
    item_categories,
    load_items,
    most_frequent_rows,
    read_parquet,
)
from item2vec.report_sections import (
    as_dict,
    counts_section,
    figure_section,
    gate_section,
    md_escape,
    metrics_section,
    neighbor_table_section,
    neighbors_section,
)
from item2vec.storage import as_path, is_remote

log = logging.getLogger(__name__)

REPORT_FILE = "report.md"
HIT_RATE_PNG = "hr_at_k.png"
LOSS_PNG = "training_loss.png"
MAP_PNG = "embedding_map.png"

#: The most frequent items among which the labelled ones are chosen.
LABEL_CANDIDATES = 200
#: Popular items listed with their neighbours.
NEIGHBOR_ITEMS = 5


def _valid_curve(curve: Any) -> dict[str, list[float]] | None:
    curve = as_dict(curve)
    ks = curve.get("k")
    if not isinstance(ks, list) or not ks:
        return None
    series = {
        key: [float(v) for v in curve[key]]
        for key, _ in METHODS
        if isinstance(curve.get(key), list) and len(curve[key]) == len(ks)
    }
    return {"k": [int(k) for k in ks], **series} if series else None


def _valid_loss(loss: Any) -> list[float] | None:
    if not isinstance(loss, list) or not loss:
        return None
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in loss):
        return None
    return [float(v) for v in loss]


def write_report(
    version_dir: Path | str,
    out_dir: Path | str | None = None,
    max_map_items: int = 1000,
    seed: int = 0,
) -> Path:
    """Write ``report.md`` and its PNG figures for one published version.

    Only the published tables and the manifest are read; nothing is retrained,
    so the report of any version can be regenerated at any time.

    Parameters
    ----------
    version_dir
        A version directory, ``<output>/<model_name>/<version>``, local or a
        URL of an object store (``s3://...``).
    out_dir
        Where to write ``report.md``, ``hr_at_k.png``, ``training_loss.png`` and
        ``embedding_map.png``; created if needed. Defaults to ``version_dir``;
        required (a local folder) for a version in an object store.
        The report links the PNGs relatively, so keep them together.
    max_map_items
        How many of the most frequent items the embedding map shows. 1,000
        makes a readable map in a few seconds; t-SNE's time grows faster than
        linearly, so stay below ~10,000.
    seed
        ``random_state`` of the map's PCA and t-SNE; the same seed gives the
        same map.

    Returns
    -------
    Path
        The ``report.md`` written.

    Raises
    ------
    InputError
        If ``version_dir`` is not a readable published version.
    ConfigError
        For a version in an object store without ``out_dir``.
    ValueError
        If ``max_map_items`` is negative.
    """
    if isinstance(max_map_items, bool) or not isinstance(max_map_items, int) or max_map_items < 0:
        raise ValueError(
            f"max_map_items must be an integer >= 0 (0 leaves the map out); got {max_map_items!r}"
        )
    version_dir = as_path(version_dir)
    if out_dir is None and is_remote(version_dir):
        raise ConfigError(
            f"{version_dir} is in an object store, where a published version is not "
            "rewritten; give a local folder for the report (--out DIR, out_dir=...)"
        )
    out_dir = Path(out_dir) if out_dir is not None else version_dir
    manifest = read_manifest(version_dir)
    vectors = read_parquet(version_dir / VECTORS_FILE, ["item_id", "count"])
    item_ids = np.asarray(vectors.column("item_id").to_pylist(), dtype=object)
    counts = vectors.column("count").to_numpy(zero_copy_only=False).astype(np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)

    popular_rows = most_frequent_rows(counts, NEIGHBOR_ITEMS)
    popular = [str(i) for i in item_ids[popular_rows]]
    map_rows = most_frequent_rows(counts, max_map_items)
    map_ids = [str(i) for i in item_ids[map_rows]]
    # Candidates for the map's labels; the plot labels MAX_LABELS of them, spread out.
    label_ids = map_ids[:LABEL_CANDIDATES]

    neighbors = read_parquet(
        version_dir / NEIGHBORS_FILE,
        ["item_id", "rank", "neighbor_id", "score"],
        filters=[("item_id", "in", popular)] if popular else None,
    ).to_pandas()
    items = load_items(version_dir, set(map_ids) | set(popular) | set(neighbors["neighbor_id"]))
    names: dict[str, str] = {}
    if items is not None and "title" in items.columns:
        names = {
            str(i): str(t)
            for i, t in zip(items["item_id"], items["title"], strict=True)
            if isinstance(t, str) and t.strip()
        }

    metrics = as_dict(manifest.get("metrics"))
    training = as_dict(manifest.get("training"))
    written: dict[str, str | None] = {}

    curve = _valid_curve(metrics.get("curve"))
    if curve is not None:
        marked = [int(k) for k in metrics.get("k") or [] if isinstance(k, int)]
        users = metrics.get("users") if isinstance(metrics.get("users"), int) else None
        plot_hit_rate_curve(curve, out_dir / HIT_RATE_PNG, marked, users)
        written[HIT_RATE_PNG] = HIT_RATE_PNG
    else:
        written[HIT_RATE_PNG] = None

    loss = _valid_loss(training.get("loss"))
    if loss is not None:
        seconds = training.get("seconds")
        seconds = float(seconds) if isinstance(seconds, int | float) else None
        plot_training_loss(loss, out_dir / LOSS_PNG, seconds)
        written[LOSS_PNG] = LOSS_PNG
    else:
        written[LOSS_PNG] = None

    map_note = ""
    if len(map_rows) >= 2:
        path = version_dir / VECTORS_FILE
        chosen = read_parquet(path, ["vector"]).column("vector").take(pa.array(map_rows))
        matrix = vector_matrix(chosen, len(map_rows), path, "vector")
        coords, method = project_embeddings(matrix, seed=seed)
        categories = item_categories(items, map_ids)
        column = category_column(items) if items is not None else None
        category_name = None
        if column is not None:
            category_name = {"genres": "first genre", "categories": "first category"}.get(
                column.lower(), column
            )
        labels = {row: _shorten(names.get(item, item)) for row, item in enumerate(label_ids)}
        plot_embedding_map(coords, out_dir / MAP_PNG, categories, labels, category_name, method)
        written[MAP_PNG] = MAP_PNG
        colour = (
            f"Colour: {category_name} (column `{column}` of the items table; the first value "
            f"when it lists several); the {MAX_CATEGORIES} commonest have their own colour, "
            "the rest are grey."
            if categories is not None
            else "All points share one colour: the items table has no category column."
        )
        map_note = (
            f"The {len(map_rows):,} most frequent items, projected to 2-D ({method}, "
            f"random_state={seed}); items used in similar contexts land close together, and "
            f"the axes have no meaning of their own. {colour} Up to {MAX_LABELS} of the most "
            "frequent items, spread over the map, are circled and labelled by title."
        )
    else:
        written[MAP_PNG] = None
    # A PNG left by an earlier report of this version would contradict the note
    # that replaces it now.
    for png, target in written.items():
        if target is None:
            (out_dir / png).unlink(missing_ok=True)

    model = manifest.get("model_name", version_dir.parent.name)
    version = manifest.get("version", version_dir.name)
    lines = [f"# item2vec report: {md_escape(model)} / {md_escape(version)}", ""]
    about = [f"Created {md_escape(manifest['created_at'])}" if manifest.get("created_at") else None]
    files = [f for f in as_dict(manifest.get("input")).get("files") or [] if isinstance(f, dict)]
    if files:
        file_names = [f"`{Path(str(f.get('path', '?'))).name}`" for f in files]
        about.append("input: " + first_few(file_names, shown=5))
    train = as_dict(as_dict(manifest.get("config")).get("train"))
    shown = ("sg", "vector_size", "window", "negative", "ns_exponent", "sample", "epochs")
    if train:
        about.append(
            "training: " + ", ".join(f"{key}={train[key]}" for key in shown if key in train)
        )
    lines += ["; ".join(a for a in about if a) + ".", ""] if any(about) else []
    lines += gate_section(as_dict(manifest.get("gate")))
    lines += metrics_section(metrics)
    lines += neighbor_table_section(metrics)
    lines += figure_section(
        "Hit rate at k",
        written[HIT_RATE_PNG],
        "HR@k against k for item2vec and the baselines",
        "No HR@k curve in this version's manifest (metrics.curve); versions published "
        "before curves were recorded have none.",
        f"HR@k for every list length k from {curve['k'][0]} to {curve['k'][-1]} on the same "
        "test users; a curve above another recommends better at that list length."
        if curve
        else "",
    )
    lines += figure_section(
        "Training loss",
        written[LOSS_PNG],
        "training loss per epoch",
        "No training loss in this version's manifest (training.loss); it is recorded "
        "when training runs with compute_loss on.",
        "gensim's loss summed over each epoch. It jumps from epoch to epoch, so read the "
        + ("trend (the 3-epoch mean)" if loss and len(loss) >= 6 else "trend")
        + ": still falling at the last epoch suggests more epochs could help. The loss is "
        "a training signal, not a quality measure; the metrics above are.",
    )
    lines += counts_section(as_dict(manifest.get("counts")))
    lines += figure_section(
        "Embedding map",
        written[MAP_PNG],
        "2-D map of the most frequent items",
        "No embedding map: this version has fewer than two items with a vector, or "
        "max_map_items is below 2.",
        map_note,
    )
    popular_counts = dict(zip(popular, counts[popular_rows].tolist(), strict=True))
    lines += neighbors_section(popular, neighbors, popular_counts, names)
    report = out_dir / REPORT_FILE
    write_text(report, "\n".join(lines).rstrip() + "\n")
    log.info("wrote report %s", report)
    return report
