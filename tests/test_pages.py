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


def test_huge_page_array_is_a_writable_array_of_the_asked_size():
    from item2vec.pages import huge_page_array

    for n, dtype in [(0, np.int32), (5, np.int32), (3_000_000, np.int64)]:
        target = huge_page_array(n, dtype)
        assert target.shape == (n,) and target.dtype == dtype
        target[::-1] = np.arange(n, dtype=dtype)
        assert target[:3].tolist() == list(range(n - 1, n - 4, -1))[: min(n, 3)]
