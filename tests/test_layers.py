"""The layers: library (``item2vec``) below the app (``item2vec_flows``: CLI and flows).

The rules are checked on the source (every import statement, including those
inside functions) and in fresh interpreters (what importing actually loads and
changes).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"item2vec": REPO / "item2vec", "item2vec_flows": REPO / "flows"}
#: Heavy or app-level packages a bare ``import item2vec`` must not load.
NOT_ON_IMPORT = ("prefect", "optuna", "matplotlib", "dask", "distributed", "gensim")
#: What the published-table reader may not pull in: training, plotting, orchestration.
NOT_IN_READER = ("prefect", "optuna", "matplotlib", "dask", "gensim", "sklearn", "numba")


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module name an import statement in ``path`` names, wherever it stands."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {other for other in _imports(path) if other in modules and other != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_library_never_imports_the_app_layer():
    """No module under item2vec/ imports the CLI or the flows, not even inside a function."""
    offenders = {
        name: sorted(n for n in _imports(path) if n.split(".")[0] in ("item2vec_flows", "flows"))
        for name, path in _modules().items()
        if name.split(".")[0] == "item2vec"
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_there_is_no_import_cycle_between_modules():
    """Library and app modules form a DAG, counting function-level and type-only imports."""
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_a_planted_cycle():
    """The check above can fail: a planted a -> b -> c -> a is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


def test_flows_is_not_installed_as_a_top_level_package():
    """The app installs as item2vec_flows; a generic top-level ``flows`` would clash."""
    import tomllib

    settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "flows" not in settings["packages"]
    assert settings["package-dir"]["item2vec_flows"] == "flows"
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('flows'))"],
        cwd=Path("/"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "None"


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON value, returned here."""
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(shown.stdout.strip().splitlines()[-1])


def _loaded(statement: str, banned: tuple[str, ...]) -> list[str]:
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(banned)!r})))"
    )
    return _fresh(code)


def test_import_item2vec_loads_no_heavy_or_app_package():
    """``import item2vec`` loads neither Prefect, Optuna, matplotlib, Dask nor gensim."""
    assert _loaded("import item2vec", NOT_ON_IMPORT) == []


def test_the_import_check_sees_a_package_that_is_loaded():
    """The check above can fail: importing gensim's model shows up in it."""
    assert _loaded("import item2vec.train", NOT_ON_IMPORT) == ["gensim"]


def test_the_reader_loads_no_training_plotting_or_orchestration():
    """Loading published tables (``item2vec.load``) needs none of the heavy packages."""
    assert _loaded("import item2vec.reader, item2vec.model, item2vec.lookup", NOT_IN_READER) == []


#: Third-party packages the library imports. Some set variables of their own on
#: import (scikit-learn sets two KMP_* for OpenMP); those are theirs, not ours.
DEPENDENCIES = "numpy, pandas, pyarrow, pyarrow.parquet, scipy, sklearn, gensim, numba, matplotlib"


def _changed_by(statement: str, after_importing: str = "") -> list[str]:
    """Environment variables ``statement`` sets or changes, in a fresh interpreter."""
    prelude = f"import {after_importing}\n" if after_importing else ""
    code = (
        f"import json, os\n{prelude}before = dict(os.environ)\n{statement}\n"
        "print(json.dumps(sorted(k for k in before.keys() | os.environ.keys() "
        "if before.get(k) != os.environ.get(k))))"
    )
    return _fresh(code)


def test_import_item2vec_changes_no_environment_variable():
    """The package itself, imported first in a fresh process, leaves os.environ as it was."""
    assert _changed_by("import item2vec") == []


def test_no_library_module_changes_the_environment():
    """All of item2vec/'s modules add no variable beyond what their dependencies set."""
    names = [name for name in _modules() if name.split(".")[0] == "item2vec"]
    statement = f"import importlib\nfor name in {names!r}:\n    importlib.import_module(name)"
    assert _changed_by(statement, after_importing=DEPENDENCIES) == []


def test_the_environment_check_sees_a_change():
    """The check above can fail: a module that sets a variable is reported."""
    assert _changed_by("os.environ['ITEM2VEC_PLANTED'] = '1'") == ["ITEM2VEC_PLANTED"]


#: The house style aims at modules of about 450 lines, each one concept; this
#: guard catches a module growing back into several.
MAX_MODULE_LINES = 500


def test_no_module_outgrows_one_concept():
    """No library or app module is longer than MAX_MODULE_LINES."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_architecture_page_lists_exactly_the_modules_that_exist():
    """docs/architecture.md names every module once, and no module that is gone."""
    import re

    text = (REPO / "docs" / "architecture.md").read_text()
    listed = set()
    for package, heading in (("item2vec", "## `item2vec/`"), ("item2vec_flows", "## `flows/`")):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        names = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
        assert len(names) == len(set(names)), f"a module of {package} is listed twice"
        listed |= {package if n == "__init__" else f"{package}.{n}" for n in names}
    assert listed == set(_modules())
