import numpy as np
import pytest


def _environment_after(code: str, preset: str | None) -> str:
    import os
    import subprocess
    import sys

    variable = "MIMALLOC_ARENA_EAGER_COMMIT"
    env = {key: value for key, value in os.environ.items() if key != variable}
    if preset is not None:
        env[variable] = preset
    shown = subprocess.run(
        [sys.executable, "-c", f"import os\n{code}\nprint(os.environ.get({variable!r}))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("preset", "expected"), [(None, "0"), ("1", "1")])
def test_the_cli_commits_arrow_memory_on_demand_unless_the_user_chose(preset, expected):
    code = (
        "from item2vec_flows.cli import main\n"
        "try:\n    main(['synth', '--help'])\nexcept SystemExit:\n    pass"
    )
    assert _environment_after(code, preset) == expected


def _numpy_switch():
    from item2vec import pages

    if pages._SET_MADVISE_HUGEPAGE is None:
        pytest.skip("this numpy has no huge-page switch; small_pages does nothing")
    return pages._SET_MADVISE_HUGEPAGE


def test_small_pages_nest_and_restore_the_callers_setting():
    from item2vec.pages import small_pages

    switch = _numpy_switch()
    before = switch(True)
    try:
        with small_pages():
            assert switch(False) is False  # off inside (reading it sets it again)
            with small_pages():
                assert switch(False) is False
            assert switch(False) is False  # still off: the outer block is open
        assert switch(True) is True  # the caller's setting is back
    finally:
        switch(before)


def test_small_pages_overlapping_in_threads_restore_once_the_last_closes():
    import threading

    from item2vec.pages import small_pages

    switch = _numpy_switch()
    before = switch(True)
    first_open, second_open, first_closed = (threading.Event() for _ in range(3))
    seen = {}

    def first() -> None:
        with small_pages():
            first_open.set()
            second_open.wait(5)
        first_closed.set()  # closes while the second block is still open

    def second() -> None:
        first_open.wait(5)
        with small_pages():
            second_open.set()
            first_closed.wait(5)
            seen["after first closed"] = switch(False)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert seen["after first closed"] is False
        assert switch(True) is True  # back to the caller's setting, not left off
    finally:
        switch(before)


def test_small_pages_without_the_switch_changes_nothing(monkeypatch):
    from item2vec import pages

    monkeypatch.setattr(pages, "_SET_MADVISE_HUGEPAGE", None)

    @pages.small_pages()
    def stage() -> int:
        return 7

    assert stage() == 7


def test_huge_page_array_is_a_writable_array_of_the_asked_size():
    from item2vec.pages import huge_page_array

    for n, dtype in [(0, np.int32), (5, np.int32), (3_000_000, np.int64)]:
        target = huge_page_array(n, dtype)
        assert target.shape == (n,) and target.dtype == dtype
        target[::-1] = np.arange(n, dtype=dtype)
        assert target[:3].tolist() == list(range(n - 1, n - 4, -1))[: min(n, 3)]
