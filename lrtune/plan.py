"""Turn a range test's headline LR into the LR a given schedule should start or peak at.

The headline is calibrated for a constant LR (benchmarks/suggest_quality.py). Schedules that
spend most of the run below their starting LR tolerate, and need, a higher start: the same
benchmark (8 real tasks, 3 seeds, fixed budget, `--repeats auto`) measured median / worst
regret in accuracy points on the 5 development tasks for factors {0.5, 1, 2, 4, 8} x
headline and picked the lowest median per family:

    constant  1x  the headline itself (benchmarks/README.md)
    cosine    2x  0.10 / 1.17  (held out 0.00 / 1.03; 1x: 0.40 / 2.38, 4x: 0.46 / 0.49)
    onecycle  4x  0.36 / 1.27  (held out 0.28 / 0.62; 1x: 0.42 / 3.73, 2x: 0.49 / 1.17)

Step-like decays (step, multistep, exponential, linear, polynomial, wsd, warm restarts) take
the cosine factor: like cosine they start at their peak and decay from it. That one is by
analogy, not measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lrtune.errors import ConfigError, unknown_name

TARGETS = ("onecycle", "constant", "step", "cosine")
ONECYCLE_DIV = 25.0  # torch's OneCycleLR default div_factor: start = max_lr / 25

# Schedule name -> factor applied to the headline LR (see the module docstring).
FACTORS: dict[str, float] = {
    "constant": 1.0,
    "plateau": 1.0,  # constant until the metric stalls
    "cyclic": 1.0,
    "inverse_sqrt": 1.0,
    "onecycle": 4.0,
    "cosine": 2.0,
    "step": 2.0,
    "multistep": 2.0,
    "exponential": 2.0,
    "linear": 2.0,
    "polynomial": 2.0,
    "wsd": 2.0,
    "cosine_warm_restarts": 2.0,
}
MEASURED = ("constant", "cosine", "onecycle")


def factor_for(schedule: str) -> float:
    """The multiplier from the headline LR to `schedule`'s starting/peak LR (1 if unknown)."""
    return FACTORS.get(schedule, 1.0)


@dataclass(frozen=True)
class LrPlan:
    """The LRs to use for a schedule family, and why."""

    target: str
    lr: float  # the LR to put in the optimizer / the schedule's peak
    low: float  # bottom of the range the schedule sweeps (marked on the plot)
    high: float  # top of that range
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def plan(headline: float, target: str) -> LrPlan:
    """The LR plan for `target` from the headline suggestion.

    Raises:
        ConfigError: unknown target (lists the valid ones).
    """
    if target not in TARGETS:
        raise ConfigError(unknown_name("--for target", target, TARGETS))
    f = factor_for(target)
    lr = headline * f
    basis = "measured" if target in MEASURED else "by analogy with cosine"
    scaled = f"{f:g} x the suggestion {headline:.3g} ({basis}, benchmarks/suggest_quality.py)"
    if target == "onecycle":
        low = lr / ONECYCLE_DIV
        return LrPlan(
            target,
            lr,
            low,
            lr,
            f"max_lr = {lr:.3g} = {scaled}; the cycle starts at max_lr/"
            f"{ONECYCLE_DIV:g} = {low:.3g}",
        )
    if target == "constant":
        return LrPlan(target, lr, lr, lr, f"lr = {lr:.3g}, the suggestion, held constant")
    return LrPlan(
        target,
        lr,
        lr / 100.0,
        lr,
        f"initial lr = {lr:.3g} = {scaled}; the {target} schedule decays it from there "
        "(the plot marks the first two decades below it)",
    )
