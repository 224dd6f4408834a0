"""Which large numpy arrays sit on transparent huge pages.

numpy asks for huge pages (``madvise``) for every array of 4 MB or more. On this
project's reference machines, virtual machines that hand freed memory back to
the host, the first touch of a huge page costs several times what small pages
cost: 240 MB took 0.54 s on huge pages against 0.10-0.19 s on small ones. Most
arrays of the ingest, sequence, split and catalogue stages are written once,
front to back, and gain nothing from huge pages, so those stages run under
:func:`small_pages`; at 20M events, ingest through the user-item matrix took
8.7-9.0 s instead of 10.3-10.6 s in a fresh process. Arrays used in random order
keep huge pages, which spare them most TLB misses: the counting sort's output
(:func:`huge_page_array`) and gensim's vectors during training (numpy's default).

The switch is numpy's own, process-wide (``_set_madvise_hugepage``, the one
``NUMPY_MADVISE_HUGEPAGE`` sets at import); where a numpy version lacks it,
nothing changes. It only affects how fast memory is, never what it holds.
"""

from __future__ import annotations

import contextlib
import importlib
import mmap
import threading
from collections.abc import Callable, Iterator

import numpy as np


def _switch() -> Callable[[bool], bool] | None:
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
    return None


_SET_MADVISE_HUGEPAGE = _switch()
_lock = threading.Lock()
_open_blocks = 0  # small_pages blocks open right now, in any thread
_saved = True  # numpy's setting before the first of them opened


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """Large numpy arrays allocated inside the block use small pages.

    Usable as a decorator. Blocks may nest and may overlap across threads (flow
    tasks run in threads): numpy's previous setting comes back when the last
    open block closes, whatever the order they close in.
    """
    global _open_blocks, _saved
    if _SET_MADVISE_HUGEPAGE is None:
        yield
        return
    with _lock:
        if _open_blocks == 0:
            _saved = _SET_MADVISE_HUGEPAGE(False)
        _open_blocks += 1
    try:
        yield
    finally:
        with _lock:
            _open_blocks -= 1
            if _open_blocks == 0:
                _SET_MADVISE_HUGEPAGE(_saved)


def huge_page_array(n: int, dtype: type) -> np.ndarray:
    """An uninitialised array on transparent huge pages, whatever numpy's setting.

    For arrays written or read in random order. Where the OS has no
    ``MADV_HUGEPAGE`` it is ``np.empty``.

    Parameters
    ----------
    n
        Number of elements.
    dtype
        Element type.
    """
    if not hasattr(mmap, "MADV_HUGEPAGE") or n == 0:
        return np.empty(n, dtype=dtype)
    # An anonymous private mapping, unmapped when the array is freed.
    region = mmap.mmap(
        -1, n * np.dtype(dtype).itemsize, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    )
    region.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(region, dtype=dtype, count=n)
