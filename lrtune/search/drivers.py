"""Search drivers: which points a pass trains, decided before the first trial starts.

The contract, stated once: a driver's `plan(space, n, seed)` returns the list of points
(dicts from searched parameter name to value) that one pass runs, in order. The runner
runs every point once per seed, enqueueing all of them up front in the Optuna study, so
every (point, seed) runs exactly once whatever the number of workers, and a resumed search
knows exactly what is missing. `n` is the number of points asked for (random search; a
grid ignores it); `seed` seeds any sampling, so the same config plans the same points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrtune.errors import ConfigError, unknown_name
from lrtune.search.space import Space

Plan = list[dict[str, Any]]


@dataclass(frozen=True)
class DriverSpec:
    """A registry entry: a name, a one-line description and the planning function."""

    name: str
    description: str
    plan: Callable[[Space, int, int], Plan]


def _grid(space: Space, n: int, seed: int) -> Plan:
    return list(space.grid())


def _random(space: Space, n: int, seed: int) -> Plan:
    """`n` points from Optuna's RandomSampler(seed), asked through an in-memory study."""
    import optuna

    from lrtune.search.storage import quiet_optuna

    quiet_optuna()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points = []
    for _ in range(n):
        trial = study.ask()
        points.append(space.sample_params(trial))
        study.tell(trial, 0.0)
    return points


DRIVERS: dict[str, DriverSpec] = {
    spec.name: spec
    for spec in (
        DriverSpec("grid", "every combination of the listed values", _grid),
        DriverSpec("random", "n points sampled from the lists and ranges (seeded)", _random),
    )
}


def get_driver(name: str) -> DriverSpec:
    """Look up a driver by name.

    Raises:
        ConfigError: unknown name (lists the valid ones).
    """
    if name not in DRIVERS:
        raise ConfigError(unknown_name("search method", name, DRIVERS))
    return DRIVERS[name]
