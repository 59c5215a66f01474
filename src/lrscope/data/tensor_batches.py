"""Batches straight from in-memory tensors, in a seeded order.

A DataLoader with workers costs more than the model on data this small; indexing tensors with a
permutation from a seeded ``torch.Generator`` gives the same batches for the same seed, which is
what the paired design of a study needs (every schedule sees the same data order).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch


class TensorBatches:
    """Epoch after epoch of shuffled batches of ``(x, y)``.

    ``iter(b)`` yields one epoch; :meth:`steps` yields ``n`` batches across as many epochs as
    needed. Epoch ``e`` uses the permutation from a generator seeded from ``(seed, e)`` and no
    shared state, so epoch ``e`` of seed ``s`` is the same whoever asks and in whatever order.

    >>> x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    >>> b = TensorBatches(x, y, batch_size=4, seed=0)
    >>> len(b), [len(t) for t, _ in b]
    (3, [4, 4, 2])
    >>> [yy.tolist() for _, yy in b.epoch(0)] == [yy.tolist() for _, yy in b.epoch(0)]
    True
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int | None = 0,
                 drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be >= 1")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.seed, self.drop_last = seed, drop_last

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if self.seed is None:
            return torch.arange(len(self.x))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(len(self.x), generator=generator)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The permutation is drawn on the CPU (the same order on every device), moved once.
        order = self.order(epoch).to(self.x.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(0)

    def steps(self, n: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``n`` batches from global step ``start`` on, crossing epochs as needed."""
        per_epoch = len(self)
        epochs = itertools.count(start // per_epoch)
        batches = itertools.chain.from_iterable(self.epoch(e) for e in epochs)
        return itertools.islice(batches, start % per_epoch, start % per_epoch + n)
