"""YAML configs to frozen dataclasses. Every default lives here once; errors name file, key, value.

`search` and `check` share the run part of the config (task, epochs, optimizer, lr,
schedule, ...); each adds its own block (`search:` / `expect:`) on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lrtune.errors import ConfigError, did_you_mean

# Defaults, once.
DEFAULT_EPOCHS = 5
DEFAULT_OPTIMIZER = "sgd"
DEFAULT_SEED = 0
DEFAULT_DEVICE = "auto"
DEFAULT_SCHEDULE: Mapping[str, Any] = {"name": "constant"}

RUN_KEYS = (
    "task",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "schedule",
    "seed",
    "device",
    "max_steps",
    "metric_mode",
)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping.

    Raises:
        ConfigError: missing file, YAML syntax error (with line), or not a mapping.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, expected a YAML file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}{where}: invalid YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{p}: config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def check_keys(mapping: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Raise on the first unknown key, with a did-you-mean and the valid keys."""
    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key '{key}'{did_you_mean(str(key), allowed)}; "
                f"valid: {', '.join(allowed)}"
            )


def get_int(
    mapping: Mapping[str, Any], key: str, where: str, default: int | None, minimum: int = 1
) -> int | None:
    """An int >= minimum, or default when absent."""
    value = mapping.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: '{key}' must be >= {minimum}, got {value!r}")
    return value


def get_float(
    mapping: Mapping[str, Any], key: str, where: str, default: float | None, positive: bool = False
) -> float | None:
    """A float (YAML ints and '1e-3' strings accepted), or default when absent."""
    value = mapping.get(key, default)
    if value is None:
        return None
    return as_float(value, f"{where}: '{key}'", positive)


def as_float(value: Any, what: str, positive: bool = False) -> float:
    """Coerce a YAML scalar to float; YAML 1.1 reads '1e-3' as a string, so parse it."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"{what} must be > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer name (see lrtune.optim) and extra keyword arguments."""

    name: str = DEFAULT_OPTIMIZER
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """The run part shared by search and check.

    `lr` is a float, the string 'auto' (run a range test first), or, for search only,
    a mapping/list describing a search range; `schedule` is the raw schedule mapping
    (a spec for check; may hold grids/distributions for search).
    """

    source: Path
    task: Path
    epochs: int = DEFAULT_EPOCHS
    batch_size: int | None = None
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr: Any = "auto"
    schedule: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_SCHEDULE))
    seed: int = DEFAULT_SEED
    device: str = DEFAULT_DEVICE
    max_steps: int | None = None
    metric_mode: str = "max"


def resolve_task_path(value: Any, source: Path) -> Path:
    """The task path, relative to the config file's folder first, then to the working dir."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{source}: 'task' must be a path to a .py file, got {value!r}")
    p = Path(value)
    if p.is_absolute():
        return p
    near = source.parent / p
    if near.exists():
        return near
    if p.exists():
        return p
    places = sorted({str(source.parent), "."})
    raise ConfigError(f"{source}: task file '{value}' not found (looked in {' and '.join(places)})")


def parse_run_config(
    data: Mapping[str, Any], source: Path, extra_keys: Iterable[str] = ()
) -> RunConfig:
    """Validate the shared run keys of a config mapping.

    Args:
        data: the YAML mapping.
        source: the file it came from (for messages and relative paths).
        extra_keys: top-level keys the caller handles itself (e.g. 'search', 'expect').

    Raises:
        ConfigError: one line naming the file, the key and the value.
    """
    where = str(source)
    check_keys(data, [*RUN_KEYS, *extra_keys], where)
    if "task" not in data:
        raise ConfigError(f"{where}: missing required key 'task' (path to the task .py file)")
    task = resolve_task_path(data["task"], source)
    epochs = get_int(data, "epochs", where, DEFAULT_EPOCHS)
    batch_size = get_int(data, "batch_size", where, None)
    max_steps = get_int(data, "max_steps", where, None)
    seed = get_int(data, "seed", where, DEFAULT_SEED, minimum=0)
    device = data.get("device", DEFAULT_DEVICE)
    if not isinstance(device, str):
        raise ConfigError(f"{where}: 'device' must be a string, got {device!r}")
    opt = data.get("optimizer", DEFAULT_OPTIMIZER)
    if isinstance(opt, str):
        optimizer = OptimizerConfig(name=opt)
    elif isinstance(opt, Mapping):
        check_keys(opt, ("name", "params"), f"{where}: optimizer")
        params = opt.get("params", {}) or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where}: 'optimizer.params' must be a mapping, got {params!r}")
        optimizer = OptimizerConfig(
            name=str(opt.get("name", DEFAULT_OPTIMIZER)), params=dict(params)
        )
    else:
        raise ConfigError(f"{where}: 'optimizer' must be a name or a mapping, got {opt!r}")
    from lrtune.optim import get_optimizer

    try:
        get_optimizer(optimizer.name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    lr = data.get("lr", "auto")
    is_number = isinstance(lr, (int, float)) and not isinstance(lr, bool)
    if (isinstance(lr, str) and lr != "auto") or is_number:
        lr = as_float(lr, f"{where}: 'lr'", positive=True)
    schedule = data.get("schedule", dict(DEFAULT_SCHEDULE))
    if isinstance(schedule, str):
        schedule = {"name": schedule}
    if not isinstance(schedule, Mapping):
        raise ConfigError(f"{where}: 'schedule' must be a mapping with a 'name', got {schedule!r}")
    mode = data.get("metric_mode", "max")
    if mode not in ("min", "max"):
        raise ConfigError(f"{where}: 'metric_mode' must be 'min' or 'max', got {mode!r}")
    return RunConfig(
        source=source,
        task=task,
        epochs=int(epochs or DEFAULT_EPOCHS),
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        schedule=dict(schedule),
        seed=int(seed or 0),
        device=device,
        max_steps=max_steps,
        metric_mode=mode,
    )
