"""Whether large numpy arrays ask the OS for transparent huge pages.

numpy asks for huge pages (``madvise``) for every array of 4 MB or more. On this
project's reference machines, virtual machines that hand freed memory back to
the host, the first touch of a huge page costs several times what small pages
cost: 240 MB took 0.54 s on huge pages against 0.10-0.19 s on small ones. Most
arrays of the ingest, sequence, split and catalogue stages are written once,
front to back, and gain nothing from huge pages, so those stages run under
``numpy_huge_pages(False)``; at 20M events, ingest through the user-item matrix
took 8.7-9.0 s instead of 10.3-10.6 s in a fresh process. Arrays read or written
in random order (the counting sort's output, and gensim's vectors during
training) keep huge pages, which spare them most TLB misses.

The setting is numpy's process-wide switch (``_set_madvise_hugepage``, the one
``NUMPY_MADVISE_HUGEPAGE`` sets at import); where a numpy version lacks it,
nothing changes. It only affects how fast memory is, never what it holds.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator


def _switch() -> Callable[[bool], bool] | None:
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
    return None


_SET_MADVISE_HUGEPAGE = _switch()


@contextlib.contextmanager
def numpy_huge_pages(enabled: bool) -> Iterator[None]:
    """Large numpy arrays allocated inside the block ask for huge pages, or not.

    Usable as a decorator. The previous setting comes back on exit, so blocks
    nest. The switch is process-wide: arrays another thread allocates meanwhile
    follow it too (only their speed can differ).

    Parameters
    ----------
    enabled
        Whether arrays of 4 MB or more are ``madvise``-d for huge pages.
    """
    if _SET_MADVISE_HUGEPAGE is None:
        yield
        return
    previous = _SET_MADVISE_HUGEPAGE(enabled)
    try:
        yield
    finally:
        _SET_MADVISE_HUGEPAGE(previous)
