"""The run options of ``item2vec run``, ``serve`` and ``sweep``, and their layering into a config.

The flags are generated from the config models of :mod:`item2vec.config`: a
field's annotation gives the flag's type, and the first sentence of its entry in
the section's numpy docstring gives the flag's help, so each setting is explained
once, for the command line and Prefect's run form alike.

Settings come from the defaults, then ``--preset`` (or the bundled sample), then
``--config``, then the flags; later ones win.
"""

from __future__ import annotations

import argparse
import re
import types
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from item2vec.config import PipelineConfig, build_config
from item2vec.config_file import read_toml
from item2vec.docstrings import docstring_parameters
from item2vec.presets import PRESETS, bundled_sample, preset

DEFAULTS = PipelineConfig()

#: The fields each section puts on the command line, in ``--help`` order. The
#: rest are set in a ``--config`` file: ``ingest.paths`` (given as the positional
#: EVENTS), gensim's pass-through keywords (``alpha``, ``hs``, ``batch_words``, ...),
#: ``train.compute_loss`` and ``publish.primary_metric``.
EXPOSED_FIELDS: dict[str, tuple[str, ...]] = {
    "ingest": (
        "user_col",
        "item_col",
        "time_col",
        "items_path",
        "item_id_col",
        "item_title_col",
        "item_category_col",
        "max_bad_fraction",
        "sep",
        "header",
        "columns",
        "time_unit",
        "event_col",
        "keep_events",
        "weight_col",
        "min_weight",
        "drop_duplicates",
        "min_item_count",
        "min_user_count",
        "since",
        "window_days",
        "cache",
        "cache_dir",
        "always_hash",
    ),
    "sequences": (
        "session_gap",
        "collapse_repeats",
        "min_length",
        "max_length",
        "write_sequences",
        "shuffle_partitions",
    ),
    "publish": (
        "output",
        "model_name",
        "max_regression",
        "min_stability",
        "refit",
        "recommendations_n",
        "keep",
        "report",
        "gate_margin",
        "neighbors_k",
        "neighbors_scoring",
    ),
    "train": (
        "sg",
        "vector_size",
        "window",
        "negative",
        "ns_exponent",
        "sample",
        "epochs",
        "min_count",
        "seed",
        "workers",
        "context",
        "basket_window",
        "max_set_size",
        "corpus_file",
        "deterministic",
        "warm_start",
        "warm_epochs",
        "warm_data",
        "full_retrain_every",
        "cold_start",
        "resource",
    ),
    "evaluate": (
        "scoring",
        "query_items",
        "query",
        "query_half_life",
        "knn_blend",
        "k",
        "split",
        "test_days",
        "max_users",
        "exclude_seen",
    ),
}

#: Flags whose name is not their field's: ``--items`` names the items file, and
#: ``--eval-users`` says which users ``max_users`` counts.
RENAMED_FLAGS: dict[tuple[str, str], str] = {
    ("ingest", "items_path"): "--items",
    ("evaluate", "max_users"): "--eval-users",
    ("train", "resource"): "--train-resource",
}


def _str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


#: Parsers of a flag's text, by the field's annotation (``X | None`` counts as ``X``).
SCALAR_PARSERS: dict[Any, Any] = {int: int, float: float, str: str, date: _iso_day}
#: Lists are written comma-separated on the command line.
LIST_PARSERS: dict[Any, Any] = {str: _str_list, int: _int_list}

# ``literal`` and :role:`target` markup of the docstrings, shown as plain text.
_MARKUP = re.compile(r"``(.+?)``|:[\w:]+:`~?(.+?)`")
# A sentence ends at a full stop before a space or the end, unless it abbreviates.
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?](?=\s|$)")


def plain_text(text: str) -> str:
    """``text`` with its reStructuredText literals and roles reduced to their words."""
    return _MARKUP.sub(lambda match: match.group(1) or match.group(2), text)


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, its full stop included (all of it if it has none)."""
    end = _SENTENCE_END.search(text)
    return text[: end.end()] if end else text


@dataclass(frozen=True)
class RunOption:
    """One generated flag: the config field it sets and how argparse reads it.

    Attributes
    ----------
    flag
        The option string, e.g. ``--user-col``.
    section, field
        The config field it sets: ``PipelineConfig.<section>.<field>``.
    sentence
        The first sentence of the field's docstring entry, as plain text.
    reading
        The ``add_argument`` keywords that read the field's type
        (:func:`argparse_keywords`).
    """

    flag: str
    section: str
    field: str
    sentence: str
    reading: dict[str, Any]

    @property
    def dest(self) -> str:
        """The attribute of the parsed namespace, ``section.field``."""
        return f"{self.section}.{self.field}"

    @property
    def help(self) -> str:
        """The flag's help: its sentence and the default it leaves alone when unset."""
        default = getattr(getattr(DEFAULTS, self.section), self.field)
        if self.reading.get("action") is argparse.BooleanOptionalAction:
            shown = "on" if default else "off"
        else:
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
        return f"{self.sentence} (default: {shown})"

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the flag to ``parser``; unset, it is None and the config's value stands."""
        # argparse %-formats help strings.
        text = self.help.replace("%", "%%")
        parser.add_argument(self.flag, dest=self.dest, default=None, help=text, **self.reading)


def argparse_keywords(annotation: Any, name: str) -> dict[str, Any]:
    """The ``add_argument`` keywords that read a field of this annotation from a flag.

    ``bool`` becomes ``--x/--no-x``, ``Literal`` values become ``choices``, lists
    are comma-separated, dates are ISO days and ``X | None`` is read as ``X``.

    Parameters
    ----------
    annotation
        The field's annotation, as pydantic resolved it.
    name
        The field's name, upper-cased as the value's placeholder in ``--help``.

    Raises
    ------
    TypeError
        For an annotation no flag reads; keep such a field off the command line.
    """
    kind = _without_none(annotation)
    metavar = name.upper()
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(kind) is Literal:
        values = get_args(kind)
        return {"type": type(values[0]), "choices": values}
    if get_origin(kind) is list and get_args(kind)[0] in LIST_PARSERS:
        return {"type": LIST_PARSERS[get_args(kind)[0]], "metavar": f"{metavar},..."}
    if kind in SCALAR_PARSERS:
        return {"type": SCALAR_PARSERS[kind], "metavar": metavar}
    raise TypeError(f"{name}: no command-line flag reads {annotation!r}")


def _without_none(annotation: Any) -> Any:
    # An unset flag is None already: ``X | None`` reads as ``X``.
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [kind for kind in get_args(annotation) if kind is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return annotation


def run_options() -> tuple[RunOption, ...]:
    """The flags of :data:`EXPOSED_FIELDS`, typed by annotation, helped by docstring.

    Raises
    ------
    ValueError
        For an exposed field that its section's docstring does not document.
    TypeError
        For an exposed field whose annotation no flag reads.
    """
    options = []
    for section, names in EXPOSED_FIELDS.items():
        model: type[BaseModel] = type(getattr(DEFAULTS, section))
        _, entries = docstring_parameters(model.__doc__ or "")
        for name in names:
            if name not in entries:
                raise ValueError(f"document {section}.{name} in {model.__name__}'s docstring")
            options.append(
                RunOption(
                    flag=RENAMED_FLAGS.get((section, name), "--" + name.replace("_", "-")),
                    section=section,
                    field=name,
                    sentence=first_sentence(plain_text(entries[name])),
                    reading=argparse_keywords(model.model_fields[name].annotation, name),
                )
            )
    return tuple(options)


#: Every generated flag, in ``--help`` order.
RUN_OPTIONS = run_options()


def add_runner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-runner",
        choices=("threads", "dask"),
        default="threads",
        help="where the flow's tasks run: threads in this process, or a Dask cluster "
        "(per-file ingest, model and baseline evaluation in parallel) (default: threads)",
    )
    parser.add_argument(
        "--dask-address",
        metavar="tcp://HOST:8786",
        help="scheduler of an existing Dask cluster; without it --task-runner dask "
        "starts a local cluster of 2 single-threaded workers",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "events",
        nargs="*",
        metavar="EVENTS",
        help="event files, folders or globs (CSV, TSV, Parquet, .csv.gz), local or s3://, gs://, "
        "abfs:// URLs; default: the bundled MovieLens sample",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="TOML file with [ingest] [train] [evaluate] [publish] sections",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="built-in column layout (movielens: userId, movieId, timestamp)",
    )
    # One --help group per config section, titled as the TOML file's section.
    groups: dict[str, Any] = {}
    for option in RUN_OPTIONS:
        if option.section not in groups:
            model = type(getattr(DEFAULTS, option.section))
            summary, _ = docstring_parameters(model.__doc__ or "")
            about = first_sentence(plain_text(summary))
            groups[option.section] = parser.add_argument_group(f"[{option.section}]", about)
        option.add_to(groups[option.section])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "--quiet", action="store_true", help="only warnings, errors and the final summary"
    )
    loudness.add_argument(
        "--verbose", action="store_true", help="also debug lines and gensim's own progress"
    )


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Layer defaults, preset or bundled sample, config file and flags into one config."""
    file_layer = read_toml(args.config) if args.config else {}
    flag_layer: dict[str, dict[str, Any]] = {}
    for option in RUN_OPTIONS:
        value = getattr(args, option.dest)
        if value is not None:
            flag_layer.setdefault(option.section, {})[option.field] = value
    if args.events:
        flag_layer.setdefault("ingest", {})["paths"] = list(args.events)
    layers = []
    if args.preset:
        layers.append(preset(args.preset))
    if not args.events and not file_layer.get("ingest", {}).get("paths"):
        layers.append(bundled_sample())
    source = f"config file {args.config} or flags" if args.config else "flags"
    return build_config(*layers, file_layer, flag_layer, source=source)
