"""Schedule specs as data: validate a mapping, lay it out over a run, compute its LR curve.

A spec is a mapping: `name`, the schedule's parameters, optional `interval` ('epoch' or
'step': how often the scheduler steps, and the unit of every length parameter such as
`step_size`, `milestones`, `T_max`) and an optional linear `warmup` given in epochs or
optimizer steps (`{epochs: 1}`, `{steps: 100, start_factor: 0.01}`). Pure Python: no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from lrtune.config import as_float
from lrtune.errors import ConfigError, did_you_mean
from lrtune.schedules.base import DERIVED, INTERVALS, REQUIRED, Param, ScheduleInfo
from lrtune.schedules.registry import REGISTRY, restart_position

DEFAULT_WARMUP_START = 0.01  # LR multiplier at the first warmup step
WARMUP_KEYS = ("epochs", "steps", "start_factor")
WARMUP_START = Param(
    "start_factor",
    "float",
    DEFAULT_WARMUP_START,
    "LR multiplier at the first warmup step",
    0.0,
    1.0,
    low_open=True,
)

# Other spellings users type, including torch's class names.
ALIASES = {
    "one_cycle": "onecycle",
    "1cycle": "onecycle",
    "onecyclelr": "onecycle",
    "cosine_annealing": "cosine",
    "cosineannealinglr": "cosine",
    "sgdr": "cosine_warm_restarts",
    "cosineannealingwarmrestarts": "cosine_warm_restarts",
    "reduce_on_plateau": "plateau",
    "reducelronplateau": "plateau",
    "multi_step": "multistep",
    "multisteplr": "multistep",
    "steplr": "step",
    "exp": "exponential",
    "exponentiallr": "exponential",
    "poly": "polynomial",
    "polynomiallr": "polynomial",
    "linearlr": "linear",
    "cycliclr": "cyclic",
    "rsqrt": "inverse_sqrt",
    "warmup_stable_decay": "wsd",
}


def get_schedule(name: Any) -> ScheduleInfo:
    """The registry entry for `name` (case-insensitive; torch class names accepted).

    Raises:
        ConfigError: unknown name, with a did-you-mean and the valid names.
    """
    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in REGISTRY:
        valid = list(REGISTRY)
        raise ConfigError(
            f"unknown schedule '{name}'{did_you_mean(str(name), valid + list(ALIASES))}; "
            f"valid: {', '.join(valid)}"
        )
    return REGISTRY[key]


def params_of(name: str) -> tuple[Param, ...]:
    """The parameters of schedule `name`, in declaration order (ConfigError if unknown)."""
    return get_schedule(name).params


PARAMS = params_of  # the name the other parts were told about


def _check_warmup(warmup: Any, where: str) -> dict[str, Any]:
    if not isinstance(warmup, Mapping):
        raise ConfigError(
            f"{where}: 'warmup' must be a mapping like {{epochs: 1}} or {{steps: 100}}, "
            f"got {warmup!r}"
        )
    for key in warmup:
        if key not in WARMUP_KEYS:
            raise ConfigError(
                f"{where}: unknown warmup key '{key}'{did_you_mean(str(key), WARMUP_KEYS)}; "
                f"valid: {', '.join(WARMUP_KEYS)}"
            )
    given = [k for k in ("epochs", "steps") if warmup.get(k) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"{where}: 'warmup' needs exactly one of 'epochs' or 'steps', got {dict(warmup)!r}"
        )
    key = given[0]
    value = warmup[key]
    out: dict[str, Any] = {}
    if key == "steps":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: 'warmup.steps' must be an integer >= 1, got {value!r}")
        out["steps"] = value
    else:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ConfigError(f"{where}: 'warmup.epochs' must be > 0, got {value!r}")
            out["epochs"] = value
        else:
            out["epochs"] = as_float(value, f"{where}: 'warmup.epochs'", positive=True)
    start = warmup.get("start_factor")
    out["start_factor"] = (
        DEFAULT_WARMUP_START if start is None else WARMUP_START.check(start, f"{where}: warmup")
    )
    return out


def validate(spec: Mapping[str, Any] | str) -> dict[str, Any]:
    """Check a schedule spec and return it normalised.

    The result has `name` (canonical), `interval`, every parameter in declaration order
    (fixed defaults filled; run-length defaults left as None until `resolve`), and
    `warmup` when given. Validating a normalised spec returns it unchanged.

    Raises:
        ConfigError: one line for an unknown name or parameter, a missing, mistyped or
            out-of-range value, or milestones that do not strictly increase.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"schedule must be a mapping with a 'name', got {spec!r}")
    if spec.get("name") is None:
        raise ConfigError(f"schedule: missing 'name'; valid: {', '.join(REGISTRY)}")
    info = get_schedule(spec["name"])
    where = f"schedule '{info.name}'"
    allowed = ("interval", *info.param_names, "warmup")
    for key in spec:
        if key != "name" and key not in allowed:
            raise ConfigError(
                f"{where}: unknown parameter '{key}'{did_you_mean(str(key), allowed)}; "
                f"valid: {', '.join(allowed)}"
            )
    interval = spec.get("interval")
    if interval is None:
        interval = info.default_interval
    if interval not in INTERVALS:
        raise ConfigError(
            f"{where}: 'interval' must be 'epoch' or 'step', got {interval!r}"
            f"{did_you_mean(str(interval), INTERVALS)}"
        )
    if interval == "step" and info.epoch_only:
        raise ConfigError(f"{where}: needs interval: epoch ({info.epoch_only})")
    out: dict[str, Any] = {"name": info.name, "interval": interval}
    for p in info.params:
        value = spec.get(p.name)
        if value is None:
            if p.default is REQUIRED:
                raise ConfigError(
                    f"{where}: missing required parameter '{p.name}' ({p.help}; {p.describe()})"
                )
            out[p.name] = None if p.default is DERIVED else p.default
        else:
            out[p.name] = p.check(value, where)
    if info.check is not None:
        info.check(out, where)
    if spec.get("warmup") is not None:
        if info.own_warmup:
            raise ConfigError(f"{where}: 'warmup' does not apply: {info.own_warmup}")
        out["warmup"] = _check_warmup(spec["warmup"], where)
    return out


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")
    return value


def check_base_lr(base_lr: Any) -> float:
    """The base LR as a positive float (ConfigError otherwise)."""
    return as_float(base_lr, "base lr", positive=True)


@dataclass(frozen=True)
class Plan:
    """A spec laid out over a run: everything `lr_curve`, `build` and `to_python` need.

    Attributes:
        info: the registry entry.
        spec: the normalised spec with run-length defaults filled.
        params: the main schedule's parameters (a copy of the spec's).
        interval: 'epoch' or 'step'.
        unit_steps: optimizer steps per scheduler step (steps_per_epoch or 1).
        total_units: scheduler steps in the run (warmup included).
        warmup_units: scheduler steps of linear warmup (0 for none).
        warmup_start: LR multiplier at the first warmup step.
        steps_per_epoch, epochs: the run.
    """

    info: ScheduleInfo
    spec: dict[str, Any]
    params: dict[str, Any]
    interval: str
    unit_steps: int
    total_units: int
    warmup_units: int
    warmup_start: float
    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the run."""
        return self.steps_per_epoch * self.epochs

    @property
    def unit_name(self) -> str:
        """'epochs' or 'steps': the unit of length parameters."""
        return "epochs" if self.interval == "epoch" else "steps"

    def lr_params(self, base_lr: float) -> dict[str, Any]:
        """The main schedule's parameters with LR defaults (max_lr, ...) filled from base_lr."""
        params = dict(self.params)
        if self.info.fill_lr is not None:
            self.info.fill_lr(params, base_lr)
        return params

    def unit_lrs(self, base_lr: float) -> list[float]:
        """The LR after each scheduler step t = 0 .. total_units - 1 (closed form)."""
        params = self.lr_params(base_lr)
        w, f = self.warmup_units, self.warmup_start
        curve = self.info.curve
        return [
            base_lr * (f + (1.0 - f) * t / w) if t < w else curve(params, t - w, base_lr)
            for t in range(self.total_units)
        ]

    def phases(self) -> list[tuple[str, int, int]]:
        """Named parts of the run in optimizer steps, for plots: (label, start, end)."""
        out = []
        if self.warmup_units:
            out.append(("warmup", 0, self.warmup_units))
        if self.info.phases is not None:
            for label, start, end in self.info.phases(self.params):
                out.append((label, start + self.warmup_units, end + self.warmup_units))
        return [
            (
                label,
                min(s * self.unit_steps, self.total_steps),
                min(e * self.unit_steps, self.total_steps),
            )
            for label, s, e in out
            if e > s
        ]


def _warmup_units(warmup: Mapping[str, Any], interval: str, spe: int, name: str) -> int:
    where = f"schedule '{name}'"
    if "steps" in warmup:
        steps = int(warmup["steps"])
        if interval == "step":
            return steps
        if steps % spe:
            raise ConfigError(
                f"{where}: warmup of {steps} steps is not a whole number of epochs "
                f"({spe} steps per epoch) with interval: epoch; use interval: step or give "
                "warmup in epochs"
            )
        return steps // spe
    epochs = warmup["epochs"]
    if interval == "step":
        return max(1, round(epochs * spe))
    if float(epochs) != int(epochs):
        raise ConfigError(
            f"{where}: warmup of {epochs} epochs is not whole with interval: epoch; "
            "use interval: step for fractional epochs"
        )
    return int(epochs)


def plan(spec: Mapping[str, Any] | str, steps_per_epoch: int, epochs: int) -> Plan:
    """Validate `spec` and lay it out over `epochs` x `steps_per_epoch` optimizer steps.

    Raises:
        ConfigError: an invalid spec, or one that does not fit the run (a warmup as long
            as the run, a one-cycle shorter than it, ...).
    """
    spe = _positive_int(steps_per_epoch, "steps_per_epoch")
    epochs = _positive_int(epochs, "epochs")
    norm = validate(spec)
    info = REGISTRY[norm["name"]]
    interval = norm["interval"]
    unit_steps = spe if interval == "epoch" else 1
    total_units = epochs if interval == "epoch" else epochs * spe
    warmup = norm.get("warmup")
    w = _warmup_units(warmup, interval, spe, info.name) if warmup else 0
    unit = "epochs" if interval == "epoch" else "steps"
    if w >= total_units:
        raise ConfigError(
            f"schedule '{info.name}': a warmup of {w} {unit} leaves no room in a run of "
            f"{total_units} {unit}"
        )
    params = {name: norm[name] for name in info.param_names}
    if info.derive is not None:
        info.derive(params, total_units - w)
    resolved = {**norm, **params}
    if warmup:
        resolved["warmup"] = dict(warmup)  # keep it last
    return Plan(
        info=info,
        spec=resolved,
        params=params,
        interval=interval,
        unit_steps=unit_steps,
        total_units=total_units,
        warmup_units=w,
        warmup_start=float(warmup["start_factor"]) if warmup else 1.0,
        steps_per_epoch=spe,
        epochs=epochs,
    )


def resolve(
    spec: Mapping[str, Any] | str, steps_per_epoch: int, epochs: int, base_lr: float | None = None
) -> dict[str, Any]:
    """The normalised spec with every run-length default filled in (and LR defaults such as
    one-cycle's max_lr too when `base_lr` is given): what to write to schedule.yaml."""
    p = plan(spec, steps_per_epoch, epochs)
    out = dict(p.spec)
    if base_lr is not None:
        out.update(p.lr_params(check_base_lr(base_lr)))
        if "warmup" in out:
            out["warmup"] = out.pop("warmup")
    return out


def lr_curve(
    spec: Mapping[str, Any] | str, base_lr: float, steps_per_epoch: int, epochs: int
) -> list[float]:
    """The LR used by every optimizer step of the run, from closed forms (no optimizer).

    With interval: epoch the LR holds for each epoch's steps. For `plateau` the curve
    depends on the validation loss; this returns it as if the loss kept improving (the
    warmup, then the base LR throughout).

    Raises:
        ConfigError: an invalid spec or run.
    """
    base = check_base_lr(base_lr)
    p = plan(spec, steps_per_epoch, epochs)
    return [lr for lr in p.unit_lrs(base) for _ in range(p.unit_steps)]


class _SpecDumper(yaml.SafeDumper):
    """Block style, except lists (milestones) on one line: `milestones: [30, 60]`."""


_SpecDumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def to_yaml(spec: Mapping[str, Any] | str) -> str:
    """The normalised spec as YAML (run-length defaults left out, so they refit any run)."""
    norm = validate(spec)
    data = {k: v for k, v in norm.items() if v is not None}
    return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, default_flow_style=False)


def from_yaml(text: str) -> dict[str, Any]:
    """Parse and validate a YAML spec; `validate(s) == from_yaml(to_yaml(s))`.

    Raises:
        ConfigError: invalid YAML, not a mapping, or an invalid spec.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"schedule: invalid YAML{where}: {problem}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"schedule: expected a mapping with a 'name', got {data!r}")
    return validate(data)


def run_warnings(spec: Mapping[str, Any] | str, steps_per_epoch: int, epochs: int) -> list[str]:
    """Plain-words warnings for a spec that validates but does not fit the run well.

    Lengths past the end of the run (a milestone after the last epoch, a T_max longer
    than the run) and a cosine T_max shorter than the run (torch's LR climbs back up).

    Raises:
        ConfigError: an invalid spec or run.
    """
    p = plan(spec, steps_per_epoch, epochs)
    length = p.total_units - p.warmup_units
    unit = p.unit_name
    span = f"{length} {unit}" + (" after warmup" if p.warmup_units else "")
    out: list[str] = []
    for param in p.info.params:
        value = p.params.get(param.name)
        if not param.unit or value is None:
            continue
        past = [v for v in (value if isinstance(value, list) else [value]) if v > length]
        if past:
            out.append(
                f"{p.info.name}: {param.name} {', '.join(map(str, past))} is past the end of the "
                f"run ({span}), so the LR never gets there; pass the real --epochs or shorten it"
            )
    if p.info.name == "cosine" and p.params["T_max"] < length:
        out.append(
            f"cosine: T_max {p.params['T_max']} is shorter than the run ({span}); after it the LR "
            "climbs back up, as torch's CosineAnnealingLR does (leave T_max out to fit the run)"
        )
    if p.info.name == "cosine_warm_restarts":
        t_cur, t_i = restart_position(length - 1, p.params["T_0"], p.params["T_mult"])
        if (t_cur + 1) / t_i < 0.8:
            ends: list[int] = []
            total, cycle = 0, p.params["T_0"]
            while total + cycle <= 4 * length and len(ends) < 4:
                total += cycle
                ends.append(total)
                cycle *= p.params["T_mult"]
            out.append(
                f"cosine_warm_restarts: the run ({span}) ends {t_cur + 1}/{t_i} {unit} into a "
                "cycle, with the LR still high; cycles end after "
                f"{', '.join(map(str, ends))} {unit}"
            )
    return out
