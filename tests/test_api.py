"""The public Python API: ``item2vec.fit`` -> a model to query, evaluate, save and load."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import item2vec
from item2vec.errors import InputError
from item2vec.synth import planted_clusters

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world():
    events, truth = planted_clusters(n_users=300, n_items=40, n_clusters=2, events_per_user=15)
    return events, dict(zip(truth["item_id"], truth["cluster"], strict=True))


@pytest.fixture(scope="module")
def fitted(world):
    events, _ = world
    return item2vec.fit(
        events, time_col="timestamp", epochs=5, min_count=1, config={"publish": {"report": False}}
    )


def test_neighbours_stay_in_their_planted_world(fitted, world):
    _, cluster = world
    for item in list(cluster)[:10]:
        neighbours = [other for other, _ in fitted.most_similar(item, topn=5)]
        assert [cluster[n] for n in neighbours] == [cluster[item]] * 5


def test_evaluation_is_typed_and_beside_both_baselines(fitted):
    evaluation = fitted.evaluate()
    assert isinstance(evaluation, item2vec.Evaluation)
    assert evaluation.users == 300 and evaluation.sampled_from is None
    table = evaluation.table()
    assert list(table.index) == ["item2vec", "item2vec with fallback", "popularity", "item-kNN"]
    assert all(dtype.kind == "f" or dtype.kind == "i" for dtype in table.dtypes)
    assert 0 <= table.loc["item2vec", "hr@10"] <= 1
    # The fallback only adds rankings where the model had none.
    assert table.loc["item2vec with fallback", "hr@10"] >= table.loc["item2vec", "hr@10"]
    fallback = evaluation.model_with_fallback
    assert table.loc["item2vec with fallback", "fallback_share"] == fallback["fallback_share"]
    # In a world of 20 items per cluster, a cluster-aware model beats popularity.
    assert table.loc["item2vec", "hr@10"] > table.loc["popularity", "hr@10"]


def test_saved_recommendations_are_what_recommend_answers(fitted, tmp_path):
    version_dir = fitted.save(tmp_path, "planted")
    assert (tmp_path / "planted" / "LATEST").read_text().strip() == version_dir.name
    table = pq.read_table(version_dir / "user_recommendations.parquet").to_pandas()
    user = table["user_id"].iloc[0]
    expected = table[table["user_id"] == user].sort_values("rank")
    got = fitted.recommend(user, n=len(expected))
    assert [item for item, _ in got] == expected["item_id"].tolist()
    np.testing.assert_allclose([s for _, s in got], expected["score"], rtol=1e-5, atol=1e-6)
    # The same history given as a list of items answers the same.
    assert fitted.recommend(fitted.history(user), n=3) == got[:3]
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["published"]["model"] == "evaluated"

    loaded = item2vec.load(tmp_path, "planted")
    assert isinstance(loaded, item2vec.Item2VecModel) and loaded.version_dir == version_dir
    assert loaded.most_similar("i01", topn=5) == fitted.most_similar("i01", topn=5)
    assert loaded.evaluate().model == fitted.evaluate().model
    assert loaded.recommend(fitted.history(user), n=5) == fitted.recommend(user, n=5)
    with pytest.raises(InputError, match="no user histories"):
        loaded.recommend(user)
    with pytest.raises(InputError, match="only a model fitted in this process"):
        loaded.save(tmp_path, "planted")


def test_an_arrow_table_and_a_file_fit_like_the_dataframe(world, tmp_path):
    events, _ = world
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    settings = {"epochs": 2, "min_count": 1, "workers": 1, "seed": 3}
    from_frame = item2vec.fit(events, evaluate_model=False, **settings)
    from_arrow = item2vec.fit(pa.Table.from_pandas(events), evaluate_model=False, **settings)
    from_file = item2vec.fit(str(path), evaluate_model=False, **settings)
    for model in (from_arrow, from_file):
        assert model.item_ids.tolist() == from_frame.item_ids.tolist()
        np.testing.assert_array_equal(model.vectors, from_frame.vectors)
    assert from_file.counts_by_stage["events_read"] == len(events)
    with pytest.raises(InputError, match="no evaluation"):
        from_frame.evaluate()
    with pytest.raises(InputError, match="evaluate_model=False"):
        from_frame.save(tmp_path, "x")


def test_null_ids_are_dropped_and_counted_never_given_to_another_user(world):
    events, _ = world
    broken = events.copy()
    broken.loc[:9, "user_id"] = None
    broken.loc[10:14, "item_id"] = np.nan
    # The message names the Python setting as well as the CLI flag.
    message = r"null_user in column 'user_id'.*check user_col.*raise max_bad_fraction"
    with pytest.raises(InputError, match=message):
        item2vec.fit(broken.iloc[:200], epochs=1, min_count=1)
    model = item2vec.fit(broken, epochs=1, min_count=1, evaluate_model=False)
    dropped = model.counts_by_stage["dropped"]
    assert dropped["null_user"] == 10 and dropped["null_item"] == 5
    assert model.counts_by_stage["events_kept"] == len(events) - 15
    assert "None" not in model.item_ids.tolist() and "nan" not in model.item_ids.tolist()


def test_bad_input_gets_one_clear_message(world):
    events, _ = world
    with pytest.raises(
        InputError,
        match=r"'userId' not found in the DataFrame; available: "
        r"user_id, item_id, timestamp; set user_col",
    ):
        item2vec.fit(events, user_col="userId")
    with pytest.raises(InputError, match="pandas DataFrame, an Arrow table, or paths"):
        item2vec.fit({"user_id": [1]})
    with pytest.raises(InputError, match="repeated column names"):
        item2vec.fit(pd.concat([events, events[["user_id"]]], axis=1))
    with pytest.raises(item2vec.ConfigError, match="train.epochs"):
        item2vec.fit(events, epochs=0)


def test_the_api_loads_its_modules_on_first_use_and_gensim_only_to_train():
    """``item2vec.fit`` is there on first use; gensim waits until something trains."""
    code = (
        "import sys, item2vec; item2vec.fit; "
        "print('item2vec.fitting' in sys.modules, 'gensim' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]


def test_the_readme_python_api_runs_verbatim(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### The Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "data").symlink_to(REPO / "data")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert (tmp_path / "output" / "ratings" / "LATEST").is_file()


API_MODULES = (
    "item2vec",
    "item2vec.fitting",
    "item2vec.model",
    "item2vec.saving",
    "item2vec.queries",
    "item2vec.vectors",
    "item2vec.errors",
)


@pytest.mark.parametrize("module_name", API_MODULES)
def test_every_public_name_is_listed_and_documented(module_name):
    """Each API module declares __all__; every name in it exists and has a docstring."""
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    assert module.__all__, f"{module_name} has an empty __all__"
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


@pytest.mark.parametrize("function", ["fit", "load"])
def test_the_entry_functions_document_their_parameters_and_returns(function):
    """fit and load carry numpy-style Parameters and Returns sections for every parameter."""
    import inspect

    func = getattr(item2vec, function)
    doc = inspect.getdoc(func)
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc
    for parameter in inspect.signature(func).parameters.values():
        name = parameter.name if parameter.kind is not parameter.VAR_KEYWORD else "**train"
        assert name in doc, f"{function}() does not document {name}"
