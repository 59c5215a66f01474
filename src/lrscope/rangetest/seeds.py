"""Several range tests on different data orders, and one answer read from all of them.

``range_test(..., seeds=N)`` (seeds 0..N-1) or ``seeds=[s, ...]`` runs here. Every run starts
from the same state: one snapshot is taken, put back between runs and once more at the end, so
the model, optimizer and RNGs are left exactly as found and N seeds cost N runs, not N
snapshots. Each run gets its own data order:

* ``batches`` an iterable: before each run the global RNGs (torch, NumPy, ``random``) are
  seeded with the run's seed (inside :func:`lrscope.rng.preserved_rng`), so a
  ``DataLoader(shuffle=True)`` draws a different, reproducible order per seed (one with its own
  ``generator=`` draws from that instead: pass a callable); a
  :class:`~lrscope.data.tensor_batches.TensorBatches` is re-seeded (a copy with ``seed=s``).
  A fixed list gives every run the same order; a warning then says so.
* ``batches`` a callable ``seed -> iterable of batches`` (the convention of
  ``lrscope.compare``'s ``train_data``): called with each seed once the RNGs are seeded.

The combined curve is, step by step over the common LR ramp, the median of the seeds' raw
losses (a run that stopped counts as +inf from its last step on), kept while more than half
of the seeds still run, so that the median is a measured loss, never +inf: with an even
count, once half have stopped the median is the mean of a loss and +inf. The combined run
diverged where it ends short of the ramp, at the LR of its last step (where the seed that
left fewer than half running stopped), as a single run's ``diverged_at`` is the LR of its
last step; the headline is :func:`lrscope.rangetest.suggest.advise` on it.
``spread`` is the largest per-seed headline over the smallest.

>>> import torch
>>> torch.manual_seed(0) and None
>>> x = torch.randn(256, 4); y = (x.sum(1) > 0).long()
>>> model = torch.nn.Linear(4, 2)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> def batches(seed):
...     order = torch.randperm(256, generator=torch.Generator().manual_seed(seed))
...     return [(x[order[i:i + 32]], y[order[i:i + 32]]) for i in range(0, 256, 32)]
>>> from lrscope.rangetest.loop import range_test
>>> r = range_test(model, opt, torch.nn.functional.cross_entropy, batches,
...                start_lr=1e-4, end_lr=10.0, num_steps=40, seeds=3)
>>> r.seeds, len(r.runs), r.spread is not None and r.spread >= 1
((0, 1, 2), 3, True)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from torch import nn

from lrscope._checks import check_seeds
from lrscope.data.batching import check_iterable
from lrscope.data.tensor_batches import TensorBatches
from lrscope.engines import get_engine
from lrscope.errors import InputTypeError
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.smoothing import smooth
from lrscope.rangetest.state import rewindable
from lrscope.rng import preserved_rng, seed_all

RunOne = Callable[..., RangeTestResult]


def check_seeded_batches(batches: Any, count: int) -> None:
    """A callable, or an iterable that can be iterated once per seed; else one line."""
    if callable(batches) and not isinstance(batches, Iterable):
        return
    check_iterable("range_test", "batches", batches)
    if count > 1 and isinstance(batches, Iterator):
        raise InputTypeError("range_test: batches is a one-shot iterator, which the first of "
                             f"{count} seeds would use up; pass a re-iterable (a list, "
                             "DataLoader or TensorBatches) or a callable seed -> batches")


def batches_for(batches: Any, seed: int) -> Iterable[Any]:
    """The batches of the run with seed ``seed`` (the global RNGs are seeded already)."""
    if callable(batches) and not isinstance(batches, Iterable):
        made = batches(seed)
        check_iterable("range_test", f"batches({seed})", made)
        return made
    if isinstance(batches, TensorBatches):
        # Its order comes from its own seed, not from the global RNG.
        reseeded = copy.copy(batches)
        reseeded.seed = seed
        return reseeded
    return batches


def range_test_seeds(run_one: RunOne, model: nn.Module, optimizer: Any, loss_fn: Any,
                     batches: Any, seeds: int | Sequence[int], *, cache_dir: Any = None,
                     grad_scaler: Any = None, engine: Any = None, prefer: str,
                     **options: Any) -> RangeTestResult:
    """``run_one`` (the single range test) once per seed from one snapshot; the combined
    result with the per-seed ones in ``runs``. ``options`` are ``run_one``'s other arguments."""
    chosen = check_seeds("range_test", seeds)
    check_seeded_batches(batches, len(chosen))
    if isinstance(engine, str):
        engine = get_engine(engine)  # one engine for every run
    runs: list[RangeTestResult] = []
    started = time.perf_counter()
    with rewindable(model, optimizer, cache_dir=cache_dir, extra=grad_scaler) as rewind:
        for i, seed in enumerate(chosen):
            if i:
                rewind()
            with preserved_rng():
                seed_all(seed)
                runs.append(run_one(model, optimizer, loss_fn, batches_for(batches, seed),
                                    grad_scaler=grad_scaler, engine=engine, prefer=prefer,
                                    _restored_by_caller=True, **options))
    return combine(runs, chosen, prefer, time.perf_counter() - started)


def combine(runs: Sequence[RangeTestResult], seeds: Sequence[int], prefer: str,
            elapsed_s: float = 0.0) -> RangeTestResult:
    """The result read off the median curve of ``runs`` (one per seed, same ramp)."""
    lrs, losses, length = median_curve(runs)
    first = runs[0]
    planned = first.num_steps if first.num_steps is not None else max(r.steps for r in runs)
    diverged = length < planned or (length > 0 and not np.isfinite(losses[-1]))
    spread, warnings = headline_spread(runs, seeds)
    if len(runs) > 1 and all(np.array_equal(r.losses, first.losses, equal_nan=True)
                             for r in runs[1:]):
        warnings.append(f"range_test: the {len(runs)} seeds gave the same curve: the batches "
                        "do not depend on the seed (a fixed list?); pass a "
                        "DataLoader(shuffle=True) or a callable seed -> batches")
    return RangeTestResult.from_curve(
        lrs, losses, smooth(losses, first.beta), diverged=diverged, prefer=prefer,
        planned_steps=planned, reason_prefix=f"median of {len(runs)} seeds; ",
        warnings=warnings, val_losses=median_validation(runs, length),
        start_lr=first.start_lr, end_lr=first.end_lr, num_steps=first.num_steps,
        mode=first.mode, beta=first.beta, diverge_th=first.diverge_th,
        accumulation_steps=first.accumulation_steps, batch_size=first.batch_size,
        engine=first.engine, world_size=first.world_size, elapsed_s=elapsed_s,
        runs=tuple(runs), seeds=tuple(seeds), spread=spread)


def common_length(lengths: Sequence[int]) -> int:
    """Steps of the combined curve: the last step where more than half the runs still run
    (the median of the losses, a stopped run counting as +inf, is finite up to there).

    >>> common_length([100, 61, 61]), common_length([100, 40]), common_length([9, 5, 7, 3])
    (61, 40, 5)
    """
    ordered = sorted(lengths, reverse=True)
    # The median of n values is finite while at most (n - 1) // 2 are +inf, that is while
    # n // 2 + 1 runs still run: the (n // 2 + 1)-th longest run's length.
    return ordered[len(ordered) // 2] if ordered else 0


def loss_matrix(runs: Sequence[RangeTestResult], length: int) -> np.ndarray:
    """The runs' raw losses over the first ``length`` steps, one row per run; a blown-up loss
    (NaN or inf) and every step after a run stopped is +inf, so that it sorts above all."""
    matrix = np.full((len(runs), length), np.inf)
    for row, run in zip(matrix, runs, strict=True):
        values = run.losses[:length]
        row[:len(values)] = np.where(np.isnan(values), np.inf, values)
    return matrix


def median_curve(runs: Sequence[RangeTestResult]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(lrs, median losses, steps)`` of the combined curve (see the module docstring)."""
    length = common_length([r.steps for r in runs])
    longest = max(runs, key=lambda r: r.steps)
    return longest.lrs[:length].copy(), np.median(loss_matrix(runs, length), axis=0), length


def median_validation(runs: Sequence[RangeTestResult], length: int) -> np.ndarray | None:
    """The median validation loss of the runs that measured it at each step (NaN where none
    did), or None without validation."""
    if any(r.val_losses is None for r in runs):
        return None
    matrix = np.full((len(runs), length), np.nan)
    for row, run in zip(matrix, runs, strict=True):
        assert run.val_losses is not None
        values = run.val_losses[:length]
        row[:len(values)] = values
    out = np.full(length, np.nan)
    measured = np.isfinite(matrix).any(axis=0)
    for step in np.flatnonzero(measured):
        column = matrix[:, step]
        out[step] = np.median(column[np.isfinite(column)])
    return out


def headline_spread(runs: Sequence[RangeTestResult],
                    seeds: Sequence[int]) -> tuple[float | None, list[str]]:
    """max/min of the runs' headlines, and the warning when a seed has none (spread None)."""
    missing = [seed for seed, run in zip(seeds, runs, strict=True) if run.suggestion is None]
    if missing:
        which = ", ".join(str(s) for s in missing)
        return None, [f"range_test: no spread: seed {which} gave no suggestion (the loss never "
                      "fell on that data order)"]
    headlines = [float(run.suggestion) for run in runs if run.suggestion is not None]
    return max(headlines) / min(headlines), []


__all__ = ["batches_for", "combine", "range_test_seeds"]
