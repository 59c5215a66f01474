"""The range test on real data: scikit-learn's 8x8 digits (ships offline) and a small MLP.

Set-up: inputs scaled to [0, 1], 1500 training / 297 test images, an MLP 64-64-10, plain SGD,
batches of 64. The range test ramps 1e-4 -> 10 over 200 steps. The suggested LR is then
checked against 10x lower and 10x higher by training fresh models for 200 steps (about 8.5
epochs). At that budget the suggestion (the midpoint headline, about 0.5 here) wins clearly
on both train and test loss: 10x lower is still far from converged (loss ~1.2) and 10x higher
diverges (loss ~2.3+), while the suggestion reaches ~0.11-0.15.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import lrscope
from lrscope.data.tensor_batches import TensorBatches
from lrscope.rangetest.suggest import HEADLINE

CE = nn.functional.cross_entropy
BUDGET = 200


def digits_split() -> tuple[torch.Tensor, ...]:
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:1500], order[1500:]
    return x[train], y[train], x[test], y[test]


X_TRAIN, Y_TRAIN, X_TEST, Y_TEST = digits_split()


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def train(lr: float, seed: int) -> tuple[float, float]:
    """Final (train, test) loss of a fresh model after BUDGET SGD steps at a constant ``lr``."""
    model = mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for x, y in TensorBatches(X_TRAIN, Y_TRAIN, 64, seed=seed).steps(BUDGET):
        opt.zero_grad()
        CE(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        return float(CE(model(X_TRAIN), Y_TRAIN)), float(CE(model(X_TEST), Y_TEST))


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_suggestion_is_on_the_descent_and_beats_10x_either_way(seed: int) -> None:
    model = mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = TensorBatches(X_TRAIN, Y_TRAIN, 64, seed=seed)
    result = lrscope.range_test(model, opt, CE, batches, start_lr=1e-4, end_lr=10.0,
                                num_steps=200)
    lr = result.suggestion
    assert lr is not None and result.rule == HEADLINE

    # On the curve: the zero-lag smoothed loss (what the rules read) falls where the suggestion
    # lies, below where it started.
    curve = result.zero_lag_smoothed
    i = int(np.searchsorted(result.lrs, lr))
    slope = np.gradient(curve, np.log10(result.lrs))
    assert slope[i] < 0 and curve[i + 1] < curve[i - 1] and curve[i] < curve[0]

    # And in training: better than 10x lower and 10x higher, on train and on test loss.
    train_seed = 100 + seed  # a fresh model and data order, not the range test's
    at_lr, lower, higher = (train(f * lr, train_seed) for f in (1.0, 0.1, 10.0))
    assert at_lr[0] < lower[0] and at_lr[0] < higher[0]
    assert at_lr[1] < lower[1] and at_lr[1] < higher[1]
