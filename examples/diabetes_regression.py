"""scikit-learn's diabetes regression (442 patients, 10 features), standardised, with an MLP.
Float targets: lrtune uses MSE by default and no accuracy metric.

    lrtune find examples/diabetes_regression.py --optimizer adam
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
    x = (x - x.mean(0)) / x.std(0)
    y = (y - y.mean()) / y.std()
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    cut = int(0.8 * len(x))
    return (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])


def model():
    return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1), nn.Flatten(0))


def train_data():
    (x, y), _ = _split()
    return TensorDataset(x, y)


def val_data():
    _, (x, y) = _split()
    return TensorDataset(x, y)
