"""One optimizer step, the one copy the range test and the trials call.

:func:`optimizer_step` builds, once per run, the function that does one step: zero the
gradients, then over ``accumulation`` micro-batches shard, move, forward (under autocast when
asked), backward (scaled by the GradScaler when there is one); clip the global gradient norm
(after unscaling) and step. :func:`where_to_move` is the first-batch device check both
loops make before their first step.

The plain step (one micro-batch, full precision, no clipping) is its own short function, chosen
once: on a small model every call and branch per step shows (``benchmarks/overhead.py``).

>>> import torch
>>> from lrscope.engines.local import LocalEngine
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> batches, move_to = where_to_move(iter([(torch.ones(4, 2), torch.zeros(4, 1))] * 3),
...                                 LocalEngine(), torch.device("cpu"))
>>> move_to is None  # already there
True
>>> mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
>>> step = optimizer_step(LocalEngine(), model, opt, mse, move_to=move_to, accumulation=2)
>>> loss = step(batches)  # two micro-batches: one optimizer step
>>> loss.shape, len(list(batches))  # one of the three batches is left
(torch.Size([]), 1)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from lrscope.data.batching import on_device, to_device
from lrscope.engines.base import Engine
from lrscope.engines.precision import MixedPrecision

Loss = Callable[[nn.Module, Any], torch.Tensor]  # (model, batch) -> a scalar loss tensor
# batches -> the step's loss: the plain step's own loss tensor (call .item() or .detach() on
# it), or the micro-batches' mean loss, detached; a 0-d tensor on the device either way.
Step = Callable[[Iterator[Any]], torch.Tensor]


def where_to_move(batches: Iterator[Any], engine: Engine,
                  device: torch.device) -> tuple[Iterator[Any], torch.device | None]:
    """``(batches, move_to)``: the same batches (the first one looked at and put back), and
    ``device`` when they must be moved there (None when they are there already).

    Batches are assumed to share a device: this rank's share of the first one is checked once,
    instead of a walk through every batch at every step. An empty ``batches`` raises
    StopIteration, as ``next`` does (the callers' streams never are).
    """
    first = next(batches)
    move_to = None if on_device(engine.shard(first), device) else device
    return itertools.chain([first], batches), move_to


def optimizer_step(engine: Engine, model: nn.Module, optimizer: torch.optim.Optimizer,
                   loss_of: Loss, *, move_to: torch.device | None,
                   amp: MixedPrecision | None = None, clip_grad_norm: float | None = None,
                   accumulation: int = 1) -> Step:
    """The function that runs one optimizer step of ``model`` (as ``engine.setup`` returned
    it) on the next ``accumulation`` batches it is given.

    Each micro-batch's loss is divided by ``accumulation`` before backward, so the summed
    gradients are the micro-batches' mean; ``amp`` (:class:`MixedPrecision`) gives the autocast
    and the GradScaler; ``clip_grad_norm`` clips after unscaling (None: never). The LR is the
    caller's to set before the call; ``move_to`` (from :func:`where_to_move`): the device
    every batch is moved to, None to use batches as they come.
    """
    # The base Engine's shard is the identity (one process): not called per step.
    shard = None if type(engine).shard is Engine.shard else engine.shard
    backward = engine.backward
    amp = amp if amp is not None else MixedPrecision(engine.device.type)

    if accumulation == 1 and not amp.enabled and clip_grad_norm is None:
        def plain_step(batches: Iterator[Any]) -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            batch = next(batches) if shard is None else shard(next(batches))
            if move_to is not None:
                batch = to_device(batch, move_to)
            loss = loss_of(model, batch)
            backward(loss, optimizer)
            optimizer.step()
            return loss

        return plain_step

    def general_step(batches: Iterator[Any]) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        total: torch.Tensor | None = None
        for _ in range(accumulation):
            batch = next(batches) if shard is None else shard(next(batches))
            if move_to is not None:
                batch = to_device(batch, move_to)
            with amp.autocast():
                loss = loss_of(model, batch)
            backward(amp.scale(loss if accumulation == 1 else loss / accumulation), optimizer)
            total = loss.detach() if total is None else total + loss.detach()
        amp.clip(optimizer, clip_grad_norm)
        amp.step(optimizer)
        assert total is not None
        return total if accumulation == 1 else total / accumulation

    return general_step


__all__ = ["Loss", "Step", "optimizer_step", "where_to_move"]
