"""Every shell command of the documentation runs, verbatim.

The fenced ``bash``, ``sh``, ``shell`` and ``console`` blocks of README.md,
docs/*.md and bench/README.md are split into commands, and each document's
commands run in order, through bash, in a fresh project directory of their own:
the checkout's ``.venv``, ``data/`` and ``bench/`` linked in, and the files the
docs call the reader's own log (``clicks.csv``, ``products.csv``, ``logs/``).
README.md's commands start from what its Quickstart leaves behind: the bundled
sample published under ``output/movielens``.

An HTML comment right before a block changes what happens to it:

- ``<!-- not run: REASON -->``: the block is not run, and REASON says why;
- ``<!-- long-running: started when it prints "TEXT" -->``: the command runs
  until TEXT appears in its output, then it is interrupted;
- ``<!-- file: NAME -->``: the block is a file that later commands use, written
  to NAME before they run.

Commands that run a flow send it to the test suite's Prefect server
(``PREFECT_API_URL``), as a deployment would, instead of each starting one of
its own: that is most of what an ``item2vec run`` costs on a small log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from conftest import interrupt

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
DOCUMENTS.append("bench/README.md")
SHELLS = {"bash", "sh", "shell", "console"}
QUICKSTART = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/item2vec run",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest",
]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
STARTED = re.compile(r'long-running: started when it prints "([^"]+)"')
# A command that starts a flow run (not its --help).
RUNS_A_FLOW = re.compile(r"item2vec (run|serve|sweep)\b(?!.*--help)")
COMMAND_TIMEOUT_S = 600
START_TIMEOUT_S = 180


@dataclass
class Block:
    """One fenced block of a document, with the marker comment right before it."""

    document: str
    line: int
    language: str
    text: str
    marker: str = ""
    commands: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def _commands(language: str, text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and output left out."""
    commands, pending = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if language == "console" and not pending:
            if not line.startswith("$ "):
                continue  # output shown after a prompt
            line = line[2:]
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        continued = line.endswith("\\")
        piece = line[:-1].rstrip() if continued else line
        pending = f"{pending} {piece.strip()}" if pending else piece
        if not continued:
            commands.append(pending)
            pending = ""
    return commands


def _marker(before: str) -> str:
    """The text of the HTML comment that ends ``before`` (blank lines aside), or ""."""
    before = before.rstrip()
    if not before.endswith("-->"):
        return ""
    return before[before.rfind("<!--") + 4 : -3].strip()


def _blocks(document: str) -> list[Block]:
    text = (REPO / document).read_text()
    blocks = []
    for found in FENCE.finditer(text):
        language, body = found.group(1).lower(), found.group(2)
        line = text.count("\n", 0, found.start()) + 1
        block = Block(document, line, language, body, _marker(text[: found.start()]))
        if language in SHELLS:
            block.commands = _commands(language, body)
        blocks.append(block)
    return blocks


ALL_BLOCKS = [block for document in DOCUMENTS for block in _blocks(document)]
SHELL_BLOCKS = [block for block in ALL_BLOCKS if block.language in SHELLS]


def _runnable(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.language in SHELLS and not b.marker.startswith("not run")]


def test_every_shell_block_runs_or_says_why_not():
    assert SHELL_BLOCKS, "no shell blocks found in the documentation"
    for block in ALL_BLOCKS:
        marker, shell = block.marker, block.language in SHELLS
        if marker.startswith("not run"):
            reason = marker.removeprefix("not run").lstrip(":").strip()
            assert len(reason.split()) >= 3, f"{block.where}: say why it is not run"
        elif marker.startswith("file:"):
            assert not shell, f"{block.where}: a shell block cannot be a file"
        elif marker:
            assert STARTED.fullmatch(marker), f"{block.where}: unknown marker <!-- {marker} -->"
            assert shell and len(block.commands) == 1, f"{block.where}: one command to start"
        if shell:
            assert block.commands, f"{block.where}: a shell block without a command"


def test_no_command_runs_twice():
    """Each distinct command is run once across the documents; a repeat would cost twice."""
    seen: dict[str, str] = {}
    for block in _runnable(SHELL_BLOCKS):
        for command in block.commands:
            assert command not in seen, f"{block.where} repeats {seen[command]}: {command}"
            seen[command] = block.where


def test_quickstart_comes_first_and_ci_runs_it():
    (first, *_) = [b for b in SHELL_BLOCKS if b.document == "README.md"]
    assert first.commands == QUICKSTART and first.text.splitlines() == QUICKSTART
    assert first.marker.startswith("not run")
    # CI runs the second command verbatim; tests/test_flow.py runs the first's pipeline.
    assert QUICKSTART[1] in (REPO / ".ci" / "run").read_text().splitlines()


def _own_log(folder: Path) -> None:
    """The files the docs call the reader's own: a small log under other column names."""
    from item2vec.synth import write_synthetic_log

    write_synthetic_log(folder / "raw.csv", 6_000, 300, 150, clusters=10, seed=0)
    raw = pd.read_csv(folder / "raw.csv", dtype=str)
    times = pd.to_datetime(raw["timestamp"].astype("int64"), unit="s", utc=True)
    clicks = pd.DataFrame(
        {
            "visitor": raw["user_id"],
            "sku": raw["item_id"],
            "seen_at": times.dt.tz_convert("Etc/GMT-1").dt.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "type": raw["event_type"],
        }
    )
    clicks.to_csv(folder / "clicks.csv", index=False)
    skus = sorted(clicks["sku"].unique())
    pd.DataFrame({"sku": skus, "name": [f"Product {s}" for s in skus]}).to_csv(
        folder / "products.csv", index=False
    )
    # Daily files a week apart: a 28-day window keeps the newest four.
    days = pd.date_range("2026-10-20", periods=6, freq="7D").strftime("%Y-%m-%d")
    (folder / "logs").mkdir()
    for n, day in enumerate(days):
        clicks.iloc[n :: len(days)].to_csv(folder / "logs" / f"{day}.csv.gz", index=False)
    for name in ("raw.csv", "raw.clusters.csv"):
        (folder / name).unlink()


@pytest.fixture(scope="module")
def own_log(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("own-log")
    _own_log(folder)
    return folder


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prefect-home")


def _project(folder: Path, own_log: Path) -> Path:
    """A project directory: the checkout's environment, sample and benchmarks, and the log."""
    venv = REPO / ".venv"
    if not (venv / "bin" / "item2vec").is_file():
        venv = Path(sys.prefix)  # no .venv in the checkout: the interpreter running the tests
    assert (venv / "bin" / "item2vec").is_file(), f"no item2vec command in {venv}/bin"
    folder.mkdir()
    (folder / ".venv").symlink_to(venv)
    for name in ("data", "bench"):
        (folder / name).symlink_to(REPO / name)
    for path in own_log.iterdir():
        target = folder / path.name
        shutil.copytree(path, target) if path.is_dir() else shutil.copy2(path, target)
    return folder


def _environment(prefect_home: Path, tmp: Path, api_url: str | None) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "ITEM2VEC_PROGRESS": "0"}
    env["BENCH_DIR"] = str(tmp / "bench-cache")
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _run(command: str, cwd: Path, env: dict[str, str], where: str) -> None:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"{where}: `{command}` exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def _run_until(command: str, text: str, cwd: Path, env: dict[str, str], where: str) -> None:
    """Start a command that runs until stopped; interrupt it once it prints ``text``."""
    log = cwd / f".started-{os.getpid()}.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while text not in log.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, f"{where}: `{command}` never printed {text!r}"
            time.sleep(0.5)
        assert text in log.read_text(), (
            f"{where}: `{command}` exited {process.returncode} before printing {text!r}\n"
            + log.read_text()[-3000:]
        )
    finally:
        interrupt(process)
        log.unlink()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_commands_of_each_document_run(document, request, own_log, prefect_home, tmp_path):
    blocks = _blocks(document)
    runnable = _runnable(blocks)
    project = _project(tmp_path / "project", own_log) if runnable else tmp_path
    if document == "README.md" and runnable:
        shutil.copytree(request.getfixturevalue("quickstart_output"), project / "output")
    api_url = None
    if any(RUNS_A_FLOW.search(c) for block in runnable for c in block.commands):
        request.getfixturevalue("prefect_harness")
        from prefect.settings import PREFECT_API_URL

        api_url = PREFECT_API_URL.value()
    env = _environment(prefect_home, tmp_path, api_url)
    for block in blocks:
        if block.marker.startswith("file:"):
            (project / block.marker.removeprefix("file:").strip()).write_text(block.text)
        if block not in runnable:
            continue
        started = STARTED.fullmatch(block.marker)
        for command in block.commands:
            if started:
                _run_until(command, started.group(1), project, env, block.where)
            else:
                _run(command, project, env, block.where)


README_SNIPPETS = [
    b
    for b in _blocks("README.md")
    if b.language in {"python", "sql"} and not b.marker.startswith("not run")
]
#: The Python API block trains the sample with the general defaults and saves it:
#: 29 s alone (15 s of CPU), 20-57 s in the suite at load averages of 10-16, over
#: the default suite's budget.
TRAINS = "item2vec.fit("


def _snippet_param(block: Block):
    marks = [pytest.mark.slow] if TRAINS in block.text else []
    return pytest.param(block, id=block.where, marks=marks)


def test_every_readme_snippet_is_run():
    """Each Python and SQL block of the README is run below, or marked as not run."""
    languages = {b.language for b in README_SNIPPETS}
    assert languages == {"python", "sql"}, languages
    assert any(TRAINS in b.text for b in README_SNIPPETS)
    assert any("from item2vec.reader import" in b.text for b in README_SNIPPETS)


@pytest.mark.parametrize("block", [_snippet_param(b) for b in README_SNIPPETS])
def test_the_readme_snippets_run(block, quickstart_output, tmp_path, monkeypatch):
    """The README's pandas, pyarrow, DuckDB and Python API snippets, verbatim, in a project
    folder holding what the Quickstart's run publishes (and the bundled data they read)."""
    import duckdb

    shutil.copytree(quickstart_output, tmp_path / "output")
    (tmp_path / "data").symlink_to(REPO / "data")
    monkeypatch.chdir(tmp_path)
    version = (tmp_path / "output" / "movielens" / "LATEST").read_text().strip()
    if block.language == "python":
        namespace: dict = {}
        exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102
        if "matrix" in namespace:
            assert namespace["matrix"].shape == (len(namespace["vectors"]), namespace["dim"])
        return
    for statement in filter(str.strip, block.text.replace("<version>", version).split(";")):
        assert duckdb.sql(statement).fetchall(), f"{block.where}: no rows from {statement}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_documents_resolve():
    for document in DOCUMENTS:
        text = FENCE.sub("", (REPO / document).read_text())
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            linked = (REPO / document).parent / path if path else REPO / document
            assert linked.exists(), f"{document}: {target} does not exist"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", FENCE.sub("", linked.read_text()), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{document}: no #{anchor}"
