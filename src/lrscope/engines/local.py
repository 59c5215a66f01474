"""The local engine: one process, plain ``loss.backward()``."""

from __future__ import annotations

import torch
from torch import nn

from lrscope.engines.base import Engine


class LocalEngine(Engine):
    name = "local"

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        return model, optimizer

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        loss.backward()
