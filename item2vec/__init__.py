"""item2vec: item embeddings from user-behaviour logs.

The library holds one module per pipeline stage (``ingest``, ``sequences``,
``split``, ``train``, ``evaluate``, ``baselines``, ``publish``); ``flows/``
wraps them as Prefect tasks. Nothing here imports Prefect.
"""

from item2vec.errors import ConfigError, InputError, Item2VecError, QualityGateError

__version__ = "0.1.0"

__all__ = ["ConfigError", "InputError", "Item2VecError", "QualityGateError", "__version__"]
