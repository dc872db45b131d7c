"""Every schedule lrtune knows: one frozen `ScheduleInfo` per name, PyTorch's parameter names.

Each `curve` is the closed form of the torch class named beside it; the tests step the
torch object for a whole run and compare, for every entry.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrtune.errors import ConfigError
from lrtune.schedules.base import DERIVED, REQUIRED, Param, ScheduleInfo, fmt_number

# Shared parameter declarations.
GAMMA = Param("gamma", "float", 0.1, "multiply the LR by this at each decay", 0.0, 1.0, True)
ETA_MIN = Param("eta_min", "float", 0.0, "lowest LR (absolute)", 0.0)
CYCLE_MOMENTUM = Param(
    "cycle_momentum", "bool", True, "cycle momentum (or Adam's beta1) inversely to the LR"
)


def _length_param(name: str, help_: str) -> Param:
    return Param(name, "int", DERIVED, help_, 1, derived="run length", unit=True)


# --- constant ---------------------------------------------------------------------------


def _constant_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    return base


CONSTANT = ScheduleInfo(
    name="constant",
    description="the optimizer's LR throughout (add a warmup to ramp into it)",
    torch_class="ConstantLR",
    params=(),
    curve=_constant_curve,
    kwargs=lambda p: {"factor": 1.0, "total_iters": 0},
)

# --- step / multistep / exponential -----------------------------------------------------


def _step_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    return base * p["gamma"] ** (t // p["step_size"])


STEP = ScheduleInfo(
    name="step",
    description="multiply the LR by gamma every step_size epochs (StepLR)",
    torch_class="StepLR",
    params=(
        Param("step_size", "int", REQUIRED, "decay every step_size units", 1, unit=True),
        GAMMA,
    ),
    curve=_step_curve,
    kwargs=lambda p: {"step_size": p["step_size"], "gamma": p["gamma"]},
)


def _multistep_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    return base * p["gamma"] ** bisect_right(p["milestones"], t)


MULTISTEP = ScheduleInfo(
    name="multistep",
    description="multiply the LR by gamma at each milestone (MultiStepLR)",
    torch_class="MultiStepLR",
    params=(
        Param("milestones", "int_list", REQUIRED, "strictly increasing decay points", 1, unit=True),
        GAMMA,
    ),
    curve=_multistep_curve,
    kwargs=lambda p: {"milestones": list(p["milestones"]), "gamma": p["gamma"]},
)


def _exponential_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    return base * p["gamma"] ** t


EXPONENTIAL = ScheduleInfo(
    name="exponential",
    description="multiply the LR by gamma every unit (ExponentialLR)",
    torch_class="ExponentialLR",
    params=(Param("gamma", "float", REQUIRED, "per-unit decay factor", 0.0, 1.0, True),),
    curve=_exponential_curve,
    kwargs=lambda p: {"gamma": p["gamma"]},
)

# --- cosine family ------------------------------------------------------------------------


def _cosine_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    eta = p["eta_min"]
    return eta + (base - eta) * (1 + math.cos(math.pi * t / p["T_max"])) / 2


def _cosine_derive(p: dict[str, Any], length: int) -> None:
    if p["T_max"] is None:
        p["T_max"] = length


COSINE = ScheduleInfo(
    name="cosine",
    description="cosine anneal from the LR to eta_min over T_max (CosineAnnealingLR)",
    torch_class="CosineAnnealingLR",
    params=(_length_param("T_max", "units to anneal over (the LR rises again after)"), ETA_MIN),
    curve=_cosine_curve,
    kwargs=lambda p: {"T_max": p["T_max"], "eta_min": p["eta_min"]},
    derive=_cosine_derive,
)


def restart_position(t: int, t_0: int, t_mult: int) -> tuple[int, int]:
    """(T_cur, T_i): units since the last restart and the current cycle length."""
    t_cur, t_i = t, t_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= t_mult
    return t_cur, t_i


def _restarts_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    t_cur, t_i = restart_position(t, p["T_0"], p["T_mult"])
    eta = p["eta_min"]
    return eta + (base - eta) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


COSINE_WARM_RESTARTS = ScheduleInfo(
    name="cosine_warm_restarts",
    description="cosine anneal restarted every T_0 (x T_mult) units (SGDR)",
    torch_class="CosineAnnealingWarmRestarts",
    params=(
        Param("T_0", "int", REQUIRED, "units until the first restart", 1, unit=True),
        Param("T_mult", "int", 1, "each cycle is T_mult times longer than the last", 1),
        ETA_MIN,
    ),
    curve=_restarts_curve,
    kwargs=lambda p: {"T_0": p["T_0"], "T_mult": p["T_mult"], "eta_min": p["eta_min"]},
)

# --- one-cycle ------------------------------------------------------------------------------


def _onecycle_phases_torch(p: Mapping[str, Any]) -> list[tuple[float, str, str]]:
    """OneCycleLR's phases exactly as torch lays them out: (end_step, start, end)."""
    total = p["total_steps"]
    pct = p["pct_start"]
    if p["three_phase"]:
        return [
            (float(pct * total) - 1, "initial", "max"),
            (float(2 * pct * total) - 2, "max", "initial"),
            (total - 1, "initial", "min"),
        ]
    return [(float(pct * total) - 1, "initial", "max"), (total - 1, "max", "min")]


def _onecycle_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    max_lr = p["max_lr"] if p["max_lr"] is not None else base
    initial = max_lr / p["div_factor"]
    lrs = {"initial": initial, "max": max_lr, "min": initial / p["final_div_factor"]}
    phases = _onecycle_phases_torch(p)
    start_step = 0.0
    for i, (end_step, start, end) in enumerate(phases):
        if t <= end_step or i == len(phases) - 1:
            pct = (t - start_step) / (end_step - start_step)
            a, b = lrs[start], lrs[end]
            if p["anneal_strategy"] == "cos":
                return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (b - a) * pct + a
        start_step = end_step
    raise AssertionError("unreachable")  # pragma: no cover


def _onecycle_derive(p: dict[str, Any], length: int) -> None:
    if p["total_steps"] is None:
        p["total_steps"] = length
    total = p["total_steps"]
    if total < length:
        raise ConfigError(
            f"schedule 'onecycle': total_steps {total} is shorter than the run ({length} units);"
            " torch's OneCycleLR raises when stepped past it (leave total_steps out to fit the run)"
        )
    if p["pct_start"] * total <= 1:
        raise ConfigError(
            f"schedule 'onecycle': pct_start {p['pct_start']} x total_steps {total} must be > 1,"
            " or the warm-up phase is empty (raise pct_start, or use interval: step)"
        )


def _onecycle_check(p: Mapping[str, Any], where: str) -> None:
    if p["base_momentum"] > p["max_momentum"]:
        raise ConfigError(
            f"{where}: base_momentum {p['base_momentum']} must be <= max_momentum "
            f"{p['max_momentum']}"
        )
    if p["three_phase"] and p["pct_start"] >= 0.5:
        raise ConfigError(
            f"{where}: with three_phase, pct_start must be < 0.5, got {p['pct_start']!r}"
        )


def _fill_max_lr(p: dict[str, Any], base: float) -> None:
    if p["max_lr"] is None:
        p["max_lr"] = base


def _onecycle_phases(p: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    up = round(p["pct_start"] * p["total_steps"])
    return [("warm-up (pct_start)", 0, up)]


ONECYCLE = ScheduleInfo(
    name="onecycle",
    description="1cycle: ramp up to max_lr, then anneal far below the start (OneCycleLR)",
    torch_class="OneCycleLR",
    default_interval="step",
    params=(
        Param("max_lr", "float", DERIVED, "peak LR", 0.0, low_open=True, derived="optimizer lr"),
        _length_param("total_steps", "length of the cycle"),
        Param(
            "pct_start", "float", 0.3, "fraction of the cycle spent ramping up", 0, 1, True, True
        ),
        Param("anneal_strategy", "choice", "cos", "shape of each ramp", choices=("cos", "linear")),
        Param("div_factor", "float", 25.0, "start LR = max_lr / div_factor", 1.0),
        Param("final_div_factor", "float", 1e4, "final LR = start LR / final_div_factor", 1.0),
        Param("three_phase", "bool", False, "anneal back to the start LR before the final drop"),
        CYCLE_MOMENTUM,
        Param("base_momentum", "float", 0.85, "momentum at the peak LR", 0.0, 1.0),
        Param("max_momentum", "float", 0.95, "momentum at the start and end", 0.0, 1.0),
    ),
    curve=_onecycle_curve,
    kwargs=lambda p: {
        "max_lr": p["max_lr"],
        "total_steps": p["total_steps"],
        "pct_start": float(p["pct_start"]),
        "anneal_strategy": p["anneal_strategy"],
        "div_factor": p["div_factor"],
        "final_div_factor": p["final_div_factor"],
        "three_phase": p["three_phase"],
        "cycle_momentum": p["cycle_momentum"],
        "base_momentum": p["base_momentum"],
        "max_momentum": p["max_momentum"],
    },
    derive=_onecycle_derive,
    fill_lr=_fill_max_lr,
    check=_onecycle_check,
    phases=_onecycle_phases,
    own_warmup="it ramps up by itself (pct_start, div_factor)",
    lr_params=("max_lr",),
)

# --- cyclic ---------------------------------------------------------------------------------


def _cyclic_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    up = float(p["step_size_up"])
    down = float(p["step_size_down"])
    total_size = up + down
    step_ratio = up / total_size
    cycle = math.floor(1 + t / total_size)
    x = 1.0 + t / total_size - cycle
    scale_factor = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
    height = (p["max_lr"] - p["base_lr"]) * scale_factor
    if p["mode"] == "triangular":
        return p["base_lr"] + height * 1.0
    if p["mode"] == "triangular2":
        return p["base_lr"] + height * (1 / (2.0 ** (cycle - 1)))
    return p["base_lr"] + height * p["gamma"] ** t


def _cyclic_derive(p: dict[str, Any], length: int) -> None:
    if p["step_size_up"] is None:
        p["step_size_up"] = max(1, length // 4)
    if p["step_size_down"] is None:
        p["step_size_down"] = p["step_size_up"]


def _cyclic_fill_lr(p: dict[str, Any], base: float) -> None:
    if p["max_lr"] is None:
        p["max_lr"] = base
    if p["base_lr"] is None:
        p["base_lr"] = p["max_lr"] / 4
    if not p["base_lr"] < p["max_lr"]:
        raise ConfigError(
            f"schedule 'cyclic': base_lr {p['base_lr']!r} must be below max_lr {p['max_lr']!r}"
        )


def _cyclic_check(p: Mapping[str, Any], where: str) -> None:
    if p["base_lr"] is not None and p["max_lr"] is not None and p["base_lr"] >= p["max_lr"]:
        raise ConfigError(f"{where}: base_lr {p['base_lr']!r} must be below max_lr {p['max_lr']!r}")
    if p["base_momentum"] > p["max_momentum"]:
        raise ConfigError(
            f"{where}: base_momentum {p['base_momentum']} must be <= max_momentum "
            f"{p['max_momentum']}"
        )


CYCLIC = ScheduleInfo(
    name="cyclic",
    description="triangular cycles between base_lr and max_lr (CyclicLR, Smith 2017)",
    torch_class="CyclicLR",
    default_interval="step",
    params=(
        Param(
            "base_lr", "float", DERIVED, "lower LR bound", 0.0, low_open=True, derived="max_lr / 4"
        ),
        Param(
            "max_lr", "float", DERIVED, "upper LR bound", 0.0, low_open=True, derived="optimizer lr"
        ),
        Param(
            "step_size_up",
            "int",
            DERIVED,
            "units from base_lr up to max_lr",
            1,
            derived="run length / 4 (two cycles)",
            unit=True,
        ),
        Param(
            "step_size_down",
            "int",
            DERIVED,
            "units back down",
            1,
            derived="step_size_up",
            unit=True,
        ),
        Param(
            "mode",
            "choice",
            "triangular",
            "amplitude policy",
            choices=("triangular", "triangular2", "exp_range"),
        ),
        Param("gamma", "float", 1.0, "exp_range: amplitude x gamma**unit", 0.0, 1.0, True),
        CYCLE_MOMENTUM,
        Param("base_momentum", "float", 0.8, "momentum at max_lr", 0.0, 1.0),
        Param("max_momentum", "float", 0.9, "momentum at base_lr", 0.0, 1.0),
    ),
    curve=_cyclic_curve,
    kwargs=lambda p: {
        "base_lr": p["base_lr"],
        "max_lr": p["max_lr"],
        "step_size_up": p["step_size_up"],
        "step_size_down": p["step_size_down"],
        "mode": p["mode"],
        "gamma": p["gamma"],
        "cycle_momentum": p["cycle_momentum"],
        "base_momentum": p["base_momentum"],
        "max_momentum": p["max_momentum"],
    },
    derive=_cyclic_derive,
    fill_lr=_cyclic_fill_lr,
    check=_cyclic_check,
    own_warmup="it starts at base_lr and ramps up by itself",
    lr_params=("base_lr", "max_lr"),
)

# --- linear / polynomial --------------------------------------------------------------------


def _linear_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    start, end, n = p["start_factor"], p["end_factor"], p["total_iters"]
    return base * (start + (end - start) * min(n, t) / n)


def _total_iters_derive(p: dict[str, Any], length: int) -> None:
    if p["total_iters"] is None:
        p["total_iters"] = length


LINEAR = ScheduleInfo(
    name="linear",
    description="linear from start_factor x LR to end_factor x LR over total_iters (LinearLR)",
    torch_class="LinearLR",
    params=(
        Param("start_factor", "float", 1.0, "LR multiplier at the start", 0.0, 1.0, True),
        Param("end_factor", "float", 0.0, "LR multiplier at the end", 0.0, 1.0),
        _length_param("total_iters", "units to go from start to end"),
    ),
    curve=_linear_curve,
    kwargs=lambda p: {
        "start_factor": p["start_factor"],
        "end_factor": p["end_factor"],
        "total_iters": p["total_iters"],
    },
    derive=_total_iters_derive,
)


def _polynomial_curve(p: Mapping[str, Any], t: int, base: float) -> float:
    n = p["total_iters"]
    return base * (1.0 - min(n, t) / n) ** p["power"]


POLYNOMIAL = ScheduleInfo(
    name="polynomial",
    description="LR x (1 - t/total_iters)**power, reaching 0 at total_iters (PolynomialLR)",
    torch_class="PolynomialLR",
    params=(
        _length_param("total_iters", "units until the LR reaches 0"),
        Param("power", "float", 1.0, "polynomial power (1 = linear)", 0.0, low_open=True),
    ),
    curve=_polynomial_curve,
    kwargs=lambda p: {"total_iters": p["total_iters"], "power": p["power"]},
    derive=_total_iters_derive,
)

# --- LambdaLR-based: inverse square root, warmup-stable-decay --------------------------------


@dataclass(frozen=True)
class InverseSqrtFactor:
    """Transformer schedule (Vaswani et al. 2017), peak 1.0 at step warmup_iters."""

    warmup_iters: int

    def __call__(self, t: int) -> float:
        s = t + 1
        return min(s / self.warmup_iters, math.sqrt(self.warmup_iters / s))


def _inverse_sqrt_derive(p: dict[str, Any], length: int) -> None:
    if p["warmup_iters"] is None:
        p["warmup_iters"] = max(1, round(0.05 * length))


def _inverse_sqrt_code(p: Mapping[str, Any]) -> str:
    w = p["warmup_iters"]
    return (
        "def lr_factor(step: int) -> float:\n"
        f'    """Inverse square root: linear warmup to 1.0 at step {w}, then sqrt({w} / step)."""\n'
        "    s = step + 1\n"
        f"    return min(s / {w}, math.sqrt({w} / s))\n"
    )


INVERSE_SQRT = ScheduleInfo(
    name="inverse_sqrt",
    description="transformer schedule: linear warmup, then LR x sqrt(warmup/step) (LambdaLR)",
    torch_class="LambdaLR",
    default_interval="step",
    params=(
        Param(
            "warmup_iters",
            "int",
            DERIVED,
            "units of linear warmup up to the LR",
            1,
            derived="5% of the run",
            unit=True,
        ),
    ),
    curve=lambda p, t, base: base * InverseSqrtFactor(p["warmup_iters"])(t),
    factor=lambda p: InverseSqrtFactor(p["warmup_iters"]),
    factor_code=_inverse_sqrt_code,
    derive=_inverse_sqrt_derive,
    phases=lambda p: [("warmup", 0, p["warmup_iters"])],
    own_warmup="it warms up by itself (warmup_iters)",
)

WSD_SHAPES = ("linear", "cosine", "sqrt")


@dataclass(frozen=True)
class WSDFactor:
    """Warmup-stable-decay multiplier (Hu et al. 2024; Hägele et al. 2024 for 'sqrt')."""

    warmup: int
    decay_start: int
    total: int
    start_factor: float
    end_factor: float
    shape: str

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return self.start_factor + (1.0 - self.start_factor) * t / self.warmup
        if t < self.decay_start:
            return 1.0
        progress = min(1.0, (t - self.decay_start) / (self.total - self.decay_start))
        if self.shape == "linear":
            left = 1.0 - progress
        elif self.shape == "cosine":
            left = (1 + math.cos(math.pi * progress)) / 2
        else:
            left = 1.0 - math.sqrt(progress)
        return self.end_factor + (1.0 - self.end_factor) * left


def _wsd_factor(p: Mapping[str, Any]) -> WSDFactor:
    total = p["total_iters"]
    warmup = round(p["warmup_pct"] * total)
    decay = round(p["decay_pct"] * total)
    return WSDFactor(
        warmup, total - decay, total, p["start_factor"], p["end_factor"], p["decay_shape"]
    )


_WSD_LEFT = {
    "linear": "1.0 - progress",
    "cosine": "(1 + math.cos(math.pi * progress)) / 2",
    "sqrt": "1.0 - math.sqrt(progress)",
}


def _wsd_code(p: Mapping[str, Any]) -> str:
    f = _wsd_factor(p)
    s0, e = fmt_number(f.start_factor), fmt_number(f.end_factor)
    lines = [
        "def lr_factor(step: int) -> float:",
        f'    """Warmup-stable-decay: warmup {f.warmup}, stable until {f.decay_start}, '
        f'{f.shape} decay until {f.total}."""',
    ]
    if f.warmup > 0:
        lines += [
            f"    if step < {f.warmup}:  # warmup",
            f"        return {s0} + (1.0 - {s0}) * step / {f.warmup}",
        ]
    lines += [
        f"    if step < {f.decay_start}:  # stable",
        "        return 1.0",
        f"    progress = min(1.0, (step - {f.decay_start}) / ({f.total} - {f.decay_start}))",
    ]
    if f.end_factor == 0.0:  # end + (1 - end) * left is exactly left
        lines.append(f"    return {_WSD_LEFT[f.shape]}")
    else:
        lines += [f"    left = {_WSD_LEFT[f.shape]}", f"    return {e} + (1.0 - {e}) * left"]
    return "\n".join(lines) + "\n"


def _wsd_check(p: Mapping[str, Any], where: str) -> None:
    if p["warmup_pct"] + p["decay_pct"] > 1:
        raise ConfigError(
            f"{where}: warmup_pct + decay_pct must be <= 1, got {p['warmup_pct']!r} + "
            f"{p['decay_pct']!r}"
        )


def _wsd_derive(p: dict[str, Any], length: int) -> None:
    _total_iters_derive(p, length)
    if round(p["decay_pct"] * p["total_iters"]) < 1:
        raise ConfigError(
            f"schedule 'wsd': decay_pct {p['decay_pct']!r} of {p['total_iters']} units is no "
            "decay at all (raise decay_pct or use interval: step)"
        )


def _wsd_phases(p: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    f = _wsd_factor(p)
    out = [("warmup", 0, f.warmup)] if f.warmup else []
    return [*out, ("stable", f.warmup, f.decay_start), (f"{f.shape} decay", f.decay_start, f.total)]


WSD = ScheduleInfo(
    name="wsd",
    description="warmup-stable-decay: warmup, a long constant phase, a short final decay",
    torch_class="LambdaLR",
    default_interval="step",
    params=(
        _length_param("total_iters", "units the warmup/stable/decay fractions divide"),
        Param(
            "warmup_pct", "float", 0.05, "fraction of the run warming up", 0.0, 1.0, high_open=True
        ),
        Param(
            "decay_pct",
            "float",
            0.2,
            "fraction of the run decaying at the end",
            0.0,
            1.0,
            low_open=True,
        ),
        Param("decay_shape", "choice", "linear", "shape of the decay", choices=WSD_SHAPES),
        Param("start_factor", "float", 0.01, "LR multiplier at the first step", 0.0, 1.0),
        Param("end_factor", "float", 0.0, "LR multiplier at the end of the decay", 0.0, 1.0),
    ),
    curve=lambda p, t, base: base * _wsd_factor(p)(t),
    factor=_wsd_factor,
    factor_code=_wsd_code,
    derive=_wsd_derive,
    check=_wsd_check,
    phases=_wsd_phases,
    own_warmup="it has its own warmup (warmup_pct)",
)

# --- ReduceLROnPlateau ----------------------------------------------------------------------

PLATEAU = ScheduleInfo(
    name="plateau",
    description="cut the LR by factor when the val loss stops improving (ReduceLROnPlateau)",
    torch_class="ReduceLROnPlateau",
    params=(
        Param("factor", "float", 0.1, "multiply the LR by this on a plateau", 0.0, 1.0, True, True),
        Param("patience", "int", 10, "epochs without improvement before a cut", 0),
        Param("threshold", "float", 1e-4, "smallest change that counts as improvement", 0.0),
        Param(
            "threshold_mode",
            "choice",
            "rel",
            "threshold relative or absolute",
            choices=("rel", "abs"),
        ),
        Param("cooldown", "int", 0, "epochs to wait after a cut", 0),
        Param("min_lr", "float", 0.0, "never cut below this LR", 0.0),
    ),
    # The curve depends on the validation loss; lr_curve assumes it keeps improving.
    curve=_constant_curve,
    kwargs=lambda p: {
        "mode": "min",
        "factor": p["factor"],
        "patience": p["patience"],
        "threshold": p["threshold"],
        "threshold_mode": p["threshold_mode"],
        "cooldown": p["cooldown"],
        "min_lr": p["min_lr"],
    },
    epoch_only="it is stepped once per epoch with the validation loss",
    needs_metric=True,
)

REGISTRY: dict[str, ScheduleInfo] = {
    info.name: info
    for info in (
        CONSTANT,
        STEP,
        MULTISTEP,
        EXPONENTIAL,
        COSINE,
        COSINE_WARM_RESTARTS,
        ONECYCLE,
        CYCLIC,
        LINEAR,
        POLYNOMIAL,
        INVERSE_SQRT,
        WSD,
        PLATEAU,
    )
}
