"""The built-in models: a small MLP and LeNet-style CNNs for 8x8 digits and 28x28 images.

Every model takes images shaped ``(N, 1, H, W)`` and returns logits ``(N, 10)``; callers seed
``torch`` before building one so that a seed means the same initial weights everywhere.
"""

from __future__ import annotations

from torch import nn


def mlp(in_features: int = 64, hidden: int = 128, num_classes: int = 10) -> nn.Module:
    """A one-hidden-layer MLP over flattened images.

    >>> import torch
    >>> mlp()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def lenet_8x8(num_classes: int = 10) -> nn.Module:
    """LeNet's shape scaled to 8x8 inputs: two 3x3 conv + pool stages, then 120-84-10.

    >>> import torch
    >>> lenet_8x8()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=3, padding=1),   # 6 x 8 x 8
        nn.ReLU(),
        nn.MaxPool2d(2),                             # 6 x 4 x 4
        nn.Conv2d(6, 16, kernel_size=3, padding=1),  # 16 x 4 x 4
        nn.ReLU(),
        nn.MaxPool2d(2),                             # 16 x 2 x 2
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def lenet5(num_classes: int = 10) -> nn.Module:
    """LeNet-5 for 28x28 images, as in the seed study.

    conv 6@5x5 (padding 2) -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 -> fc 10, with
    ReLU and max pooling (the modern reading of LeNet-5 used by ColossalAI's examples).

    >>> import torch
    >>> lenet5()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),   # 6 x 28 x 28
        nn.ReLU(),
        nn.MaxPool2d(2),                             # 6 x 14 x 14
        nn.Conv2d(6, 16, kernel_size=5),             # 16 x 10 x 10
        nn.ReLU(),
        nn.MaxPool2d(2),                             # 16 x 5 x 5
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
