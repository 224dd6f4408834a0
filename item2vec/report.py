"""Report: a human-readable ``report.md`` with figures for one published version.

Everything is rebuilt from what :mod:`item2vec.publish` wrote (the Parquet
tables and ``manifest.json``), so a report can be regenerated at any time, on
any copy of a version, without retraining::

    from item2vec.report import write_report
    write_report(Path("output/movielens/20261124T101500Z-3f2a9c1"))

The report holds the gate decision, the metrics table, counts per stage with
drops by reason, the nearest neighbours of popular items by title, and three
figures, one function each:

* :func:`plot_hit_rate_curve`: HR@k for k = 1..50, model beside both baselines;
* :func:`plot_training_loss`: the training loss per epoch;
* :func:`plot_embedding_map`: a 2-D map (PCA, then t-SNE, see
  :func:`project_embeddings`) of the most frequent items, coloured by category.

A figure whose data the manifest lacks (older versions have no curve or loss)
is replaced by a note in the report, never by an empty plot.

matplotlib and scikit-learn are imported inside the functions, so importing
this module stays cheap for the CLI.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from item2vec.discovery import first_few
from item2vec.errors import InputError
from item2vec.publish import ITEMS_FILE, NEIGHBORS_FILE, VECTORS_FILE
from item2vec.reader import read_manifest, vector_matrix
from item2vec.summary import METHODS, items_phrase, users_phrase

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

REPORT_FILE = "report.md"
HIT_RATE_PNG = "hr_at_k.png"
LOSS_PNG = "training_loss.png"
MAP_PNG = "embedding_map.png"

#: Figure size in inches and resolution: 800 x 500 pixels, readable inline on GitHub.
FIGSIZE = (8.0, 5.0)
DPI = 100

#: Items-table columns tried for a category, in order. A value may hold several
#: categories separated by "|" (MovieLens ``genres``); the first one is used.
CATEGORY_COLUMNS = ("genres", "genre", "categories", "category")

#: Categories with their own colour on the map; the rest share "other". Nine,
#: because tab10 has nine colours besides grey, and grey means "other".
MAX_CATEGORIES = 9
CATEGORY_COLOURS = tuple(f"C{i}" for i in (0, 1, 2, 3, 4, 5, 6, 8, 9))
#: Points of the map labelled with their title (the most frequent items).
MAX_LABELS = 15
#: The most frequent items among which the labelled ones are chosen.
LABEL_CANDIDATES = 200
#: Popular items listed with their neighbours, and neighbours per item.
NEIGHBOR_ITEMS = 5
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

#: Colour of the items outside the top categories (and of all items without any).
OTHER_COLOUR = "#b0b0b0"


# --------------------------------------------------------------------------- reading


def _read_parquet(path: Path, columns: list[str] | None = None, **kwargs: Any) -> pa.Table:
    if not path.is_file():
        raise InputError(
            f"{path.name} missing from {path.parent}; the version is incomplete; "
            "republish it or choose another version"
        )
    try:
        table = pq.read_table(path, columns=columns, **kwargs)
    except (OSError, pa.ArrowException) as error:
        raise InputError(
            f"{path} cannot be read as Parquet with columns {columns} ({error}); "
            "republish the version"
        ) from error
    return table


def _popular_rows(counts: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` largest counts, most frequent first, ties in table order.

    The same order as the CLI's summary, so the report's popular items start
    with the ones the run printed.
    """
    order = np.argsort(-counts, kind="stable")
    return order[:n]


def _category_column(items: pd.DataFrame) -> str | None:
    """The items-table column that holds a category, or None."""
    lowered = {str(name).lower(): name for name in items.columns}
    for candidate in CATEGORY_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    return None


def item_categories(items: pd.DataFrame | None, item_ids: Sequence[str]) -> list[str | None] | None:
    """One category per item: the first "|"-separated value of the category column.

    Parameters
    ----------
    items
        The version's items table (``item_id`` plus any columns), or None.
    item_ids
        Items to look up.

    Returns
    -------
    list or None
        A category (or None when the item has none) per item, or None when the
        items table is missing or has no column named like ``genres``,
        ``genre``, ``categories`` or ``category``.
    """
    if items is None or "item_id" not in items.columns:
        return None
    column = _category_column(items)
    if column is None:
        return None
    raw = items.drop_duplicates("item_id").set_index("item_id")[column]
    first = raw.astype("string").str.split("|", n=1).str[0].str.strip()
    lookup = first.reindex(pd.Index(list(item_ids), dtype=object))
    return [value if isinstance(value, str) and value else None for value in lookup.tolist()]


# --------------------------------------------------------------------------- projection


def project_embeddings(
    vectors: np.ndarray, seed: int = 0, pca_dims: int = 30
) -> tuple[np.ndarray, str]:
    """Project vectors to 2-D: L2-normalise, PCA to ``pca_dims``, then t-SNE.

    Parameters
    ----------
    vectors
        ``(n, dim)`` item vectors.
    seed
        ``random_state`` of PCA and t-SNE; the same seed gives the same map.
    pca_dims
        Dimensions kept by PCA before t-SNE (fewer when ``dim`` or ``n`` is
        smaller). PCA first removes noise and makes t-SNE several times faster.

    Returns
    -------
    coords : numpy.ndarray
        ``(n, 2)`` float array.
    method : str
        How the map was made, for the figure: ``"PCA + t-SNE"``, or ``"PCA"``
        when there are too few items for t-SNE to mean anything.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    vectors = np.asarray(vectors, dtype=np.float64)
    n, dim = vectors.shape
    if n == 0:
        return np.zeros((0, 2)), "none"
    # Neighbours are ranked by cosine; on unit vectors euclidean distance is a
    # monotone function of cosine, so the map shows the same closeness.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    components = max(1, min(pca_dims, dim, n))
    # One thread: t-SNE's OpenMP threads spin-wait, and on a busy machine (a
    # flow running beside other work) 1,000 points took 25-45 s with two
    # threads against 4-10 s with one.
    with threadpool_limits(limits=1):
        reduced = PCA(n_components=components, random_state=seed).fit_transform(unit)
        if n < 10 or components < 2:
            # t-SNE needs perplexity < n; with a handful of points a linear map says more.
            coords = np.zeros((n, 2))
            coords[:, : min(2, components)] = reduced[:, :2]
            return coords, "PCA"
        tsne = TSNE(
            n_components=2,
            perplexity=min(30.0, (n - 1) / 3),
            init="pca",
            learning_rate="auto",
            random_state=seed,
        )
        return tsne.fit_transform(reduced), "PCA + t-SNE"


# --------------------------------------------------------------------------- figures


def _figure() -> Figure:
    """A figure on the Agg canvas, without pyplot.

    pyplot keeps global state (the current backend and every open figure); a
    library that switched a notebook's backend or leaked figures would be rude.
    A bare Figure on an Agg canvas renders PNGs with none of that.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    """Write a PNG atomically, so a reader never sees half an image."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        figure.savefig(temporary, format="png", dpi=DPI)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def plot_hit_rate_curve(
    curve: Mapping[str, Sequence[float]],
    path: Path,
    marked_k: Sequence[int] = (),
    users: int | None = None,
) -> Path:
    """Plot HR@k against k for the model and the baselines.

    Parameters
    ----------
    curve
        ``manifest["metrics"]["curve"]``: ``k`` (1..K) plus one list of HR values
        per method (``model``, ``popularity``, ``item_knn``); missing methods
        are left out.
    path
        PNG to write.
    marked_k
        Cut-offs to mark with a vertical line (the evaluation's k, e.g. 10 and 20).
    users
        Number of test users, shown in the title.

    Returns
    -------
    Path
        ``path``.
    """
    ks = [int(k) for k in curve["k"]]
    figure = _figure()
    ax = figure.add_subplot()
    styles = {
        "model": ("C0", "-", 2.2),
        "popularity": ("C7", "--", 1.6),
        "item_knn": ("C1", "-.", 1.6),
    }
    at = min(marked_k) if marked_k else None
    for key, label in METHODS:
        values = curve.get(key)
        if values is None or len(values) != len(ks):
            continue
        colour, style, width = styles[key]
        if at is not None and at in ks:
            label = f"{label} (HR@{at} = {values[ks.index(at)]:.3f})"
        ax.plot(ks, values, color=colour, linestyle=style, linewidth=width, label=label)
    for k in marked_k:
        if ks and ks[0] <= k <= ks[-1]:
            ax.axvline(k, color="0.6", linewidth=0.8, linestyle=":")
            # At the foot of the line: the legend sits in the top-left corner.
            ax.annotate(
                f"k={k}",
                (k, 0.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, 4),
                textcoords="offset points",
                color="0.4",
                fontsize=8,
            )
    ax.set_xlim(ks[0] if ks else 1, ks[-1] if ks else 1)
    top = max((max(v) for key, v in curve.items() if key != "k" and v), default=0.0)
    ax.set_ylim(0, max(top * 1.08, 0.01))
    ax.set_xlabel("k (length of the recommendation list)")
    ax.set_ylabel("HR@k (share of users whose held-out item is in the top k)")
    ax.yaxis.label.set_fontsize(9)
    who = f" ({users:,} test users)" if users else ""
    ax.set_title(f"Hit rate at k: item2vec against the baselines{who}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", title="method", fontsize=9)
    return _save(figure, path)


def plot_training_loss(loss: Sequence[float], path: Path, seconds: float | None = None) -> Path:
    """Plot the training loss per epoch.

    Parameters
    ----------
    loss
        ``manifest["training"]["loss"]``: gensim's loss summed over each epoch.
    path
        PNG to write.
    seconds
        Training time, shown in the title when given.

    Returns
    -------
    Path
        ``path``.
    """
    epochs = np.arange(1, len(loss) + 1)
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(epochs, loss, marker="o", markersize=4, color="C0", label="loss of the epoch")
    if len(loss) >= 6:
        # gensim's per-epoch loss jumps about; a centred 3-epoch mean shows the trend.
        trend = pd.Series(loss, dtype=float).rolling(3, center=True, min_periods=2).mean()
        ax.plot(epochs, trend, color="C1", linewidth=2, alpha=0.8, label="3-epoch mean")
        ax.legend(loc="upper right", fontsize=9)
    # From zero, so the size of the fall reads true and the noise does not look dramatic.
    ax.set_ylim(0, max(loss) * 1.08 if max(loss) > 0 else 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss summed over the epoch (lower is better)")
    took = f", {seconds:.1f} s in all" if seconds is not None else ""
    ax.set_title(f"Word2Vec training loss per epoch ({len(loss)} epochs{took})")
    # Integer epochs only: "2.5" on an epoch axis would only confuse.
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if max(loss) >= 1000:
        # gensim's losses run to millions; "600,000" reads faster than "6e5".
        ax.yaxis.set_major_formatter(_thousands())
    ax.grid(alpha=0.3)
    return _save(figure, path)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:,.0f}")


def _shorten(text: str, width: int = 30) -> str:
    """``text`` cut to ``width`` characters, keeping a short ``(...)`` suffix such as a year.

    "Star Wars: Episode V - The Empire Strikes Back (1980)" becomes
    "Star Wars: Episode V… (1980)": the year tells remakes and sequels apart.
    Cuts fall between words when one ends near the limit.
    """
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    head, _, tail = text.rpartition(" (")
    suffix = ""
    if head and tail.endswith(")") and len(tail) <= 7 and len(tail) + 2 < width - 6:
        text, suffix = head, f" ({tail}"
    keep = width - len(suffix) - 1
    cut = text[:keep]
    space = cut.rfind(" ")
    if space >= keep - 10 and text[keep : keep + 1] != " ":
        cut = cut[:space]
    return cut.rstrip(" -:,;") + "…" + suffix


def plot_embedding_map(
    coords: np.ndarray,
    path: Path,
    categories: Sequence[str | None] | None = None,
    labels: Mapping[int, str] | None = None,
    category_name: str | None = None,
    method: str = "PCA + t-SNE",
) -> Path:
    """Scatter the projected items, coloured by category, a few labelled by title.

    Parameters
    ----------
    coords
        ``(n, 2)`` positions, e.g. from :func:`project_embeddings`.
    path
        PNG to write.
    categories
        A category (or None) per point; the ``MAX_CATEGORIES`` commonest get a
        colour each and the rest are grey "other". None draws every point alike.
    labels
        Label text per point index, in priority order (most frequent item first).
        Up to ``MAX_LABELS`` of them are labelled, skipping points too close to
        one already labelled, so the labels spread over the map.
    category_name
        What the categories are, for the legend title (e.g. "first genre").
    method
        How ``coords`` were made, for the title.

    Returns
    -------
    Path
        ``path``.
    """
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    figure = _figure()
    ax = figure.add_subplot()
    if categories is not None and any(c is not None for c in categories):
        series = pd.Series(list(categories), dtype=object)
        top = series.dropna().value_counts().index[:MAX_CATEGORIES].tolist()
        rest = ~series.isin(top).to_numpy()
        if rest.any():
            ax.scatter(
                coords[rest, 0], coords[rest, 1], s=10, color=OTHER_COLOUR, alpha=0.6,
                linewidths=0, label=f"other ({int(rest.sum())})",
            )  # fmt: skip
        # Commonest first, so the rarer colours are drawn on top and stay visible.
        for index, name in enumerate(top):
            mask = (series == name).to_numpy()
            ax.scatter(
                coords[mask, 0], coords[mask, 1], s=12, color=CATEGORY_COLOURS[index], alpha=0.85,
                linewidths=0, label=f"{_shorten(name, 18)} ({int(mask.sum())})",
            )  # fmt: skip
        handles, names = ax.get_legend_handles_labels()
        # "other" was drawn first (underneath) but reads best at the end of the legend.
        if rest.any():
            handles, names = handles[1:] + handles[:1], names[1:] + names[:1]
        ax.legend(
            handles, names, title=(category_name or "category") + " (number of items)",
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=8,
            markerscale=1.6, frameon=False, alignment="left",
        )  # fmt: skip
    else:
        ax.scatter(coords[:, 0], coords[:, 1], s=10, color="C0", alpha=0.7, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    short = method.split()[-1]  # "t-SNE" or "PCA": the projection that made the axes
    ax.set_xlabel(f"{short} dimension 1 (no unit)", fontsize=9)
    ax.set_ylabel(f"{short} dimension 2 (no unit)", fontsize=9)
    ax.set_title(
        f"Embedding map of the {n:,} most frequent items ({method})\n"
        "close points = items used in similar contexts",
        fontsize=11,
    )
    if labels:
        _place_labels(figure, ax, coords, labels)
    return _save(figure, path)


def _place_labels(
    figure: Figure,
    ax: Any,
    coords: np.ndarray,
    labels: Mapping[int, str],
    max_labels: int = MAX_LABELS,
    min_gap: float = 30.0,
) -> int:
    """Label up to ``max_labels`` points, spread out and without overlaps.

    The most frequent items sit close together on the map, so labelling the
    top 15 would stack every label in one corner. Candidates are taken in the
    order given (most frequent first) and skipped when within ``min_gap``
    pixels of a labelled point or under a label, so the labels name items all
    over the map. Each label tries spots around its point at growing distances
    and takes the cheapest allowed one: inside the axes, clear of other labels,
    labelled points and leader lines, costing its distance plus the number of
    points it would hide. A thin line joins a label placed away from its point.

    Returns
    -------
    int
        How many labels were placed.
    """
    # Draw once so the layout is final, then freeze it: the spots below are
    # computed in pixels and must not move when the figure is saved.
    figure.canvas.draw()
    figure.set_layout_engine("none")
    renderer = figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pixels = ax.transData.transform(coords)
    scale = figure.dpi / 72.0  # offset points -> pixels
    style = {
        "fontsize": 7.5,
        "zorder": 4,
        "bbox": {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
    }
    angles = np.deg2rad(np.arange(0, 360, 22.5))
    chosen: list[int] = []
    placed: list[tuple[float, float, float, float]] = []
    lines: list[tuple[float, float, float, float]] = []  # leader lines, point -> label
    for row in labels:
        if len(chosen) >= max_labels:
            break
        px, py = pixels[row]
        if chosen and np.hypot(*(pixels[chosen] - pixels[row]).T).min() < min_gap:
            continue
        if any(b[0] - 4 <= px <= b[2] + 4 and b[1] - 4 <= py <= b[3] + 4 for b in placed):
            continue
        probe = ax.annotate(labels[row], coords[row], **style)
        box = probe.get_window_extent(renderer)
        probe.remove()
        width, height = box.width + 2, box.height + 2
        marked = pixels[[*chosen, row]]
        best = None
        for distance in (4, 12, 22, 34, 48, 64):
            for angle in angles:
                dx, dy = np.cos(angle), np.sin(angle)
                ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
                va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
                ox, oy = dx * distance * scale, dy * distance * scale
                x0 = px + ox - {"left": 0, "right": width, "center": width / 2}[ha]
                y0 = py + oy - {"bottom": 0, "top": height, "center": height / 2}[va]
                x1, y1 = x0 + width, y0 + height
                spot = (x0, y0, x1, y1)
                if x0 < frame.x0 or x1 > frame.x1 or y0 < frame.y0 or y1 > frame.y1:
                    continue
                if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in placed):
                    continue
                near = (marked[:, 0] >= x0 - 4) & (marked[:, 0] <= x1 + 4)
                if (near & (marked[:, 1] >= y0 - 4) & (marked[:, 1] <= y1 + 4)).any():
                    continue
                # Crossed leader lines make a reader match labels to the wrong points.
                line = (px, py, px + ox, py + oy)
                if distance > 4 and (
                    any(_segments_cross(line, other) for other in lines)
                    or any(_segment_hits_box(line, b) for b in placed)
                ):
                    continue
                if any(_segment_hits_box(other, spot) for other in lines):
                    continue
                hidden = (
                    (pixels[:, 0] >= x0)
                    & (pixels[:, 0] <= x1)
                    & (pixels[:, 1] >= y0)
                    & (pixels[:, 1] <= y1)
                ).sum()
                cost = distance * scale + 3.0 * hidden
                if best is None or cost < best[0]:
                    best = (cost, dx * distance, dy * distance, ha, va, spot, line)
            if best is not None and best[0] <= distance * scale:
                break  # nothing further out can be cheaper
        if best is None:
            continue  # no free spot nearby: better no label than one over another
        _, ox, oy, ha, va, spot, line = best
        far = abs(ox) + abs(oy) > 5
        ax.annotate(
            labels[row],
            coords[row],
            xytext=(ox, oy),
            textcoords="offset points",
            ha=ha,
            va=va,
            arrowprops={"arrowstyle": "-", "color": "0.3", "linewidth": 0.6, "shrinkB": 3}
            if far
            else None,
            **style,
        )
        chosen.append(row)
        placed.append(spot)
        if far:
            lines.append(line)
    ax.scatter(
        coords[chosen, 0], coords[chosen, 1], s=26, facecolors="none", edgecolors="black",
        linewidths=0.9, zorder=3,
    )  # fmt: skip
    return len(chosen)


def _segments_cross(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether segments ``(x0, y0, x1, y1)`` ``a`` and ``b`` properly intersect."""

    def side(px: float, py: float, qx: float, qy: float, rx: float, ry: float) -> float:
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    d1 = side(b[0], b[1], b[2], b[3], a[0], a[1])
    d2 = side(b[0], b[1], b[2], b[3], a[2], a[3])
    d3 = side(a[0], a[1], a[2], a[3], b[0], b[1])
    d4 = side(a[0], a[1], a[2], a[3], b[2], b[3])
    return d1 * d2 < 0 and d3 * d4 < 0


def _segment_hits_box(segment: tuple[float, ...], box: tuple[float, ...]) -> bool:
    """Whether a segment passes through the inside of box ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = box
    # Shrunk by a pixel so a line ending on the box's own edge does not count.
    x0, y0, x1, y1 = x0 + 1, y0 + 1, x1 - 1, y1 - 1
    ax_, ay, bx, by = segment
    if any(x0 < x < x1 and y0 < y < y1 for x, y in ((ax_, ay), (bx, by))):
        return True
    edges = ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0))
    return any(_segments_cross(segment, edge) for edge in edges)


# --------------------------------------------------------------------------- markdown


def _md(text: Any) -> str:
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
    return _md(value)


def _as_dict(value: Any) -> dict[str, Any]:
    # Manifests are hand-editable JSON: a wrong shape blanks a section, never crashes.
    return value if isinstance(value, dict) else {}


def _gate_section(gate: dict[str, Any]) -> list[str]:
    lines = ["## Quality gate", ""]
    if "passed" not in gate:
        return [*lines, "_No gate decision is recorded in this version's manifest._", ""]
    verdict = "**passed**" if gate["passed"] else "**refused**"
    effect = (
        "This version was allowed to become LATEST."
        if gate["passed"]
        else "LATEST was not moved to this version."
    )
    lines += [f"Gate {verdict}: {_md(gate.get('reason', 'no reason recorded'))}. {effect}", ""]
    checks = [c for c in gate.get("checks") or [] if isinstance(c, dict)]
    if checks:
        lines += ["| check | passed | reason |", "| --- | --- | --- |"]
        lines += [
            f"| {_md(c.get('check', '?'))} | {'yes' if c.get('passed') else 'no'} "
            f"| {_md(c.get('reason', ''))} |"
            for c in checks
        ]
        lines.append("")
    return lines


def _metrics_section(metrics: dict[str, Any]) -> list[str]:
    lines = ["## Metrics", ""]
    rows = [(label, _as_dict(metrics.get("model") if key == "model" else
                             _as_dict(metrics.get("baselines")).get(key)))
            for key, label in METHODS]  # fmt: skip
    rows = [(label, values) for label, values in rows if values]
    if not rows:
        return [*lines, "_No metrics are recorded in this version's manifest._", ""]
    ks = metrics.get("k") or sorted(
        {int(name.split("@")[1]) for _, v in rows for name in v if name.startswith("hr@")}
    )
    names = [f"{m}@{k}" for k in ks for m in ("hr", "ndcg", "mrr", "coverage")] + ["unrankable"]
    names = [name for name in names if any(name in values for _, values in rows)]
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
        lines += ["Evaluation: " + ", ".join(_md(s) for s in setup if s) + ".", ""]
    lines += [
        "HR@k: share of test users whose held-out item is in their top k. NDCG@k and MRR@k "
        "reward a hit ranked higher. coverage@k: share of the catalogue that appears in "
        "anyone's top k. unrankable: share of held-out items the method cannot score "
        "(counted as misses). Best value per column in bold (highest, lowest for unrankable).",
        "",
        "| method | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    best = {}
    for name in names:
        values = [v[name] for _, v in rows if isinstance(v.get(name), int | float)]
        # Bold the best only when methods differ, so a tie marks nothing.
        if len({round(float(value), 4) for value in values}) > 1:
            best[name] = min(values) if name == "unrankable" else max(values)
    for label, values in rows:
        cells = []
        for name in names:
            value = values.get(name)
            cell = _fmt(float(value)) if isinstance(value, int | float) else "–"
            if name in best and value == best[name]:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _counts_section(counts: dict[str, Any]) -> list[str]:
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
            lines.append(f"| {_md(key.replace('_', ' '))} | {_fmt(value)} | |")
    lines.append("")
    dropped = _as_dict(counts.get("dropped"))
    total = sum(v for v in dropped.values() if isinstance(v, int))
    read = counts.get("events_read")
    if dropped and not total:
        reasons = ", ".join(_md(DROP_REASONS.get(r, r.replace("_", " "))) for r in dropped)
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
            f"| {_md(DROP_REASONS.get(reason, reason.replace('_', ' ')))} | {_fmt(rows)} |"
            for reason, rows in dropped.items()
        ]
        lines.append("")
    return lines


def _figure_section(title: str, png: str | None, alt: str, note: str, caption: str) -> list[str]:
    lines = [f"## {title}", ""]
    if png is None:
        return [*lines, f"_{note}_", ""]
    return [*lines, f"![{alt}]({png})", "", caption, ""]


def _neighbors_section(
    popular: list[str], neighbors: pd.DataFrame, counts: dict[str, int], names: dict[str, str]
) -> list[str]:
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
        return f"{_md(title)} [{_md(item)}]" if title else f"item {_md(item)}"

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


# --------------------------------------------------------------------------- report


def _valid_curve(curve: Any) -> dict[str, list[float]] | None:
    curve = _as_dict(curve)
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
    version_dir: Path,
    out_dir: Path | None = None,
    max_map_items: int = 1000,
    seed: int = 0,
) -> Path:
    """Write ``report.md`` and its PNG figures for one published version.

    Only the published tables and the manifest are read; nothing is retrained,
    so the report of any version can be regenerated at any time.

    Parameters
    ----------
    version_dir
        A version directory, ``<output>/<model_name>/<version>``.
    out_dir
        Where to write ``report.md``, ``hr_at_k.png``, ``training_loss.png`` and
        ``embedding_map.png``; created if needed. Defaults to ``version_dir``.
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
    ValueError
        If ``max_map_items`` is negative.
    """
    if isinstance(max_map_items, bool) or not isinstance(max_map_items, int) or max_map_items < 0:
        raise ValueError(
            f"max_map_items must be an integer >= 0 (0 leaves the map out); got {max_map_items!r}"
        )
    version_dir = Path(version_dir)
    out_dir = Path(out_dir) if out_dir is not None else version_dir
    manifest = read_manifest(version_dir)
    vectors = _read_parquet(version_dir / VECTORS_FILE, ["item_id", "count"])
    item_ids = np.asarray(vectors.column("item_id").to_pylist(), dtype=object)
    counts = vectors.column("count").to_numpy(zero_copy_only=False).astype(np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)

    popular_rows = _popular_rows(counts, NEIGHBOR_ITEMS)
    popular = [str(i) for i in item_ids[popular_rows]]
    map_rows = _popular_rows(counts, max_map_items)
    map_ids = [str(i) for i in item_ids[map_rows]]
    # Candidates for the map's labels; the plot labels MAX_LABELS of them, spread out.
    label_ids = map_ids[:LABEL_CANDIDATES]

    neighbors = _read_parquet(
        version_dir / NEIGHBORS_FILE,
        ["item_id", "rank", "neighbor_id", "score"],
        filters=[("item_id", "in", popular)] if popular else None,
    ).to_pandas()
    items = _load_items(version_dir, set(map_ids) | set(popular) | set(neighbors["neighbor_id"]))
    names: dict[str, str] = {}
    if items is not None and "title" in items.columns:
        names = {
            str(i): str(t)
            for i, t in zip(items["item_id"], items["title"], strict=True)
            if isinstance(t, str) and t.strip()
        }

    metrics = _as_dict(manifest.get("metrics"))
    training = _as_dict(manifest.get("training"))
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
        chosen = _read_parquet(path, ["vector"]).column("vector").take(pa.array(map_rows))
        matrix = vector_matrix(chosen, len(map_rows), path, "vector")
        coords, method = project_embeddings(matrix, seed=seed)
        categories = item_categories(items, map_ids)
        column = _category_column(items) if items is not None else None
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
    lines = [f"# item2vec report: {_md(model)} / {_md(version)}", ""]
    about = [f"Created {_md(manifest['created_at'])}" if manifest.get("created_at") else None]
    files = [f for f in _as_dict(manifest.get("input")).get("files") or [] if isinstance(f, dict)]
    if files:
        file_names = [f"`{Path(str(f.get('path', '?'))).name}`" for f in files]
        about.append("input: " + first_few(file_names, shown=5))
    train = _as_dict(_as_dict(manifest.get("config")).get("train"))
    shown = ("sg", "vector_size", "window", "negative", "ns_exponent", "sample", "epochs")
    if train:
        about.append(
            "training: " + ", ".join(f"{key}={train[key]}" for key in shown if key in train)
        )
    lines += ["; ".join(a for a in about if a) + ".", ""] if any(about) else []
    lines += _gate_section(_as_dict(manifest.get("gate")))
    lines += _metrics_section(metrics)
    lines += _figure_section(
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
    lines += _figure_section(
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
    lines += _counts_section(_as_dict(manifest.get("counts")))
    lines += _figure_section(
        "Embedding map",
        written[MAP_PNG],
        "2-D map of the most frequent items",
        "No embedding map: this version has fewer than two items with a vector, or "
        "max_map_items is below 2.",
        map_note,
    )
    popular_counts = dict(zip(popular, counts[popular_rows].tolist(), strict=True))
    lines += _neighbors_section(popular, neighbors, popular_counts, names)
    report = out_dir / REPORT_FILE
    temporary = report.with_name(f".{REPORT_FILE}.tmp-{os.getpid()}")
    try:
        temporary.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
        os.replace(temporary, report)
    finally:
        temporary.unlink(missing_ok=True)
    log.info("wrote report %s", report)
    return report


def _load_items(version_dir: Path, wanted: set[str]) -> pd.DataFrame | None:
    """The rows of ``items.parquet`` for ``wanted`` ids, or None without the file."""
    path = version_dir / ITEMS_FILE
    if not path.is_file():
        return None
    table = _read_parquet(path)
    if "item_id" not in table.column_names:
        log.warning("%s has no item_id column; showing ids instead of titles", path)
        return None
    ids = pc.cast(table.column("item_id"), pa.string())
    table = table.set_column(table.schema.get_field_index("item_id"), "item_id", ids)
    table = table.filter(pc.is_in(ids, value_set=pa.array(sorted(wanted), pa.string())))
    return table.to_pandas()
