"""Id columns as dictionaries of exact strings, and run-wide integer codes for them.

Ids are kept exactly as written: text stays text, integers become their decimal
text, and floating-point ids are refused. Each file's ids are a dictionary array;
:func:`run_codes` maps every file's dictionary into one dictionary for the run.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from item2vec.chunks import single_array
from item2vec.errors import InputError


def id_dictionary(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """An id column as one dictionary array of exact strings, nulls kept.

    Integers become their decimal text (only the distinct values are converted).
    Floating-point ids are refused because their text is ambiguous ("17850.0" vs
    "17850").

    Raises
    ------
    InputError
        On an id column that is neither text nor integers.
    """
    kind = column.type
    if isinstance(column, pa.ChunkedArray):
        if pa.types.is_dictionary(kind):
            column = column.unify_dictionaries()
        column = single_array(column)
    if pa.types.is_dictionary(kind):
        values = kind.value_type
        if not (is_text(values) or pa.types.is_integer(values)):
            raise _bad_id_type(values)
        encoded = column
    elif is_text(kind) or pa.types.is_integer(kind):
        encoded = pc.dictionary_encode(column)
    else:
        raise _bad_id_type(kind)
    if not pa.types.is_string(encoded.dictionary.type):
        encoded = pa.DictionaryArray.from_arrays(
            encoded.indices, encoded.dictionary.cast(pa.string())
        )
    return encoded


def id_chunks(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """An id column as dictionary chunks of exact strings, nulls kept.

    Text dictionaries (Parquet read with ``read_dictionary``) stay as they are,
    one small dictionary per row group: unifying them would rewrite every row's
    index, which :func:`item2vec.grouping.group_rows` does not need. Anything
    else goes through :func:`id_dictionary`.
    """
    kind = column.type
    if pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type):
        return column
    return pa.chunked_array([id_dictionary(column)])


def is_text(kind: pa.DataType) -> bool:
    """Whether ``kind`` is Arrow text (string or large_string)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _bad_id_type(kind: pa.DataType) -> InputError:
    return InputError(
        f"id column has type {kind}; expected strings or integers. Store ids as text "
        "so that values such as '00123' keep their exact form"
    )


def distinct_codes(values: pa.Array, ranked: bool = True) -> tuple[pa.Array, np.ndarray]:
    """The distinct values of ``values``, and each value's int32 position among them.

    Parameters
    ----------
    values
        Ids (strings or integers), repeats allowed.
    ranked
        Order the distinct values as Arrow sorts them, so that a code is its
        id's rank and sorting codes sorts ids; otherwise first-seen order.

    Returns
    -------
    distinct, codes
        ``distinct.take(codes)`` equals ``values``.
    """
    # A hash of the ids (no per-row Python, no Acero plan), then one sort of the distinct ones.
    encoded = pc.dictionary_encode(values)
    distinct, codes = encoded.dictionary, encoded.indices.to_numpy().astype(np.int32)
    if ranked:
        order = pc.sort_indices(distinct).to_numpy()
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        distinct, codes = distinct.take(pa.array(order)), rank[codes]
    return distinct, codes


def run_codes(
    columns: list[pa.DictionaryArray], kind: pa.DataType, ranked: bool = False
) -> tuple[pa.Array, list[np.ndarray]]:
    """One dictionary for the whole run, and each column's map into it.

    Parameters
    ----------
    columns
        Dictionary chunks of one id column; chunks of one Parquet row group share
        their dictionary, which is then encoded once.
    kind
        The column's type, for an empty list of chunks.
    ranked
        Order the run's dictionary by id, so that sorting codes sorts ids.

    Returns
    -------
    ids, codes
        The distinct ids, and per chunk an int32 array mapping its dictionary
        indices to positions in ``ids``.
    """
    distinct: dict[tuple, int] = {}
    which = []
    for column in columns:
        dictionary = column.dictionary
        # The same buffers, offset and length hold the same values.
        key = (*(b.address if b else 0 for b in dictionary.buffers()), dictionary.offset)
        key = (*key, len(dictionary))
        which.append(distinct.setdefault(key, len(distinct)))
    dictionaries = [columns[which.index(n)].dictionary for n in range(len(distinct))]
    if not dictionaries:
        return pa.array([], type=kind.value_type), []
    ids, codes = distinct_codes(pa.concat_arrays(dictionaries), ranked)
    starts = np.cumsum([0] + [len(d) for d in dictionaries])
    per_dictionary = [codes[starts[n] : starts[n + 1]] for n in range(len(dictionaries))]
    return ids, [per_dictionary[n] for n in which]
