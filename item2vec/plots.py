"""The report's figures: HR@k curve, training loss and embedding map, one function each.

* :func:`plot_hit_rate_curve`: HR@k for k = 1..50, model beside both baselines;
* :func:`plot_training_loss`: the training loss per epoch;
* :func:`plot_embedding_map`: a 2-D map (PCA, then t-SNE, see
  :func:`project_embeddings`) of the most frequent items, coloured by category,
  a few labelled by title (see :mod:`item2vec.labels`).

Each draws on a bare Agg figure (:func:`_figure`) and writes one PNG.
matplotlib and scikit-learn are imported inside the functions, so importing
this module stays cheap for the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from item2vec.atomicfile import replacing
from item2vec.labels import _shorten, place_labels
from item2vec.metric_table import METHODS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Figure size in inches and resolution: 800 x 500 pixels, readable inline on GitHub.
FIGSIZE = (8.0, 5.0)
DPI = 100

#: Categories with their own colour on the map; the rest share "other". Nine,
#: because tab10 has nine colours besides grey, and grey means "other".
MAX_CATEGORIES = 9
CATEGORY_COLOURS = tuple(f"C{i}" for i in (0, 1, 2, 3, 4, 5, 6, 8, 9))
#: Colour of the items outside the top categories (and of all items without any).
OTHER_COLOUR = "#b0b0b0"


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
    with replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
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
        place_labels(figure, ax, coords, labels)
    return _save(figure, path)
