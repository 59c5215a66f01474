"""The local engine: one process, plain ``loss.backward()``, on any device.

>>> LocalEngine("cpu").device
device(type='cpu')
>>> resolve_device("auto") == (torch.device("cuda") if torch.cuda.is_available() else
...                            torch.device("cpu"))
True
"""

from __future__ import annotations

import torch
from torch import nn

from lrscope.engines.base import Engine
from lrscope.errors import InputError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:i"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None): CUDA when present, else the CPU; ``cpu``; ``cuda`` / ``cuda:i``.

    A CUDA device this machine does not have is one InputError line, before any work.
    """
    if isinstance(device, torch.device):
        chosen = device
    elif device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError):
            raise InputError(f"device: {device!r} is not a device; use {DEVICE_CHOICES}") from None
    if chosen.type not in ("cpu", "cuda"):
        raise InputError(f"device: {str(chosen)!r} is not supported; use {DEVICE_CHOICES}")
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"device: {str(chosen)!r} asked for, but this machine has no CUDA "
                             "device torch can use; use --device cpu (or auto)")
        if chosen.index is not None and chosen.index >= count:
            raise InputError(f"device: {str(chosen)!r} asked for, but this machine has {count} "
                             f"CUDA device(s): cuda:0..cuda:{count - 1}")
    return chosen


class LocalEngine(Engine):
    name = "local"

    def __init__(self, device: str | torch.device | None = "cpu") -> None:
        self._device = resolve_device(device)

    @property
    def device(self) -> torch.device:
        return self._device

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        return model, optimizer

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        loss.backward()
