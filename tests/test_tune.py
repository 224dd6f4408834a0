"""The tuner: validation-only selection, pruning, budgets, outputs, errors, and the flow."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from item2vec.config import PipelineConfig, build_config
from item2vec.config_file import read_toml
from item2vec.errors import ConfigError
from item2vec.final_evaluation import FINAL_SEEDS, combine_final, final_baselines, final_run
from item2vec.search_space import TUNED_TRAIN
from item2vec.sequences import build_sequences
from item2vec.split import split_sequences
from item2vec.sweep_outputs import best_toml, gains
from item2vec.synth import planted_clusters
from item2vec.trial import CHECKPOINTS, run_trial
from item2vec.tune import SEARCH_SHARE, Sweep
from item2vec.tuning_split import sample_users, tuning_data


def _sequences(seed: int = 0, users: int = 150) -> pa.Table:
    events, _ = planted_clusters(
        n_users=users, n_items=60, n_clusters=3, events_per_user=12, seed=seed
    )
    frame = events.rename(columns={"timestamp": "ts"})
    frame["ts"] = (frame["ts"] * 1_000_000_000).astype("datetime64[ns, UTC]")
    return build_sequences(frame)


def _base(**train) -> PipelineConfig:
    return build_config({"train": {"workers": 1, "min_count": 1, **train}})


def _search(sequences: pa.Table, trials: int = 6) -> Sweep:
    """A short serial sweep, deterministic: one training thread, fixed seeds, and no
    clock: the trial count ends it (the budget is an hour), and no trial is stopped for
    time (the tests of the budget and of the pace do that)."""
    base = _base()
    data = tuning_data(sequences, base)
    sweep = Sweep(base, budget_minutes=60, trials=trials, seed=3, workers=1)
    while not sweep.done():
        trial, config = sweep.ask()
        sweep.tell(trial, run_trial(config, data, sweep.pruning_hook(trial)))
    return sweep


def _replace_from_end(sequences: pa.Table, back: int, seed: int = 9) -> pa.Table:
    """The same sequences with the item ``back`` places from each end replaced at random
    (1: the test target, 2: the validation target), for users who have those targets."""
    items = sequences.column("items").combine_chunks()
    values = np.asarray(items.values.to_pylist(), dtype=object)
    offsets = items.offsets.to_numpy()
    rng = np.random.default_rng(seed)
    lengths = np.diff(offsets)
    positions = offsets[1:][lengths >= 2 + back] - back
    values[positions] = rng.choice(np.unique(values), size=len(positions))
    replaced = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.string()))
    return sequences.set_column(sequences.schema.get_field_index("items"), "items", replaced)


def _table(sweep: Sweep) -> pa.Table:
    return sweep.trials_table().drop_columns(["seconds"])


def test_selection_never_looks_at_the_test_target():
    sequences = _sequences()
    scrambled = _replace_from_end(sequences, back=1)
    assert not scrambled.column("items").equals(sequences.column("items"))
    first, second = _search(sequences), _search(scrambled)
    assert first.best()[0] == second.best()[0]
    assert first.best()[1] == second.best()[1]
    assert _table(first).equals(_table(second))
    # ...while the test target did change what the final evaluation sees,
    base = _base()
    assert not np.array_equal(
        tuning_data(sequences, base).final.test.targets,
        tuning_data(scrambled, base).final.test.targets,
    )
    # ...and the same search does react to the validation target: the check has teeth.
    assert not _table(first).equals(_table(_search(_replace_from_end(sequences, back=2))))


def test_trials_score_the_validation_target_of_the_split():
    sequences = _sequences()
    base = _base()
    data = tuning_data(sequences, base)
    validation = split_sequences(sequences).validation
    # Trials are scored on split.validation's targets (users with a target after the
    # test target is removed), and train on nothing at or after them.
    users = dict(zip(validation.user_ids, validation.targets, strict=True))
    assert len(data.tuning.test) > 0
    for user, target in zip(data.tuning.test.user_ids, data.tuning.test.targets, strict=True):
        assert users[user] == target
    trained = dict(zip(sequences.column("user_id").to_pylist(), data.tuning.train, strict=True))
    full = dict(
        zip(
            sequences.column("user_id").to_pylist(),
            sequences.column("items").to_pylist(),
            strict=True,
        )
    )
    for user in data.tuning.test.user_ids:
        assert trained[user] == full[user][:-2]


def test_the_start_is_trial_zero_and_the_best_trial_wins():
    sweep = _search(_sequences(), trials=3)
    table = sweep.trials_table().to_pylist()
    assert [row["trial"] for row in table] == [0, 1, 2]
    start = sweep.configs[0]
    assert start.train.epochs == _base().train.epochs
    assert start.evaluate.scoring == _base().evaluate.scoring
    complete = [row for row in table if row["state"] == "complete"]
    assert complete and all(0 <= row["validation.hr@10"] <= 1 for row in complete)
    number, _ = sweep.best()
    assert table[number]["value"] == max(row["value"] for row in complete)
    # Planted clusters are easy: the best trial beats a random ranking by far.
    assert table[number]["value"] > 3 * 10 / 60


def test_pruning_steps_are_shares_of_the_epochs():
    config = _base(epochs=8)
    data = tuning_data(_sequences(), config)
    asked: list[int] = []
    result = run_trial(config, data, lambda step, value: asked.append(step) or False)
    assert asked == list(range(1, CHECKPOINTS)) == sorted(result.intermediate)
    assert not result.pruned and result.value is not None
    stopped = run_trial(config, data, lambda step, value: step == 2)
    assert stopped.pruned and f"2/{CHECKPOINTS}" in stopped.reason
    assert sorted(stopped.intermediate) == [1, 2] and stopped.value is None


def test_a_trial_stops_when_its_pace_overruns_the_budget_or_its_limit():
    """A trial whose pace says it would end after the deadline, or take longer than its
    limit, stops at its second epoch with that reason; with time to spare it completes."""
    config = _base(epochs=8)
    data = tuning_data(_sequences(), config)

    def never_prune(step: int, value: float) -> bool:  # the trial records the steps it reached
        return False

    # A deadline already past and a limit of no time: any pace overruns them.
    late = run_trial(config, data, never_prune, deadline=time.time() - 1)
    assert late.pruned and "time budget" in late.reason
    slow = run_trial(config, data, never_prune, time_limit=0)
    assert slow.pruned and "per-trial limit" in slow.reason
    # Stopped at epoch 2, before the first pruning step (epoch 2 of 8) was scored.
    assert late.intermediate == slow.intermediate == {}
    assert late.value is None and slow.value is None
    complete = run_trial(config, data, never_prune, deadline=time.time() + 600, time_limit=600)
    assert complete.value is not None and sorted(complete.intermediate) == [1, 2, 3]


def test_budget_stops_starting_trials():
    """No trial starts once the time left is the reserve for the end of the sweep, however
    many trials the count would still allow."""
    sweep = Sweep(_base(), budget_minutes=60, trials=10_000, seed=3, workers=1)
    data = tuning_data(_sequences(), _base())
    reserve = (1 - SEARCH_SHARE) * sweep.budget_seconds
    while not sweep.done():
        trial, config = sweep.ask()
        sweep.tell(trial, run_trial(config, data))
        # The budget runs down: a minute more than the reserve is left after the first
        # two trials, a minute less after the third.
        sweep.deadline = time.time() + reserve + (60 if sweep.asked < 3 else -60)
    assert sweep.asked == len(sweep.results) == 3


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
    assert half.num_rows == sequences.num_rows // 2
    assert half.equals(sample_users(sequences, 0.5, seed=4))
    assert not half.equals(sample_users(sequences, 0.5, seed=5))
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
    # The final evaluation still sees everyone.
    data = tuning_data(sequences, _base(), share=0.5, seed=4)
    assert len(data.final.test) == len(split_sequences(sequences).test)
    assert len(data.tuning.test) < len(data.final.test)


def test_final_fit_reserve_grows_with_the_user_sample():
    sequences = _sequences()
    # 12 events per user: a trial trains on 10 of them, the final fit on 11.
    assert tuning_data(sequences, _base()).final_scale == pytest.approx(11 / 10)
    sampled = tuning_data(sequences, _base(), share=0.2, seed=4)
    assert sampled.final_scale == pytest.approx(150 * 11 / (30 * 10))
    sweep = _search(sequences, trials=3)
    reserve_all = sweep.final_seconds()
    sweep.final_scale = sampled.final_scale
    assert reserve_all > 0
    assert sweep.final_seconds() == pytest.approx(reserve_all * sampled.final_scale)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--trials", "0"], "--trials"),
        (["--sample-users", "1.5"], "--sample-users"),
        (["--sample-users", "0"], "--sample-users"),
        (["--budget-minutes", "0"], "--budget-minutes"),
        (["--task-runner", "threads", "--dask-address", "tcp://x:8786"], "--dask-address"),
    ],
)
def test_cli_refuses_bad_sweep_flags(capsys, tmp_path, flags, message):
    from item2vec_flows.cli import main
    from item2vec_flows.cli_common import EXIT_ERROR

    code = main(["sweep", *flags, "--output", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_cli_refuses_a_missing_column_before_the_flow(capsys, tmp_path, clustered_log):
    from item2vec_flows.cli import main

    path, _ = clustered_log
    code = main(["sweep", str(path), "--user-col", "visitor", "--output", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 1 and "visitor" in err and "Traceback" not in err


def test_best_toml_runs_as_a_config_and_keeps_what_it_tuned(tmp_path):
    config = build_config(
        {
            "ingest": {"paths": ["clicks.csv"], "user_col": "visitor", "item_col": "sku"},
            "sequences": {"session_gap": "30m"},
            "train": {"context": "set", "max_set_size": 17, "sg": 0, "epochs": 33},
            "evaluate": {"scoring": "in-in", "query_items": 3},
        }
    )
    facts = {"command": "item2vec sweep clicks.csv", "budget minutes": 2, "seed": 5}
    path = tmp_path / "best.toml"
    path.write_text(best_toml(config, facts))
    text = path.read_text()
    assert text.startswith("# command: item2vec sweep clicks.csv\n# budget minutes: 2")
    rebuilt = build_config(read_toml(path))
    assert rebuilt.ingest.user_col == "visitor" and rebuilt.ingest.paths == ["clicks.csv"]
    assert rebuilt.sequences.session_gap == "30m"
    for key in (*TUNED_TRAIN, "max_set_size"):
        assert getattr(rebuilt.train, key) == getattr(config.train, key), key
    assert (rebuilt.evaluate.scoring, rebuilt.evaluate.query_items) == ("in-in", 3)


def test_leaders_are_retrained_with_other_seeds_and_the_best_mean_wins():
    sweep = _search(_sequences(), trials=5)
    data = tuning_data(_sequences(), _base())
    sweep.deadline = time.time() + 3600  # time for every leader's re-training, however slow
    leaders = sweep.leaders(seeds=2)
    assert len(leaders) >= 2 and leaders[0] == max(
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


def test_no_time_left_means_no_confirmation():
    sweep = _search(_sequences(), trials=3)
    sweep.deadline = time.time()
    assert sweep.leaders(seeds=2) == []


def _final(best, base, data, seeds):
    """The final evaluation from its parts, one after the other (the flow runs them as tasks)."""
    results = {}
    for name, config in (("best", best), ("base", base)):
        runs = [final_run(config, data, offset) for offset in range(seeds)]
        baselines = final_baselines(config.evaluate, data)
        results[name] = combine_final(runs, baselines, data, config.evaluate)
    return results


def test_final_evaluation_and_the_gain_that_survives():
    sequences = _sequences()
    sweep = _search(sequences, trials=4)
    number, best = sweep.best()
    data = tuning_data(sequences, _base())
    final = _final(best, sweep.configs[0], data, seeds=2)
    assert len(final["best"]["seeds"]) == 2
    assert final["best"]["model"]["hr@10"] == pytest.approx(np.mean(final["best"]["seeds"]))
    assert set(final["best"]["baselines"]) == {"popularity", "item_knn"}
    assert final["best"]["users"] == len(data.final.test)
    gain = gains(sweep, number, final)
    assert gain["validation_start"] == sweep.results[0].value
    assert gain["test_gain"] == pytest.approx(
        np.mean(final["best"]["seeds"]) - np.mean(final["base"]["seeds"])
    )
    if gain["validation_gain"]:
        assert gain["survives"] == pytest.approx(gain["test_gain"] / gain["validation_gain"])
    assert gain["validation_users"] is None and gain["validation_error"] is None
    sweep.validation_users = data.users
    best_score = sweep.score(number)
    assert gains(sweep, number, final)["validation_error"] == pytest.approx(
        np.sqrt(best_score * (1 - best_score) / data.users)
    )


@pytest.mark.parametrize(
    ("survives", "test_gain", "words"),
    [
        (None, 0.01, "no validation gain to carry"),
        (0.76, 0.01, "76% of it survives"),
        (-0.45, -0.03, "none of it survives: the winner scores below the start on test"),
    ],
)
def test_survival_in_words(survives, test_gain, words):
    """How much of the validation gain survives on test, in words."""
    from item2vec.tune_report import survival

    assert survival({"survives": survives, "test_gain": test_gain}) == words


def test_noise_note_warns_when_the_gain_is_within_the_sampling_error():
    from item2vec.tune_report import noise_note

    assert noise_note({"validation_users": None, "validation_error": None}) == ""
    small = {"validation_users": 122, "validation_error": 0.032, "validation_gain": 0.0683}
    note = noise_note(small)
    assert "122 users" in note and "0.0082" in note and "0.0320" in note
    assert "may not carry over" in note
    large = {**small, "validation_users": 2859, "validation_error": 0.0075}
    # 0.0683 is above 3 x 0.0075 and below 3 x 0.032.
    assert "may not carry over" not in noise_note(large)


@pytest.mark.flows
def test_sweep_flow_writes_outputs_that_run_accepts(prefect_harness, tmp_path):
    import duckdb
    import pandas as pd
    from prefect.client.orchestration import get_client

    from item2vec.tune import SweepSettings
    from item2vec_flows.sweep import run_sweep

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
    # A budget the four trials cannot exhaust: the trial count ends the search.
    settings = SweepSettings(budget_minutes=10, trials=4, parallel=2, output=str(tmp_path / "s"))
    result = run_sweep(config, settings)

    folder = tmp_path / "s"
    trials = pq.read_table(folder / "trials.parquet")
    assert trials.num_rows == result["trials"] == 4
    assert len(pd.read_parquet(folder / "trials.parquet")) == 4
    count = duckdb.sql(f"select count(*) from '{folder / 'trials.parquet'}'").fetchall()
    assert count == [(4,)]
    best = build_config(read_toml(folder / "best.toml"))
    assert best.ingest.paths == [str(log)]
    text = (folder / "best.toml").read_text()
    assert text.startswith("# tuned by: item2vec sweep")
    assert all(f"# {key}:" in text for key in ("command", "budget minutes", "seed", "date"))
    summary = json.loads((folder / "sweep.json").read_text())
    assert summary["best_trial"] == result["best_trial"] and summary["trials run"] == 4
    assert set(summary["test"]["baselines"]) == {"popularity", "item_knn"}
    assert len(result["test"]["seeds"]) == len(result["base_test"]["seeds"]) == FINAL_SEEDS
    report = (folder / "sweep.md").read_text()
    assert "sweep_trials.png" in report and (folder / "sweep_trials.png").stat().st_size > 5000
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts()}
    assert {"item2vec-sweep", "item2vec-sweep-test", "item2vec-sweep-trials"} <= set(artifacts)
    rows = artifacts["item2vec-sweep-test"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    # Plain floats, exactly the flow's own numbers (no float32 rounding on the way).
    assert rows[0]["hr@10"] == result["test"]["model"]["hr@10"]


def test_too_short_for_a_validation_target_names_the_sweep_fix():
    """Three events give a test target but no validation target once it is removed."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "user_id": ["a"] * 3 + ["b"] * 3,
            "item_id": ["x", "y", "z", "y", "z", "x"],
            "ts": pd.to_datetime([1, 2, 3, 1, 2, 3], unit="s", utc=True),
        }
    )
    with pytest.raises(ConfigError, match="--sample-users"):
        tuning_data(build_sequences(frame), _base())


def _with(config: PipelineConfig, section: str, **values) -> PipelineConfig:
    return build_config(config.model_dump(), {section: values})


def test_the_search_space_table_is_the_one_source_of_draws_starts_and_columns():
    import optuna

    from item2vec.search_space import (
        CONDITIONAL_TRAIN,
        SEARCH_SPACE,
        TUNED_EVALUATE,
        starting_params,
        suggest,
        trial_config,
        tuned_fields,
    )

    space = {parameter.name: parameter for parameter in SEARCH_SPACE}
    sections = {"train": (*TUNED_TRAIN, *CONDITIONAL_TRAIN), "evaluate": TUNED_EVALUATE}
    assert {n for names in sections.values() for n in names} == {
        p.name for p in SEARCH_SPACE if p.section
    }
    # Draws: exactly the declared parameters that apply, each inside its range, and
    # the config fields they set are what the table says a trial tunes.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: set[str] = set()
    for _ in range(60):
        trial = study.ask()
        params = suggest(trial)
        drawn = trial.params
        assert set(drawn) == {p.name for p in SEARCH_SPACE if p.applies(drawn)}
        assert all(space[name].contains(value) for name, value in drawn.items()), drawn
        seen |= set(drawn)
        config = trial_config(_base(), params)
        for section, names in sections.items():
            assert params[section] == tuned_fields(config, section)
            assert set(params[section]) <= set(names)
        study.tell(trial, 0.0)
    assert seen == set(space)  # every conditional branch was drawn at least once
    # Starts: every parameter that applies to the config, read from it; anything past
    # a declared bound keeps the start out of the study.
    start = _with(_base(), "train", context="set", max_set_size=17, sample=1e-4)
    start = _with(start, "evaluate", query_half_life=2.0, knn_blend=0.3)
    everything = {p.name: p.value_in(start) for p in SEARCH_SPACE}
    assert starting_params(start) == {k: v for k, v in everything.items() if k != "basket_window"}
    baskets = _with(start, "train", context="basket", basket_window=1)
    assert starting_params(baskets)["basket_window"] == 1
    assert "max_set_size" not in starting_params(baskets)
    conditional = {"max_set_size", "sample", "basket_window", "query_half_life", "knn_blend"}
    assert set(starting_params(_base())) == set(space) - conditional
    # (The config itself refuses sg, context and scoring outside their choices, and
    # a knn_blend above 1.)
    numeric = [p for p in SEARCH_SPACE if p.kind != "categorical" and p.name != "knn_blend"]
    beyond = [(p, p.high + (1 if p.kind == "int" else p.high / 2)) for p in numeric]
    for parameter, value in [*beyond, (space["vector_size"], 48), (space["knn_blend"], 0.97)]:
        assert not parameter.contains(value)
        where = baskets if parameter.name == "basket_window" else start
        config = _with(where, parameter.section, **{parameter.name: value})
        assert starting_params(config) is None, parameter.name


def test_the_neighbour_objective_ranks_trials_by_the_tables_item_to_item_hit_rate(tmp_path):
    """With objective neighbors a trial's value is the validation item-to-item HR@10 of the
    neighbour table under publish.neighbors_scoring, computed here independently; the final
    record's seeds and the report name that objective, and popularity (no neighbour
    table) shows n/a."""
    from item2vec.evaluate import evaluate_model
    from item2vec.search_space import OBJECTIVES
    from item2vec.train import train_word2vec
    from item2vec.tune_report import write_sweep_report

    objective = OBJECTIVES["neighbors"]
    sequences = _sequences()
    base = _base(epochs=5)
    data = tuning_data(sequences, base)
    result = run_trial(base, data, objective=objective)
    vectors = train_word2vec(data.tuning.train, base.train)
    direct = evaluate_model(
        vectors, data.tuning.train, data.tuning.test, base.evaluate, neighbors_scoring="in-out"
    )
    assert result.value == pytest.approx(direct["neighbors"]["hr@10"])
    assert result.metrics["hr@10"] == pytest.approx(direct["hr@10"])

    sweep = Sweep(base, budget_minutes=60, trials=2, seed=3, workers=1, objective=objective)
    while not sweep.done():
        trial, config = sweep.ask()
        sweep.tell(trial, run_trial(config, data, sweep.pruning_hook(trial), objective=objective))
    number, best = sweep.best()
    assert sweep.results[number].value == max(r.value for r in sweep.results.values())
    runs = [final_run(best, data, offset) for offset in range(2)]
    record = combine_final(
        runs, final_baselines(best.evaluate, data), data, best.evaluate, objective
    )
    assert record["objective"] == objective
    assert record["seeds"] == [r["neighbors"]["hr@10"] for r in runs]
    assert objective in record["baselines"]["item_knn"]
    final = {"best": record, "base": record}
    report = write_sweep_report(
        tmp_path, sweep.trials_table(), {}, number, final, {}, gains(sweep, number, final), {}
    ).read_text()
    assert f"validation {objective}" in report and "popularity n/a" in report
