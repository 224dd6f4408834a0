"""Built-in column layouts for known logs, and the bundled sample.

A preset is a partial config (same sections as :class:`item2vec.config.PipelineConfig`).
Add a layout by adding an entry to :data:`PRESETS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from item2vec.errors import ConfigError

if TYPE_CHECKING:
    from item2vec.config import PipelineConfig

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
            "item_category_col": "genres",
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


#: Model and scoring settings of the bundled sample: the tuner's choice, copied
#: from its best.toml. Provenance (from that file's header):
#:   command: item2vec sweep --budget-minutes 10 --output /tmp/sw10
#:   budget minutes: 10.0; seed: 0; sample users: 1.0; validation users: 610
#:   trials run: 100 in 9.35 minutes on 2 cores; date: 2026-11-25
#:   winner: trial 99, validation HR@10 0.1437 +- 0.0076 over 3 seeds
#:   test HR@10 0.1197 +- 0.0106 over 3 seeds, against the previous defaults'
#:   0.1077 +- 0.0047 and item-kNN's 0.0902 (2 query items) / 0.1066 (5)
#: Re-tune with the same command; everything not named here is the default.
BUNDLED_SAMPLE_TUNED: dict[str, dict[str, Any]] = {
    "train": {
        "sg": 1,
        "context": "window",
        "window": 4,
        "ns_exponent": 0.34763433542527816,
        "negative": 14,
        "epochs": 41,
        "vector_size": 32,
        "min_count": 4,
        "alpha": 0.022915562099429798,
        "sample": 0.0,
    },
    "evaluate": {"scoring": "in-out", "query_items": 2},
}


def bundled_sample() -> dict[str, Any]:
    """Partial config that runs the bundled MovieLens sample (events and titles)
    with the model settings the tuner chose for it (:data:`BUNDLED_SAMPLE_TUNED`).

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
        **{section: dict(values) for section, values in BUNDLED_SAMPLE_TUNED.items()},
    }


#: The ingest fields the bundled sample sets: its files and their column layout.
SAMPLE_FILE_FIELDS = ("paths", "items_path")


def sample_ingest() -> dict[str, Any]:
    """The ingest section of :func:`bundled_sample`: its files and their column layout."""
    return bundled_sample()["ingest"]


def with_bundled_sample(config: PipelineConfig) -> PipelineConfig:
    """``config`` as it is, or, when it names no event files, with the bundled sample's.

    An empty ``ingest.paths`` means the bundled sample, wherever the run happens (a
    deployment's parameters hold no machine's paths): its event and items files and
    their column layout replace those fields of the ingest section. Every other
    setting (the other sections, filters, windows) stays as given.

    Raises
    ------
    ConfigError
        If the paths are empty and the sample is not beside the package.
    """
    if config.ingest.paths:
        return config
    ingest = config.ingest.model_copy(update=sample_ingest())
    return config.model_copy(update={"ingest": ingest})


def portable_sample(config: PipelineConfig) -> PipelineConfig:
    """The inverse of :func:`with_bundled_sample`: the sample's own files as empty paths.

    A deployment stores its parameters on the server; the sample's absolute paths
    belong to one checkout, while empty paths mean the sample on whichever machine
    runs the flow. Any other config comes back as it is.
    """
    if not (BUNDLED_SAMPLE_DIR / "ratings.csv").is_file():
        return config
    sample = sample_ingest()
    if any(getattr(config.ingest, name) != sample[name] for name in SAMPLE_FILE_FIELDS):
        return config
    ingest = config.ingest.model_copy(update={"paths": [], "items_path": None})
    return config.model_copy(update={"ingest": ingest})
