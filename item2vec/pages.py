"""Large arrays written in random order, on transparent huge pages.

The counting sort of ingest scatters every event to its user's slot: the
writes land in random order over arrays of hundreds of megabytes, and huge
pages spare them most TLB misses. :func:`huge_page_array` asks for huge pages
for that one array (``madvise`` on its own mapping); it changes nothing for the
rest of the process.
"""

from __future__ import annotations

import mmap

import numpy as np


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
