"""The range tests of the suggestion harness and the peers' rules read off torch-lr-finder's curve.

Both range tests see the same batches (a seeded order of the task's training set: the
range-test seed), the same initial weights (seed 0) and the same ramp (``start_lr`` to
``end_lr`` over ``steps`` optimizer steps, exponential). Peers' rules:

* torch-lr-finder 0.2.2 (PyPI): ``LRFinder.range_test`` at its defaults otherwise (smooth_f
  0.05, diverge_th 5) and its own suggestion, ``plot(suggest_lr=True)`` (steepest gradient
  after skipping 10 points at the start and 5 at the end).
* fastai's ``valley`` (the default of ``Learner.lr_find`` since fastai 2.5), on the same
  curve trimmed as ``lr_find`` trims it (``[num_it//10:-5]``, cut at the first NaN); written
  from fastai's source, fastai/callback/schedule.py:
  https://github.com/fastai/fastai/blob/master/fastai/callback/schedule.py (``valley``,
  ``lr_find``).
* Lightning's ``_LRFinder.suggestion(skip_begin=10, skip_end=1)``: the steepest gradient of the
  loss against the LR itself (``torch.gradient(losses, spacing=[lrs])``, not log LR) over the
  finite points; written from lightning/pytorch/tuner/lr_finder.py (lightning 2.6.6),
  https://github.com/Lightning-AI/pytorch-lightning/blob/master/src/lightning/pytorch/tuner/lr_finder.py
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: torch-lr-finder's plot() returns its suggestion
import matplotlib.pyplot as plt
import torch
from suggestion_tasks import BenchTask
from suggestion_training import fresh_model, train_batches
from torch_lr_finder import LRFinder, TrainDataLoaderIter

import lrscope

RANGE_INIT_SEED = 0  # every range test starts from the same weights; seeds vary the data order


def _range_batches(task: BenchTask, seed: int, steps: int) -> list[Any]:
    return list(train_batches(task, seed).steps(steps))


def lrscope_curve(task: BenchTask, seed: int, start_lr: float, end_lr: float,
                  steps: int) -> dict[str, Any]:
    """lrscope.range_test on the task: its curve, every rule's answer and the headline."""
    model = fresh_model(task, RANGE_INIT_SEED)
    opt = task.make_optimizer(model.parameters(), start_lr)
    result = lrscope.range_test(model, opt, task.loss_fn, _range_batches(task, seed, steps),
                                start_lr=start_lr, end_lr=end_lr, num_steps=steps)
    return {
        "lrs": result.lrs.tolist(), "losses": result.losses.tolist(),
        "smoothed": result.smoothed.tolist(),
        "suggestion": result.suggestion, "rule": result.rule,
        "suggestions": dict(result.suggestions), "stopped": result.stopped,
        "warnings": list(getattr(result, "warnings", ()) or ()),
    }


def lrscope_seeds_headline(task: BenchTask, seeds: list[int], start_lr: float, end_lr: float,
                           steps: int) -> float | None:
    """The headline of ``lrscope.range_test(..., seeds=seeds)`` (what ``lrscope find --seeds N``
    gives): one range test per data order, the rules read off their combined curve."""
    model = fresh_model(task, RANGE_INIT_SEED)
    opt = task.make_optimizer(model.parameters(), start_lr)
    result = lrscope.range_test(model, opt, task.loss_fn,
                                lambda seed: _range_batches(task, seed, steps),
                                start_lr=start_lr, end_lr=end_lr, num_steps=steps, seeds=seeds)
    return result.suggestion


class BatchIter(TrainDataLoaderIter):  # type: ignore[misc]
    """A torch-lr-finder TrainDataLoaderIter over a fixed list of batches (restarting at the end,
    as its auto_reset does), so that it sees exactly lrscope's batches."""

    def __init__(self, batches: list[Any]) -> None:  # no DataLoader: its __init__ is skipped
        self.data_loader, self._iterator, self.auto_reset = batches, iter(batches), True


def torch_lr_finder_curve(task: BenchTask, seed: int, start_lr: float, end_lr: float,
                          steps: int) -> dict[str, Any]:
    """torch-lr-finder's range test on the same batches, weights and ramp, and its suggestion."""
    model = fresh_model(task, RANGE_INIT_SEED)
    opt = task.make_optimizer(model.parameters(), start_lr)
    finder = LRFinder(model, opt, task.loss_fn, device="cpu")
    quiet = io.StringIO()  # its progress bar and prints
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        finder.range_test(BatchIter(_range_batches(task, seed, steps)), start_lr=start_lr,
                          end_lr=end_lr, num_iter=steps)
        lrs = [float(v) for v in finder.history["lr"]]
        losses = [float(v) for v in finder.history["loss"]]
        fig, ax = plt.subplots()
        try:
            _, own = finder.plot(suggest_lr=True, ax=ax)
            own_lr: float | None = float(own)
        except RuntimeError:  # "Need at least 17 iterations to suggest": no answer
            own_lr = None
        finally:
            plt.close(fig)
    return {"lrs": lrs, "losses": losses, "torch-lr-finder": own_lr,
            "fastai-valley": fastai_valley(lrs, losses), "lightning": lightning_rule(lrs, losses)}


def fastai_valley(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """fastai's ``lr_find`` default suggestion: trim ``[num_it//10:-5]``, cut at the first NaN,
    then ``valley``: the longest decreasing subsequence (by its O(n^2) loop, ties and all),
    read at ``max_start + int(sections) + int(sections / 2)`` with sections = its length / 3.

    >>> import numpy as np
    >>> lrs = list(np.logspace(-4, 0, 40)); losses = [2.0 - i / 40 for i in range(40)]
    >>> round(fastai_valley(lrs, losses), 6)  # 31 kept; fastai's max_start is -1: index 14
    0.007017
    """
    n_it = len(lrs)
    x = list(lrs[n_it // 10:n_it - 5])
    y = list(losses[n_it // 10:n_it - 5])
    nan = [i for i, v in enumerate(y) if math.isnan(v)]
    if nan:
        x, y = x[:nan[0]], y[:nan[0]]
    n = len(y)
    if n == 0:
        return None
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(x[max_start + int(sections) + int(sections / 2)])


def lightning_rule(lrs: Sequence[float], losses: Sequence[float], skip_begin: int = 10,
                   skip_end: int = 1) -> float | None:
    """Lightning's ``_LRFinder.suggestion``: argmin of d(loss)/d(lr) over the finite points of
    ``[skip_begin:-skip_end]``; None with fewer than 2.

    >>> import numpy as np
    >>> lrs = list(np.linspace(0.1, 1.0, 20)); losses = [1 - v ** 2 for v in lrs]
    >>> bool(lightning_rule(lrs, losses) == lrs[-2])  # steepest against the LR: the last kept point
    True
    """
    y = torch.tensor(list(losses)[skip_begin:-skip_end], dtype=torch.float64)
    x = torch.tensor(list(lrs)[skip_begin:-skip_end], dtype=torch.float64)
    finite = torch.isfinite(y)
    y, x = y[finite], x[finite]
    if len(y) < 2:
        return None
    gradients = torch.gradient(y, spacing=[x])[0]
    return float(x[int(torch.argmin(gradients))])
