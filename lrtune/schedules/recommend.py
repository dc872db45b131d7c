"""A recommended schedule from a range-test LR: one recipe per registry name, numbers stated.

Defaults by optimizer family: one-cycle for SGD with momentum (Smith & Topin 2019, the
fastai `fit_one_cycle` recipe), cosine with a linear warmup for Adam-family optimizers
(Loshchilov & Hutter 2017; warmup for Adam's noisy early steps, Liu et al. 2020).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrtune.errors import ConfigError, unknown_name
from lrtune.schedules.spec import check_base_lr, get_schedule, lr_curve, plan, resolve

DEFAULT_BY_FAMILY = {"sgd": "onecycle", "adam": "cosine"}
WARMUP_FRACTION = 0.05  # of the run, for Adam-family optimizers
EPOCH_INTERVAL_MIN_EPOCHS = 4  # shorter runs decay per step: per-epoch drops are too coarse


def _g(x: float) -> str:
    return f"{x:.3g}"


@dataclass(frozen=True)
class _Run:
    lr: float
    family: str
    epochs: int
    steps_per_epoch: int
    warmup_steps: int  # 0 unless the family and schedule call for one
    warmup_epochs: int  # the same for schedules stepped per epoch (0 when under an epoch)

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def main_steps(self) -> int:
        return self.steps - self.warmup_steps

    def epoch_unit(self) -> tuple[str, int, str]:
        """(interval, run length in it, unit word) for drop-style schedules."""
        if self.epochs >= EPOCH_INTERVAL_MIN_EPOCHS:
            return "epoch", self.epochs - self.warmup_epochs, "epochs"
        return "step", self.main_steps, "steps"


Recipe = Callable[[_Run], tuple[dict[str, Any], str]]


def _constant(r: _Run) -> tuple[dict[str, Any], str]:
    return {"name": "constant", "interval": "step"}, f"constant LR {_g(r.lr)} (the range-test LR)."


def _step(r: _Run) -> tuple[dict[str, Any], str]:
    interval, length, unit = r.epoch_unit()
    size = max(1, math.ceil(length / 3))
    spec = {"name": "step", "interval": interval, "step_size": size, "gamma": 0.1}
    return spec, f"LR {_g(r.lr)}, cut 10x (gamma 0.1) every {size} {unit}: a third of the run."


def _multistep(r: _Run) -> tuple[dict[str, Any], str]:
    interval, length, unit = r.epoch_unit()
    marks = sorted({m for m in (round(0.5 * length), round(0.75 * length)) if 1 <= m < length})
    if not marks:
        marks = [max(1, length // 2)]
    spec = {"name": "multistep", "interval": interval, "milestones": marks, "gamma": 0.1}
    return spec, (
        f"LR {_g(r.lr)}, cut 10x (gamma 0.1) at {unit} {', '.join(map(str, marks))}: 50% and 75% "
        "of the run, the classic ResNet/WRN recipe."
    )


def _exponential(r: _Run) -> tuple[dict[str, Any], str]:
    gamma = float(f"{0.01 ** (1 / r.main_steps):.6g}")
    spec = {"name": "exponential", "interval": "step", "gamma": gamma}
    return spec, f"LR {_g(r.lr)} x gamma {gamma} per step, so it falls 100x over the run."


def _cosine(r: _Run) -> tuple[dict[str, Any], str]:
    spec = {"name": "cosine", "interval": "step", "eta_min": 0.0}
    return spec, (
        f"cosine from {_g(r.lr)} to 0 over {r.main_steps} steps (Loshchilov & Hutter 2017)."
    )


def _restarts(r: _Run) -> tuple[dict[str, Any], str]:
    t0 = max(1, math.ceil(r.main_steps / 7))
    spec = {"name": "cosine_warm_restarts", "interval": "step", "T_0": t0, "T_mult": 2}
    return spec, (
        f"SGDR (Loshchilov & Hutter 2017): cosine cycles of {t0}, {2 * t0} and {4 * t0} steps "
        f"(T_0 {t0}, T_mult 2: three cycles fill the run), each restarting at {_g(r.lr)}."
    )


def _onecycle(r: _Run) -> tuple[dict[str, Any], str]:
    # torch needs pct_start x total_steps > 1; very short runs get a longer ramp.
    pct = 0.3 if 0.3 * r.steps > 1 else 0.5
    spec = {"name": "onecycle", "interval": "step", "max_lr": r.lr, "pct_start": pct}
    up = round(pct * r.steps)
    start = r.lr / 25
    return spec, (
        f"one-cycle (Smith & Topin 2019; fastai's fit_one_cycle recipe): the range-test LR "
        f"{_g(r.lr)} is the peak max_lr. It starts at max_lr / div_factor = {_g(r.lr)} / 25 = "
        f"{_g(start)}, rises for pct_start = {pct:.0%} of the run ({up} steps), then anneals "
        f"(cos) to {_g(start)} / final_div_factor 1e4 = {_g(start / 1e4)}; momentum cycles "
        "0.95 -> 0.85 -> 0.95."
    )


def _cyclic(r: _Run) -> tuple[dict[str, Any], str]:
    up = max(1, r.steps // 4)
    spec = {
        "name": "cyclic",
        "interval": "step",
        "base_lr": r.lr / 4,
        "max_lr": r.lr,
        "step_size_up": up,
    }
    return spec, (
        f"triangular cycles (Smith 2017) between base_lr = {_g(r.lr)} / 4 = {_g(r.lr / 4)} "
        f"and max_lr = {_g(r.lr)}, {up} steps up and {up} down: two cycles over the run."
    )


def _linear(r: _Run) -> tuple[dict[str, Any], str]:
    spec = {"name": "linear", "interval": "step", "start_factor": 1.0, "end_factor": 0.0}
    return spec, f"linear decay from {_g(r.lr)} to 0 over {r.main_steps} steps."


def _polynomial(r: _Run) -> tuple[dict[str, Any], str]:
    spec = {"name": "polynomial", "interval": "step", "power": 0.9}
    return spec, (
        f"'poly' decay (DeepLab): {_g(r.lr)} x (1 - step/{r.main_steps})**0.9, reaching 0 at "
        "the end."
    )


def _inverse_sqrt(r: _Run) -> tuple[dict[str, Any], str]:
    w = max(1, round(WARMUP_FRACTION * r.steps))
    spec = {"name": "inverse_sqrt", "interval": "step", "warmup_iters": w}
    return spec, (
        f"transformer schedule (Vaswani et al. 2017): linear warmup to {_g(r.lr)} over {w} steps "
        f"(5% of the run), then {_g(r.lr)} x sqrt({w} / step)."
    )


def _wsd(r: _Run) -> tuple[dict[str, Any], str]:
    spec = {
        "name": "wsd",
        "interval": "step",
        "warmup_pct": 0.05,
        "decay_pct": 0.2,
        "decay_shape": "linear",
    }
    return spec, (
        f"warmup-stable-decay (Hu et al. 2024): warmup over 5% of the run to {_g(r.lr)}, hold it, "
        "then decay linearly to 0 over the last 20%."
    )


def _plateau(r: _Run) -> tuple[dict[str, Any], str]:
    patience = max(1, round(0.1 * r.epochs))
    spec = {"name": "plateau", "interval": "epoch", "factor": 0.1, "patience": patience}
    return spec, (
        f"LR {_g(r.lr)}, cut 10x whenever the validation loss has not improved for "
        f"{patience + 1} epochs (patience {patience} = 10% of the run)."
    )


RECIPES: dict[str, Recipe] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "cosine": _cosine,
    "cosine_warm_restarts": _restarts,
    "onecycle": _onecycle,
    "cyclic": _cyclic,
    "linear": _linear,
    "polynomial": _polynomial,
    "inverse_sqrt": _inverse_sqrt,
    "wsd": _wsd,
    "plateau": _plateau,
}


def _family_warmup(spec: dict[str, Any], r: _Run) -> tuple[dict[str, Any], str]:
    """Adam-family: a linear warmup over ~5% of the run, in the schedule's unit."""
    if spec["interval"] == "step":
        spec = {**spec, "warmup": {"steps": r.warmup_steps, "start_factor": 0.01}}
        return spec, f"Linear warmup from 1% over the first {r.warmup_steps} steps (5%), then "
    if r.warmup_epochs < 1:
        return spec, ""
    spec = {**spec, "warmup": {"epochs": r.warmup_epochs, "start_factor": 0.01}}
    return spec, f"Linear warmup from 1% over the first {r.warmup_epochs} epochs (5%), then "


def recommend(
    lr: float, family: str, epochs: int, steps_per_epoch: int, name: str | None = None
) -> dict[str, Any]:
    """A schedule for a run of `epochs` x `steps_per_epoch` from the range-test LR `lr`.

    Args:
        lr: the headline LR of the range test (the peak of the schedule).
        family: 'sgd' (one-cycle by default) or 'adam' (cosine with warmup by default);
            see lrtune.optim.optimizer_family.
        epochs, steps_per_epoch: the training run the schedule is for.
        name: any registry name to override the family default.

    Returns:
        {'name', 'family', 'lr' (set it on the optimizer), 'spec' (resolved: every number
        explicit), 'why' (the reasoning with the numbers), 'numbers' (start/peak/final LR,
        the peak's step, warmup and total steps)}.

    Raises:
        ConfigError: unknown family or schedule name, a non-positive LR, or a bad run.
    """
    base = check_base_lr(lr)
    if family not in DEFAULT_BY_FAMILY:
        raise ConfigError(unknown_name("optimizer family", family, DEFAULT_BY_FAMILY))
    info = get_schedule(name or DEFAULT_BY_FAMILY[family])
    plan({"name": "constant"}, steps_per_epoch, epochs)  # checks the run
    steps = epochs * steps_per_epoch
    wants_warmup = family == "adam" and not info.own_warmup and not info.needs_metric
    warmup = max(1, round(WARMUP_FRACTION * steps)) if wants_warmup and steps > 1 else 0
    warmup_epochs = round(WARMUP_FRACTION * epochs) if warmup else 0
    run = _Run(base, family, epochs, steps_per_epoch, warmup, warmup_epochs)
    spec, reason = RECIPES[info.name](run)
    lead = ""
    if warmup:
        spec, lead = _family_warmup(spec, run)
    optimizer_word = "SGD-family" if family == "sgd" else "Adam-family"
    if lead:
        reason = lead + reason
    resolved = resolve(spec, steps_per_epoch, epochs, base_lr=base)
    curve = lr_curve(resolved, base, steps_per_epoch, epochs)
    peak = max(curve)
    peak_step = curve.index(peak)
    p = plan(resolved, steps_per_epoch, epochs)
    numbers = {
        "lr": base,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": steps,
        "warmup_steps": p.warmup_units * p.unit_steps,
        "start_lr": curve[0],
        "peak_lr": peak,
        "peak_step": peak_step,
        "final_lr": curve[-1],
    }
    default = " (the default for this family)" if name is None else ""
    why = (
        f"{optimizer_word} optimizer, schedule '{info.name}'{default}: {reason} "
        f"Over {epochs} epochs x {steps_per_epoch} steps = {steps} steps the LR starts at "
        f"{_g(curve[0])}, peaks at {_g(peak)} (step {peak_step}) and ends at {_g(curve[-1])}."
    )
    return {
        "name": info.name,
        "family": family,
        "lr": base,
        "spec": resolved,
        "why": why,
        "numbers": numbers,
    }
