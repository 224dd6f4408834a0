import pyarrow as pa
import pytest

from item2vec.config import build_config
from item2vec.errors import ConfigError
from item2vec.gate import quality_gate
from item2vec.neighbors import NEIGHBOR_SCHEMA, neighbor_overlap


def _metrics(model: float, popularity: float = 0.04) -> dict:
    return {"model": {"hr@10": model}, "baselines": {"popularity": {"hr@10": popularity}}}


def _config(**publish):
    return build_config({"ingest": {"paths": ["e.csv"]}, "publish": publish})


def _previous(config, value: float) -> dict:
    return {
        "version": "v1",
        "config": config.model_dump(mode="json"),
        "metrics": {"model": {"hr@10": value}},
    }


def test_beats_popularity_or_not():
    """The gate passes a model above popularity (times the margin) and refuses the rest."""
    config = _config()
    assert quality_gate(_metrics(0.05), config)["passed"]
    refused = quality_gate(_metrics(0.04), config)
    assert not refused["passed"] and "popularity" in refused["reason"]
    assert not quality_gate(_metrics(0.05), _config(gate_margin=1.5))["passed"]


def test_regression_against_comparable_latest():
    """A model more than max_regression below a comparable LATEST is refused."""
    config = _config(max_regression=0.1)
    assert quality_gate(_metrics(0.091), config, _previous(config, 0.1))["passed"]
    refused = quality_gate(_metrics(0.089), config, _previous(config, 0.1))
    assert not refused["passed"] and "LATEST 0.1000" in refused["reason"]


def test_regression_skipped_when_protocol_differs():
    config = _config()
    other = build_config({"ingest": {"paths": ["e.csv"]}, "evaluate": {"query_items": 1}})
    decision = quality_gate(_metrics(0.05), config, _previous(other, 0.5))
    assert decision["passed"]
    assert "not comparable" in decision["checks"][1]["reason"]


def test_stability_threshold_optional():
    """Neighbour stability refuses a model only when min_stability is set."""
    assert quality_gate(_metrics(0.05), _config(), stability=0.1)["passed"]
    refused = quality_gate(_metrics(0.05), _config(min_stability=0.5), stability=0.1)
    assert not refused["passed"] and "overlap" in refused["reason"]


def test_unknown_primary_metric():
    """A primary metric the evaluation did not compute is a ConfigError."""
    with pytest.raises(ConfigError, match="primary metric"):
        quality_gate(_metrics(0.05), _config(primary_metric="hr@7"))


def _neighbors(rows):
    item, rank, neighbor = zip(*rows, strict=True)
    return pa.table(
        {
            "item_id": item,
            "rank": pa.array(rank, pa.int32()),
            "neighbor_id": neighbor,
            "score": pa.array([1.0] * len(rows), pa.float32()),
        },
        schema=NEIGHBOR_SCHEMA,
    )


def test_neighbor_overlap_by_hand():
    """Overlap is the mean share of top-k neighbours kept, over items in both tables."""
    now = _neighbors([("a", 1, "b"), ("a", 2, "c"), ("b", 1, "a"), ("b", 2, "c"), ("x", 1, "a")])
    before = _neighbors([("a", 1, "c"), ("a", 2, "d"), ("b", 1, "d"), ("b", 2, "e")])
    # a keeps c (1 of 2), b keeps nothing; x is new and not counted.
    assert neighbor_overlap(now, before, k=2) == pytest.approx(0.25)
    assert neighbor_overlap(now, _neighbors([("z", 1, "a")]), k=2) is None


def test_regression_allows_evaluation_noise_on_few_users():
    config = _config(max_regression=0.1)
    few = {**_metrics(0.09), "users": 600}  # noise ~0.036 > 10% of 0.11
    assert quality_gate(few, config, _previous(config, 0.11))["passed"]
    assert not quality_gate({**_metrics(0.06), "users": 600}, config, _previous(config, 0.11))[
        "passed"
    ]
    many = {**_metrics(0.09), "users": 1_000_000}  # noise negligible: 10% rule applies
    refused = quality_gate(many, config, _previous(config, 0.11))
    assert not refused["passed"] and "10%" in refused["reason"]
