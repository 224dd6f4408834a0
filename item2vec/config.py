"""Validated configuration, one model per stage, shared by the CLI, the flows and the library.

A TOML file holds the same sections as :class:`PipelineConfig`::

    [ingest]
    paths = ["events.parquet"]
    user_col = "visitor"

    [train]
    epochs = 40

CLI flags override the file; the file overrides the defaults below.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from item2vec.config_evaluate import EvaluateConfig
from item2vec.config_ingest import IngestConfig
from item2vec.config_publish import GATE_METRICS, PublishConfig
from item2vec.config_section import NAME_PATTERN, _Section
from item2vec.config_sequences import GAP_UNITS, SequenceConfig, gap_seconds
from item2vec.config_train import TrainConfig
from item2vec.errors import ConfigError

__all__ = [
    "GAP_UNITS",
    "GATE_METRICS",
    "NAME_PATTERN",
    "EvaluateConfig",
    "IngestConfig",
    "PipelineConfig",
    "PublishConfig",
    "SequenceConfig",
    "TrainConfig",
    "build_config",
    "gap_seconds",
    "merge",
]


class PipelineConfig(_Section):
    """Every parameter of one ``item2vec run``."""

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    sequences: SequenceConfig = Field(default_factory=SequenceConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)

    @model_validator(mode="after")
    def _incremental_settings_fit(self) -> PipelineConfig:
        # A warm start must never have trained on a test target (docs/incremental.md).
        if self.train.warm_start and self.evaluate.split != "temporal":
            raise ValueError(
                "train.warm_start needs evaluate.split = 'temporal' (--split temporal): "
                "under leave-last-out, today's test targets include events yesterday's "
                "model trained on"
            )
        if self.train.warm_start and self.publish.refit:
            raise ValueError(
                "train.warm_start cannot be combined with publish.refit (--refit): a refit "
                "trains on the test period, which the next warm start would be evaluated on"
            )
        if self.train.cold_start and not (self.ingest.items_path and self.ingest.item_category_col):
            raise ValueError(
                "train.cold_start needs an items file with a category: set ingest.items_path "
                "(--items) and ingest.item_category_col (--item-category-col)"
            )
        return self


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; ``None`` values in it are ignored."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(*layers: dict[str, Any], source: str = "configuration") -> PipelineConfig:
    """Validate layered settings (later layers win) into a :class:`PipelineConfig`.

    Raises
    ------
    ConfigError
        Naming every invalid field as ``section.field`` with what was expected.
    """
    data: dict[str, Any] = {}
    for layer in layers:
        data = merge(data, layer)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid {source}: {problems}") from exc
