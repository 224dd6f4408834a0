import pyarrow as pa


def test_single_array_copies_only_across_chunks():
    from item2vec.chunks import single_array

    one = pa.chunked_array([pa.array([1, 2, 3])])
    whole = single_array(one)
    # The very buffer of the only chunk: no copy was made.
    assert whole.buffers()[1].address == one.chunk(0).buffers()[1].address
    two = pa.chunked_array([pa.array([1, 2]), pa.array([3])])
    assert single_array(two).to_pylist() == [1, 2, 3]
    assert single_array(pa.chunked_array([], type=pa.int64())).to_pylist() == []
    array = pa.array(["a"])
    assert single_array(array) is array
