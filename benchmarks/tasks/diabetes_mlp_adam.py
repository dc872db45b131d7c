"""Benchmark task: scikit-learn's diabetes regression (442 patients, 10 features),
standardised inputs and target, an MLP with Adam. MSE loss; the metric is the val MSE.

    lrtune find benchmarks/tasks/diabetes_mlp_adam.py
"""

import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 32


def _split():
    x, y = load_diabetes(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(x))
    train, val = perm[:cut], perm[cut:]
    x = (x - x[train].mean(0)) / x[train].std(0)
    y = (y - y[train].mean()) / y[train].std()
    return (x[train], y[train]), (x[val], y[val])


def model():
    return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1), nn.Flatten(0))


def optimizer(params, lr):
    return torch.optim.Adam(params, lr=lr)


def train_data():
    return TensorDataset(*_split()[0])


def val_data():
    return TensorDataset(*_split()[1])
