"""Shared fixtures: tiny real-torch tasks written to disk as task files."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# A tiny, fast, learnable classification task (synthetic, seeded).
TINY_CLASSIFIER = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 32

def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    w = torch.randn(8, 3, generator=torch.Generator().manual_seed(123))
    y = (x @ w).argmax(dim=1)
    return TensorDataset(x, y)

def model():
    return nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))

def train_data():
    return _data(0)

def val_data():
    return _data(1)
"""

TINY_REGRESSION = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 32

def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 5, generator=g)
    y = x @ torch.arange(1.0, 6.0) * 0.3 + 0.1 * torch.randn(256, generator=g)
    return TensorDataset(x, y)

def model():
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))

def train_data():
    return _data(0)

def val_data():
    return _data(1)
"""


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def write_task(tmp_path: Path) -> Callable[[str, str], Path]:
    """write_task(source, name='task') -> path of a task file holding `source`."""

    def write(source: str, name: str = "task") -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def tiny_task(write_task: Callable[[str, str], Path]) -> Path:
    """Path to a tiny synthetic 3-class classification task file."""
    return write_task(TINY_CLASSIFIER, "tiny_cls")


@pytest.fixture
def tiny_regression(write_task: Callable[[str, str], Path]) -> Path:
    """Path to a tiny synthetic regression task file."""
    return write_task(TINY_REGRESSION, "tiny_reg")
