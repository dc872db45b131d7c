"""Turn a range test's headline LR into the numbers a given schedule needs (`find --for`).

One rule per schedule family, stated once, with the reasoning in words for result.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lrtune.errors import ConfigError, unknown_name

TARGETS = ("onecycle", "constant", "step", "cosine")
ONECYCLE_DIV = 25.0  # torch's OneCycleLR default div_factor: start = max_lr / 25


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


def plan(lr: float, target: str) -> LrPlan:
    """The LR plan for `target` from the headline suggestion `lr`.

    onecycle: max_lr = the suggestion (fastai's practice: the suggestion is lr_max), the cycle
    starts at max_lr/25 (torch's div_factor). constant: the suggestion itself. step and cosine:
    the suggestion is the initial LR and the schedule decays it by ~100x over the run.

    Raises:
        ConfigError: unknown target (lists the valid ones).
    """
    if target not in TARGETS:
        raise ConfigError(unknown_name("--for target", target, TARGETS))
    if target == "onecycle":
        return LrPlan(
            target,
            lr,
            lr / ONECYCLE_DIV,
            lr,
            f"max_lr = {lr:.3g} (the suggestion); the cycle starts at "
            f"max_lr/{ONECYCLE_DIV:g} = {lr / ONECYCLE_DIV:.3g}",
        )
    if target == "constant":
        return LrPlan(target, lr, lr, lr, f"lr = {lr:.3g} (the suggestion), held constant")
    return LrPlan(
        target,
        lr,
        lr / 100.0,
        lr,
        f"initial lr = {lr:.3g} (the suggestion); {target} decay takes it towards {lr / 100:.3g}",
    )
