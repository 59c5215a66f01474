"""Small helpers for "any iterable of batches": checking it, cycling it, moving it to a device,
counting its examples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from lrscope.data.tensor_batches import TensorBatches
from lrscope.errors import InputError, InputTypeError


def check_iterable(where: str, name: str, value: Any) -> None:
    """Raise InputTypeError, naming the argument, unless ``value`` can be iterated.

    Called before any step, so that a wrong argument fails at once and not mid-run.

    >>> check_iterable("range_test", "val_batches", 3)
    Traceback (most recent call last):
    lrscope.errors.InputTypeError: range_test: val_batches must be an iterable of batches (a \
list, DataLoader or generator), not int
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InputTypeError(f"{where}: {name} must be an iterable of batches (a list, "
                             f"DataLoader or generator), not {type(value).__name__}")


def batch_stream(batches: Iterable[Any], count: int) -> Iterator[Any]:
    """``count`` batches from ``batches``, starting it again each time it runs out.

    A :class:`~lrscope.data.tensor_batches.TensorBatches` continues with its next (differently
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
    if isinstance(batches, (list, tuple)) and len(batches) >= count:
        return iter(batches[:count])  # the same batches, without a generator step per batch
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


def examples_in(batch: Any) -> int | None:
    """How many examples ``batch`` holds: the length of its targets.

    For ``(inputs, targets, *extras)`` that is ``len(targets)`` (a sequence-first ``(T, B, F)``
    input has B examples, not T); for a dict, its ``labels`` (or ``label``, ``targets``, ``y``)
    entry; otherwise the first dimension of its first tensor. None when nothing tells.

    >>> examples_in((torch.zeros(7, 4, 3), torch.zeros(4)))
    4
    >>> examples_in({"input_ids": torch.zeros(2, 9), "labels": torch.zeros(2, 9)})
    2
    >>> examples_in(torch.zeros(5, 2)), examples_in("text") is None
    (5, True)
    """
    if isinstance(batch, (tuple, list)) and len(batch) >= 2 and _length(batch[1]) is not None:
        return _length(batch[1])
    if isinstance(batch, dict):
        for key in ("labels", "label", "targets", "y"):
            if _length(batch.get(key)) is not None:
                return _length(batch[key])
    return _first_length(batch)


def _length(value: Any) -> int | None:
    if isinstance(value, torch.Tensor):
        return int(value.shape[0]) if value.dim() > 0 else None
    return None


def _first_length(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return _length(batch)
    items: Iterable[Any]
    if isinstance(batch, (tuple, list)):
        items = batch
    elif isinstance(batch, dict):
        items = batch.values()
    else:
        return None
    for item in items:
        size = _first_length(item)
        if size is not None:
            return size
    return None
