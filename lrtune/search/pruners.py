"""Pruners by name: the `search.pruner` values, one registry of frozen specs.

Every pruner sees one intermediate value per epoch (the search metric, reported as step
= epoch number) and decides after each epoch whether the trial stops early. `first_epoch`
is the first epoch at which pruning may happen: the runner sets it to the first epoch in
which the pass's LR curves differ, because before it every trial of a schedule search
trains with the same LRs and comparing them ranks seed noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrtune.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class PrunerSpec:
    """A registry entry: build(n_trials, first_epoch) -> the Optuna pruner."""

    name: str
    description: str
    build: Callable[[int, int], Any]


def _none(n_trials: int, first_epoch: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def _median(n_trials: int, first_epoch: int) -> Any:
    import optuna

    # Optuna's default of 5 startup trials would never prune a small grid.
    startup = min(5, max(2, n_trials // 4))
    return optuna.pruners.MedianPruner(
        n_startup_trials=startup, n_warmup_steps=max(0, first_epoch - 1)
    )


def _asha(n_trials: int, first_epoch: int) -> Any:
    import optuna

    # Rungs at epochs f, 3f, 9f, ... (f = first_epoch): a trial continues only while it is
    # in the top third of the trials that reached the same rung.
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=max(1, first_epoch), reduction_factor=3
    )


def _wilcoxon(n_trials: int, first_epoch: int) -> Any:
    import warnings

    import optuna

    with warnings.catch_warnings():  # "experimental" in Optuna 3.6+: we pin its arguments
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=max(2, first_epoch))


PRUNERS: dict[str, PrunerSpec] = {
    spec.name: spec
    for spec in (
        PrunerSpec("none", "no early stopping: every trial runs all its epochs", _none),
        PrunerSpec("median", "stop a trial worse than the median of earlier trials", _median),
        PrunerSpec(
            "asha",
            "successive halving: keep the top third at epochs 1, 3, 9, ... (x first_epoch)",
            _asha,
        ),
        PrunerSpec("wilcoxon", "stop when worse than the best trial (Wilcoxon test)", _wilcoxon),
    )
}


def get_pruner(name: str) -> PrunerSpec:
    """Look up a pruner by name.

    Raises:
        ConfigError: unknown name (lists the valid ones).
    """
    if name not in PRUNERS:
        raise ConfigError(unknown_name("pruner", name, PRUNERS))
    return PRUNERS[name]
