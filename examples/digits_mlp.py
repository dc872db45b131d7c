"""scikit-learn's 8x8 handwritten digits (1797 images, 10 classes) with a small MLP.

The data ships inside scikit-learn: nothing is downloaded.
    lrtune find examples/digits_mlp.py
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
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    cut = int(0.8 * len(x))
    return (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])


def model():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def train_data():
    (x, y), _ = _split()
    return TensorDataset(x, y)


def val_data():
    _, (x, y) = _split()
    return TensorDataset(x, y)
