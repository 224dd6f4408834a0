"""The report: figures that are real, readable images, and a report.md that says what ran."""

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from item2vec.errors import InputError
from item2vec.labels import _shorten
from item2vec.neighbors import nearest_neighbors
from item2vec.plots import plot_training_loss, project_embeddings
from item2vec.publish import ITEMS_FILE, publish_version
from item2vec.report import HIT_RATE_PNG, LOSS_PNG, MAP_PNG, write_report
from item2vec.report_inputs import item_categories
from item2vec.vectors import ItemVectors

GENRES = ("Action", "Comedy", "Drama")
PER_GENRE = 40
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MODEL = {
    "hr@10": 0.1234,
    "ndcg@10": 0.0612,
    "mrr@10": 0.0456,
    "coverage@10": 0.3141,
    "hr@20": 0.2087,
    "ndcg@20": 0.0801,
    "mrr@20": 0.0499,
    "coverage@20": 0.4242,
    "unrankable": 0.0312,
}
POPULARITY = {name: round(value / 2, 4) for name, value in MODEL.items()}
ITEM_KNN = {name: round(value * 0.9, 4) for name, value in MODEL.items()}
GATE_REASON = "hr@10 0.1234 > popularity 0.0617"


def _title(i: int) -> str:
    return f"Picture {i:03d} ({1980 + i % 30})"


def _publish(
    root: Path, curve: bool = True, loss: bool = True, items: bool = True, titles=_title
) -> Path:
    """A small version: three genre worlds whose vectors cluster by genre."""
    rng = np.random.default_rng(7)
    n, dim = len(GENRES) * PER_GENRE, 16
    genre_of = np.repeat(np.arange(len(GENRES)), PER_GENRE)
    centres = rng.normal(size=(len(GENRES), dim)) * 3
    vectors = ItemVectors(
        item_ids=np.array([f"{i:03d}" for i in range(n)], dtype=object),
        vectors=(centres[genre_of] + rng.normal(size=(n, dim))).astype(np.float32),
        context_vectors=None,
        # Distinct counts, most frequent first: items 000, 001, ... are the popular ones.
        counts=np.arange(n, 0, -1, dtype=np.int64) * 5,
    )
    ks = list(range(1, 51))
    metrics = {
        "k": [10, 20],
        "users": 500,
        "split": "leave-last-out",
        "scoring": "in-out",
        "query_items": 5,
        "model": MODEL,
        "baselines": {"popularity": POPULARITY, "item_knn": ITEM_KNN},
    }
    if curve:
        metrics["curve"] = {
            "k": ks,
            "model": [0.3 * (1 - np.exp(-k / 15)) for k in ks],
            "popularity": [0.1 * (1 - np.exp(-k / 20)) for k in ks],
            "item_knn": [0.25 * (1 - np.exp(-k / 15)) for k in ks],
        }
    manifest = {
        "input": {"files": [{"path": f"/logs/day-{day}.csv"} for day in range(1, 8)]},
        "config": {"train": {"sg": 1, "vector_size": dim, "window": 5, "epochs": 8}},
        "counts": {
            "events_read": 12000,
            "events_kept": 11990,
            "dropped": {"null_user": 4, "null_item": 0, "bad_timestamp": 6},
            "users": 500,
            "items": n,
            "sequences": 500,
            "train_events": 11490,
            "test_users": 500,
            "vocabulary": n,
        },
        "metrics": metrics,
        "gate": {
            "passed": True,
            "metric": "hr@10",
            "reason": GATE_REASON,
            "checks": [{"check": "baseline", "passed": True, "reason": GATE_REASON}],
        },
    }
    if loss:
        manifest["training"] = {"loss": [9e5 / (e + 1) + 1e5 for e in range(8)], "seconds": 3.25}
    extra = {}
    if items:
        extra[ITEMS_FILE] = pa.table(
            {
                "item_id": [f"{i:03d}" for i in range(n)],
                "title": [titles(i) for i in range(n)],
                "genres": [f"{GENRES[g]}|Thriller" for g in genre_of],
            }
        )
    return publish_version(
        root,
        "films",
        vectors,
        nearest_neighbors(vectors, 5),
        manifest,
        move_latest=True,
        extra_tables=extra,
    )


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    version_dir = _publish(tmp_path_factory.mktemp("out"))
    return write_report(version_dir)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", [HIT_RATE_PNG, LOSS_PNG, MAP_PNG])
def test_figures_are_sensible_images(full_report: Path, name: str):
    """Each figure is a PNG of a readable size, neither blank nor black and white."""
    import matplotlib.image

    path = full_report.parent / name
    width, height = _png_size(path)
    assert width >= 400 and height >= 300, (width, height)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    rgb = pixels[..., :3]
    # Not blank: a white canvas has std 0; axes, text and lines lift it well above.
    assert rgb.std() > 0.05
    # More than a couple of colours: lines or points in colour, not just black on white.
    colours = np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 20


def test_report_holds_gate_metrics_counts_and_links(full_report: Path):
    text = full_report.read_text()
    assert text.startswith("# item2vec report: films / ")
    assert (
        "input: `day-1.csv`, `day-2.csv`, `day-3.csv`, `day-4.csv`, `day-5.csv` and 2 more" in text
    )
    assert GATE_REASON in text and "Gate **passed**" in text
    for values in (MODEL, POPULARITY, ITEM_KNN):
        for name in ("hr@10", "ndcg@20", "coverage@20", "unrankable"):
            assert f"{values[name]:.4f}" in text
    header = next(line for line in text.splitlines() if line.startswith("| method |"))
    assert "hr@10" in header and "mrr@20" in header and "unrankable" in header
    assert "| item-kNN |" in text and "| popularity |" in text
    # Counts per stage, with drops by reason in words.
    assert "| events read | 12,000 |" in text and "| events kept | 11,990 |" in text
    assert "| empty user id | 4 |" in text and "| unparseable time | 6 |" in text
    for png in (HIT_RATE_PNG, LOSS_PNG, MAP_PNG):
        assert f"]({png})" in text


def test_report_lists_popular_items_and_neighbours_by_title(full_report: Path):
    text = full_report.read_text()
    section = text.split("## Nearest neighbours of popular items", 1)[1]
    for i in range(5):
        assert f"**{_title(i)} [{i:03d}]**" in section
    assert _title(5) + " [005]**" not in section  # only the five most frequent
    assert section.count("(cosine ") == 25
    # Neighbours stay in their genre world, and are named by title, not by id.
    first = section.split("**", 3)[2]
    neighbour_ids = [int(line.split("[")[1][:3]) for line in first.splitlines() if "cosine" in line]
    assert len(neighbour_ids) == 5 and all(i < PER_GENRE for i in neighbour_ids)


def test_missing_curve_and_loss_give_notes_not_plots(tmp_path: Path):
    out = tmp_path / "report"
    # A full report first, then one without curve and loss into the same place:
    # the old PNGs must go, or they would contradict the notes.
    write_report(_publish(tmp_path / "a"), out)
    assert (out / LOSS_PNG).is_file()
    report = write_report(_publish(tmp_path / "b", curve=False, loss=False), out)
    text = report.read_text()
    assert not (out / HIT_RATE_PNG).exists() and not (out / LOSS_PNG).exists()
    assert "No HR@k curve in this version's manifest" in text
    assert "No training loss in this version's manifest" in text
    assert f"]({HIT_RATE_PNG})" not in text and f"]({LOSS_PNG})" not in text
    assert (out / MAP_PNG).is_file() and f"]({MAP_PNG})" in text
    assert f"{MODEL['hr@10']:.4f}" in text  # the metrics table does not need the curve


def test_without_items_table_ids_stand_in_for_titles(tmp_path: Path):
    report = write_report(_publish(tmp_path, items=False), max_map_items=30)
    text = report.read_text()
    assert "**item 000**" in text and "1. item " in text
    assert "items table has no category column" in text
    assert (report.parent / MAP_PNG).is_file()


def test_titles_are_escaped_for_markdown(tmp_path: Path):
    def awkward(i: int) -> str:
        return f"*batteries_not|included* <{i}>"

    report = write_report(_publish(tmp_path, titles=awkward), max_map_items=0)
    text = report.read_text()
    assert r"\*batteries\_not\|included\* \<0>" in text
    assert "No embedding map" in text and not (report.parent / MAP_PNG).exists()


def test_out_dir_separate_from_version(tmp_path: Path):
    """A report written elsewhere leaves the version directory untouched."""
    version_dir = _publish(tmp_path / "out")
    before = sorted(p.name for p in version_dir.iterdir())
    report = write_report(version_dir, tmp_path / "elsewhere" / "r", max_map_items=40)
    assert report == tmp_path / "elsewhere" / "r" / "report.md"
    assert sorted(p.name for p in version_dir.iterdir()) == before
    assert {p.name for p in report.parent.iterdir()} == {
        "report.md",
        HIT_RATE_PNG,
        LOSS_PNG,
        MAP_PNG,
    }


def test_bad_inputs_raise_clear_errors(tmp_path: Path):
    with pytest.raises(InputError, match="manifest.json missing"):
        write_report(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "x"}))
    with pytest.raises(InputError, match="item_vectors.parquet missing"):
        write_report(tmp_path)
    with pytest.raises(ValueError, match="max_map_items must be an integer >= 0"):
        write_report(tmp_path, max_map_items=-1)


def test_categories_from_genres_category_or_none():
    import pandas as pd

    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "genres": ["Drama|Crime", "(no genres listed)", None]}
    )
    assert item_categories(items, ["b", "a", "zz", "c"]) == [
        "(no genres listed)",
        "Drama",
        None,
        None,
    ]
    items = pd.DataFrame({"item_id": ["a"], "Category": ["Shoes"]})
    assert item_categories(items, ["a"]) == ["Shoes"]
    assert item_categories(pd.DataFrame({"item_id": ["a"], "title": ["A"]}), ["a"]) is None
    assert item_categories(None, ["a"]) is None


def test_projection_is_seeded_and_separates_worlds():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 8)) * 4
    vectors = np.vstack(
        [centres[0] + rng.normal(size=(30, 8)), centres[1] + rng.normal(size=(30, 8))]
    )
    first, method = project_embeddings(vectors, seed=3)
    again, _ = project_embeddings(vectors, seed=3)
    assert method == "PCA + t-SNE" and first.shape == (60, 2)
    np.testing.assert_array_equal(first, again)
    # Every point is nearer its own world's centre than the other's.
    a, b = first[:30].mean(axis=0), first[30:].mean(axis=0)
    own = np.r_[np.linalg.norm(first[:30] - a, axis=1), np.linalg.norm(first[30:] - b, axis=1)]
    other = np.r_[np.linalg.norm(first[:30] - b, axis=1), np.linalg.norm(first[30:] - a, axis=1)]
    assert (own < other).all()
    few, method = project_embeddings(vectors[:4], seed=0)
    assert method == "PCA" and few.shape == (4, 2)


def test_single_epoch_loss_plot(tmp_path: Path):
    """One epoch of loss still makes a loss plot."""
    path = plot_training_loss([1234.5], tmp_path / "loss.png", seconds=None)
    assert path == tmp_path / "loss.png" and _png_size(path) == (800, 500)


@pytest.mark.parametrize(
    "title, short",
    [
        ("Forrest Gump (1994)", "Forrest Gump (1994)"),
        ("Star Wars: Episode V - The Empire Strikes Back (1980)", "Star Wars: Episode V… (1980)"),
        ("A title with no year that goes on and on", "A title with no year that…"),
    ],
)
def test_labels_are_shortened_keeping_the_year(title: str, short: str):
    assert _shorten(title) == short
    assert len(_shorten(title)) <= 30


def test_report_markdown_inlines_every_plot_for_the_run_page(full_report: Path):
    import base64
    import re

    from item2vec.summary import report_markdown

    text = report_markdown(full_report.parent)
    assert "](hr_at_k.png)" not in text and "](embedding_map.png)" not in text
    payloads = re.findall(r"\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", full_report.read_text())
    assert len(payloads) == len(linked) >= 3
    for payload in payloads:
        assert base64.b64decode(payload)[:8] == PNG_SIGNATURE
    assert _title(0) in text and "hr@10" in text


def test_report_markdown_without_a_report_is_none(tmp_path: Path):
    from item2vec.summary import report_markdown

    assert report_markdown(tmp_path) is None


def test_query_length_reads_as_words():
    from item2vec.summary import items_phrase

    assert items_phrase(1) == "1 item" and items_phrase(5) == "5 items"
