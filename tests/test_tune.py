"""The tuner: validation-only selection, budgets, outputs, errors, and a real sweep flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from item2vec.config import PipelineConfig, build_config, read_toml
from item2vec.errors import ConfigError
from item2vec.sequences import build_sequences
from item2vec.synth import planted_clusters
from item2vec.tune import Sweep, run_trial, sample_users, tuning_data


def _sequences(seed: int = 0) -> pa.Table:
    events, _ = planted_clusters(
        n_users=150, n_items=60, n_clusters=3, events_per_user=12, seed=seed
    )
    frame = events.rename(columns={"timestamp": "ts"})
    frame["ts"] = (frame["ts"] * 1_000_000_000).astype("datetime64[ns, UTC]")
    return build_sequences(frame)


def _base() -> PipelineConfig:
    return build_config({"train": {"workers": 1, "min_count": 1}})


def _search(sequences: pa.Table, trials: int = 6) -> Sweep:
    """A short serial sweep, deterministic: one training thread, fixed seeds."""
    base = _base()
    data = tuning_data(sequences, base)
    sweep = Sweep(base, budget_minutes=5, trials=trials, seed=3, workers=1)
    while not sweep.done():
        trial, config = sweep.ask()
        sweep.tell(trial, run_trial(config, data, sweep.pruning_hook(trial), sweep.deadline))
    return sweep


def _with_random_test_targets(sequences: pa.Table, seed: int = 9) -> pa.Table:
    """The same sequences with every user's last item (the test target) replaced."""
    items = sequences.column("items").combine_chunks()
    values = np.asarray(items.values.to_pylist(), dtype=object)
    offsets = items.offsets.to_numpy()
    catalogue = np.unique(values)
    rng = np.random.default_rng(seed)
    lengths = np.diff(offsets)
    last = offsets[1:][lengths >= 3] - 1
    values[last] = rng.choice(catalogue, size=len(last))
    replaced = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.string()))
    return sequences.set_column(sequences.schema.get_field_index("items"), "items", replaced)


def test_selection_never_looks_at_the_test_target():
    sequences = _sequences()
    scrambled = _with_random_test_targets(sequences)
    assert not scrambled.column("items").equals(sequences.column("items"))
    first, second = _search(sequences), _search(scrambled)
    assert first.best()[0] == second.best()[0]
    assert first.best()[1] == second.best()[1]
    one = first.trials_table().drop_columns(["seconds"])
    two = second.trials_table().drop_columns(["seconds"])
    assert one.equals(two)
    # ...while the test target itself did change what the final evaluation sees.
    base = _base()
    assert not np.array_equal(
        tuning_data(sequences, base).final.test.targets,
        tuning_data(scrambled, base).final.test.targets,
    )


def test_trials_score_the_validation_target_and_the_start_is_trial_zero():
    sweep = _search(_sequences(), trials=3)
    table = sweep.trials_table().to_pylist()
    assert [row["trial"] for row in table] == [0, 1, 2]
    start = sweep.configs[0]
    assert start.train.epochs == _base().train.epochs
    assert start.evaluate.scoring == _base().evaluate.scoring
    complete = [row for row in table if row["state"] == "complete"]
    assert complete and all(0 <= row["validation.hr@10"] <= 1 for row in complete)
    number, best = sweep.best()
    assert table[number]["value"] == max(row["value"] for row in complete)
    # Planted clusters are easy: the best trial beats a random ranking by far.
    assert table[number]["value"] > 3 * 10 / 60


def test_budget_stops_running_trials_and_starting_new_ones():
    base = build_config({"train": {"workers": 1, "min_count": 1, "epochs": 150}})
    data = tuning_data(_sequences(), base)
    sweep = Sweep(base, budget_minutes=0.01, trials=100, seed=1)
    trial, config = sweep.ask()
    result = run_trial(config, data, None, sweep.deadline)
    sweep.tell(trial, result)
    assert sweep.done() and sweep.asked == 1
    assert result.pruned and "time budget" in result.reason
    with pytest.raises(ConfigError, match="no trial completed"):
        sweep.best()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"trials": 0}, "--trials"), ({"budget_minutes": 0}, "--budget-minutes")],
)
def test_bad_sweep_settings_are_refused(kwargs, message):
    settings = {"budget_minutes": 1, "trials": 1, **kwargs}
    with pytest.raises(ConfigError, match=message):
        Sweep(_base(), **settings)


@pytest.mark.parametrize("share", [0, 1.5, -0.2])
def test_sample_share_outside_range_is_refused(share):
    with pytest.raises(ConfigError, match="--sample-users"):
        sample_users(_sequences(), share, seed=0)


def test_user_sample_is_seeded_and_keeps_whole_users():
    sequences = _sequences()
    half = sample_users(sequences, 0.5, seed=4)
    assert half.num_rows == 75
    assert half.equals(sample_users(sequences, 0.5, seed=4))
    original = dict(
        zip(
            sequences.column("user_id").to_pylist(),
            sequences.column("items").to_pylist(),
            strict=True,
        )
    )
    for user, items in zip(
        half.column("user_id").to_pylist(), half.column("items").to_pylist(), strict=True
    ):
        assert original[user] == items


def test_cli_refuses_bad_sweep_flags(capsys, tmp_path):
    from item2vec.cli import EXIT_ERROR, main

    for flags, message in (
        (["--trials", "0"], "--trials"),
        (["--sample-users", "1.5"], "--sample-users"),
    ):
        code = main(["sweep", *flags, "--output", str(tmp_path / "s")])
        err = capsys.readouterr().err
        assert code == EXIT_ERROR and message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.flows
def test_sweep_flow_writes_outputs_that_run_accepts(prefect_harness, tmp_path):
    import duckdb
    import pandas as pd
    from prefect.client.orchestration import get_client

    from flows.sweep import run_sweep
    from item2vec.tune import SweepSettings

    events, _ = planted_clusters(n_users=150, n_items=60, n_clusters=3, events_per_user=12)
    log = tmp_path / "log.csv"
    events.to_csv(log, index=False)
    config = build_config(
        {
            "ingest": {"paths": [str(log)]},
            "train": {"min_count": 1},
            "publish": {"output": str(tmp_path / "s")},
        }
    )
    settings = SweepSettings(budget_minutes=1, trials=4, parallel=2, output=str(tmp_path / "s"))
    result = run_sweep(config, settings)

    trials = pq.read_table(tmp_path / "s" / "trials.parquet")
    assert trials.num_rows == result["trials"] == 4
    assert len(pd.read_parquet(tmp_path / "s" / "trials.parquet")) == 4
    count = duckdb.sql(f"select count(*) from '{tmp_path / 's' / 'trials.parquet'}'").fetchall()
    assert count == [(4,)]
    best = build_config(read_toml(tmp_path / "s" / "best.toml"))
    assert best.ingest.paths == [str(log)]
    assert (tmp_path / "s" / "best.toml").read_text().startswith("# tuned by: item2vec sweep")
    summary = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert summary["best_trial"] == result["best_trial"]
    assert set(summary["test"]["baselines"]) == {"popularity", "item_knn"}
    report = (tmp_path / "s" / "sweep.md").read_text()
    assert (
        "sweep_trials.png" in report
        and Path(tmp_path / "s" / "sweep_trials.png").stat().st_size > 5000
    )
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"item2vec-sweep", "item2vec-sweep-test"} <= keys


def test_leaders_are_retrained_with_other_seeds_and_the_best_mean_wins():
    sweep = _search(_sequences(), trials=5)
    base = _base()
    data = tuning_data(_sequences(), base)
    leaders = sweep.leaders(seeds=2, parallel=1)
    assert leaders and leaders[0] == max(
        (n for n, r in sweep.results.items() if not r.pruned),
        key=lambda n: (sweep.results[n].value, -n),
    )
    runs = sweep.confirmation_runs(leaders, seeds=2)
    assert len(runs) == 2 * len(leaders)
    assert {config.train.seed for _, config in runs} == {3 + 1000, 3 + 2000}
    sweep.record_confirmation(runs, [run_trial(config, data) for _, config in runs])
    means = {n: float(np.mean(scores)) for n, scores in sweep.confirmed.items()}
    assert all(len(scores) == 3 for scores in sweep.confirmed.values())
    number, _ = sweep.best()
    assert means[number] == max(means.values())
    row = next(r for r in sweep.trials_table().to_pylist() if r["trial"] == number)
    assert row["seeds"] == 3 and row["seeds_mean"] == pytest.approx(means[number])
