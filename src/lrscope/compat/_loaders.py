"""torch-lr-finder's loader iterators: a DataLoader's batches as ``(inputs, labels)`` pairs.

Users subclass :class:`TrainDataLoaderIter` or :class:`ValDataLoaderIter` and override
``inputs_labels_from_batch`` for batches that are not ``(inputs, labels, *rest)`` tuples
(dicts, say). The range test reads every batch through one of them, as torch-lr-finder does.

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(torch.zeros(6, 2), torch.ones(6)), batch_size=4)
>>> train = TrainDataLoaderIter(loader)
>>> [len(next(train)[1]) for _ in range(3)]  # starts the loader again when it runs out
[4, 2, 4]
>>> val = ValDataLoaderIter(loader)
>>> [len(labels) for _, labels in val], [len(labels) for _, labels in val]
([4, 2], [4, 2])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from lrscope.errors import InputError, InputTypeError


class DataLoaderIter:
    """Iterate ``data_loader`` and give each batch as ``inputs_labels_from_batch(batch)``."""

    def __init__(self, data_loader: Any) -> None:
        self.data_loader = data_loader
        self._iterator: Iterator[Any] = iter(data_loader)

    @property
    def dataset(self) -> Any:
        return self.data_loader.dataset

    def inputs_labels_from_batch(self, batch_data: Any) -> tuple[Any, Any]:
        """``(inputs, labels)`` of one batch: its first two items. Override for other batches."""
        if not isinstance(batch_data, (list, tuple)):
            raise InputError(
                f"Your batch type is not supported: {type(batch_data)}. Please inherit from "
                "`TrainDataLoaderIter` or `ValDataLoaderIter` and override the "
                "`inputs_labels_from_batch` method.")
        inputs, labels, *_ = batch_data
        return inputs, labels

    def __iter__(self) -> DataLoaderIter:
        return self

    def __next__(self) -> tuple[Any, Any]:
        return self.inputs_labels_from_batch(next(self._iterator))


class TrainDataLoaderIter(DataLoaderIter):
    """Training batches without end: the loader starts again when it runs out (``auto_reset``;
    with ``auto_reset=False`` it raises StopIteration instead)."""

    def __init__(self, data_loader: Any, auto_reset: bool = True) -> None:
        super().__init__(data_loader)
        self.auto_reset = auto_reset

    def __next__(self) -> tuple[Any, Any]:
        try:
            batch = next(self._iterator)
        except StopIteration:
            if not self.auto_reset:
                raise
            self._iterator = iter(self.data_loader)
            batch = next(self._iterator)
        return self.inputs_labels_from_batch(batch)


class ValDataLoaderIter(DataLoaderIter):
    """Validation batches, one pass at a time: it behaves like a DataLoader and starts again
    only when ``iter()`` is called on it after a pass ran out (a ``for`` loop does that)."""

    def __init__(self, data_loader: Any) -> None:
        super().__init__(data_loader)
        self.run_limit = len(self.data_loader)
        self.run_counter = 0

    def __iter__(self) -> ValDataLoaderIter:
        if self.run_counter >= self.run_limit:
            self._iterator = iter(self.data_loader)
            self.run_counter = 0
        return self

    def __next__(self) -> tuple[Any, Any]:
        self.run_counter += 1
        return super().__next__()


def train_iter_for(train_loader: Any) -> TrainDataLoaderIter:
    """A DataLoader wrapped in a TrainDataLoaderIter, or the user's own (subclass) as it is."""
    return _wrapped(train_loader, "train_loader", TrainDataLoaderIter)


def val_iter_for(val_loader: Any) -> ValDataLoaderIter | None:
    """As :func:`train_iter_for`, for the validation loader (None stays None)."""
    return None if val_loader is None else _wrapped(val_loader, "val_loader", ValDataLoaderIter)


def _wrapped(loader: Any, name: str, kind: type[Any]) -> Any:
    if isinstance(loader, DataLoader):
        return kind(loader)
    if isinstance(loader, kind):
        return loader
    raise InputTypeError(
        f"`{name}` has unsupported type: {type(loader)}. Expected types are "
        f"`torch.utils.data.DataLoader` or child of `{kind.__name__}`.")
