"""The model object of the Python API: item vectors you can query, evaluate and save.

:func:`item2vec.fit` returns one, trained and evaluated in this process;
:func:`item2vec.load` returns one read back from a published version. Both
answer ``most_similar`` and ``recommend`` exactly alike (:mod:`item2vec.queries`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from item2vec.config import PipelineConfig
from item2vec.errors import InputError
from item2vec.queries import ItemQueries

__all__ = ["Evaluation", "Item2VecModel", "load"]


@dataclass(frozen=True)
class Evaluation:
    """Full-ranking metrics of the model beside both baselines, on one split.

    Attributes
    ----------
    model, popularity, item_knn
        Metric name (``hr@10``, ``ndcg@20``, ``unrankable``, ...) -> value.
    model_with_fallback
        The model where it can rank, item-kNN then popularity for the users it
        cannot (as ``user_recommendations.parquet`` serves them); None when the
        evaluation did not measure it.
    users
        Test cases evaluated (a fixed sample of at most ``max_users``).
    sampled_from
        All test cases, when ``users`` is a sample; else None.
    record
        The same figures as the manifest's ``metrics`` holds them.
    """

    model: dict[str, float]
    popularity: dict[str, float]
    item_knn: dict[str, float]
    users: int
    sampled_from: int | None
    record: dict[str, Any] = field(repr=False)
    model_with_fallback: dict[str, float] | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Evaluation:
        """From the metrics record of a run (:func:`item2vec.evaluate.combine_metrics`)."""
        return cls(
            model=dict(record["model"]),
            popularity=dict(record["baselines"]["popularity"]),
            item_knn=dict(record["baselines"]["item_knn"]),
            users=int(record.get("users", 0)),
            sampled_from=record.get("sampled_from"),
            record=record,
            model_with_fallback=(
                dict(record["model_with_fallback"]) if record.get("model_with_fallback") else None
            ),
        )

    def table(self) -> pd.DataFrame:
        """One row per method, metrics as columns: ``item2vec``, ``item2vec with fallback``
        (when measured), ``popularity`` and ``item-kNN``."""
        rows = {"item2vec": self.model}
        if self.model_with_fallback is not None:
            rows["item2vec with fallback"] = self.model_with_fallback
        rows.update({"popularity": self.popularity, "item-kNN": self.item_knn})
        return pd.DataFrame.from_dict(
            {name: _figures(metrics) for name, metrics in rows.items()}, orient="index"
        )


def _figures(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics only: the HR curve, settings and neighbour records are not columns."""
    return {
        name: value
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


@dataclass
class Item2VecModel(ItemQueries):
    """Item vectors with the settings and histories they were trained on.

    Attributes
    ----------
    item_ids
        Vocabulary, as exact item id strings.
    vectors, context_vectors
        Input and output vectors (float32); ``context_vectors`` is None without
        negative sampling.
    counts
        Training occurrences of each item.
    config
        Every setting of the fit (``config.train`` holds gensim's keywords).
    evaluation
        Metrics beside both baselines, or None when the fit did not evaluate.
    histories
        Each user's whole history (``user_id``, ``items``), for ``recommend(user)``;
        None for a loaded version without its sequences.
    counts_by_stage
        Rows read, kept and dropped by reason, users and items.
    version_dir
        Where the model was saved or loaded from, if anywhere.
    """

    item_ids: np.ndarray
    vectors: np.ndarray
    context_vectors: np.ndarray | None
    counts: np.ndarray
    config: PipelineConfig
    evaluation: Evaluation | None = None
    histories: pa.Table | None = field(default=None, repr=False)
    counts_by_stage: dict[str, Any] = field(default_factory=dict, repr=False)
    version_dir: Path | None = None
    #: What fit() built on the way, kept for evaluate() and save().
    _run: Any = field(default=None, repr=False)
    _index: dict[str, int] | None = field(default=None, init=False, repr=False)
    _unit: np.ndarray | None = field(default=None, init=False, repr=False)
    _users: dict[str, int] | None = field(default=None, init=False, repr=False)

    @classmethod
    def of(cls, vectors: Any, config: PipelineConfig, **rest: Any) -> Item2VecModel:
        """A model of ``vectors`` (anything with ``item_ids``, ``vectors``,
        ``context_vectors`` and ``counts``: trained or published) and ``config``."""
        return cls(
            item_ids=vectors.item_ids,
            vectors=vectors.vectors,
            context_vectors=vectors.context_vectors,
            counts=vectors.counts,
            config=config,
            **rest,
        )

    def table_scoring(self) -> str:
        """The neighbour table's scoring: ``config.publish.neighbors_scoring``."""
        return self.config.publish.neighbors_scoring

    def __repr__(self) -> str:
        hr = f", hr@10={self.evaluation.model.get('hr@10', 0):.4f}" if self.evaluation else ""
        return f"Item2VecModel(items={len(self)}, dim={self.dim}{hr})"

    def recommend(self, history: str | list[str], n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` best items for a user id the model knows, or for a list of items.

        Scored as the evaluation and ``user_recommendations.parquet`` score them
        (the run's ``scoring`` and ``query_items``); items already in the history
        are left out unless ``exclude_seen`` was turned off.

        Parameters
        ----------
        history
            A user id (text) whose history the model was trained with, or item
            ids in time order, oldest first.
        n
            Recommendations to return.

        Returns
        -------
        list of (str, float)
            ``(item_id, score)``, best first.

        Raises
        ------
        InputError
            For a user id the model has no history of.
        """
        items = self.history(history) if isinstance(history, str) else list(history)
        evaluate = self.config.evaluate
        return self.recommend_from_history(
            items, n, evaluate.scoring, evaluate.query_items, evaluate.exclude_seen
        )

    def history(self, user_id: str) -> list[str]:
        """The items of one user, in time order, as the model saw them.

        Raises
        ------
        InputError
            If the model holds no histories, or none for this user.
        """
        if self.histories is None:
            raise InputError(
                "this model holds no user histories (a version published without "
                "sequences); pass the user's items as a list instead"
            )
        if self._users is None:
            ids = self.histories.column("user_id").to_pylist()
            self._users = dict(zip(ids, range(len(ids)), strict=True))
        row = self._users.get(user_id)
        if row is None:
            raise InputError(
                f"user {user_id!r} is not among the {len(self._users):,} users this model "
                "was trained with (ids are exact text); pass the user's items as a list"
            )
        return self.histories.column("items")[row].as_py()

    def evaluate(self) -> Evaluation:
        """Metrics of this model beside popularity and item-kNN on the fit's split.

        Raises
        ------
        InputError
            If the model was not evaluated when it was fitted or loaded.
        """
        if self.evaluation is None:
            raise InputError(
                "this model has no evaluation: fit it with evaluate_model=True (the default), "
                "or load a version whose manifest holds metrics"
            )
        return self.evaluation

    def save(self, output: str | Path = "output", model_name: str | None = None) -> Path:
        """Publish the model as a new version, atomically, as ``item2vec run`` does.

        The tables (vectors, neighbours, recommendations), the manifest and the
        quality gate are the run's: LATEST moves only when the gate passes.

        Parameters
        ----------
        output
            Output root.
        model_name
            Model family; defaults to the config's ``publish.model_name``.

        Returns
        -------
        pathlib.Path
            The version directory.

        Raises
        ------
        InputError
            For a loaded model (it is published already) or one fitted without
            evaluation (the manifest and the gate need metrics).
        """
        from item2vec.saving import save_fitted

        if self._run is None and self.version_dir is not None:
            raise InputError(
                "only a model fitted in this process can be saved; a loaded one is a "
                f"published version already ({self.version_dir})"
            )
        if self._run is None or self.evaluation is None:
            raise InputError(
                "a model fitted with evaluate_model=False has no metrics for the manifest and "
                "the quality gate; fit with evaluate_model=True to save it"
            )
        from item2vec.storage import as_path

        self.version_dir = save_fitted(
            self._run, self.config, self.evaluation.record, as_path(output), model_name
        )
        return self.version_dir


def load(
    output: str | Path = "output", model_name: str = "item2vec", version: str | None = None
) -> Item2VecModel:
    """Read a published version back as an :class:`Item2VecModel`.

    Parameters
    ----------
    output
        Output root (the run's ``--output``).
    model_name
        Model family (the run's ``--model-name``).
    version
        A version id; None reads the one LATEST names.

    Returns
    -------
    Item2VecModel
        With the version's config and metrics; ``recommend(user_id)`` works when
        the version holds ``sequences.parquet`` (``--write-sequences``), and a
        list of items always works.

    Raises
    ------
    InputError
        If the model, the version or one of its tables is missing or damaged.
    """
    import pyarrow.parquet as pq

    from item2vec.layout import SEQUENCES_FILE
    from item2vec.reader import LATEST_ALIAS, verified_source
    from item2vec.reader import load as load_published

    published = load_published(output, model_name, version or LATEST_ALIAS)
    manifest = published.manifest
    config = PipelineConfig.model_validate(manifest.get("config", {}))
    metrics = manifest.get("metrics") or {}
    evaluation = Evaluation.from_record(metrics) if "model" in metrics else None
    sequences = published.path / SEQUENCES_FILE
    histories = (
        pq.read_table(verified_source(sequences, manifest), columns=["user_id", "items"])
        if sequences.is_file()
        else None
    )
    return Item2VecModel.of(
        published,
        config,
        evaluation=evaluation,
        histories=histories,
        counts_by_stage=manifest.get("counts", {}),
        version_dir=published.path,
    )
