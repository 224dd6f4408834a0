import gc

import numpy as np

from item2vec.gcpause import collector_paused
from item2vec.sequences import as_lists


def _collections_during(function) -> int:
    seen = []

    def count(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        function()
    finally:
        gc.callbacks.remove(count)
    return len(seen)


def test_building_many_lists_runs_no_collection():
    """gensim's million lists are built without the collector rescanning them (8.6 s -> 0.5 s
    at 1M lists); with the collector on, the same build triggers collections."""
    n = 200_000
    values = np.array([f"i{v % 500}" for v in range(2 * n)], dtype=object)
    offsets = np.arange(0, 2 * n + 1, 2)
    unpaused = _collections_during(lambda: [list(values[a : a + 2]) for a in range(0, 2 * n, 2)])
    assert unpaused >= 100
    lists = []
    # At most the one collection that may follow the pause's end.
    assert _collections_during(lambda: lists.extend(as_lists(values, offsets))) <= 1
    assert len(lists) == n and lists[0] == ["i0", "i1"]
    assert gc.isenabled()


def test_pauses_nest_and_restore_the_state_they_found():
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller who had turned it off keeps it off
    finally:
        gc.enable()
