"""The torch edge: a spec becomes a real `torch.optim.lr_scheduler` object and a `Stepper`
that the training loop drives. torch is imported here, inside the functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrtune.errors import ConfigError
from lrtune.schedules.spec import Plan, plan


def _group_base_lrs(optimizer: Any) -> list[float]:
    # torch takes a group's base LR from 'initial_lr' once a scheduler has set it.
    return [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]


def _main_kwargs(p: Plan, base_lrs: list[float]) -> dict[str, Any]:
    """torch kwargs; LR parameters become per-group lists when the groups' LRs differ."""
    assert p.info.kwargs is not None
    filled = [p.lr_params(b) for b in base_lrs]
    kwargs = p.info.kwargs(filled[0])
    for name in p.info.lr_params:
        values = [f[name] for f in filled]
        if len(set(values)) > 1:
            kwargs[name] = values
    return kwargs


def _make_main(p: Plan, optimizer: Any) -> Any:
    from torch.optim import lr_scheduler

    if p.info.factor is not None:
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=p.info.factor(p.params))
    cls = getattr(lr_scheduler, p.info.torch_class)
    try:
        return cls(optimizer, **_main_kwargs(p, _group_base_lrs(optimizer)))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"schedule '{p.info.name}': {exc}") from None


class WarmupThenPlateau:
    """LinearLR for the first `warmup_epochs` epochs, then ReduceLROnPlateau.

    torch's SequentialLR refuses ReduceLROnPlateau (its step needs the metric), so this
    holds both torch objects and steps the right one; `step(val_loss)` once per epoch.
    """

    def __init__(self, warmup: Any, plateau: Any, warmup_epochs: int) -> None:
        self.warmup = warmup
        self.plateau = plateau
        self.warmup_epochs = warmup_epochs
        self.optimizer = plateau.optimizer
        self.epoch = 0

    def step(self, metrics: float | None = None) -> None:
        """Advance one epoch: the warmup while it lasts, then the plateau logic."""
        if self.epoch < self.warmup_epochs:
            self.warmup.step()
        elif metrics is not None:
            self.plateau.step(metrics)
        self.epoch += 1

    def get_last_lr(self) -> list[float]:
        """The current LR of every parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Both schedulers' states and the epoch count."""
        return {
            "epoch": self.epoch,
            "warmup": self.warmup.state_dict(),
            "plateau": self.plateau.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.epoch = int(state["epoch"])
        self.warmup.load_state_dict(state["warmup"])
        self.plateau.load_state_dict(state["plateau"])


def _build(p: Plan, optimizer: Any) -> Any:
    from torch.optim import lr_scheduler

    if not p.warmup_units:
        return _make_main(p, optimizer)
    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=p.warmup_start, end_factor=1.0, total_iters=p.warmup_units
    )
    main = _make_main(p, optimizer)
    if p.info.needs_metric:
        return WarmupThenPlateau(warmup, main, p.warmup_units)
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[p.warmup_units])


def build(spec: Mapping[str, Any] | str, optimizer: Any, steps_per_epoch: int, epochs: int) -> Any:
    """A torch LR scheduler for `spec` on `optimizer` (its LR is the base LR).

    torch's own classes where they exist (SequentialLR + LinearLR for a warmup, LambdaLR
    for inverse_sqrt and wsd). Step it once per `interval` (see `attach`); for plateau,
    with the validation loss. Its LRs equal `lr_curve(spec, lr, steps_per_epoch, epochs)`.

    Raises:
        ConfigError: an invalid spec or run, or an optimizer the schedule cannot drive
            (one-cycle's momentum cycling on an optimizer without momentum).
    """
    return _build(plan(spec, steps_per_epoch, epochs), optimizer)


class Stepper:
    """Drives a built scheduler at the spec's interval, so the training loop need not know it.

    Call `step_batch()` after every `optimizer.step()` and `step_epoch(val_loss)` at the
    end of every epoch. For plateau, `val_loss` (or the train loss when there is no
    validation set) decides the cuts; with None the scheduler is not stepped.
    """

    def __init__(self, scheduler: Any, interval: str, needs_metric: bool = False) -> None:
        self.scheduler = scheduler
        self.interval = interval
        self.needs_metric = needs_metric

    def step_batch(self) -> None:
        """After each optimizer step: steps the scheduler when interval is 'step'."""
        if self.interval == "step":
            self.scheduler.step()

    def step_epoch(self, val_loss: float | None = None) -> None:
        """At each epoch end: steps the scheduler when interval is 'epoch'."""
        if self.interval != "epoch":
            return
        if isinstance(self.scheduler, WarmupThenPlateau):
            self.scheduler.step(val_loss)
        elif self.needs_metric:
            if val_loss is not None:
                self.scheduler.step(val_loss)
        else:
            self.scheduler.step()

    @property
    def last_lr(self) -> float:
        """The LR of the first parameter group now."""
        return float(self.scheduler.optimizer.param_groups[0]["lr"])


def attach(
    spec: Mapping[str, Any] | str, optimizer: Any, steps_per_epoch: int, epochs: int
) -> Stepper:
    """Build the scheduler for `spec` on `optimizer` and wrap it in a `Stepper`.

    Raises:
        ConfigError: as `build`.
    """
    p = plan(spec, steps_per_epoch, epochs)
    return Stepper(_build(p, optimizer), p.interval, p.info.needs_metric)
