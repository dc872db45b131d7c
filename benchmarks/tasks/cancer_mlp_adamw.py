"""Benchmark task: scikit-learn's breast cancer data (30 features, 2 classes), standardised,
an MLP with AdamW (weight decay 0.01).

    lrtune find benchmarks/tasks/cancer_mlp_adamw.py
"""

import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 32


def _split():
    x, y = load_breast_cancer(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(x))
    train, val = perm[:cut], perm[cut:]
    mean, std = x[train].mean(0), x[train].std(0)
    x = (x - mean) / std
    return (x[train], y[train]), (x[val], y[val])


def model():
    return nn.Sequential(
        nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)
    )


def optimizer(params, lr):
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def train_data():
    return TensorDataset(*_split()[0])


def val_data():
    return TensorDataset(*_split()[1])
