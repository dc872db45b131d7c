"""A deliberately broken copy of digits_mlp.py, to show what `lrtune doctor` catches.

Four classic bugs, each marked BUG below:
    lrtune doctor examples/broken_digits.py
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 64


def _split():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x * 16.0, dtype=torch.float32)  # BUG: raw 0..255 pixels, not normalised
    y = torch.tensor(y, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    cut = int(0.8 * len(x))
    train = perm  # BUG: trains on every example, so val (below) is inside train
    return (x[train], y[train]), (x[perm[cut:]], y[perm[cut:]])


def model():
    net = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    with torch.no_grad():
        net[-1].weight.mul_(20.0)  # BUG: last layer scaled up: confidently wrong at init
    net[2].requires_grad_(False)  # BUG: a hidden layer left frozen
    return net


def train_data():
    (x, y), _ = _split()
    return TensorDataset(x, y)


def val_data():
    _, (x, y) = _split()
    return TensorDataset(x, y)
