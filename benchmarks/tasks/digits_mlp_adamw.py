"""Benchmark task (held out): scikit-learn's 8x8 digits (10 classes) with a tanh MLP,
AdamW weight decay 0.05.

    lrtune find benchmarks/tasks/digits_mlp_adamw.py
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
        nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10)
    )


def optimizer(params, lr):
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.05)


def train_data():
    return TensorDataset(*_split()[0])


def val_data():
    return TensorDataset(*_split()[1])
