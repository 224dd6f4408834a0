"""Built-in column layouts for known logs, and the bundled sample.

A preset is a partial config (same sections as :class:`item2vec.config.PipelineConfig`).
Add a layout by adding an entry to :data:`PRESETS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from item2vec.errors import ConfigError

#: The MovieLens ml-latest-small sample shipped in the repository's ``data/``.
BUNDLED_SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "movielens-small"

PRESETS: dict[str, dict[str, Any]] = {
    "movielens": {
        "ingest": {
            "user_col": "userId",
            "item_col": "movieId",
            "time_col": "timestamp",
            "item_id_col": "movieId",
            "item_title_col": "title",
        },
        "publish": {"model_name": "movielens"},
    },
}


def preset(name: str) -> dict[str, Any]:
    """Return the partial config of the preset ``name``.

    Raises
    ------
    ConfigError
        If no preset has that name; the message lists the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(f"unknown preset {name!r}; known presets: {known}") from None


def bundled_sample() -> dict[str, Any]:
    """Partial config that runs the bundled MovieLens sample (events and titles).

    Raises
    ------
    ConfigError
        If the sample is not beside the package (for example a non-editable install).
    """
    ratings = BUNDLED_SAMPLE_DIR / "ratings.csv"
    if not ratings.is_file():
        raise ConfigError(
            f"the bundled sample is not at {ratings}; install item2vec from a checkout "
            "(pip install -e .) or pass EVENTS explicitly"
        )
    layers = preset("movielens")
    return {
        "ingest": {
            **layers["ingest"],
            "paths": [str(ratings)],
            "items_path": str(BUNDLED_SAMPLE_DIR / "movies.csv"),
        },
        "publish": dict(layers["publish"]),
    }
