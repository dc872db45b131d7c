"""The one training loop that `search`, `check` and `doctor` share.

`train()` runs a seeded, plain training loop over a task's loaders with an optional
schedule (stepped per batch and per epoch through `lrtune.schedules.attach`), and
returns a `TrainResult`. It never raises for the things a trial can do wrong:

- a NaN/inf loss, or a loss above `DIVERGENCE_FACTOR` x the initial loss -> 'diverged'
- an exception raised by the user's task code (model, data, loss)          -> 'failed'
- `on_epoch(record)` or `on_step(step, loss)` returning True                -> 'pruned'

Bad configuration (`ConfigError`: an unknown schedule or optimizer name) and
KeyboardInterrupt still propagate: those are the caller's to report. Exceptions raised
inside the caller's own callbacks propagate too, unchanged.

The decisions that must agree across processes when this loop is later distributed
(which loss is checked for divergence, when it is checked, when to stop) live in
`_Divergence` and the loop below, once.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lrtune.errors import ConfigError, LrtuneError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lrtune.config import RunConfig
    from lrtune.task import Task

STATUSES = ("complete", "diverged", "failed", "pruned")
# A loss this many times the first step's loss counts as divergence.
DIVERGENCE_FACTOR = 1e3
# On accelerators the loss is read back (a device sync) only every this many steps.
DEVICE_CHECK_EVERY = 25


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch produced.

    Attributes:
        epoch: 1-based epoch number.
        step: optimizer steps done so far (at the end of this epoch).
        lr: learning rate of the epoch's last optimizer step (first param group).
        train_loss: mean training loss over the epoch's steps.
        val_loss: mean validation loss after the epoch, or None without val data.
        val_metric: validation metric (accuracy by default), or None.
        seconds: wall time of the epoch, evaluation included.
    """

    epoch: int
    step: int
    lr: float
    train_loss: float
    val_loss: float | None
    val_metric: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON/CSV)."""
        return asdict(self)


@dataclass
class TrainResult:
    """The outcome of one `train()` call.

    Attributes:
        status: 'complete', 'diverged', 'failed' or 'pruned'.
        epochs: one record per epoch run (a diverged/failed epoch may be missing).
        step_losses: the training loss of every optimizer step, in order.
        error: a one-line reason when status is not 'complete' (None otherwise).
        steps: optimizer steps done.
        seconds: total wall time.
        initial_loss: the first step's training loss (before any update), or None.
    """

    status: str
    epochs: list[EpochRecord] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    error: str | None = None
    steps: int = 0
    seconds: float = 0.0
    initial_loss: float | None = None

    @property
    def ok(self) -> bool:
        """True when the run completed."""
        return self.status == "complete"

    @property
    def final(self) -> EpochRecord | None:
        """The last epoch's record, or None."""
        return self.epochs[-1] if self.epochs else None

    def values(self, metric: str) -> list[float | None]:
        """One value per epoch of 'train_loss', 'val_loss' or 'val_metric'."""
        if metric not in ("train_loss", "val_loss", "val_metric"):
            raise ValueError(f"unknown metric {metric!r}")
        return [getattr(r, metric) for r in self.epochs]

    def best(self, metric: str, mode: str = "min") -> float | None:
        """Best finite value of a per-epoch metric ('min' or 'max'), or None."""
        vals = [v for v in self.values(metric) if v is not None and math.isfinite(v)]
        if not vals:
            return None
        return min(vals) if mode == "min" else max(vals)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return {
            "status": self.status,
            "error": self.error,
            "steps": self.steps,
            "seconds": self.seconds,
            "initial_loss": self.initial_loss,
            "epochs": [r.to_dict() for r in self.epochs],
            "step_losses": list(self.step_losses),
        }


class _Diverged(Exception):
    """Internal: the loss went NaN/inf or blew up."""


class _CallbackError(Exception):
    """Internal: carries an exception raised by a caller's callback out of the loop."""


class _ConstantStepper:
    """Stands in for a schedule stepper when no schedule is given."""

    def step_batch(self) -> None:
        """No-op."""

    def step_epoch(self, val_loss: float | None = None) -> None:
        """No-op."""


@dataclass
class _Divergence:
    """Decides divergence, once for the whole loop: NaN/inf, or > factor x initial."""

    factor: float = DIVERGENCE_FACTOR
    initial: float | None = None

    def check(self, losses: list[float]) -> None:
        for value in losses:
            if self.initial is None:
                if not math.isfinite(value):
                    raise _Diverged(f"loss is {value} at the first step")
                self.initial = value
                continue
            if not math.isfinite(value):
                raise _Diverged(f"loss became {value}")
            limit = self.factor * max(abs(self.initial), 1e-8)
            if value > limit:
                raise _Diverged(
                    f"loss {value:.4g} exceeded {self.factor:g} x the initial loss "
                    f"{self.initial:.4g}"
                )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if isinstance(exc, LrtuneError):
        return msg or type(exc).__name__
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _call(cb: Callable[..., Any], *args: Any) -> bool:
    try:
        return bool(cb(*args))
    except Exception as exc:
        raise _CallbackError() from exc


def _steps_per_epoch(loader: Any, max_steps: int | None, epochs: int) -> int:
    try:
        return max(1, len(loader))
    except TypeError:
        if max_steps is None:
            raise LrtuneError(
                "the training data has no length (an IterableDataset): set max_steps"
            ) from None
        return max(1, math.ceil(max_steps / epochs))


def train(
    task: Task,
    *,
    lr: float,
    schedule: Mapping[str, Any] | None = None,
    epochs: int,
    optimizer: str = "sgd",
    optimizer_params: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    max_steps: int | None = None,
    deterministic: bool = False,
    on_epoch: Callable[[EpochRecord], bool | None] | None = None,
    on_step: Callable[[int, float], bool | None] | None = None,
) -> TrainResult:
    """Train a fresh model from the task file and return what happened.

    Args:
        task: the loaded task file.
        lr: base learning rate (the schedule scales from it).
        schedule: a schedule spec (see lrtune.schedules), or None for a constant LR.
        epochs: number of passes over the training data.
        optimizer: registry name (ignored when the task file defines optimizer()).
        optimizer_params: extra keyword arguments for the optimizer.
        batch_size: overrides the task's batch size (when train_data() is a Dataset).
        seed: seeds Python, NumPy and torch before the model and the loader are built.
        device: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device.
        max_steps: cap on the total number of optimizer steps (the last epoch is then
            partial); the schedule is laid out over the epochs actually reached.
        deterministic: turn on torch.use_deterministic_algorithms (warn_only) for the run.
        on_epoch: called with each EpochRecord; returning True stops the run as 'pruned'.
        on_step: called as on_step(step, loss) after every optimizer step (it costs a
            device sync per step); returning True stops the run as 'pruned'.

    Returns:
        A TrainResult (status 'complete', 'diverged', 'failed' or 'pruned').

    Raises:
        ConfigError: an invalid schedule spec or optimizer name.
        LrtuneError: an unavailable device.
    """
    import torch

    from lrtune.runtime import resolve_device, seed_everything, to_device

    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs!r}")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps!r}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    result = TrainResult(status="complete")
    start = time.perf_counter()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    # CPU reads are free, so check every step there; on accelerators sync rarely.
    check_every = 1 if dev.type == "cpu" else DEVICE_CHECK_EVERY
    divergence = _Divergence()
    try:
        seed_everything(seed)
        model = task.build_model().to(dev)
        loader = task.train_loader(batch_size=batch_size)
        val_loader = task.val_loader(batch_size=batch_size) if task.has_val else None
        spe = _steps_per_epoch(loader, max_steps, epochs)
        planned_epochs = epochs
        if max_steps is not None:
            planned_epochs = min(epochs, math.ceil(max_steps / spe))
        opt = task.build_optimizer(
            model.parameters(), float(lr), optimizer, **dict(optimizer_params or {})
        )
        stepper: Any = _ConstantStepper()
        if schedule is not None:
            from lrtune import schedules

            stepper = schedules.attach(schedule, opt, spe, planned_epochs)

        model.train()
        for epoch in range(1, planned_epochs + 1):
            t0 = time.perf_counter()
            pending: list[torch.Tensor] = []  # losses not yet read back and checked
            first = len(result.step_losses)
            last_lr = float(opt.param_groups[0]["lr"])
            n_epoch = 0
            for batch in loader:
                if max_steps is not None and result.steps >= max_steps:
                    break
                batch = to_device(batch, dev)
                opt.zero_grad(set_to_none=True)
                loss = task.loss(model, batch)
                detached = loss.detach()
                if result.steps == 0:  # read the first loss at once: it is the reference
                    result.step_losses.append(float(detached))
                    divergence.check(result.step_losses[-1:])
                    result.initial_loss = divergence.initial
                else:
                    pending.append(detached)
                loss.backward()
                last_lr = float(opt.param_groups[0]["lr"])
                opt.step()
                stepper.step_batch()
                result.steps += 1
                n_epoch += 1
                if on_step is not None:
                    value = float(detached)
                    if not math.isfinite(value):
                        _flush(pending, result.step_losses, divergence)  # raises _Diverged
                    if _call(on_step, result.steps, value):
                        _flush(pending, result.step_losses, divergence)
                        result.status, result.error = "pruned", f"pruned at step {result.steps}"
                        break
                if len(pending) >= check_every:
                    _flush(pending, result.step_losses, divergence)
            _flush(pending, result.step_losses, divergence)
            if n_epoch == 0:
                break
            if result.status == "pruned":
                break
            epoch_losses = result.step_losses[first:]
            train_loss = math.fsum(epoch_losses) / len(epoch_losses)
            val_loss = val_metric = None
            if val_loader is not None:
                val_loss, val_metric = task.evaluate(model, val_loader, dev)
                if not math.isfinite(val_loss):
                    raise _Diverged(f"validation loss became {val_loss}")
            model.train()
            # Plateau schedules watch the val loss, or the train loss without val data.
            stepper.step_epoch(val_loss if val_loss is not None else train_loss)
            record = EpochRecord(
                epoch=epoch,
                step=result.steps,
                lr=last_lr,
                train_loss=train_loss,
                val_loss=val_loss,
                val_metric=val_metric,
                seconds=time.perf_counter() - t0,
            )
            result.epochs.append(record)
            if on_epoch is not None and _call(on_epoch, record):
                result.status, result.error = "pruned", f"pruned after epoch {epoch}"
                break
    except _CallbackError as exc:
        assert exc.__cause__ is not None
        raise exc.__cause__ from None
    except _Diverged as exc:
        result.status, result.error = "diverged", str(exc)
    except ConfigError:
        raise
    except Exception as exc:
        result.status, result.error = "failed", _one_line(exc)
    finally:
        if deterministic:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        result.seconds = time.perf_counter() - start
    return result


def _flush(pending: list[Any], into: list[float], divergence: _Divergence) -> None:
    """Read pending device losses back (one sync), check them, append them."""
    if not pending:
        return
    import torch

    values = torch.stack(pending).float().cpu().tolist()
    pending.clear()
    into.extend(values)
    divergence.check(values)


def resolve_lr(cfg: RunConfig, task: Task) -> float:
    """The base LR of a run config: the number, or the range test's headline LR for 'auto'.

    Raises:
        ConfigError: `lr` is a search range (only `lrtune search` accepts one).
        RunFailed: 'auto' and the range test found no usable learning rate.
    """
    from lrtune.errors import RunFailed

    if isinstance(cfg.lr, (int, float)) and not isinstance(cfg.lr, bool):
        return float(cfg.lr)
    if cfg.lr != "auto":
        raise ConfigError(
            f"{cfg.source}: 'lr' must be a number or 'auto' here, got {cfg.lr!r} "
            "(search ranges are for lrtune search)"
        )
    from lrtune.rangetest import find_lr

    found = find_lr(
        task,
        optimizer=cfg.optimizer.name,
        optimizer_params=dict(cfg.optimizer.params),
        batch_size=cfg.batch_size,
        device=cfg.device,
        seed=cfg.seed,
    )
    if found.lr is None or not math.isfinite(found.lr) or found.lr <= 0:
        raise RunFailed(f"{cfg.source}: lr: auto, but the range test found no usable learning rate")
    return float(found.lr)
