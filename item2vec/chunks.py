"""Arrow chunked columns as single arrays, copying only when there is more than one chunk."""

from __future__ import annotations

import pyarrow as pa


def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``column`` as one contiguous array.

    ``ChunkedArray.combine_chunks`` copies even a column of a single chunk; at 20M
    events that is hundreds of megabytes of fresh memory per column, and writing
    fresh memory is what most of a large stage's time goes to. A single chunk is
    returned as it is.

    Parameters
    ----------
    column
        A chunked column (as a table holds it) or an array.

    Returns
    -------
    pyarrow.Array
        The chunk itself when there is one; otherwise the chunks concatenated.
    """
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks()
