"""item2vec: item embeddings from user-behaviour logs.

The library holds one module per pipeline stage (``ingest``, ``sequences``,
``split``, ``train``, ``evaluate``, ``baselines``, ``publish``); ``flows/``
wraps them as Prefect tasks. Nothing here imports Prefect.
"""

import os

# Arrow's allocator (mimalloc) commits its 1 GiB arenas eagerly by default. On
# this project's reference machines (virtual machines that hand freed memory back
# to the host) that memory then arrives as transparent huge pages, whose first
# touch costs several times more than small pages: reading a 20M-row Parquet log
# took 0.66-0.77 s in a fresh process, against 0.34-0.40 s with commit on demand,
# at the same speed afterwards and with less peak memory. It must be set before
# pyarrow allocates anything, hence here; a value set by the user wins. (numpy's
# huge pages are chosen per stage: item2vec.pages.)
os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")

from item2vec.errors import ConfigError, InputError, Item2VecError, QualityGateError

__version__ = "0.1.0"

__all__ = ["ConfigError", "InputError", "Item2VecError", "QualityGateError", "__version__"]
