"""Small helpers for "any iterable of batches": cycling it, moving it to a device, sizing it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from lrscope.data.tasks.batches import TensorBatches
from lrscope.errors import InputError


def batch_stream(batches: Iterable[Any], count: int) -> Iterator[Any]:
    """``count`` batches from ``batches``, starting it again each time it runs out.

    A :class:`~lrscope.data.tasks.batches.TensorBatches` continues with its next (differently
    shuffled) epoch; any other iterable is iterated again. A one-shot iterator that runs out
    raises :class:`~lrscope.errors.InputError` saying how many batches it gave.

    >>> list(batch_stream([1, 2], 5))
    [1, 2, 1, 2, 1]
    >>> list(batch_stream(iter([1, 2]), 3))
    Traceback (most recent call last):
    lrscope.errors.InputError: batches: ran out after 2 batches and cannot be iterated again \
(3 needed); pass a re-iterable (a list, TensorBatches or DataLoader) or ask for fewer steps
    """
    if isinstance(batches, TensorBatches):
        return batches.steps(count)
    return _cycle(batches, count)


def _cycle(batches: Iterable[Any], count: int) -> Iterator[Any]:
    given = 0
    while given < count:
        before = given
        for batch in batches:
            yield batch
            given += 1
            if given == count:
                return
        if given == before:
            raise InputError(
                f"batches: ran out after {given} batches and cannot be iterated again "
                f"({count} needed); pass a re-iterable (a list, TensorBatches or DataLoader) "
                "or ask for fewer steps"
            )


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor inside (tuples, lists, dicts, nested) moved to ``device``.

    >>> b = to_device({"x": torch.ones(1), "n": [torch.zeros(1), 3]}, torch.device("cpu"))
    >>> b["x"].device.type, b["n"][1]
    ('cpu', 3)
    """
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, tuple):
        items = [to_device(item, device) for item in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else tuple(items)
    if isinstance(batch, list):
        return [to_device(item, device) for item in batch]
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


def on_device(batch: Any, device: torch.device) -> bool:
    """True when every tensor in ``batch`` already lives on ``device``.

    >>> on_device((torch.ones(1), [torch.ones(1), "id"]), torch.device("cpu"))
    True
    """
    if isinstance(batch, torch.Tensor):
        return batch.device == device
    if isinstance(batch, (tuple, list)):
        return all(on_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return all(on_device(item, device) for item in batch.values())
    return True


def batch_size_of(batch: Any) -> int | None:
    """Number of examples in ``batch``: the first dimension of its first tensor, else None.

    >>> batch_size_of((torch.zeros(8, 3), torch.zeros(8)))
    8
    >>> batch_size_of({"ids": torch.zeros(4, 2)})
    4
    >>> batch_size_of("text") is None
    True
    """
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else None
    if isinstance(batch, (tuple, list)):
        items: Iterable[Any] = batch
    elif isinstance(batch, dict):
        items = batch.values()
    else:
        return None
    for item in items:
        size = batch_size_of(item)
        if size is not None:
            return size
    return None
