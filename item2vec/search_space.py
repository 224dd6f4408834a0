"""The sweep's search space and objective, each declared once.

:data:`SEARCH_SPACE` is a table of every tuned setting: its name, the config
section it sets, its range or choices, whether it is drawn on a log scale, what
it depends on and how its starting value is read from a config. Drawing a
trial (:func:`suggest`), enqueueing the starting configuration
(:func:`starting_params`) and reading back what a configuration tuned
(:func:`tuned_fields`, :data:`TUNED_TRAIN`...) are all derived from it, so a
range changed here changes everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import optuna

from item2vec.config import PipelineConfig, build_config

log = logging.getLogger(__name__)

#: Prefix of the neighbour table's item-to-item metrics among the flat metrics.
NEIGHBOR_PREFIX = "neighbors_"
#: What a sweep can rank its trials by (``--objective``), as a key of the flat
#: metrics (:func:`flat_metrics`): the user metric (the next item after a user's
#: history) or the published neighbour table's item-to-item metric
#: (:mod:`item2vec.neighbor_eval`), both on the validation target.
OBJECTIVES = {"user": "hr@10", "neighbors": f"{NEIGHBOR_PREFIX}hr@10"}
#: The default objective's key.
OBJECTIVE = OBJECTIVES["user"]
#: Largest epoch count a trial may draw.
MAX_EPOCHS = 150

#: ``Parameter.otherwise`` of a field left out of the config when it is not drawn.
OMITTED: Any = object()


@dataclass(frozen=True)
class Parameter:
    """One tuned setting of the search space.

    Attributes
    ----------
    name
        Optuna's parameter name, and the config field it sets.
    section
        Config section of the field (``"train"`` or ``"evaluate"``); None for a
        switch that only decides whether another parameter is drawn.
    kind
        ``"categorical"`` (drawn from ``choices``), ``"int"`` or ``"float"``
        (drawn from ``low`` to ``high``, both included).
    low, high
        Bounds of a numeric parameter.
    choices
        Values of a categorical parameter.
    log
        Whether a numeric parameter is drawn on a log scale.
    requires
        ``(name, value)``: drawn only when that earlier parameter took that value.
    otherwise
        The field's value when it is not drawn; :data:`OMITTED` leaves the field
        out, so the base configuration's value stays.
    current
        Reads the parameter's value from a config: the starting value of a
        search from that config. None reads the field itself.
    """

    name: str
    section: Literal["train", "evaluate"] | None
    kind: Literal["categorical", "int", "float"]
    low: float = 0
    high: float = 0
    choices: tuple[Any, ...] = ()
    log: bool = False
    requires: tuple[str, Any] | None = None
    otherwise: Any = OMITTED
    current: Callable[[PipelineConfig], Any] | None = None

    @property
    def always_set(self) -> bool:
        """Whether every trial sets the field (drawn, or its ``otherwise`` value)."""
        return self.requires is None or self.otherwise is not OMITTED

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Whether the parameter is drawn, given the values of the others."""
        return self.requires is None or values.get(self.requires[0]) == self.requires[1]

    def draw(self, trial: optuna.trial.Trial) -> Any:
        """The trial's value of the parameter."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies inside the parameter's range or choices."""
        if self.kind == "categorical":
            return value in self.choices
        return self.low <= value <= self.high

    def value_in(self, config: PipelineConfig) -> Any:
        """The parameter's value in ``config``."""
        if self.current is not None:
            return self.current(config)
        return getattr(getattr(config, str(self.section)), self.name)


def _off_or_drawn(
    switch: str,
    section: Literal["train", "evaluate"],
    name: str,
    low: float,
    high: float,
    log: bool = False,
) -> tuple[Parameter, Parameter]:
    """A setting that is either off (0) or drawn from a range: a switch, then the value.

    One number cannot say both, on a log scale least of all; the switch reads
    as on in a config whose value is above 0.
    """
    return (
        Parameter(
            switch,
            None,
            "categorical",
            choices=(False, True),
            current=lambda config: getattr(getattr(config, section), name) > 0,
        ),
        Parameter(
            name, section, "float", low, high, log=log, requires=(switch, True), otherwise=0.0
        ),
    )


#: Every tuned setting, in the order a trial draws them: a seeded sampler's draws
#: depend on that order, so a new parameter goes at the end.
SEARCH_SPACE: tuple[Parameter, ...] = (
    Parameter("sg", "train", "categorical", choices=(0, 1)),
    Parameter("context", "train", "categorical", choices=("auto", "window", "set", "basket")),
    Parameter("window", "train", "int", 1, 20, log=True),
    Parameter("ns_exponent", "train", "float", -1.0, 1.0),
    Parameter("negative", "train", "int", 2, 30, log=True),
    Parameter("epochs", "train", "int", 5, MAX_EPOCHS, log=True),
    Parameter("vector_size", "train", "categorical", choices=(16, 32, 64, 128)),
    Parameter("min_count", "train", "int", 1, 10),
    Parameter("alpha", "train", "float", 0.005, 0.1, log=True),
    # Whole-sequence context costs the square of the chunk: keep chunks short
    # enough that a trial fits a budget of minutes on two cores.
    Parameter("max_set_size", "train", "int", 10, 60, log=True, requires=("context", "set")),
    # Down-sampling is either off, or on a log scale: one number cannot say both.
    *_off_or_drawn("subsample", "train", "sample", 1e-6, 1e-2, log=True),
    Parameter("scoring", "evaluate", "categorical", choices=("in-in", "in-out")),
    Parameter("query_items", "evaluate", "int", 1, 20, log=True),
    # Basket-shaped logs (docs/baskets.md): each choice stays only if it wins on validation.
    Parameter("basket_window", "train", "int", 0, 2, requires=("context", "basket")),
    Parameter("query", "evaluate", "categorical", choices=("auto", "items", "basket")),
    *_off_or_drawn("recency", "evaluate", "query_half_life", 0.5, 10.0, log=True),
    *_off_or_drawn("blend", "evaluate", "knn_blend", 0.05, 0.95),
)


def _fields(section: str, always: bool) -> tuple[str, ...]:
    return tuple(p.name for p in SEARCH_SPACE if p.section == section and p.always_set == always)


#: ``[train]`` fields every trial sets.
TUNED_TRAIN = _fields("train", always=True)
#: ``[train]`` fields only some trials set (``max_set_size``, in ``set`` context).
CONDITIONAL_TRAIN = _fields("train", always=False)
#: ``[evaluate]`` fields every trial sets.
TUNED_EVALUATE = _fields("evaluate", always=True)


def _values(config: PipelineConfig) -> dict[str, Any]:
    # Every parameter's value in config, drawn or not: conditions look at them.
    return {parameter.name: parameter.value_in(config) for parameter in SEARCH_SPACE}


def suggest(trial: optuna.trial.Trial) -> dict[str, dict[str, Any]]:
    """Draw one configuration: partial ``[train]`` and ``[evaluate]`` sections.

    Parameters
    ----------
    trial
        The Optuna trial to draw from.

    Returns
    -------
    dict
        ``{"train": {...}, "evaluate": {...}}`` for :func:`trial_config`.
    """
    drawn: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {"train": {}, "evaluate": {}}
    for parameter in SEARCH_SPACE:
        if parameter.applies(drawn):
            value = parameter.draw(trial)
            drawn[parameter.name] = value
        elif parameter.otherwise is OMITTED:
            continue
        else:
            value = parameter.otherwise
        if parameter.section is not None:
            sections[parameter.section][parameter.name] = value
    return sections


def trial_config(base: PipelineConfig, params: dict[str, dict[str, Any]]) -> PipelineConfig:
    """``base`` with a trial's sections laid over it (validated)."""
    return build_config(base.model_dump(), params, source="trial parameters")


def starting_params(config: PipelineConfig) -> dict[str, Any] | None:
    """``config`` as search-space parameters, or None if it lies outside the space."""
    values = _values(config)
    drawn = [parameter for parameter in SEARCH_SPACE if parameter.applies(values)]
    if not all(parameter.contains(values[parameter.name]) for parameter in drawn):
        log.info("the starting configuration lies outside the search space; not enqueued")
        return None
    return {parameter.name: values[parameter.name] for parameter in drawn}


def tuned_fields(config: PipelineConfig, section: Literal["train", "evaluate"]) -> dict[str, Any]:
    """``config``'s values of the fields the search sets in ``section``.

    Parameters
    ----------
    config
        A trial's configuration (or any other).
    section
        ``"train"`` or ``"evaluate"``.

    Returns
    -------
    dict
        The fields every trial sets, in the table's order, then those only some
        trials set when they apply to ``config`` (``max_set_size`` in ``set``
        context).
    """
    values = _values(config)
    source = getattr(config, section)
    # Conditional fields last: where best.toml and trials.parquet have always had them.
    ordered = sorted(
        (p for p in SEARCH_SPACE if p.section == section), key=lambda p: not p.always_set
    )
    return {
        parameter.name: getattr(source, parameter.name)
        for parameter in ordered
        if parameter.always_set or parameter.applies(values)
    }


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric figures of an evaluation record, with its neighbour table's item-to-item
    figures (``metrics["neighbors"]``) as ``neighbors_hr@10`` and so on."""
    flat = {name: float(value) for name, value in metrics.items() if _is_number(value)}
    neighbors = metrics.get("neighbors")
    if isinstance(neighbors, Mapping):
        flat.update(
            {f"{NEIGHBOR_PREFIX}{name}": float(v) for name, v in neighbors.items() if _is_number(v)}
        )
    return flat


def needs_neighbors(objective: str) -> bool:
    """Whether scoring ``objective`` needs the neighbour table evaluated."""
    return objective.startswith(NEIGHBOR_PREFIX)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
