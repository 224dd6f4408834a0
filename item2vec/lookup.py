"""Answers from published tables: an item's neighbours, a user's recommendations, by title."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from item2vec.errors import InputError
from item2vec.layout import ITEMS_FILE, RECOMMENDATIONS_FILE
from item2vec.reader import PublishedModel, require_schema, verified_source
from item2vec.schemas import RECOMMENDATION_REQUIRED
from item2vec.storage import ObjectPath
from item2vec.summary import published_titles, title_series


def titles(model: PublishedModel) -> pd.Series | None:
    """Title per item id from the version's ``items.parquet``, or None without one."""
    if not isinstance(model.path, ObjectPath):
        return published_titles(model.path)
    path = model.path / ITEMS_FILE  # in a store: checked against the manifest first
    if not path.is_file():
        return None
    source = verified_source(path, model.manifest)
    return title_series(pq.read_table(source, columns=["item_id", "title"]))


def similar(model: PublishedModel, item_id: str, k: int = 10) -> pd.DataFrame:
    """The item's ``k`` nearest neighbours from the published neighbour table.

    Raises
    ------
    InputError
        If the item has no vector in this version.
    """
    if item_id not in model:
        raise InputError(
            f"item {item_id!r} is not in {model.model_name}/{model.version}; ids are exact text, "
            "and items seen fewer than min_count times have no vector"
        )
    rows = model.neighbors[model.neighbors["item_id"] == item_id].sort_values("rank").head(k)
    return _with_titles(rows[["rank", "neighbor_id", "score"]], "neighbor_id", titles(model))


def recommendations(model: PublishedModel, user_id: str, n: int = 10) -> pd.DataFrame:
    """The user's top ``n`` recommendations from ``user_recommendations.parquet``.

    Raises
    ------
    InputError
        If the version has no recommendation table or no row for the user.
    """
    path = model.path / RECOMMENDATIONS_FILE
    if not path.is_file():
        raise InputError(
            f"{model.model_name}/{model.version} has no {RECOMMENDATIONS_FILE}; "
            "publish with recommendations_n (--recommendations-n) above 0"
        )
    source = verified_source(path, model.manifest)
    require_schema(path, RECOMMENDATION_REQUIRED, "recommendations", pq.read_schema(source))
    table = pq.read_table(source, filters=[("user_id", "=", user_id)])
    if table.num_rows == 0:
        raise InputError(
            f"user {user_id!r} has no recommendations in {model.model_name}/{model.version}; "
            "ids are exact text, and users with no item that has a vector get none"
        )
    table = table.sort_by("rank").slice(0, n)
    rows = table.select(["rank", "item_id", "score"]).to_pandas()
    return _with_titles(rows, "item_id", titles(model))


def _with_titles(frame: pd.DataFrame, id_column: str, names: pd.Series | None) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    if names is not None:
        frame["title"] = frame[id_column].map(names).fillna("")
    return frame
