"""The schedule contract, stated once: `Param` (one validated parameter) and `ScheduleInfo`
(one registry entry). The entries themselves live in `lrtune.schedules.registry`.

A schedule is a pure function of the scheduler step `t` (counted in the spec's
`interval`: epochs or optimizer steps) once its parameters are resolved. Each entry gives
that function (`curve`) and the torch object that reproduces it (`torch_class` with
`kwargs`, or `LambdaLR` with `factor`), so `lr_curve`, `build` and `to_python` never
disagree. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lrtune.config import as_float
from lrtune.errors import ConfigError, did_you_mean

INTERVALS = ("epoch", "step")


class _Marker:
    """A named sentinel for parameter defaults."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Marker("REQUIRED")  # the user must give it
DERIVED = _Marker("DERIVED")  # filled from the run length (or the base LR) when absent


def fmt_number(value: Any) -> str:
    """A number as the shortest text that reads back exactly (repr for floats)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Param:
    """One schedule parameter: its type, default, allowed range and a one-line help.

    Attributes:
        name: PyTorch's name for it (`gamma`, `T_max`, `milestones`, ...).
        kind: 'int' | 'float' | 'bool' | 'choice' | 'int_list'.
        default: a value, REQUIRED, or DERIVED (see `derived`).
        help: one line for `lrtune schedule list`.
        low, high: inclusive bounds unless low_open/high_open.
        choices: the allowed strings for kind 'choice'.
        derived: how a DERIVED default is filled, in words.
        unit: counted in the interval's unit (epochs or steps).
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    derived: str = ""
    unit: bool = False

    def range_text(self) -> str:
        """The allowed values in words: '> 0', 'in [0, 1)', 'cos | linear'."""
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "bool":
            return "true | false"
        lo = None if self.low is None else fmt_number(self.low)
        hi = None if self.high is None else fmt_number(self.high)
        if lo is not None and hi is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"in {left}{lo}, {hi}{right}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi}"
        return ""

    def default_text(self) -> str:
        """The default in words, for tables."""
        if self.default is REQUIRED:
            return "required"
        if self.default is DERIVED:
            return self.derived or "derived"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, str):
            return self.default
        return fmt_number(self.default)

    def describe(self) -> str:
        """'T_max: int >= 1, default: run length' (used in error messages)."""
        kind = "list of int" if self.kind == "int_list" else self.kind
        rng = self.range_text()
        what = kind if self.kind not in ("choice", "bool") else rng
        if rng and self.kind not in ("choice", "bool"):
            what = f"{kind} {rng}"
        return f"{self.name}: {what}, default: {self.default_text()}"

    def _in_range(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def check(self, value: Any, where: str) -> Any:
        """The normalised value (floats as float, ints as int), or ConfigError quoting it."""
        what = f"{where}: '{self.name}'"
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{what} must be an integer, got {value!r}")
            out: Any = int(value)
        elif self.kind == "float":
            out = as_float(value, what)
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{what} must be true or false, got {value!r}")
            return value
        elif self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(
                    f"{what} must be one of {', '.join(self.choices)}, got {value!r}"
                    f"{did_you_mean(str(value), self.choices)}"
                )
            return value
        elif self.kind == "int_list":
            return self._check_list(value, what)
        else:  # pragma: no cover - registry bug
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        if not self._in_range(out):
            raise ConfigError(f"{what} must be {self.range_text()}, got {value!r}")
        return out

    def _check_list(self, value: Any, what: str) -> list[int]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ConfigError(f"{what} must be a list of integers like [30, 60], got {value!r}")
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{what} must be a non-empty list of integers, got {value!r}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise ConfigError(f"{what} must hold integers, got {item!r} in {list(value)!r}")
            if not self._in_range(item):
                raise ConfigError(
                    f"{what} values must be {self.range_text()}, got {item!r} in {list(value)!r}"
                )
        for a, b in zip(value, value[1:], strict=False):
            if b <= a:
                raise ConfigError(
                    f"{what} must be strictly increasing, got {list(value)!r} ({b} after {a})"
                )
        return [int(v) for v in value]


Curve = Callable[[Mapping[str, Any], int, float], float]


@dataclass(frozen=True)
class ScheduleInfo:
    """One registry entry. Who calls what:

    - `validate` checks user params against `params`, then calls `check` for rules that
      span parameters (raise ConfigError).
    - `derive(params, length)` fills DERIVED run-length defaults; `length` is the number
      of scheduler steps the main schedule runs (the run minus any warmup), in the
      interval's unit.
    - `fill_lr(params, base_lr)` fills LR defaults (one-cycle's `max_lr`, ...) from the
      optimizer's LR.
    - `curve(params, t, base_lr)` is the LR after `t` scheduler steps of the main schedule:
      the closed form of what torch computes.
    - `kwargs(params)` are the keyword arguments of `torch.optim.lr_scheduler.<torch_class>`;
      for `torch_class == 'LambdaLR'`, `factor(params)` is the picklable multiplier and
      `factor_code(params)` its Python source (a def named `lr_factor`).
    - `phases(params)` names the parts of the curve for plots: (label, start_t, end_t).
    """

    name: str
    description: str
    torch_class: str
    params: tuple[Param, ...]
    curve: Curve
    default_interval: str = "epoch"
    kwargs: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    factor: Callable[[Mapping[str, Any]], Callable[[int], float]] | None = None
    factor_code: Callable[[Mapping[str, Any]], str] | None = None
    derive: Callable[[dict[str, Any], int], None] | None = None
    fill_lr: Callable[[dict[str, Any], float], None] | None = None
    check: Callable[[Mapping[str, Any], str], None] | None = None
    phases: Callable[[Mapping[str, Any]], list[tuple[str, int, int]]] | None = None
    own_warmup: str = ""  # non-empty: why a generic `warmup` is refused
    epoch_only: str = ""  # non-empty: why interval 'step' is refused
    needs_metric: bool = False  # stepped with the validation loss (ReduceLROnPlateau)
    lr_params: tuple[str, ...] = field(default=())  # absolute LRs, filled by fill_lr

    def param(self, name: str) -> Param:
        """The Param called `name` (KeyError when absent)."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in declaration order."""
        return tuple(p.name for p in self.params)
