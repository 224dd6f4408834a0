"""item2vec: item embeddings from user-behaviour logs.

The library holds one module per pipeline stage (``ingest``, ``sequences``,
``split``, ``train``, ``evaluate``, ``baselines``, ``publish``); ``flows/``
wraps them as Prefect tasks. Nothing here imports Prefect.
"""

import os

# Memory settings for 20M-event stages, read by pyarrow and numpy when they load,
# hence set here, before either is imported; a value the user set wins.
#
# This project's reference machines are virtual machines that hand freed memory
# back to the host, and there the first touch of a transparent huge page costs
# several times what small pages cost (240 MB: 0.54 s against 0.10-0.19 s).
# Most of a large stage's arrays are written once, front to back, and gain
# nothing from huge pages:
# - Arrow's allocator (mimalloc) commits on demand instead of whole 1 GiB arenas:
#   the first read of a 20M-row Parquet log took 0.34-0.40 s instead of 0.66-0.77 s;
# - numpy does not ask for huge pages for every large array: ingest through
#   split, catalogue and user-item matrix in a fresh process took 8.7-9.1 s
#   instead of 10.4-10.6 s at 20M events. The one array written in random order,
#   the counting sort's output, asks for huge pages itself
#   (:func:`item2vec.grouping.scatter_target`).
os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

from item2vec.errors import ConfigError, InputError, Item2VecError, QualityGateError

__version__ = "0.1.0"

__all__ = ["ConfigError", "InputError", "Item2VecError", "QualityGateError", "__version__"]
