"""Task-file loading: every malformed file gives one clear line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from lrtune.errors import TaskError
from lrtune.task import load_task

GOOD_HEAD = """
import torch
from torch import nn
from torch.utils.data import TensorDataset
"""

BROKEN = {
    "syntax": ("def model(:\n    pass\n", "syntax error"),
    "no_model": (
        GOOD_HEAD
        + "def train_data():\n    return TensorDataset(torch.randn(8, 2), torch.zeros(8).long())\n",
        "missing required function model()",
    ),
    "no_data": (
        GOOD_HEAD + "def model():\n    return nn.Linear(2, 2)\n",
        "missing required function train_data()",
    ),
    "model_not_module": (
        GOOD_HEAD
        + "def model():\n    return 3\ndef train_data():\n    return TensorDataset(torch.randn(8, 2), torch.zeros(8).long())\n",
        "must return a torch.nn.Module",
    ),
    "data_wrong_type": (
        GOOD_HEAD
        + "def model():\n    return nn.Linear(2, 2)\ndef train_data():\n    return [1, 2, 3]\n",
        "must return a torch Dataset or DataLoader",
    ),
    "empty_data": (
        GOOD_HEAD
        + "def model():\n    return nn.Linear(2, 2)\ndef train_data():\n    return TensorDataset(torch.randn(0, 2), torch.zeros(0).long())\n",
        "empty",
    ),
    "import_error": ("import not_a_real_module_xyz\n", "ModuleNotFoundError"),
    "raises_inside": (
        GOOD_HEAD
        + "def model():\n    raise ValueError('boom')\ndef train_data():\n    return TensorDataset(torch.randn(8, 2), torch.zeros(8).long())\n",
        "model() raised ValueError: boom",
    ),
    "bad_batch_size": (
        GOOD_HEAD
        + "batch_size = -3\ndef model():\n    return nn.Linear(2, 2)\ndef train_data():\n    return TensorDataset(torch.randn(8, 2), torch.zeros(8).long())\n",
        "batch_size must be a positive int",
    ),
    "model_not_callable": (
        GOOD_HEAD
        + "model = 5\ndef train_data():\n    return TensorDataset(torch.randn(8, 2), torch.zeros(8).long())\n",
        "model must be a function",
    ),
    "dict_batches": (
        GOOD_HEAD
        + "from torch.utils.data import Dataset\nclass D(Dataset):\n    def __len__(self): return 4\n    def __getitem__(self, i): return {'x': torch.randn(2)}\ndef model():\n    return nn.Linear(2, 2)\ndef train_data():\n    return D()\n",
        "define step(model, batch)",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_task_file_is_one_clear_error(write_task, case):
    source, expected = BROKEN[case]
    path = write_task(source, case)
    with pytest.raises(TaskError) as info:
        load_task(path)
    msg = str(info.value)
    assert str(path) in msg and expected in msg and "\n" not in msg


def test_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        load_task(tmp_path / "nope.py")
    other = tmp_path / "x.txt"
    other.write_text("")
    with pytest.raises(TaskError, match=r"\.py"):
        load_task(other)


@pytest.mark.parametrize("case", ["syntax", "no_model", "empty_data", "raises_inside"])
def test_cli_exit_code_2_one_line_no_traceback(write_task, case):
    path = write_task(BROKEN[case][0], case)
    proc = subprocess.run(
        [sys.executable, "-m", "lrtune.cli", "find", str(path), "--steps", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_defaults_loss_and_metric(tiny_task, tiny_regression):
    cls = load_task(tiny_task)
    model = cls.build_model()
    batch = cls.first_batch()
    assert cls.loss(model, batch).dim() == 0
    out = model(batch[0])
    assert 0.0 <= cls.metric_of(out, batch[1]) <= 1.0
    reg = load_task(tiny_regression)
    m = reg.build_model()
    b = reg.first_batch()
    assert torch.isclose(reg.loss(m, b), torch.nn.functional.mse_loss(m(b[0]), b[1]))
    assert reg.metric_of(m(b[0]), b[1]) is None


def test_custom_step_and_optimizer(write_task):
    path = write_task(
        GOOD_HEAD
        + """
from torch.utils.data import Dataset
class D(Dataset):
    def __len__(self): return 16
    def __getitem__(self, i): return {"x": torch.randn(3), "y": torch.tensor(1.0)}
def model():
    return nn.Linear(3, 1)
def train_data():
    return D()
def step(model, batch):
    return ((model(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()
def optimizer(params, lr):
    return torch.optim.Adam(params, lr=lr)
batch_size = 4
""",
        "custom",
    )
    t = load_task(path)
    m = t.build_model()
    assert isinstance(t.build_optimizer(m.parameters(), 1e-3), torch.optim.Adam)
    assert t.loss(m, t.first_batch()).dim() == 0
    assert len(t.train_loader()) == 4


def test_step_may_return_loss_output_target_for_the_metric(write_task):
    path = write_task(
        GOOD_HEAD
        + """
from torch.utils.data import Dataset
class D(Dataset):
    def __len__(self): return 32
    def __getitem__(self, i): return {"x": torch.randn(3), "y": torch.tensor(i % 2)}
def model():
    return nn.Linear(3, 2)
def train_data():
    return D()
def val_data():
    return D()
def step(model, batch):
    out = model(batch["x"])
    return nn.functional.cross_entropy(out, batch["y"]), out, batch["y"]
def metric(output, target):
    return 0.25
batch_size = 8
""",
        "dict_metric",
    )
    t = load_task(path)
    m = t.build_model()
    assert t.loss(m, t.first_batch()).dim() == 0
    loss, metric = t.evaluate(m, t.val_loader(), torch.device("cpu"))
    assert loss > 0 and metric == 0.25
