"""Labels on the embedding map: short titles, spread over the map, never on top of each other.

:func:`place_labels` chooses which points of a drawn scatter get a label and
where each label goes; :func:`_shorten` cuts a title to a label's width. The
placement works in pixels on the drawn figure, so it holds in the saved PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Points of the map labelled with their title (the most frequent items).
MAX_LABELS = 15


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


def place_labels(
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
