"""The shared training loop, on real tiny tasks (CPU, seconds)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from lrtune.errors import ConfigError
from lrtune.task import load_task
from lrtune.training import EpochRecord, TrainResult, train

RAISES_IN_STEP = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

def model():
    return nn.Linear(4, 2)

def train_data():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g))

_calls = {"n": 0}

def step(model, batch):
    _calls["n"] += 1
    if _calls["n"] > 2:
        raise RuntimeError("boom in the user's step")
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)
"""

NAN_AFTER = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 16

def model():
    return nn.Linear(4, 2)

def train_data():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g))

_calls = {"n": 0}

def step(model, batch):
    _calls["n"] += 1
    x, y = batch
    loss = nn.functional.cross_entropy(model(x), y)
    return loss * float("nan") if _calls["n"] > 5 else loss
"""


def test_complete_run_records_every_epoch(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    res = train(task, lr=0.05, epochs=3, seed=0, device="cpu")
    assert res.status == "complete", res.error
    assert [r.epoch for r in res.epochs] == [1, 2, 3]
    assert res.steps == 3 * 8 and len(res.step_losses) == res.steps
    assert res.epochs[-1].step == res.steps
    assert all(isinstance(r, EpochRecord) for r in res.epochs)
    assert res.initial_loss == res.step_losses[0]
    assert res.epochs[-1].train_loss < res.epochs[0].train_loss  # it learns
    assert res.epochs[-1].val_loss is not None and res.epochs[-1].val_metric is not None
    assert res.epochs[-1].val_metric > 0.6
    assert math.isclose(res.epochs[0].train_loss, sum(res.step_losses[:8]) / 8, rel_tol=1e-6)
    assert res.best("val_metric", "max") == max(r.val_metric for r in res.epochs)  # type: ignore[type-var]


def test_same_seed_same_numbers(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    a = train(task, lr=0.05, epochs=2, seed=3, device="cpu")
    b = train(task, lr=0.05, epochs=2, seed=3, device="cpu", deterministic=True)
    c = train(task, lr=0.05, epochs=2, seed=4, device="cpu")
    assert a.step_losses == b.step_losses
    assert [r.val_loss for r in a.epochs] == [r.val_loss for r in b.epochs]
    assert a.step_losses != c.step_losses


def test_nan_loss_is_diverged_not_raised(write_task: Callable[[str, str], Path]) -> None:
    task = load_task(write_task(NAN_AFTER, "nan_task"))
    res = train(task, lr=0.1, epochs=4, device="cpu")
    assert res.status == "diverged"
    assert "nan" in (res.error or "").lower()
    assert res.steps == 6  # stopped at the first NaN step, not at the end of the run
    assert math.isnan(res.step_losses[-1])


def test_exploding_lr_is_diverged(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    res = train(task, lr=1e4, epochs=3, device="cpu", optimizer="sgd_plain")
    assert res.status == "diverged", (res.status, res.step_losses[:5])


def test_exception_in_user_code_is_failed(write_task: Callable[[str, str], Path]) -> None:
    task = load_task(write_task(RAISES_IN_STEP, "raises"), check=False)
    res = train(task, lr=0.1, epochs=3, device="cpu")
    assert res.status == "failed"
    assert res.error == "RuntimeError: boom in the user's step"
    assert "\n" not in res.error


def test_on_epoch_true_prunes(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    seen: list[EpochRecord] = []

    def stop_after_two(rec: EpochRecord) -> bool:
        seen.append(rec)
        return rec.epoch == 2

    res = train(task, lr=0.05, epochs=5, device="cpu", on_epoch=stop_after_two)
    assert res.status == "pruned"
    assert len(res.epochs) == 2 and len(seen) == 2


def test_on_step_sees_every_step_and_can_stop(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    steps: list[int] = []
    res = train(
        task, lr=0.05, epochs=3, device="cpu", on_step=lambda s, loss: steps.append(s) or s >= 10
    )
    assert res.status == "pruned" and steps == list(range(1, 11)) and res.steps == 10


def test_callback_errors_propagate(tiny_task: Path) -> None:
    task = load_task(tiny_task)

    def bad(rec: EpochRecord) -> bool:
        raise KeyError("caller bug")

    with pytest.raises(KeyError, match="caller bug"):
        train(task, lr=0.05, epochs=2, device="cpu", on_epoch=bad)


def test_max_steps_caps_total_steps(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    res = train(task, lr=0.05, epochs=10, device="cpu", max_steps=12)
    assert res.status == "complete"
    assert res.steps == 12 and len(res.epochs) == 2  # 8 + a partial epoch of 4
    assert res.epochs[-1].step == 12


def test_no_val_data_gives_none(
    tiny_regression: Path, write_task: Callable[[str, str], Path]
) -> None:
    src = tiny_regression.read_text().replace("def val_data", "def _unused_val")
    task = load_task(write_task(src, "noval"))
    res = train(task, lr=0.01, epochs=2, device="cpu")
    assert res.status == "complete"
    assert all(r.val_loss is None and r.val_metric is None for r in res.epochs)


def test_bad_arguments_raise_config_error(tiny_task: Path) -> None:
    task = load_task(tiny_task)
    with pytest.raises(ConfigError):
        train(task, lr=0.1, epochs=0)
    with pytest.raises(ConfigError):
        train(task, lr=0.1, epochs=1, optimizer="sgdd")


def test_to_dict_roundtrip(tiny_task: Path) -> None:
    res = train(load_task(tiny_task), lr=0.05, epochs=1, device="cpu")
    d = res.to_dict()
    assert d["status"] == "complete" and len(d["epochs"]) == 1
    assert isinstance(res, TrainResult)


def test_schedule_steps_through_lrtune_schedules(tiny_task: Path) -> None:
    from lrtune import schedules

    task = load_task(tiny_task)
    spec = {"name": "step", "step_size": 1, "gamma": 0.5}
    res = train(task, lr=0.08, schedule=spec, epochs=3, device="cpu")
    assert res.status == "complete", res.error
    curve = schedules.lr_curve(spec, 0.08, 8, 3)
    assert [r.lr for r in res.epochs] == pytest.approx([curve[7], curve[15], curve[23]])
    assert [r.lr for r in res.epochs] == pytest.approx([0.08, 0.04, 0.02])


def test_plateau_without_val_data_watches_train_loss(
    tiny_regression: Path, write_task: Callable[[str, str], Path]
) -> None:
    src = tiny_regression.read_text().replace("def val_data", "def _unused_val")
    task = load_task(write_task(src, "noval_plateau"))
    spec = {"name": "plateau", "patience": 0, "factor": 0.5, "threshold": 0.95}
    res = train(task, lr=0.01, schedule=spec, epochs=3, device="cpu")
    assert res.status == "complete", res.error
    assert res.epochs[-1].lr < 0.01  # cut at least once: the train loss fed the plateau
