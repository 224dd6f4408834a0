"""The run's id dictionaries: distinct ids and each id's code."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from item2vec.encoding import distinct_codes, run_codes

ids = st.lists(st.text(alphabet="abcxyz09", max_size=4), max_size=60)


@given(ids)
def test_ranked_codes_are_ranks_of_the_distinct_ids(values):
    distinct, codes = distinct_codes(pa.array(values, type=pa.string()))
    assert distinct.to_pylist() == sorted(set(values))
    assert distinct.take(pa.array(codes)).to_pylist() == values
    assert codes.dtype.name == "int32"


@given(ids)
def test_unranked_codes_keep_the_first_seen_order(values):
    distinct, codes = distinct_codes(pa.array(values, type=pa.string()), ranked=False)
    assert distinct.to_pylist() == list(dict.fromkeys(values))
    assert distinct.take(pa.array(codes)).to_pylist() == values


def test_run_codes_map_every_chunk_into_one_ranked_dictionary():
    chunks = [pc.dictionary_encode(pa.array(part)) for part in (["u2", "u1"], ["u3", "u2"])]
    run, maps = run_codes(chunks, pa.dictionary(pa.int32(), pa.string()), ranked=True)
    assert run.to_pylist() == ["u1", "u2", "u3"]
    for chunk, codes in zip(chunks, maps, strict=True):
        decoded = run.take(pa.array(codes[chunk.indices.to_numpy()])).to_pylist()
        assert decoded == chunk.dictionary_decode().to_pylist()
