"""Progress: a bar on a terminal only; a few plain lines otherwise; silent when quiet."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

import item2vec.progress as progress_module
from item2vec.progress import Progress, bars_enabled


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_forcing(monkeypatch):
    monkeypatch.delenv("ITEM2VEC_PROGRESS", raising=False)
    logging.getLogger("item2vec").setLevel(logging.INFO)


def test_plain_lines_when_not_a_terminal_and_bounded(no_forcing, monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "LINE_AFTER_SECONDS", 0.0)
    stream = io.StringIO()
    with (
        caplog.at_level(logging.INFO, logger="item2vec"),
        Progress("evaluate model", total=1000, unit="users", stream=stream) as progress,
    ):
        assert not progress.bar_shown
        for _ in range(1000):
            progress.advance(loss=0.25)
    lines = [r.getMessage() for r in caplog.records if r.name == "item2vec.progress"]
    assert 5 <= len(lines) <= 10
    assert lines[0].startswith("evaluate model: 100/1,000 users (10%), loss 0.25")
    assert stream.getvalue() == ""  # nothing drawn on the stream itself
    assert not any("\x1b[" in line for line in lines)


def test_short_work_writes_no_line(no_forcing, monkeypatch, caplog):
    """Work that ends within LINE_AFTER_SECONDS writes no line (here an hour: however slow
    the machine, four steps end within it)."""
    monkeypatch.setattr(progress_module, "LINE_AFTER_SECONDS", 3600.0)
    with (
        caplog.at_level(logging.INFO, logger="item2vec"),
        Progress("publish", total=4, unit="tables", stream=io.StringIO()) as progress,
    ):
        for _ in range(4):
            progress.advance()
    assert not [r for r in caplog.records if r.name == "item2vec.progress"]


def test_bar_on_a_terminal(no_forcing, caplog):
    terminal = FakeTerminal()
    with (
        caplog.at_level(logging.INFO, logger="item2vec"),
        Progress("train", total=3, unit="epochs", stream=terminal) as progress,
    ):
        assert progress.bar_shown
        for _ in range(3):
            progress.advance(loss=1.5)
    assert "train" in terminal.getvalue() and "\x1b[" in terminal.getvalue()
    assert not [r for r in caplog.records if r.name == "item2vec.progress"]


def test_environment_forces_bars_off_and_on(monkeypatch):
    monkeypatch.setenv("ITEM2VEC_PROGRESS", "0")
    assert not bars_enabled(FakeTerminal())
    monkeypatch.setenv("ITEM2VEC_PROGRESS", "1")
    assert bars_enabled(io.StringIO())


def test_quiet_silences_progress(no_forcing, monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "LINE_AFTER_SECONDS", 0.0)
    logging.getLogger("item2vec").setLevel(logging.WARNING)
    try:
        assert not bars_enabled(FakeTerminal())
        with (
            caplog.at_level(logging.INFO),
            Progress("train", total=10, unit="epochs", stream=io.StringIO()) as progress,
        ):
            for _ in range(10):
                progress.advance()
    finally:
        logging.getLogger("item2vec").setLevel(logging.INFO)
    assert not [r for r in caplog.records if r.name == "item2vec.progress"]


#: The CLI in a subprocess, with progress lines from the first step: whether a line is
#: due must not depend on how long this machine takes to train.
PROGRESS_AT_ONCE_CLI = (
    "import sys; import item2vec.progress as progress; progress.LINE_AFTER_SECONDS = 0.0; "
    "from item2vec_flows.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.flows
def test_piped_cli_run_has_progress_lines_and_no_bar(clustered_log, tmp_path, cli_env):
    path, _ = clustered_log
    env = {k: v for k, v in cli_env.items() if k != "ITEM2VEC_PROGRESS"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRESS_AT_ONCE_CLI, "run", str(path)]
        + ["--output", str(tmp_path / "out"), "--epochs", "5"]
        + ["--no-refit", "--no-report", "--recommendations-n", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "\x1b[" not in output
    assert "━" not in output  # rich's bar character
    lines = [line for line in output.splitlines() if "item2vec.progress - train:" in line]
    assert lines and all("tokens" in line for line in lines), output[-2000:]
