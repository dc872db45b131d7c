"""Render a spec as a PyTorch snippet that reproduces `lr_curve` when pasted into a script."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrtune.errors import ConfigError
from lrtune.schedules.base import fmt_number
from lrtune.schedules.spec import Plan, check_base_lr, plan

# Things a user must know about a torch class beyond where to call step().
NOTES = {
    "onecycle": (
        "OneCycleLR sets the optimizer's LR itself (max_lr / div_factor at the start) and,\n"
        "# with cycle_momentum, cycles momentum (or Adam's beta1) too. Step it exactly\n"
        "# total_steps times: one more raises a ValueError."
    ),
    "cyclic": (
        "CyclicLR sets the optimizer's LR itself (starting at base_lr) and, with\n"
        "# cycle_momentum, cycles momentum (or Adam's beta1) too."
    ),
    "plateau": (
        "ReduceLROnPlateau cuts the LR when the validation loss stops improving, so the\n"
        "# curve depends on your run; lrtune plots it as if the loss kept improving."
    ),
}


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return fmt_number(value)


def _call(cls: str, optimizer_var: str, kwargs: Mapping[str, Any]) -> str:
    args = ", ".join([optimizer_var, *(f"{k}={_literal(v)}" for k, v in kwargs.items())])
    line = f"{cls}({args})"
    if len(line) <= 80:
        return line
    inner = "".join(f"    {k}={_literal(v)},\n" for k, v in kwargs.items())
    return f"{cls}(\n    {optimizer_var},\n{inner})"


def _main_code(p: Plan, base_lr: float, optimizer_var: str) -> tuple[str, str]:
    """(function definitions, constructor expression) of the main schedule."""
    if p.info.factor_code is not None:
        return p.info.factor_code(p.params), f"LambdaLR({optimizer_var}, lr_lambda=lr_factor)"
    assert p.info.kwargs is not None
    return "", _call(p.info.torch_class, optimizer_var, p.info.kwargs(p.lr_params(base_lr)))


def _stepping(p: Plan) -> list[str]:
    if p.info.needs_metric and p.warmup_units:
        return [
            "# At the end of each epoch (epoch = 0, 1, ...), with its validation loss:",
            "#     if epoch < warmup_epochs:",
            "#         warmup_scheduler.step()",
            "#     else:",
            "#         scheduler.step(val_loss)",
        ]
    if p.info.needs_metric:
        return [
            "# At the end of each epoch, with its validation loss:",
            "#     scheduler.step(val_loss)",
        ]
    if p.interval == "step":
        return [
            "# In the training loop, right after every optimizer.step():",
            "#     scheduler.step()",
        ]
    return [
        "# Once per epoch, after the epoch's last optimizer.step() (not after every batch):",
        "#     scheduler.step()",
    ]


def to_python(
    spec: Mapping[str, Any] | str,
    base_lr: float,
    steps_per_epoch: int,
    epochs: int,
    optimizer_var: str = "optimizer",
) -> str:
    """A snippet that, pasted after the optimizer is created (with lr=base_lr), reproduces
    `lr_curve(spec, base_lr, steps_per_epoch, epochs)` with torch's classes.

    Raises:
        ConfigError: an invalid spec or run, or `optimizer_var` not an identifier.
    """
    if not optimizer_var.isidentifier():
        raise ConfigError(f"optimizer variable must be a Python name, got {optimizer_var!r}")
    base = check_base_lr(base_lr)
    p = plan(spec, steps_per_epoch, epochs)
    defs, main = _main_code(p, base, optimizer_var)
    classes = {"LambdaLR" if defs else p.info.torch_class}
    unit = p.unit_name
    body: list[str] = []
    if p.warmup_units and p.info.needs_metric:
        classes.add("LinearLR")
        body += [
            f"warmup_epochs = {p.warmup_units}",
            f"warmup_scheduler = LinearLR({optimizer_var}, start_factor="
            f"{fmt_number(p.warmup_start)}, end_factor=1.0, total_iters=warmup_epochs)",
            f"scheduler = {main}",
        ]
    elif p.warmup_units:
        classes |= {"LinearLR", "SequentialLR"}
        body += [
            f"# Linear warmup for {p.warmup_units} {unit}, then {p.info.name}.",
            f"warmup_scheduler = LinearLR({optimizer_var}, start_factor="
            f"{fmt_number(p.warmup_start)}, end_factor=1.0, total_iters={p.warmup_units})",
            f"main_scheduler = {main}",
            "scheduler = SequentialLR(",
            f"    {optimizer_var},",
            "    schedulers=[warmup_scheduler, main_scheduler],",
            f"    milestones=[{p.warmup_units}],",
            ")",
        ]
    else:
        body.append(f"scheduler = {main}")
    when = "after every optimizer step" if p.interval == "step" else "once per epoch"
    header = [
        f"# lrtune schedule `{p.info.name}`: {p.info.description}.",
        f"# Made for lr={fmt_number(base)} and {p.epochs} epochs x {p.steps_per_epoch} steps"
        f" = {p.total_steps} optimizer steps.",
        f"# Paste after `{optimizer_var} = torch.optim.<Optimizer>(..., lr={fmt_number(base)})`;",
        f"# the scheduler steps {when}.",
    ]
    if defs:
        header.append(f"# lr_factor(n) is the multiplier on lr after n scheduler steps ({unit}).")
    if p.info.name in NOTES:
        header.append(f"# {NOTES[p.info.name]}")
    imports = []
    if "math." in defs:
        imports.append("import math\n")
    imports.append(f"from torch.optim.lr_scheduler import {', '.join(sorted(classes))}\n")
    parts = ["\n".join(header), "\n".join(imports).rstrip("\n")]
    if defs:
        parts.append("\n" + defs.rstrip("\n") + "\n")  # two blank lines around a def
    parts.append("\n".join(body))
    parts.append("\n".join(_stepping(p)))
    return "\n\n".join(parts) + "\n"
