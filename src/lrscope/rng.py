"""The global random number generators, captured and put back: torch (CPU and every CUDA
device), NumPy and Python's ``random``. The one copy of this rule: the range test's restore,
trials (which seed torch to build their model) and the ColossalAI launch all use it, so that a
call into lrscope leaves the caller's RNG streams where they were.

>>> import torch
>>> before = torch.get_rng_state()
>>> with preserved_rng():
...     _ = torch.manual_seed(123)
>>> torch.equal(torch.get_rng_state(), before)
True
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class RngState:
    """The global random number generators' states."""

    torch_cpu: torch.Tensor
    torch_cuda: list[torch.Tensor] | None
    numpy: Any
    python: Any

    @classmethod
    def capture(cls) -> RngState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return cls(torch.get_rng_state(), cuda, np.random.get_state(), random.getstate())

    def restore(self) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)
        np.random.set_state(self.numpy)
        random.setstate(self.python)


@contextlib.contextmanager
def preserved_rng() -> Iterator[RngState]:
    """Run the ``with`` body, then put every global RNG back as it was, whatever happened."""
    state = RngState.capture()
    try:
        yield state
    finally:
        state.restore()


def seed_all(seed: int) -> None:
    """Seed every global RNG (torch on CPU and CUDA, NumPy, ``random``) with ``seed``; the caller
    keeps the streams it had by running this inside :func:`preserved_rng`.

    >>> with preserved_rng():
    ...     seed_all(3); a = torch.rand(1)
    ...     seed_all(3); b = torch.rand(1)
    >>> torch.equal(a, b)
    True
    """
    torch.manual_seed(seed)  # also every CUDA device's generator
    np.random.seed(seed)
    random.seed(seed)
