"""Load the user's task file (DESIGN.md "The task file") into a `Task`, loudly.

A task file is plain Python. Only `model()` and `train_data()` are required; the
rest (`val_data`, `loss_fn`, `optimizer`, `metric`, `step`, `batch_size`) have
defaults here, once.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from lrtune.errors import TaskError
from lrtune.optim import get_optimizer, override_hyperparams
from lrtune.runtime import to_device

DEFAULT_BATCH_SIZE = 64
REQUIRED = ("model", "train_data")
OPTIONAL_CALLABLES = ("val_data", "loss_fn", "optimizer", "metric", "step")


def _is_int_target(target: Any) -> bool:
    return isinstance(target, torch.Tensor) and not (
        target.is_floating_point() or target.is_complex()
    )


def default_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer targets, MSE for float targets."""
    if _is_int_target(target):
        return nn.functional.cross_entropy(output, target)
    if output.shape != target.shape and output.numel() == target.numel():
        target = target.reshape(output.shape)
    return nn.functional.mse_loss(output, target.to(output.dtype))


def default_metric(output: torch.Tensor, target: torch.Tensor) -> float | None:
    """Accuracy for integer targets; None (no metric) for regression."""
    if not _is_int_target(target) or output.dim() < 2:
        return None
    return float((output.argmax(dim=1) == target).float().mean())


def split_batch(batch: Any) -> tuple[Any, Any]:
    """(inputs, target) from an (x, y) batch, or raise a TaskError asking for `step`."""
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TaskError(
        f"batches are {type(batch).__name__}, not (input, target) pairs: "
        "define step(model, batch) in the task file to compute the loss"
    )


@dataclass(frozen=True)
class Task:
    """A loaded task file. Build fresh objects from it with the methods below."""

    path: Path
    module: ModuleType
    batch_size: int

    # -- what the file defines ----------------------------------------------
    def _fn(self, name: str) -> Callable[..., Any] | None:
        fn = getattr(self.module, name, None)
        return fn if callable(fn) else None

    @property
    def has_val(self) -> bool:
        """True when the file defines val_data()."""
        return self._fn("val_data") is not None

    @property
    def has_custom_optimizer(self) -> bool:
        """True when the file defines optimizer(params, lr)."""
        return self._fn("optimizer") is not None

    @property
    def has_custom_step(self) -> bool:
        """True when the file defines step(model, batch)."""
        return self._fn("step") is not None

    @property
    def name(self) -> str:
        """The task's short name (file stem)."""
        return self.path.stem

    def _call(self, name: str, *args: Any) -> Any:
        fn = self._fn(name)
        assert fn is not None
        try:
            return fn(*args)
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(
                f"{self.path}: {name}() raised {type(exc).__name__}: {exc}",
            ) from exc

    # -- builders -----------------------------------------------------------
    def build_model(self) -> nn.Module:
        """Call model() and check it returns an nn.Module."""
        model = self._call("model")
        if not isinstance(model, nn.Module):
            raise TaskError(
                f"{self.path}: model() must return a torch.nn.Module, got {type(model).__name__}"
            )
        return model

    def _loader(self, name: str, data: Any, batch_size: int | None, shuffle: bool) -> DataLoader:
        if isinstance(data, DataLoader):
            loader = data
        elif isinstance(data, Dataset):
            if hasattr(data, "__len__") and len(data) == 0:
                raise TaskError(f"{self.path}: {name}() is empty (0 examples)")
            bs = int(batch_size or self.batch_size)
            is_iterable = isinstance(data, IterableDataset)
            loader = DataLoader(data, batch_size=bs, shuffle=shuffle and not is_iterable)
        else:
            raise TaskError(
                f"{self.path}: {name}() must return a torch Dataset or DataLoader, "
                f"got {type(data).__name__}"
            )
        try:
            n = len(loader)
        except TypeError:
            n = None  # iterable dataset: emptiness is found when iterated
        if n == 0:
            raise TaskError(f"{self.path}: {name}() is empty (0 batches)")
        return loader

    def train_loader(self, batch_size: int | None = None, shuffle: bool = True) -> DataLoader:
        """A DataLoader over train_data() (shuffled when the file returns a Dataset)."""
        return self._loader("train_data", self._call("train_data"), batch_size, shuffle)

    def val_loader(self, batch_size: int | None = None) -> DataLoader | None:
        """A DataLoader over val_data(), or None when the file has none."""
        if not self.has_val:
            return None
        return self._loader("val_data", self._call("val_data"), batch_size, False)

    def build_optimizer(
        self, params: Any, lr: float, name: str = "sgd", **kwargs: Any
    ) -> torch.optim.Optimizer:
        """The file's optimizer(params, lr) if defined, else the registry's `name`.

        With the file's optimizer, `kwargs` (weight_decay, momentum, ...) override the
        hyper-parameters of its param groups, so sweeps and configs still apply.
        """
        if self._fn("optimizer") is not None:
            opt = self._call("optimizer", params, lr)
            if not isinstance(opt, torch.optim.Optimizer):
                raise TaskError(
                    f"{self.path}: optimizer() must return a torch.optim.Optimizer, "
                    f"got {type(opt).__name__}"
                )
            override_hyperparams(opt, kwargs)
            return opt
        return get_optimizer(name).build(params, lr, **kwargs)

    # -- per batch ----------------------------------------------------------
    def step_outputs(self, model: nn.Module, batch: Any) -> tuple[Any, Any, Any]:
        """(loss, output, target) of one batch; output/target are None when step() returns
        only the loss. step() may return `loss` or `(loss, output, target)`; the second form
        lets lrtune compute metric(output, target) on dict batches and custom models."""
        step = self._fn("step")
        if step is not None:
            got = step(model, batch)
            if isinstance(got, (tuple, list)) and len(got) == 3:
                return got[0], got[1], got[2]
            return got, None, None
        x, y = split_batch(batch)
        out = model(x)
        return self.loss_of(out, y), out, y

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The training loss on one batch: step(model, batch) or loss_fn(model(x), y)."""
        step = self._fn("step")
        if step is not None:
            loss = self.step_outputs(model, batch)[0]
        else:
            x, y = split_batch(batch)
            loss = self.loss_of(model(x), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else ""
            raise TaskError(
                f"{self.path}: the loss must be a scalar tensor, got {type(loss).__name__}{shape}"
            )
        return loss.reshape(())

    def loss_of(self, output: Any, target: Any) -> torch.Tensor:
        """loss_fn(output, target), the file's or the default."""
        fn = self._fn("loss_fn")
        return fn(output, target) if fn is not None else default_loss(output, target)

    def metric_of(self, output: Any, target: Any) -> float | None:
        """metric(output, target), the file's or accuracy for classification."""
        fn = self._fn("metric")
        value = fn(output, target) if fn is not None else default_metric(output, target)
        return None if value is None else float(value)

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        loader: DataLoader,
        device: torch.device,
        max_batches: int | None = None,
    ) -> tuple[float, float | None]:
        """Mean loss and mean metric over (up to max_batches of) a loader, in eval mode.

        With a custom step(), the metric is None unless batches are (x, y) pairs.
        """
        was_training = model.training
        model.eval()
        total_loss = torch.zeros((), device=device, dtype=torch.float64)
        metric_sum, metric_n, n = 0.0, 0, 0
        try:
            for i, batch in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                batch = to_device(batch, device)
                bs = 1
                loss, out, y = self.step_outputs(model, batch)
                value = None
                if y is not None:
                    bs = int(y.shape[0]) if isinstance(y, torch.Tensor) and y.dim() else 1
                    value = self.metric_of(out, y)
                total_loss += loss.detach().double() * bs
                n += bs
                if value is not None:
                    metric_sum += value * bs
                    metric_n += bs
        finally:
            model.train(was_training)
        if n == 0:
            raise TaskError(f"{self.path}: the validation data is empty")
        mean_loss = float(total_loss) / n
        return mean_loss, (metric_sum / metric_n if metric_n else None)

    def first_batch(self) -> Any:
        """One training batch (for sanity checks)."""
        return next(iter(self.train_loader()))


def infinite(loader: DataLoader) -> Iterator[Any]:
    """Cycle a loader forever (a fresh pass, with a fresh shuffle, each time)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise TaskError("the training data yielded no batches")


def load_task(path: str | Path, check: bool = True) -> Task:
    """Import a task file and validate what it defines.

    Args:
        path: the .py file.
        check: also call model() and train_data() once to check their return types.

    Returns:
        The loaded Task.

    Raises:
        TaskError: one line naming the file and what is wrong.
    """
    p = Path(path)
    if not p.exists():
        raise TaskError(f"{p}: task file not found")
    if p.is_dir():
        raise TaskError(f"{p}: is a directory, expected a Python task file")
    if p.suffix != ".py":
        raise TaskError(f"{p}: task file must be a .py file")
    module_name = f"lrtune_task_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:
        raise TaskError(f"{p}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # The task file's own folder goes on sys.path so it can import its neighbours.
    folder = str(p.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module  # needed for pickling (workers) and dataclasses
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise TaskError(f"{p}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        line = user_line(exc, p)
        raise TaskError(
            f"{p}{line}: error while importing the task file: {type(exc).__name__}: {exc}"
        ) from exc
    for name in REQUIRED:
        if not hasattr(module, name):
            raise TaskError(f"{p}: missing required function {name}()")
        if not callable(getattr(module, name)):
            raise TaskError(
                f"{p}: {name} must be a function, got {type(getattr(module, name)).__name__}"
            )
    for name in OPTIONAL_CALLABLES:
        if hasattr(module, name) and not callable(getattr(module, name)):
            raise TaskError(
                f"{p}: {name} must be a function, got {type(getattr(module, name)).__name__}"
            )
    bs = getattr(module, "batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(bs, bool) or not isinstance(bs, int) or bs <= 0:
        raise TaskError(f"{p}: batch_size must be a positive int, got {bs!r}")
    task = Task(path=p, module=module, batch_size=bs)
    if check:
        model = task.build_model()
        if not any(True for _ in model.parameters()):
            raise TaskError(f"{p}: model() has no parameters to train")
        task.train_loader()
        _check_first_batch(task)
    return task


def _check_first_batch(task: Task) -> None:
    try:
        batch = next(iter(task.train_loader()))
    except StopIteration:
        raise TaskError(f"{task.path}: train_data() is empty (0 batches)") from None
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(
            f"{task.path}: reading the first training batch raised {type(exc).__name__}: {exc}"
        ) from exc
    if not task.has_custom_step:
        try:
            split_batch(batch)
        except TaskError as exc:
            raise TaskError(f"{task.path}: {exc}") from None


def user_line(exc: BaseException, path: Path) -> str:
    """':LINE' of the deepest frame inside the user's file, or ''."""
    resolved = str(path.resolve())
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == resolved:
            line = f":{frame.lineno}"
    return line
