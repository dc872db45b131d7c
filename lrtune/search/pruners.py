"""Pruners by name: the `search.pruner` values, one registry of frozen specs.

Every pruner sees one intermediate value per epoch (the search metric, reported as step
= epoch number) and decides after each epoch whether the trial stops early. `first_epoch`
is the first epoch at which pruning may happen (`first_prunable_epoch`): not before the
pass's LR curves differ (before it every trial of a schedule search trains with the same
LRs and comparing them ranks seed noise), and not before a trial has run
`PRUNE_AFTER_FRACTION` of its epochs (at least `PRUNE_MIN_EPOCH`): first-epoch losses rank
LRs by how fast they start, not by where they end. The runner also keeps each trial
running until its own warmup is over (`TrialJob.prune_from`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrtune.errors import ConfigError, unknown_name

#: No trial is pruned before it has run this fraction of its epochs ...
PRUNE_AFTER_FRACTION = 0.25
#: ... nor before this epoch (epoch 1's loss mostly measures how fast a run starts).
PRUNE_MIN_EPOCH = 2
#: median: it prunes only once this many trials of the study have completed ...
MEDIAN_MIN_STARTUP = 5
#: ... or this fraction of the planned trials, when that is more.
MEDIAN_STARTUP_FRACTION = 0.25


def first_prunable_epoch(epochs: int, first_difference: int) -> int:
    """The first epoch at which a pass of `epochs`-epoch trials may stop one early.

    Args:
        epochs: epochs of every trial of the pass.
        first_difference: the first epoch in which the pass's LR curves differ
            (epochs + 1 when they never do).

    Returns:
        max(first_difference, PRUNE_MIN_EPOCH, ceil(PRUNE_AFTER_FRACTION * epochs)); a value
        >= epochs means never (a trial in its last epoch is as good as finished).
    """
    return max(first_difference, PRUNE_MIN_EPOCH, math.ceil(PRUNE_AFTER_FRACTION * epochs))


def median_startup(n_trials: int) -> int:
    """Completed trials the median pruner waits for: max(5, a quarter of the planned)."""
    return max(MEDIAN_MIN_STARTUP, math.ceil(MEDIAN_STARTUP_FRACTION * n_trials))


@dataclass(frozen=True)
class PrunerSpec:
    """A registry entry: build(n_trials, first_epoch) -> the Optuna pruner.

    n_trials: the trials planned in the study (one study per pass and seed); first_epoch:
    the first epoch at which it may stop a trial (`first_prunable_epoch`).
    """

    name: str
    description: str
    build: Callable[[int, int], Any]


def _none(n_trials: int, first_epoch: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def _median(n_trials: int, first_epoch: int) -> Any:
    import optuna

    # A median of fewer than 5 completed curves is mostly noise: a small search prunes
    # little, which is the honest outcome (the trials that would be stopped are few).
    return optuna.pruners.MedianPruner(
        n_startup_trials=median_startup(n_trials), n_warmup_steps=max(0, first_epoch - 1)
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
        PrunerSpec(
            "median",
            "stop a trial worse than the median of the completed trials at the same epoch "
            "(after 5 have completed)",
            _median,
        ),
        PrunerSpec(
            "asha",
            "successive halving: keep the top third at epochs 1, 3, 9, ... (x first_epoch)",
            _asha,
        ),
        PrunerSpec("wilcoxon", "stop when worse than the best trial (Wilcoxon test)", _wilcoxon),
    )
}


def pruning_note(
    pruner: str, epochs: int, prune_from: int, lr_differs_from: int, planned: int
) -> str:
    """When the pass's trials may be stopped early, and why not sooner, in words.

    Args:
        pruner: the pruner's name.
        epochs: epochs of every trial of the pass.
        prune_from: the pass's first prunable epoch (`first_prunable_epoch`).
        lr_differs_from: the first epoch in which two of the pass's LR curves differ.
        planned: trials planned per study (the median pruner's startup count).

    Returns:
        '' for pruner 'none', else one sentence.
    """
    if pruner == "none":
        return ""
    if prune_from >= epochs:
        if lr_differs_from > epochs:
            return "no pruning: every schedule has the same LR curve"
        return f"no pruning: runs of {epochs} epochs are too short to stop early"
    if lr_differs_from == prune_from and lr_differs_from > PRUNE_MIN_EPOCH:
        why = "before it every schedule has the same LR, so trials differ only by seed noise"
    else:
        why = (
            f"a trial runs at least {PRUNE_AFTER_FRACTION:.0%} of its epochs, and at least "
            f"{PRUNE_MIN_EPOCH}"
        )
    note = f"pruning from epoch {prune_from} ({why}), and never during a trial's warmup"
    if pruner == "median":
        note += f"; the median pruner waits for {median_startup(planned)} completed trials"
    return note


def get_pruner(name: str) -> PrunerSpec:
    """Look up a pruner by name.

    Raises:
        ConfigError: unknown name (lists the valid ones).
    """
    if name not in PRUNERS:
        raise ConfigError(unknown_name("pruner", name, PRUNERS))
    return PRUNERS[name]
