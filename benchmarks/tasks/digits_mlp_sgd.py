"""Benchmark task: scikit-learn's 8x8 digits (10 classes) with an MLP, SGD momentum 0.9.

lrtune find benchmarks/tasks/digits_mlp_sgd.py
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 64


def _split():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(x))
    return (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])


def model():
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )


def optimizer(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def train_data():
    return TensorDataset(*_split()[0])


def val_data():
    return TensorDataset(*_split()[1])
