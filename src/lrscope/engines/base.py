"""The engine contract: how one optimizer step runs, on one process or many.

The range test and the trial loop are written once against this interface; an engine only
decides how the model is wrapped, how a global batch is split between ranks, how the backward
pass runs and how a number is averaged over ranks. Every engine passes the same contract suite
(tests/engines/contract.py).

Contract:
* ``setup(model, optimizer)`` returns the (possibly wrapped) model and optimizer to train with.
  Parameters stay shared with the caller's model, so the caller's snapshot/restore still works.
* ``shard(batch)`` returns this rank's share of a global batch, on the engine's device; ranks'
  shares concatenated in rank order are the whole batch (distributed engines give every rank
  ``n // world_size`` rows and drop the last ``n % world_size``, so that the mean over ranks
  is exactly the one-process value on the kept rows). With one process it returns the batch
  unchanged.
* ``backward(loss, optimizer)`` computes gradients of ``loss``; gradients are averaged over
  ranks by the time ``optimizer.step()`` runs.
* ``mean(x)`` returns the mean of a float over ranks; every rank gets the same value. It is a
  collective: all ranks must call it, in the same order; a decision taken from its value
  (stop, diverged) is the same on every rank.
* ``mean_tensor(t)`` is ``mean`` elementwise over a 1-D tensor, one collective for all.
* ``teardown(model, optimizer)`` releases what ``setup`` made (wrappers, hooks); the caller's
  model is usable afterwards. ``close()`` releases the process group, if the engine made one;
  ``with engine:`` closes it at the end of the block, error or not.
* Only the rank where ``is_main`` is true writes files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn


class Engine(ABC):
    name: ClassVar[str]

    @property
    def rank(self) -> int:
        return 0

    @property
    def world_size(self) -> int:
        return 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @abstractmethod
    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]: ...

    def shard(self, batch: Any) -> Any:
        return batch

    @abstractmethod
    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None: ...

    def mean(self, value: float | torch.Tensor) -> float:
        return float(value.detach() if isinstance(value, torch.Tensor) else value)

    def mean_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise mean over ranks of a 1-D tensor (a collective, like ``mean``).

        The default calls ``mean`` per element, which is correct for any engine; distributed
        engines override it with one all-reduce.
        """
        if self.world_size == 1:
            return values
        return torch.tensor([self.mean(float(v)) for v in values], dtype=values.dtype,
                            device=values.device)

    def teardown(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:  # noqa: B027
        """Undo ``setup``; the default has nothing to undo."""

    def close(self) -> None:  # noqa: B027
        """Release process groups and other global resources."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
