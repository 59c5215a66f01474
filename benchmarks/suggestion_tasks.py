"""The public tasks of benchmarks/suggestion_quality.py: data, model, optimizer, budget, grid.

Seven small problems of different kinds, all on data that ships with scikit-learn or Debian (no
download): an MLP and a LeNet on the 8x8 digits and LeNet-5 on Fashion-MNIST with SGD
momentum 0.9, an MLP on Fashion-MNIST with AdamW, a BatchNorm CNN on the digits, an MLP regressor on
scikit-learn's diabetes data (standardised, MSE) and a GRU that reads the digits' 8 rows as a
sequence (Adam). Each has a fixed training budget in optimizer steps (a few seconds on one CPU
thread) and a held-out test split on which the final loss is measured.

Every SGD task uses momentum 0.9, in the range test and in training alike. Why not plain SGD:
OneCycleLR at torch's defaults (cycle_momentum=True) overwrites the optimizer's momentum with
0.95 -> 0.85 -> 0.95 during training, so a "plain SGD" task was range-tested with momentum 0
but trained with momentum ~0.9, an optimizer whose effective step is ~10x larger: its
suggestion was for a different optimizer. Momentum 0.9 is what users of one-cycle run (and
lrscope's default). :attr:`BenchTask.setup` names the optimizer's settings; the harness' cache
keys every training on it, so a task whose optimizer changes is trained afresh.

A task is referred to by name everywhere (job keys, cache, table), and built afresh in each
worker process by :func:`get_task` (cached per process), so nothing heavy is pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import nn

from lrscope.data.tasks.digits import digits_task
from lrscope.data.tasks.mnist import idx_task
from lrscope.data.tasks.models import lenet5, lenet_8x8, mlp

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Span of the oracle grid per optimizer family: wide enough to hold the optimum inside.
GRIDS = {"sgd": (1e-4, 10.0), "adam": (1e-5, 1e-1)}
SGD_MOMENTUM = 0.9  # every SGD task; see the module docstring for why never 0
FASHION_TRAIN, FASHION_TEST = 10_000, 2_000  # the first N of each file: seconds, not minutes


@dataclass(frozen=True)
class BenchTask:
    """One problem: tensors, a model factory, the optimizer the user would pick, a budget."""

    name: str
    kind: str  # a few words for the table
    make_model: Callable[[], nn.Module]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    loss_fn: LossFn
    optimizer: str  # "sgd-momentum" (0.9), "adam" or "adamw"
    batch_size: int
    budget: int  # optimizer steps of every training run

    @property
    def family(self) -> str:
        """"sgd" or "adam": which grid span, which Schedule-Free optimizer."""
        return "adam" if self.optimizer.startswith("adam") else "sgd"

    @property
    def weight_decay(self) -> float:
        # AdamW at torch's default decay; the other tasks train without decay.
        return 0.01 if self.optimizer == "adamw" else 0.0

    @property
    def setup(self) -> str:
        """The optimizer's settings in words (part of every cached training's key).

        >>> get_task("digits-mlp").setup
        'sgd-momentum momentum=0.9 weight_decay=0.0'
        """
        momentum = f" momentum={SGD_MOMENTUM}" if self.optimizer == "sgd-momentum" else ""
        return f"{self.optimizer}{momentum} weight_decay={self.weight_decay}"

    def make_optimizer(self, params: object, lr: float) -> torch.optim.Optimizer:
        if self.optimizer == "sgd-momentum":
            return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM)  # type: ignore[arg-type]
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)  # type: ignore[arg-type]
        return torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)  # type: ignore[arg-type]

    def grid(self, points: int) -> list[float]:
        """``points`` log-spaced max_lr values over the family's span (rounded to 6 digits,
        the precision every LR is keyed and trained at)."""
        low, high = GRIDS[self.family]
        return [lr_key(float(v)) for v in np.logspace(np.log10(low), np.log10(high), points)]


def lr_key(lr: float) -> float:
    """An LR at the 6 significant digits it is trained at and cached under.

    >>> lr_key(0.012345678)
    0.0123457
    """
    return float(f"{lr:.6g}")


def bn_cnn() -> nn.Module:
    """Two conv + BatchNorm + ReLU + pool stages on 8x8 digits, then a linear head."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )


class RowGRU(nn.Module):
    """A GRU reading an 8x8 digit row by row (8 steps of 8 pixels); logits from the last state."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.gru = nn.GRU(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x.reshape(-1, 8, 8))
        return self.head(last[-1])


def regressor() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1), nn.Flatten(0))


def _diabetes() -> tuple[torch.Tensor, ...]:
    """scikit-learn's bundled diabetes data, a fixed 80/20 split, standardised with the
    training half's statistics (inputs and target), so the test MSE is in target variances."""
    from sklearn.datasets import load_diabetes  # bundled with scikit-learn: no download

    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    train, test = order[:cut], order[cut:]
    mean, std = x[train].mean(0), x[train].std(0)
    y_mean, y_std = y[train].mean(), y[train].std()

    def as_tensor(values: np.ndarray) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32)

    return (as_tensor((x[train] - mean) / std), as_tensor((y[train] - y_mean) / y_std),
            as_tensor((x[test] - mean) / std), as_tensor((y[test] - y_mean) / y_std))


CE = nn.functional.cross_entropy


def _build(name: str) -> BenchTask:
    digits = digits_task("mlp")
    d = (digits.train_x, digits.train_y, digits.test_x, digits.test_y)
    if name == "digits-mlp":
        return BenchTask(name, "MLP, digits, SGD momentum", mlp, *d, CE, "sgd-momentum", 64, 300)
    if name == "digits-lenet":
        return BenchTask(name, "LeNet, digits, SGD momentum", lenet_8x8, *d, CE, "sgd-momentum",
                         64, 300)
    if name == "digits-bn-cnn":
        return BenchTask(name, "BatchNorm CNN, digits, SGD momentum", bn_cnn, *d, CE,
                         "sgd-momentum", 64, 200)
    if name == "digits-gru":
        return BenchTask(name, "GRU over rows, digits, Adam", RowGRU, *d, CE, "adam", 64, 300)
    if name == "diabetes-mlp":
        return BenchTask(name, "MLP regression, diabetes, SGD momentum, MSE", regressor,
                         *_diabetes(), nn.functional.mse_loss, "sgd-momentum", 32, 300)
    fashion = idx_task("fashion-mnist", limit_train=FASHION_TRAIN, limit_test=FASHION_TEST)
    f = (fashion.train_x, fashion.train_y, fashion.test_x, fashion.test_y)
    if name == "fashion-lenet5":
        return BenchTask(name, "LeNet-5, Fashion-MNIST, SGD momentum", lenet5, *f, CE,
                         "sgd-momentum", 128, 250)
    if name == "fashion-mlp-adamw":
        return BenchTask(name, "MLP, Fashion-MNIST, AdamW", lambda: mlp(28 * 28, 256), *f, CE,
                         "adamw", 128, 300)
    raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")


TASKS = ("digits-mlp", "digits-lenet", "fashion-lenet5", "fashion-mlp-adamw", "digits-bn-cnn",
         "diabetes-mlp", "digits-gru")


@cache
def get_task(name: str, tiny: bool = False) -> BenchTask:
    """The task called ``name``; ``tiny`` cuts its budget to a third (the CI configuration)."""
    task = _build(name)
    if tiny:
        from dataclasses import replace

        task = replace(task, budget=max(30, task.budget // 3))
    return task
