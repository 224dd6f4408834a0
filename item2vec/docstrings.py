"""Reading numpy-style docstrings: the one place a setting's help is written.

The config models document their fields in a ``Parameters`` section; Prefect's
run form and the CLI's ``--help`` both read it from there.
"""

from __future__ import annotations

import inspect


def docstring_parameters(doc: str) -> tuple[str, dict[str, str]]:
    """The summary and the per-parameter text of a numpy-style docstring.

    An entry naming several parameters (``user_col, item_col``) gives each of them
    the same text.
    """
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = next(
            n
            for n in range(len(lines) - 1)
            if lines[n] == "Parameters" and lines[n + 1] == "-" * 10
        )
    except StopIteration:
        return " ".join(" ".join(lines).split()), {}
    summary = " ".join(" ".join(lines[:start]).split())
    fields: dict[str, str] = {}
    names: list[str] = []
    naming = False  # a list of names may wrap onto a second line
    for line in lines[start + 2 :]:
        if line and not line.startswith(" "):
            listed = [name.strip() for name in line.split(",") if name.strip()]
            names = names + listed if naming else listed
            naming = True
            continue
        naming = False
        for name in names:
            fields[name] = f"{fields.get(name, '')} {line.strip()}".strip()
    return summary, fields
