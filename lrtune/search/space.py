"""The search space: which values of `lr` and of the schedule's parameters a search tries.

In the YAML, every value under `lr` and `schedule` is one of

- a fixed value:             ``gamma: 0.1``
- a list, searched as a grid (or sampled uniformly by random search):
                             ``gamma: [0.1, 0.5]``
- a distribution (random search only): ``gamma: {low: 0.05, high: 0.5, log: true}``,
  ``step_size: {low: 1, high: 4, int: true}``

A parameter whose value is itself a list (``milestones: [3, 6]``) is fixed as written; a
grid over it is a list of lists (``milestones: [[3, 6], [4, 7]]``). Nested mappings
(``warmup: {epochs: [1, 2]}``) are searched by dotted names (``warmup.epochs``); a list of
mappings is a choice between them (``warmup: [null, {epochs: 1}]``: without or with).

A *point* is a dict from parameter name to a concrete value; `Space.materialize(point)`
turns it into the (lr, schedule spec) a trial trains with.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrtune.config import as_float, check_keys
from lrtune.errors import ConfigError

DIST_KEYS = ("low", "high", "log", "int")
Scalar = int | float | str | bool | None


@dataclass(frozen=True)
class Choice:
    """A list of candidate values: a grid axis (or a uniform categorical in random search)."""

    values: tuple[Any, ...]

    @property
    def numeric(self) -> bool:
        """True when every value is an int/float (not bool)."""
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values)


@dataclass(frozen=True)
class Range:
    """A distribution for random search: uniform in [low, high], log-uniform if log."""

    low: float
    high: float
    log: bool = False
    int: bool = False


Dimension = Choice | Range


def encode(value: Any) -> Scalar:
    """A value as an Optuna categorical choice (lists become canonical JSON strings)."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def decode(value: Any, like: Sequence[Any]) -> Any:
    """Inverse of `encode` for a choice among `like`."""
    for candidate in like:
        if encode(candidate) == value:
            return candidate
    return value


@dataclass(frozen=True)
class Space:
    """The parsed space: searched dimensions by name, plus the fixed template.

    Attributes:
        lr: the fixed base LR (float), 'auto', or None when `lr` is searched.
        template: the schedule mapping with searched entries left as they were written.
        dims: searched parameter name -> Choice | Range ('lr' for the base LR; dotted
            names under the schedule, e.g. 'gamma', 'warmup.epochs').
        where: the config file, for messages.
    """

    lr: float | str | None
    template: Mapping[str, Any]
    dims: Mapping[str, Dimension] = field(default_factory=dict)
    where: str = ""

    # -- shape ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Searched parameter names, in config order."""
        return list(self.dims)

    @property
    def has_ranges(self) -> bool:
        """True when any dimension is a distribution (random search only)."""
        return any(isinstance(d, Range) for d in self.dims.values())

    def grid_size(self) -> int:
        """Number of grid combinations (1 when nothing is searched)."""
        n = 1
        for dim in self.dims.values():
            if isinstance(dim, Range):
                raise ConfigError(f"{self.where}: a grid cannot enumerate a distribution")
            n *= len(dim.values)
        return n

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination, first dimension slowest."""
        names = self.names
        axes = [self.dims[n].values for n in names]  # type: ignore[union-attr]
        for combo in itertools.product(*axes):
            yield dict(zip(names, combo, strict=True))

    def corners(self) -> Iterator[dict[str, Any]]:
        """A few points that touch every bound and choice (for validating a random space)."""
        width = max([2] + [len(d.values) for d in self.dims.values() if isinstance(d, Choice)])
        for i in range(width):
            point: dict[str, Any] = {}
            for name, dim in self.dims.items():
                if isinstance(dim, Choice):
                    point[name] = dim.values[i % len(dim.values)]
                else:
                    value = dim.low if i % 2 == 0 else dim.high
                    point[name] = int(value) if dim.int else value
            yield point

    # -- points -> training inputs ---------------------------------------------------------
    def materialize(self, point: Mapping[str, Any]) -> tuple[float | str, dict[str, Any]]:
        """(lr, schedule spec) for a point; lr may still be 'auto' (resolved by the runner)."""
        lr = point["lr"] if "lr" in self.dims else self.lr
        assert lr is not None
        spec = _deep_copy(self.template)
        for name, value in point.items():
            if name == "lr" or name not in self.dims:
                continue
            _set_dotted(spec, name, value)
        return lr, spec

    def sample_params(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for a value of every dimension (fixed for enqueued trials)."""
        point: dict[str, Any] = {}
        for name, dim in self.dims.items():
            if isinstance(dim, Choice):
                raw = trial.suggest_categorical(name, [encode(v) for v in dim.values])
                point[name] = decode(raw, dim.values)
            elif dim.int:
                point[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
            else:
                point[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        return point

    def with_dims(self, dims: Mapping[str, Dimension]) -> Space:
        """A copy with other dimensions (used by --refine)."""
        return Space(lr=self.lr, template=self.template, dims=dict(dims), where=self.where)


# -- parsing ------------------------------------------------------------------------------
def parse_space(lr: Any, schedule: Mapping[str, Any], where: str) -> Space:
    """Split `lr` and the schedule mapping into fixed values and searched dimensions.

    Raises:
        ConfigError: an empty list, a malformed distribution, a non-numeric bound, ...
    """
    dims: dict[str, Dimension] = {}
    fixed_lr: float | str | None
    if isinstance(lr, str) and lr == "auto":
        fixed_lr = "auto"
    elif isinstance(lr, (int, float)) and not isinstance(lr, bool):
        fixed_lr = as_float(lr, f"{where}: 'lr'", positive=True)
    else:
        dim = _dimension(lr, "lr", f"{where}: 'lr'")
        if dim is None:
            raise ConfigError(
                f"{where}: 'lr' must be 'auto', a number, a list or a "
                f"{{low, high, log}} range, got {lr!r}"
            )
        _check_positive(dim, f"{where}: 'lr'")
        dims["lr"] = dim
        fixed_lr = None
    if not isinstance(schedule, Mapping):
        raise ConfigError(f"{where}: 'schedule' must be a mapping with a 'name', got {schedule!r}")
    if "name" not in schedule:
        raise ConfigError(f"{where}: 'schedule' needs a 'name' (e.g. step, multistep, cosine)")
    if not isinstance(schedule["name"], str):
        raise ConfigError(
            f"{where}: 'schedule.name' must be one schedule name, got {schedule['name']!r}"
        )
    _collect(schedule, "", where, dims)
    return Space(lr=fixed_lr, template=_deep_copy(schedule), dims=dims, where=where)


def _collect(mapping: Mapping[str, Any], prefix: str, where: str, dims: dict[str, Any]) -> None:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if name == "name":
            continue
        what = f"{where}: 'schedule.{name}'"
        if isinstance(value, Mapping) and not any(k in DIST_KEYS for k in value):
            _collect(value, f"{name}.", where, dims)
            continue
        dim = _dimension(value, str(key), what)
        if dim is not None:
            if name in WARMUP_LENGTHS:
                _check_warmup_length(dim, name, what)
            dims[name] = dim


# Warmup lengths: searching "no warmup" is a choice of mappings, not a length of 0.
WARMUP_LENGTHS = ("warmup.epochs", "warmup.steps")


def _check_warmup_length(dim: Dimension, name: str, what: str) -> None:
    """Refuse a warmup length of 0 (or null) in a grid/range, saying how to search 'none'."""
    values = (dim.low,) if isinstance(dim, Range) else dim.values
    bad = [v for v in values if v is None or (_is_number(v) and v <= 0)]
    if not bad:
        return
    unit = name.split(".")[1]
    raise ConfigError(
        f"{what}: a warmup of {bad[0]} {unit} is not a length (warmup.{unit} must be > 0); "
        f"to compare no warmup with 1 {unit[:-1]}, search the whole mapping: "
        f"warmup: [null, {{{unit}: 1}}]"
    )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _dimension(value: Any, key: str, what: str) -> Dimension | None:
    """A Choice/Range for a searched value, None for a fixed one."""
    if isinstance(value, Mapping):
        check_keys(value, DIST_KEYS, what)
        if "low" not in value or "high" not in value:
            raise ConfigError(f"{what}: a range needs both 'low' and 'high', got {dict(value)!r}")
        low = as_float(value["low"], f"{what}.low")
        high = as_float(value["high"], f"{what}.high")
        log, is_int = value.get("log", False), value.get("int", False)
        for flag, v in (("log", log), ("int", is_int)):
            if not isinstance(v, bool):
                raise ConfigError(f"{what}.{flag} must be true or false, got {v!r}")
        if not low < high:
            raise ConfigError(f"{what}: 'low' must be < 'high', got low={low:g}, high={high:g}")
        if log and low <= 0:
            raise ConfigError(f"{what}: a log range needs low > 0, got low={low:g}")
        if is_int and (low != int(low) or high != int(high)):
            raise ConfigError(f"{what}: an int range needs integer bounds, got {low:g}..{high:g}")
        return Range(low=low, high=high, log=log, int=is_int)
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{what}: empty list: a grid needs at least one value")
        if key in list_params() and not all(isinstance(v, list) for v in value):
            if any(isinstance(v, list) for v in value):
                raise ConfigError(
                    f"{what}: mix of lists and numbers; use [3, 6] for one value or "
                    f"[[3, 6], [4, 7]] for a grid, got {value!r}"
                )
            return None  # a fixed list value, e.g. milestones: [3, 6]
        values = tuple(_coerce(v, what) for v in value)
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ConfigError(f"{what}: the grid repeats a value: {value!r}")
        return Choice(values=values)
    return None


def list_params() -> frozenset[str]:
    """Schedule parameters whose single value is a list (a grid over them is a list of lists)."""
    from lrtune.schedules import REGISTRY

    return frozenset(
        p.name for info in REGISTRY.values() for p in info.params if p.kind == "int_list"
    )


def _coerce(value: Any, what: str) -> Any:
    """YAML 1.1 reads '1e-3' as a string: turn numeric strings into floats."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, Mapping):  # e.g. warmup: [null, {epochs: 1}]
        return dict(value)
    return value


def _check_positive(dim: Dimension, what: str) -> None:
    if isinstance(dim, Range):
        if dim.low <= 0:
            raise ConfigError(f"{what}: learning rates must be > 0, got low={dim.low:g}")
        return
    for v in dim.values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ConfigError(f"{what}: learning rates must be numbers > 0, got {v!r}")


def _deep_copy(mapping: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping):
            out[k] = _deep_copy(v)
        elif isinstance(v, list):
            out[k] = [list(x) if isinstance(x, list) else x for x in v]
        else:
            out[k] = v
    return out


def _set_dotted(spec: dict[str, Any], name: str, value: Any) -> None:
    parts = name.split(".")
    node = spec
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = list(value) if isinstance(value, tuple) else value


# -- refine -------------------------------------------------------------------------------
def narrow(space: Space, best: Mapping[str, Any], shrink: float = 0.5) -> Space:
    """A smaller space around `best` for the refine pass.

    Numeric grids become [midpoint to the left neighbour, best, midpoint to the right]
    (geometric midpoints for positive values spanning a factor >= 2); ranges keep
    `shrink` of their width (in log space for log ranges), centred on the best and
    clipped to the old bounds; non-numeric choices are fixed to the best value.
    """
    dims: dict[str, Dimension] = {}
    for name, dim in space.dims.items():
        value = best[name]
        if isinstance(dim, Range):
            dims[name] = _narrow_range(dim, float(value), shrink)
        elif dim.numeric and len(dim.values) > 1:
            dims[name] = _narrow_grid(dim, value)
        else:
            dims[name] = Choice(values=(value,))
    return space.with_dims(dims)


def _mid(a: float, b: float, as_int: bool) -> float:
    lo, hi = min(a, b), max(a, b)
    m = math.sqrt(lo * hi) if lo > 0 and hi / lo >= 2 else (lo + hi) / 2
    return round(m) if as_int else float(f"{m:.3g}")


def _narrow_grid(dim: Choice, best: Any) -> Choice:
    values = sorted(dim.values)
    as_int = all(isinstance(v, int) for v in values)
    i = values.index(best)
    out = [best]
    if i > 0:
        out.insert(0, _mid(values[i - 1], best, as_int))
    if i < len(values) - 1:
        out.append(_mid(best, values[i + 1], as_int))
    unique: list[Any] = []
    for v in out:
        if v not in unique:
            unique.append(v)
    return Choice(values=tuple(unique))


def _narrow_range(dim: Range, best: float, shrink: float) -> Range:
    if dim.log:
        lo, hi, c = math.log(dim.low), math.log(dim.high), math.log(best)
    else:
        lo, hi, c = dim.low, dim.high, best
    half = (hi - lo) * shrink / 2
    new_lo, new_hi = max(lo, c - half), min(hi, c + half)
    if dim.log:
        new_lo, new_hi = math.exp(new_lo), math.exp(new_hi)
    if dim.int:
        new_lo, new_hi = float(math.floor(new_lo)), float(math.ceil(new_hi))
        if new_lo == new_hi:
            new_hi = min(dim.high, new_lo + 1)
            new_lo = new_hi - 1
    return Range(low=new_lo, high=new_hi, log=dim.log, int=dim.int)
