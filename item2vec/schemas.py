"""The Arrow schemas of the published neighbour and recommendation tables.

Kept apart from the modules that compute the tables, so that readers can check
a published file against them without importing what computes them.
"""

from __future__ import annotations

import pyarrow as pa

#: ``item_neighbors.parquet``: each item's ``k`` nearest items by cosine.
NEIGHBOR_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rank", pa.int32()),
        ("neighbor_id", pa.string()),
        ("score", pa.float32()),
    ]
)

#: ``user_recommendations.parquet``: each user's top items, their history excluded.
RECOMMENDATION_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("score", pa.float32()),
    ]
)
