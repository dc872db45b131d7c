"""The search YAML: the shared run keys (lrtune.config) plus a `search:` block.

    task: ../../examples/digits_mlp.py
    epochs: 6
    optimizer: sgd
    lr: 0.05                       # or auto, a list, or {low, high, log}
    schedule:
      name: step
      step_size: [2, 3]            # a list is a grid axis
      gamma: [0.1, 0.5]
    search:
      method: grid                 # grid | random
      metric: val_loss             # val_loss | val_metric | train_loss
      seeds: [0, 1]
      pruner: none                 # none | median | asha | wilcoxon

Everything is validated here, before any training; every error is one line that names
the file, the key and the value (exit code 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lrtune.config import (
    RunConfig,
    as_float,
    check_keys,
    get_int,
    load_yaml,
    parse_run_config,
)
from lrtune.errors import ConfigError, unknown_name
from lrtune.search.pruners import get_pruner
from lrtune.search.space import Space, narrow, parse_space

METHODS = ("grid", "random")
METRICS = ("val_loss", "val_metric", "train_loss")
OBJECTIVES = ("final", "best")
SEARCH_KEYS = (
    "method",
    "trials",
    "metric",
    "mode",
    "objective",
    "seeds",
    "pruner",
    "workers",
    "refine",
    "top_k",
    "seed",
)
REFINE_KEYS = ("coarse_epochs", "trials", "shrink")
# A search with more trials than this (combinations x seeds) needs --yes.
TRIAL_LIMIT = 200
DEFAULT_TOP_K = 5
DEFAULT_SHRINK = 0.5


@dataclass(frozen=True)
class RefineSettings:
    """--refine: a coarse pass of `coarse_epochs`, then a pass of the full epochs around the best.

    Attributes:
        coarse_epochs: epochs of each coarse trial.
        trials: random search: trials of the refine pass (default: as many as the coarse one).
        shrink: the refined range keeps this fraction of each numeric range's width.
    """

    coarse_epochs: int
    trials: int | None = None
    shrink: float = DEFAULT_SHRINK


@dataclass(frozen=True)
class SearchSettings:
    """The `search:` block, validated and with defaults filled in."""

    method: str = "grid"
    trials: int | None = None
    metric: str = "val_loss"
    mode: str = "min"
    objective: str = "final"
    seeds: tuple[int, ...] = (0,)
    pruner: str = "none"
    workers: int = 1
    refine: RefineSettings | None = None
    top_k: int = DEFAULT_TOP_K
    seed: int = 0

    @property
    def direction(self) -> str:
        """Optuna's study direction."""
        return "minimize" if self.mode == "min" else "maximize"


@dataclass(frozen=True)
class SearchConfig:
    """A validated search config.

    Attributes:
        run: the shared run part (task, epochs, optimizer, lr, schedule, ...).
        settings: the search block.
        space: the searched dimensions and the fixed template.
        data: the config mapping with the task path made absolute (saved in the run
            directory so that --resume needs nothing else).
    """

    run: RunConfig
    settings: SearchSettings
    space: Space
    data: Mapping[str, Any] = field(default_factory=dict)

    def n_points(self) -> int:
        """Configurations of the first pass (grid combinations or random trials)."""
        if self.settings.method == "grid":
            return self.space.grid_size()
        return int(self.settings.trials or 0)

    def n_trials(self) -> int:
        """Trials of the first pass: configurations x seeds."""
        return self.n_points() * len(self.settings.seeds)

    def pass_epochs(self, name: str) -> int:
        """Epochs of a pass: 'coarse' runs the short ones, 'main'/'refine' the full."""
        if name == "coarse" and self.settings.refine is not None:
            return self.settings.refine.coarse_epochs
        return self.run.epochs


def load_search_config(
    path: str | Path,
    *,
    workers: int | None = None,
    refine: bool = False,
    yes: bool = False,
) -> SearchConfig:
    """Read and validate a search YAML (see the module docstring).

    Args:
        path: the YAML file.
        workers: --workers (overrides search.workers).
        refine: --refine (turns on a coarse + refine search with default settings).
        yes: --yes (allow more than TRIAL_LIMIT trials).

    Raises:
        ConfigError: one line naming the file, the key and the value.
    """
    source = Path(path)
    data = load_yaml(source)
    return parse_search_config(data, source, workers=workers, refine=refine, yes=yes)


def parse_search_config(
    data: Mapping[str, Any],
    source: Path,
    *,
    workers: int | None = None,
    refine: bool = False,
    yes: bool = False,
) -> SearchConfig:
    """Validate a search mapping; see `load_search_config`."""
    where = str(source)
    run = parse_run_config(data, source, extra_keys=("search",))
    block = data.get("search", {}) or {}
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: 'search' must be a mapping, got {block!r}")
    settings = _parse_settings(block, run, where)
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        settings = replace(settings, workers=workers)
    if refine and settings.refine is None:
        settings = replace(settings, refine=RefineSettings(coarse_epochs=_coarse_default(run)))
    if settings.refine is not None and settings.refine.coarse_epochs >= run.epochs:
        raise ConfigError(
            f"{where}: 'search.refine.coarse_epochs' ({settings.refine.coarse_epochs}) must be "
            f"< epochs ({run.epochs}): the refine pass is the longer one"
        )
    space = parse_space(run.lr, run.schedule, where)
    if settings.method == "grid" and space.has_ranges:
        name = next(n for n, d in space.dims.items() if not hasattr(d, "values"))
        raise ConfigError(
            f"{where}: '{name}' is a {{low, high}} range, which a grid cannot enumerate: "
            "give a list of values, or set search.method: random"
        )
    cfg = SearchConfig(
        run=run, settings=settings, space=space, data=_effective(data, run, settings)
    )
    n = cfg.n_trials()
    if n > TRIAL_LIMIT and not yes:
        raise ConfigError(
            f"{where}: the search has {n} trials ({cfg.n_points()} configurations x "
            f"{len(settings.seeds)} seeds), more than {TRIAL_LIMIT}: pass --yes to run it anyway"
        )
    validate_schedules(cfg)
    return cfg


def _coarse_default(run: RunConfig) -> int:
    return max(1, run.epochs // 3)


def _parse_settings(block: Mapping[str, Any], run: RunConfig, where: str) -> SearchSettings:
    w = f"{where}: search"
    check_keys(block, SEARCH_KEYS, w)
    method = _choice(block, "method", METHODS, "grid", w)
    metric = _choice(block, "metric", METRICS, "val_loss", w)
    default_mode = run.metric_mode if metric == "val_metric" else "min"
    mode = _choice(block, "mode", ("min", "max"), default_mode, w)
    if metric != "val_metric" and mode != "min":
        raise ConfigError(
            f"{w}: 'mode: {mode}' with metric {metric}: losses are minimised; 'mode' applies "
            "to val_metric only (remove it, or set metric: val_metric)"
        )
    objective = _choice(block, "objective", OBJECTIVES, "final", w)
    pruner = block.get("pruner", "none")
    if pruner is None or pruner is False:
        pruner = "none"
    if not isinstance(pruner, str):
        raise ConfigError(f"{w}: 'pruner' must be a name, got {pruner!r}")
    try:
        get_pruner(pruner)
    except ConfigError as exc:
        raise ConfigError(f"{w}: {exc}") from None
    trials = get_int(block, "trials", w, None)
    if method == "random" and trials is None:
        raise ConfigError(f"{w}: random search needs 'trials' (how many configurations to sample)")
    if method == "grid" and trials is not None:
        raise ConfigError(
            f"{w}: 'trials' is for random search; a grid runs every combination once "
            f"(got trials: {trials})"
        )
    seeds = _seeds(block.get("seeds", [run.seed]), w)
    workers = get_int(block, "workers", w, 1)
    top_k = get_int(block, "top_k", w, DEFAULT_TOP_K)
    seed = get_int(block, "seed", w, run.seed, minimum=0)
    refine = _refine(block.get("refine", False), run, method, w)
    return SearchSettings(
        method=method,
        trials=trials,
        metric=metric,
        mode=mode,
        objective=objective,
        seeds=seeds,
        pruner=pruner,
        workers=int(workers or 1),
        refine=refine,
        top_k=int(top_k or DEFAULT_TOP_K),
        seed=int(seed or 0),
    )


def _choice(block: Mapping[str, Any], key: str, valid: Sequence[str], default: str, w: str) -> str:
    value = block.get(key, default)
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"{w}: {unknown_name(key, str(value), valid)}")
    return value


def _seeds(value: Any, w: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{w}: 'seeds' must be a non-empty list of integers, got {value!r}")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"{w}: 'seeds' must hold integers >= 0, got {s!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{w}: 'seeds' repeats a seed: {value!r}")
    return tuple(value)


def _refine(value: Any, run: RunConfig, method: str, w: str) -> RefineSettings | None:
    if value is False or value is None:
        return None
    if value is True:
        return RefineSettings(coarse_epochs=_coarse_default(run))
    if not isinstance(value, Mapping):
        raise ConfigError(f"{w}: 'refine' must be true/false or a mapping, got {value!r}")
    wr = f"{w}.refine"
    check_keys(value, REFINE_KEYS, wr)
    coarse = get_int(value, "coarse_epochs", wr, _coarse_default(run))
    trials = get_int(value, "trials", wr, None)
    if trials is not None and method == "grid":
        raise ConfigError(f"{wr}: 'trials' is for random search (a grid refines to 3 values)")
    shrink = as_float(value.get("shrink", DEFAULT_SHRINK), f"{wr}: 'shrink'")
    if not 0 < shrink < 1:
        raise ConfigError(f"{wr}: 'shrink' must be between 0 and 1, got {shrink!r}")
    return RefineSettings(coarse_epochs=int(coarse or 1), trials=trials, shrink=shrink)


def _effective(data: Mapping[str, Any], run: RunConfig, settings: SearchSettings) -> dict:
    """The mapping to save in the run directory: task path absolute, --refine written in."""
    out = dict(data)
    out["task"] = str(Path(run.task).resolve())
    block = dict(out.get("search") or {})
    if settings.refine is not None and not block.get("refine"):
        block["refine"] = {"coarse_epochs": settings.refine.coarse_epochs}
    out["search"] = block
    return out


def validate_schedules(cfg: SearchConfig, space: Space | None = None) -> None:
    """Check every grid point (or every bound of a random space) with lrtune.schedules.

    Raises:
        ConfigError: the first invalid schedule, naming the parameters that produced it.
    """
    space = space or cfg.space
    try:
        from lrtune import schedules
    except ImportError:  # pragma: no cover - the schedules module ships with lrtune
        return
    points = space.grid() if cfg.settings.method == "grid" else space.corners()
    seen: set[str] = set()
    for point in points:
        _, spec = space.materialize(point)
        key = repr(sorted(spec.items()))
        if key in seen:
            continue
        seen.add(key)
        try:
            schedules.validate(spec)
        except ConfigError as exc:
            at = ", ".join(f"{k}={v}" for k, v in point.items() if k != "lr")
            raise ConfigError(
                f"{cfg.run.source}: schedule{f' ({at})' if at else ''}: {exc}"
            ) from None


def refine_space(cfg: SearchConfig, best: Mapping[str, Any]) -> Space:
    """The refine pass's space around the coarse pass's best point (validated)."""
    shrink = cfg.settings.refine.shrink if cfg.settings.refine else DEFAULT_SHRINK
    space = narrow(cfg.space, best, shrink)
    validate_schedules(cfg, space)
    return space
