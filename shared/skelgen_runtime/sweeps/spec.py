"""The sweep file (``sweeps/NAME.yaml``, owned by the user): what a sweep searches and how, read and checked.

Format (every key but ``params`` optional)::

    name: lr-filters            # the sweep's id (default: the file's name without .yaml)
    base: configs/default.yaml  # the config every trial starts from (relative to the project)
    fixed:                      # overrides every trial gets, as --set would give them
      train.epochs: 3
    objective: val_miou         # a metrics.csv column (default: the task's monitor)
    direction: maximize         # or minimize (default: the monitor's)
    trials: 20                  # finished (complete or pruned) trials the study ends with
    sampler: tpe                # tpe (default) or random
    seed: 0                     # the sampler's seed (trial k samples with seed + k)
    pruner: median              # median (default), hyperband or none
    params:                     # the search space: dotted config keys
      train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      model.filters: {type: int, low: 8, high: 32, step: 8}
      train.optimizer: {type: categorical, choices: [adam, sgd]}
      data.batch_size: [4, 8]   # a list is short for a categorical

What this module checks is the file's own sense (keys, kinds, ranges); whether each key and value is one
the project's config accepts is checked against the project's schema by :mod:`skelgen_runtime.sweeps.check`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelgen_runtime.errors import ConfigError, did_you_mean

__all__ = ["Param", "SweepSpec", "read_sweep", "SAMPLERS", "PRUNERS", "KINDS"]

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
KINDS = ("float", "int", "categorical")
_TOP = ("name", "description", "base", "fixed", "objective", "direction", "trials", "sampler", "seed", "pruner")
_PARAM_KEYS = {"float": ("type", "low", "high", "log"), "int": ("type", "low", "high", "step", "log")}
_PARAM_KEYS["categorical"] = ("type", "choices")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: ``key`` (a dotted config key) and its range or choices."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self) -> Any:
        """Optuna's distribution of this dimension."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=self.step or 1)  # type: ignore[arg-type]
        return CategoricalDistribution(list(self.choices))

    def probes(self) -> list[Any]:
        """The values that bound what a trial can get: both ends of a range, every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def describe(self) -> dict[str, Any]:
        """JSON-able, for the study's record of its search space."""
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.kind == "int":
            out["step"] = self.step or 1
        return out


@dataclass(frozen=True)
class SweepSpec:
    """A sweep file, read and checked (module docstring)."""

    path: Path
    name: str
    base: Path
    fixed: dict[str, Any] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    objective: str | None = None
    direction: str | None = None
    trials: int = 20
    sampler: str = "tpe"
    seed: int = 0
    pruner: str = "median"

    def space(self) -> dict[str, Any]:
        """The search space, JSON-able: a study keeps it, and a rerun with another one is refused."""
        return {p.key: p.describe() for p in self.params}

    def overrides(self, values: dict[str, Any] | None = None) -> list[str]:
        """``KEY=VALUE`` strings (``train.py --set``) for the fixed values, then ``values``."""
        merged = {**self.fixed, **(values or {})}
        return [f"{key}={json.dumps(value)}" for key, value in merged.items()]


def _fail(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"sweep file {path}: {where}: {problem}")


def _number(path: Path, where: str, value: Any, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise _fail(path, where, f"{value!r} is not {kind}")
    if not math.isfinite(value):
        raise _fail(path, where, f"{value!r} is not a finite number")
    return value


def _param(path: Path, key: str, raw: Any) -> Param:
    where = f"params.{key}"
    if isinstance(raw, list):
        raw = {"type": "categorical", "choices": raw}
    if not isinstance(raw, dict):
        raise _fail(path, where, "give {type: float|int|categorical, ...} or a list of choices")
    kind = raw.get("type")
    if kind not in KINDS:
        raise _fail(path, f"{where}.type", f"{kind!r} is not one of {', '.join(KINDS)}{did_you_mean(str(kind), KINDS)}")
    for name in raw:
        if name not in _PARAM_KEYS[kind]:
            allowed = ", ".join(_PARAM_KEYS[kind])
            raise _fail(
                path, f"{where}.{name}", f"unknown for a {kind} (one of {allowed}){did_you_mean(name, allowed)}"
            )
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _fail(path, f"{where}.choices", "give a non-empty list of values")
        for choice in choices:
            if not (choice is None or isinstance(choice, (bool, int, float, str))):
                raise _fail(path, f"{where}.choices", f"{choice!r}: choices are numbers, text, true/false or null")
        if len({json.dumps(c) for c in choices}) != len(choices):
            raise _fail(path, f"{where}.choices", f"{choices} names a value twice")
        return Param(key, kind, choices=tuple(choices))
    integer = kind == "int"
    for name in ("low", "high"):
        if name not in raw:
            raise _fail(path, where, f"a {kind} range needs low and high")
    low = _number(path, f"{where}.low", raw["low"], integer=integer)
    high = _number(path, f"{where}.high", raw["high"], integer=integer)
    if low >= high:
        what = "empty" if low == high else "inverted"
        raise _fail(path, where, f"the range [{low}, {high}] is {what}: low must be below high")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise _fail(path, f"{where}.log", f"{log!r} is not true or false")
    if log and low <= 0:
        raise _fail(path, where, f"a log range must be positive (low is {low})")
    step = None
    if integer and "step" in raw:
        step = int(_number(path, f"{where}.step", raw["step"], integer=True))
        if step < 1:
            raise _fail(path, f"{where}.step", f"{step} must be 1 or more")
        if log and step != 1:
            raise _fail(path, where, "an int range cannot have both log: true and a step other than 1")
        if (high - low) % step:
            raise _fail(path, where, f"high - low ({high - low}) is not a multiple of step {step}")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def read_sweep(path: Path, root: Path) -> SweepSpec:
    """Read and check the sweep file ``path`` of the project ``root``.

    Raises:
        ConfigError: the file is missing or not YAML, or a key or value makes no sense (named with the file).
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"sweep file {path}: cannot read it ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"sweep file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {path}: expected a mapping of keys (name, base, params, trials, ...)")
    for key in data:
        if key not in (*_TOP, "params"):
            raise _fail(path, str(key), f"unknown key{did_you_mean(str(key), (*_TOP, 'params'))}")
    name = str(data.get("name") or path.stem)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise _fail(path, "name", f"{name!r}: use letters, digits, '-', '_' and '.' only")
    base = Path(str(data.get("base", "configs/default.yaml")))
    base = base if base.is_absolute() else root / base
    if not base.is_file():
        raise _fail(path, "base", f"{base} does not exist")
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise _fail(path, "fixed", "give a mapping of dotted config keys to values")
    raw_params = data.get("params")
    if not isinstance(raw_params, dict) or not raw_params:
        raise _fail(path, "params", "give at least one dotted config key to search, e.g. train.learning_rate")
    params = tuple(_param(path, str(key), raw) for key, raw in raw_params.items())
    for param in params:
        if param.key in fixed:
            raise _fail(path, f"params.{param.key}", "is fixed too: remove it from fixed or from params")
    trials = data.get("trials", 20)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise _fail(path, "trials", f"{trials!r}: give a whole number of trials, 1 or more")
    direction = data.get("direction")
    if direction is not None and direction not in ("maximize", "minimize"):
        raise _fail(path, "direction", f"{direction!r} is not maximize or minimize")
    sampler, pruner = str(data.get("sampler", "tpe")), str(data.get("pruner", "median"))
    if sampler not in SAMPLERS:
        raise _fail(path, "sampler", f"{sampler!r} is not one of {', '.join(SAMPLERS)}")
    pruner = "none" if data.get("pruner", "median") in (None, False) else pruner
    if pruner not in PRUNERS:
        raise _fail(path, "pruner", f"{pruner!r} is not one of {', '.join(PRUNERS)}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _fail(path, "seed", f"{seed!r} is not a whole number")
    objective = data.get("objective")
    if objective is not None and not isinstance(objective, str):
        raise _fail(path, "objective", f"{objective!r}: give a metrics.csv column, e.g. val_miou")
    return SweepSpec(
        path=path,
        name=name,
        base=base,
        fixed={str(k): v for k, v in fixed.items()},
        params=params,
        objective=objective,
        direction=direction,
        trials=trials,
        sampler=sampler,
        seed=seed,
        pruner=pruner,
    )
