"""Benchmark task: scikit-learn's 8x8 digits as 1x8x8 images, a small CNN with BatchNorm, Adam.

lrtune find benchmarks/tasks/digits_cnn_adam.py
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 64


def _split():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    x = (x - 0.3) / 0.4
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(x))
    return (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def optimizer(params, lr):
    return torch.optim.Adam(params, lr=lr)


def train_data():
    return TensorDataset(*_split()[0])


def val_data():
    return TensorDataset(*_split()[1])
