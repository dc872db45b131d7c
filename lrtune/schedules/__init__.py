"""Schedules as data (DESIGN.md "Schedules").

A schedule spec is a small mapping, e.g. ``{name: cosine, interval: step,
warmup: {epochs: 1}}``. One registry (`REGISTRY`) maps names to frozen `ScheduleInfo`
entries; `search`, `check` and `find` all go through it.

- `validate(spec)` -> the normalised spec (ConfigError, one line, on bad input).
- `lr_curve(spec, base_lr, steps_per_epoch, epochs)` -> the LR of every optimizer step,
  from closed forms: pure, picklable, no torch.
- `build(spec, optimizer, steps_per_epoch, epochs)` -> a torch scheduler;
  `attach(...)` -> a `Stepper` for the training loop.
- `to_python(spec, base_lr, steps_per_epoch, epochs)` -> a snippet to paste after the
  optimizer is created; `to_yaml` / `from_yaml` round-trip the spec.
- `recommend(lr, family, epochs, steps_per_epoch, name=None)` -> a schedule from a
  range-test LR, with the numbers and the reasoning.
"""

from lrtune.schedules.base import DERIVED, REQUIRED, Param, ScheduleInfo
from lrtune.schedules.recommend import recommend
from lrtune.schedules.registry import REGISTRY
from lrtune.schedules.snippet import to_python
from lrtune.schedules.spec import (
    PARAMS,
    Plan,
    from_yaml,
    get_schedule,
    lr_curve,
    params_of,
    plan,
    resolve,
    run_warnings,
    to_yaml,
    validate,
)
from lrtune.schedules.torch_edge import Stepper, WarmupThenPlateau, attach, build

__all__ = [
    "DERIVED",
    "PARAMS",
    "REGISTRY",
    "REQUIRED",
    "Param",
    "Plan",
    "ScheduleInfo",
    "Stepper",
    "WarmupThenPlateau",
    "attach",
    "build",
    "from_yaml",
    "get_schedule",
    "lr_curve",
    "params_of",
    "plan",
    "recommend",
    "resolve",
    "run_warnings",
    "to_python",
    "to_yaml",
    "validate",
]
