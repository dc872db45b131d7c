"""Benchmark task: torchvision's ShuffleNetV2 x0.5 (10 classes, BatchNorm) on scikit-learn's
digits upsampled to 3x32x32 images, SGD momentum 0.9. Nothing is downloaded (no pretrained
weights; the data ships with scikit-learn).

    lrtune find benchmarks/tasks/digits_shufflenet_sgd.py
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.models import shufflenet_v2_x0_5

batch_size = 64
SIZE = 32


def _split():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    x = nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    x = ((x - 0.3) / 0.4).expand(-1, 3, -1, -1).contiguous()
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(x))
    return (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])


def model():
    return shufflenet_v2_x0_5(num_classes=10)


def optimizer(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def train_data():
    return TensorDataset(*_split()[0])


def val_data():
    return TensorDataset(*_split()[1])
