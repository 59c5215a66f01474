"""The small, seeded problem every engine test trains: used in-process and by the torchrun worker.

Global batches are the same on every rank (they come from a seeded generator); each rank
takes its shard through ``engine.shard``. A one-process run on the whole global batches is the
reference a many-process run must match.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lrscope.engines.base import Engine

FEATURES, CLASSES = 6, 3


def make_model(seed: int = 0, batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    norm: list[nn.Module] = [nn.BatchNorm1d(16)] if batchnorm else []
    return nn.Sequential(nn.Linear(FEATURES, 16), *norm, nn.Tanh(), nn.Linear(16, CLASSES))


Batch = tuple[torch.Tensor, torch.Tensor]


def make_batches(steps: int, batch_size: int, seed: int = 1) -> list[Batch]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch_size, FEATURES, generator=generator)
    w = torch.randn(FEATURES, CLASSES, generator=generator)
    y = (x @ w).argmax(-1)
    return list(zip(x.unbind(), y.unbind(), strict=True))


def sgd(model: nn.Module, lr: float = 0.2) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train(engine: Engine, model: nn.Module, batches: list[Batch],
          lr: float = 0.2) -> list[float]:
    """Steps of SGD through ``engine``; the loss of each step averaged over ranks."""
    optimizer = sgd(model, lr)
    wrapped, wrapped_optimizer = engine.setup(model, optimizer)
    losses = []
    try:
        for batch in batches:
            x, y = engine.shard(batch)
            wrapped_optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(wrapped(x), y)
            engine.backward(loss, wrapped_optimizer)
            wrapped_optimizer.step()
            losses.append(engine.mean(loss))
    finally:
        engine.teardown(wrapped, wrapped_optimizer)
    return losses


def plain_losses(model: nn.Module, batches: list[Batch],
                 lr: float = 0.2) -> list[float]:
    """The same steps in plain torch, on a copy of ``model``: the reference."""
    model = copy.deepcopy(model)
    optimizer = sgd(model, lr)
    losses = []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
