"""Snapshot and restore everything a range test changes, so the user's objects come back as
they were (the idea of torch-lr-finder's ``StateCacher``, kept in memory).

A :class:`Snapshot` holds CPU copies of

* the model's ``state_dict`` (parameters and persistent buffers such as BatchNorm's running
  statistics and ``num_batches_tracked``), its non-persistent buffers and its ``.grad``\\ s;
* the optimizer's ``state_dict`` (per-parameter state such as momentum buffers or Adam's
  moments and step, and every param group's hyperparameters: lr, momentum, betas, ...);
* every module's ``training`` flag;
* the random number generators: torch (CPU and every CUDA device), numpy and ``random``.

Copies go to CPU so that a snapshot of a GPU model costs host memory, not device memory.

>>> import torch
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> before = model.weight.detach().clone()
>>> with preserved(model, opt):
...     _ = model.weight.data.add_(1.0)
...     opt.param_groups[0]["lr"] = 5.0
>>> torch.equal(model.weight, before), opt.param_groups[0]["lr"]
(True, 0.1)
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


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


@dataclass(frozen=True)
class Snapshot:
    """CPU copies of a model's and an optimizer's state; see the module docstring."""

    model_state: dict[str, Any]
    extra_buffers: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor | None]
    training: list[bool]
    optimizer_state: dict[str, Any]
    rng: RngState


def to_cpu_copy(tree: Any) -> Any:
    """A deep copy of ``tree`` in which every tensor is a fresh CPU tensor.

    >>> t = torch.ones(2)
    >>> c = to_cpu_copy({"a": [t, 3], "b": (t,)})
    >>> c["a"][0] is t, torch.equal(c["a"][0], t), c["a"][1], type(c["b"]).__name__
    (False, True, 3, 'tuple')
    """
    if isinstance(tree, (int, float, str, bool, type(None))):
        return tree  # immutable: nothing to copy (and deepcopy of many ints is slow)
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return type(tree)((key, to_cpu_copy(value)) for key, value in tree.items())
    if isinstance(tree, list):
        return [to_cpu_copy(value) for value in tree]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(to_cpu_copy(value) for value in tree)
    return copy.deepcopy(tree)


def snapshot(model: nn.Module, optimizer: Any) -> Snapshot:
    """Copy what a training run changes in ``model``, ``optimizer`` and the global RNGs."""
    model_state = to_cpu_copy(model.state_dict())
    # Non-persistent buffers are not in state_dict but a forward pass may still change them.
    extra_buffers = {
        name: buffer.detach().to("cpu", copy=True)
        for name, buffer in model.named_buffers()
        if buffer is not None and name not in model_state
    }
    grads = {
        name: None if p.grad is None else p.grad.detach().to("cpu", copy=True)
        for name, p in model.named_parameters()
    }
    return Snapshot(
        model_state=model_state,
        extra_buffers=extra_buffers,
        grads=grads,
        training=[module.training for module in model.modules()],
        optimizer_state=to_cpu_copy(optimizer.state_dict()),
        rng=RngState.capture(),
    )


@torch.no_grad()
def restore(snap: Snapshot, model: nn.Module, optimizer: Any) -> None:
    """Put ``model``, ``optimizer`` and the RNGs back as they were at :func:`snapshot`.

    Parameters and buffers are copied in place (same tensors, same devices), so references
    the caller holds stay valid. The snapshot is left intact and can be restored again.
    """
    model.load_state_dict(snap.model_state)
    buffers = dict(model.named_buffers())
    for name, saved in snap.extra_buffers.items():
        buffers[name].copy_(saved)
    for name, p in model.named_parameters():
        saved_grad = snap.grads.get(name)
        if saved_grad is None:
            p.grad = None
        elif p.grad is None:
            p.grad = saved_grad.to(p.device, copy=True)
        else:
            p.grad.copy_(saved_grad)
    for module, flag in zip(model.modules(), snap.training, strict=True):
        module.training = flag
    # load_state_dict may keep the very tensors it is given (on CPU); hand it a copy so that
    # training afterwards cannot write into the snapshot.
    optimizer.load_state_dict(to_cpu_copy(snap.optimizer_state))
    snap.rng.restore()


@contextlib.contextmanager
def preserved(model: nn.Module, optimizer: Any) -> Iterator[Snapshot]:
    """Run the ``with`` body, then restore model, optimizer and RNGs whatever happened."""
    snap = snapshot(model, optimizer)
    try:
        yield snap
    finally:
        restore(snap, model, optimizer)
