"""No stage of the run is super-linear: each stage timed at two sizes of the same shape.

DESIGN §4: a pipeline fast stage by stage once stalled at the reference size on a
step quadratic in users. Here every library stage of a default run is timed on two
synthetic logs with the same events per user and the same catalogue (by default
250k users / 5M events and 1M users / 20M events, 100k items, 200 clusters), and
each stage's time may grow at most ``FACTOR`` (2.0) times as fast as the quantity
its cost is linear in, plus ``SLACK_S`` seconds of timer and machine noise:

    time(big) <= FACTOR * growth * time(small) + SLACK_S

A quadratic step shows up as 4x the growth at a size ratio of 4. Stages whose
work is capped (evaluation on a fixed sample of 20,000 users) or fixed by the
catalogue (neighbours) are held to what their cost really grows with; each
stage's entry in :data:`STAGES` says what that is.

Runs only with ``-m slow``; at the default sizes it takes 10-20 minutes and
about 5 GB. Environment (the big size; the small one is it divided by the ratio):
``ITEM2VEC_SCALE_EVENTS`` (20M), ``ITEM2VEC_SCALE_USERS`` (1M),
``ITEM2VEC_SCALE_ITEMS`` (100k, both sizes), ``ITEM2VEC_SCALE_CLUSTERS`` (200, both),
``ITEM2VEC_SCALE_RATIO`` (4), ``ITEM2VEC_SCALE_FACTOR`` (2.0),
``ITEM2VEC_SCALE_SLACK_S`` (1.0). Logs are generated with
:func:`item2vec.synth.write_synthetic_log` into pytest's temporary directory, or
reused from the benchmarks' cache (``BENCH_DIR``, default ``/tmp/item2vec-bench``)
when a log of the same parameters and generator source is there.

``tests/test_linear.py`` holds the cheap, exact guards (counted comparisons) that
run by default.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from item2vec import synth
from item2vec.catalogue import build_catalogue
from item2vec.config import PipelineConfig, TrainConfig, build_config
from item2vec.evaluate import evaluate_baselines, evaluate_model
from item2vec.ingest import read_events
from item2vec.neighbors import nearest_neighbors
from item2vec.recommend import recommend_for_users
from item2vec.sequences import build_sequences
from item2vec.split import evaluation_sample, split_sequences
from item2vec.synth import write_synthetic_log
from item2vec.vectors import ItemVectors

EVENTS = int(os.environ.get("ITEM2VEC_SCALE_EVENTS", 20_000_000))
USERS = int(os.environ.get("ITEM2VEC_SCALE_USERS", 1_000_000))
ITEMS = int(os.environ.get("ITEM2VEC_SCALE_ITEMS", 100_000))
CLUSTERS = int(os.environ.get("ITEM2VEC_SCALE_CLUSTERS", 200))
RATIO = int(os.environ.get("ITEM2VEC_SCALE_RATIO", 4))
FACTOR = float(os.environ.get("ITEM2VEC_SCALE_FACTOR", 2.0))
SLACK_S = float(os.environ.get("ITEM2VEC_SCALE_SLACK_S", 1.0))
BENCH_DIR = Path(os.environ.get("BENCH_DIR", "/tmp/item2vec-bench"))
SEED = 0
#: The run's default evaluation sample (EvaluateConfig.max_users).
EVAL_USERS = 20_000

#: (events, users) of the two sizes: same events per user, same catalogue.
SIZES = {"small": (EVENTS // RATIO, USERS // RATIO), "big": (EVENTS, USERS)}

#: Stage -> (what its cost grows with, that quantity from a size's counts).
#: Counts: events kept, distinct items, train events (training side of the
#: split), users (sequences), test cases, scored (test cases evaluated: at most
#: 20,000), vocabulary (items with a vector).
STAGES: dict[str, tuple[str, Callable[[dict[str, int]], float]]] = {
    # Reading, validating and sorting every row: linear in events.
    "ingest": ("events", lambda c: c["events"]),
    # Cutting sequences out of the sorted codes, one gather of the item strings.
    "sequences": ("events", lambda c: c["events"]),
    # Tail cuts over the flat items, then one Python list per user (as_lists).
    "split": ("events", lambda c: c["events"]),
    # Hashing every test case's user id; the 20,000 kept are a fixed cost.
    "evaluation_sample": ("test cases", lambda c: c["test_cases"]),
    # Sample (test cases), catalogue and user-item matrix (train events), then at
    # most 20,000 users scored: popularity's cost is fixed by the cap; item-kNN walks
    # each query item's users and their items, ~ (events / items) x (events / users)
    # per scored user. Same shape and catalogue: that grows with events, times the
    # growth of the scored users while the small size is under the cap. Never less
    # than the growth of the linear steps.
    "baselines": (
        "scored users x events per item x events per user",
        lambda c: c["scored"] * c["train_events"] ** 2 / (c["items"] * c["users"]),
    ),
    # Sample and catalogue (train events), then at most 20,000 users x vocabulary
    # scores; the scored users grow no faster than events, so events bound it.
    "evaluate_model": ("train events (at most 20,000 users scored)", lambda c: c["train_events"]),
    # Every user scored against every item with a vector.
    "recommend": ("users x vocabulary", lambda c: c["users"] * c["vocabulary"]),
    # Every item against every item: fixed by the catalogue, not by users or events.
    "neighbors": ("vocabulary squared", lambda c: c["vocabulary"] ** 2),
}


def _log(tmp_path_factory: pytest.TempPathFactory, events: int, users: int, items: int) -> Path:
    """The synthetic log of this size: from the benchmarks' cache, or generated."""
    source = hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest()[:8]
    name = f"log-e{events}-u{users}-i{items}-c{CLUSTERS}-s{SEED}-{source}.parquet"
    cached = BENCH_DIR / name
    if cached.is_file():
        return cached
    path = tmp_path_factory.mktemp("scale") / name
    write_synthetic_log(path, events, users, items, clusters=min(CLUSTERS, items), seed=SEED)
    return path


@contextlib.contextmanager
def _clock(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - started


def _random_vectors(split, train: TrainConfig) -> ItemVectors:
    catalogue = build_catalogue(split.training_sequences())
    keep = catalogue.counts >= train.min_count
    rng = np.random.default_rng(SEED)
    shape = (int(keep.sum()), train.vector_size)
    return ItemVectors(
        item_ids=catalogue.item_ids[keep],
        vectors=rng.standard_normal(shape).astype(np.float32),
        context_vectors=rng.standard_normal(shape).astype(np.float32),
        counts=catalogue.counts[keep],
    )


def _run_stages(path: Path) -> tuple[dict[str, float], dict[str, int]]:
    """Every library stage of a default run on ``path``: seconds per stage, and counts."""
    config: PipelineConfig = build_config(
        {"ingest": {"paths": [str(path)]}, "evaluate": {"max_users": EVAL_USERS}}
    )
    evaluate, publish = config.evaluate, config.publish
    seconds: dict[str, float] = {}
    with _clock(seconds, "ingest"):
        events = read_events(config.ingest)
    with _clock(seconds, "sequences"):
        sequences = build_sequences(events.table, config.sequences)
    counts = {
        "events": events.counts["events_kept"],
        "users": sequences.num_rows,
        "items": events.counts["items"],
    }
    del events
    with _clock(seconds, "split"):
        split = split_sequences(sequences, evaluate.split, evaluate.test_days)
    counts["train_events"] = sum(map(len, split.train))
    counts["test_cases"] = len(split.test)
    counts["scored"] = min(len(split.test), EVAL_USERS)
    with _clock(seconds, "evaluation_sample"):
        evaluation_sample(split.test, EVAL_USERS)
    with _clock(seconds, "baselines"):
        evaluate_baselines(split.training_sequences(), split.test, evaluate)
    # Random vectors over the run's vocabulary (items seen min_count times): the
    # stages after training cost the same whatever the vectors hold, and gensim's
    # own epoch is measured whole by `bench/run pipeline`.
    vectors = _random_vectors(split, config.train)
    counts["vocabulary"] = len(vectors)
    with _clock(seconds, "evaluate_model"):
        evaluate_model(vectors, split.training_sequences(), split.test, evaluate)
    del split
    gc.collect()
    with _clock(seconds, "recommend"):
        recommend_for_users(
            vectors,
            sequences,
            publish.recommendations_n,
            evaluate.scoring,
            evaluate.query_items,
            evaluate.exclude_seen,
        )
    with _clock(seconds, "neighbors"):
        nearest_neighbors(vectors, publish.neighbors_k)
    del sequences, vectors
    gc.collect()
    return seconds, counts


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, dict]]:
    """Seconds and counts of every stage at both sizes, after a warm-up on a tiny log."""
    # Compiled kernels load and numpy/BLAS initialise on first use: pay that on a
    # tiny log, so it does not flatter the small size.
    tiny = tmp_path_factory.mktemp("warmup") / "tiny.parquet"
    write_synthetic_log(tiny, 20_000, 1_000, min(ITEMS, 500), clusters=5, seed=SEED)
    _run_stages(tiny)
    results = {}
    for size, (events, users) in SIZES.items():
        results[size] = _run_stages(_log(tmp_path_factory, events, users, ITEMS))
        shown = ", ".join(f"{stage} {value:.2f}s" for stage, value in results[size][0].items())
        print(f"\n{size} ({events:,} events, {users:,} users, {ITEMS:,} items): {shown}")
    return results


def _describe(counts: dict[str, int]) -> str:
    return (
        f"{counts['events']:,} events, {counts['users']:,} users, "
        f"{counts['test_cases']:,} test cases ({counts['scored']:,} scored), "
        f"vocabulary {counts['vocabulary']:,}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_is_not_super_linear(scale, stage):
    (small_s, small), (big_s, big) = scale["small"], scale["big"]
    what, quantity = STAGES[stage]
    growth = quantity(big) / quantity(small)
    limit = FACTOR * growth * small_s[stage] + SLACK_S
    observed = big_s[stage] / small_s[stage] if small_s[stage] else float("inf")
    assert big_s[stage] <= limit, (
        f"stage {stage!r} grows faster than its work: {big_s[stage]:.3f}s at the big size "
        f"({_describe(big)}) against {small_s[stage]:.3f}s at the small one "
        f"({_describe(small)}), {observed:.1f}x, where its cost grows with {what} "
        f"({growth:.2f}x); allowed {FACTOR:g} x {growth:.2f} x {small_s[stage]:.3f}s "
        f"+ {SLACK_S:g}s = {limit:.3f}s"
    )


@pytest.mark.slow
def test_sizes_have_the_same_shape(scale):
    """The comparison is only fair if the big log is the small one scaled up."""
    (_, small), (_, big) = scale["small"], scale["big"]
    per_user = [counts["events"] / counts["users"] for counts in (small, big)]
    assert abs(per_user[1] / per_user[0] - 1) < 0.05, per_user
    assert big["users"] / small["users"] == pytest.approx(RATIO, rel=0.02)
