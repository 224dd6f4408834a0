"""The Arrow schemas of the published neighbour and recommendation tables.

Kept apart from the modules that compute the tables, so that readers can check
a published file against them without importing what computes them.
"""

from __future__ import annotations

import pyarrow as pa

#: The column every published table ends with: the id of the version it belongs to,
#: so that the rows of several versions read together can be told apart. It is a
#: dictionary-encoded string in Arrow (one entry) and a plain string column to
#: Parquet readers (DuckDB, Spark, pandas); publish also keeps the version in each
#: file's key-value metadata (``item2vec.version``).
VERSION_COLUMN = "version"

#: ``item_neighbors.parquet``: each item's ``k`` nearest items by cosine.
NEIGHBOR_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rank", pa.int32()),
        ("neighbor_id", pa.string()),
        ("score", pa.float32()),
    ]
)

#: ``user_recommendations.parquet``: each user's top items, their history excluded;
#: ``source`` says what served the row (the model, or its item-kNN or popularity fallback).
RECOMMENDATION_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("score", pa.float32()),
        ("source", pa.string()),
    ]
)

#: What a reader requires of a recommendations table: versions published before
#: the ``source`` column existed are still read.
RECOMMENDATION_REQUIRED = pa.schema(list(RECOMMENDATION_SCHEMA)[:4])
