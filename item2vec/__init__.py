"""item2vec: item embeddings from user-behaviour logs.

The Python API::

    import item2vec
    model = item2vec.fit(df, user_col="user", item_col="sku", time_col="ts")
    model.most_similar("sku-1", topn=5)
    model.recommend(["sku-1", "sku-7"], n=10)
    model.evaluate().table()
    model.save("output", "clicks")
    item2vec.load("output", "clicks")

One module per pipeline stage (``ingest``, ``sequences``, ``split``, ``train``,
``evaluate``, ``baselines``, ``publish``) underneath; ``flows/`` wraps them as
Prefect tasks. Nothing here imports Prefect, and the names above are loaded on
first use, so ``import item2vec`` stays light (no gensim, no pandas) and changes
nothing in the process: the CLI's ``main()`` sets its own process defaults.
"""

from item2vec.errors import ConfigError, InputError, Item2VecError, QualityGateError

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported on first use.
_LAZY = {
    "fit": "item2vec.fitting",
    "load": "item2vec.model",
    "Item2VecModel": "item2vec.model",
    "Evaluation": "item2vec.model",
}

__all__ = [
    "ConfigError",
    "Evaluation",
    "InputError",
    "Item2VecError",
    "Item2VecModel",
    "QualityGateError",
    "__version__",
    "fit",
    "load",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'item2vec' has no attribute {name!r}")
