"""torch-lr-finder 0.2.2's API on lrscope's range test: change only the import.

``LRFinder.range_test`` runs :func:`lrscope.range_test` (its loop, accumulation, GradScaler and
the restore in a ``finally``) and records ``history`` with torch-lr-finder's numbers: every
param group's LR ramps from its start to ``end_lr`` over ``num_iter`` points, both ends
included (``"exp"`` or ``"linear"``, the same floats torch-lr-finder computes); group 0's LR is
recorded; the loss (the validation loss when ``val_loader`` is given, measured over the whole
loader after every step) is smoothed as ``smooth_f * loss + (1 - smooth_f) * previous``, and
the run stops after the first point above ``diverge_th`` x the best one. The model trains in
train mode (``model.train()`` at every step) and is evaluated in eval mode, as there.

What lrscope adds, invisible to code written for torch-lr-finder: the model (weights, buffers,
grads, device, train/eval flags), the optimizer (state, the very param-group dicts), the
GradScaler and the global RNGs are as they were after every ``range_test`` (``reset()`` still
works); a NaN or infinite loss ends the run at that point; a second ``range_test`` needs no
``reset()``; ``.result`` is lrscope's :class:`~lrscope.rangetest.result.RangeTestResult` (raw
and debiased-smoothed training losses, lrscope's suggestion rules). It prints nothing.

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> g = torch.Generator().manual_seed(0)
>>> data = TensorDataset(torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g))
>>> model = torch.nn.Linear(4, 1)
>>> optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
>>> lr_finder = LRFinder(model, optimizer, torch.nn.MSELoss())
>>> lr_finder.range_test(DataLoader(data, batch_size=8), end_lr=1, num_iter=20)
>>> len(lr_finder.history["lr"]), lr_finder.history["lr"][0], lr_finder.history["lr"][-1]
(20, 0.0001, 1.0)
>>> lr_finder.reset()
>>> optimizer.param_groups[0]["lr"], lr_finder.result.steps
(0.0001, 20)
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrscope._checks import check_number
from lrscope.compat._loaders import (
    DataLoaderIter,
    TrainDataLoaderIter,
    ValDataLoaderIter,
    train_iter_for,
    val_iter_for,
)
from lrscope.compat._plot import plot_history
from lrscope.data.batching import examples_in
from lrscope.data.evaluation import evaluate_pairs
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.loop import range_test as lrscope_range_test
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.state import (
    preserved,
    restore,
    snapshot,
    snapshot_from_disk,
    snapshot_to_disk,
)
from lrscope.rng import RngState

# lrscope's own divergence rule is switched off (torch-lr-finder's is applied here); a finite
# factor, so that a best loss of exactly 0 gives a limit of 0, not inf x 0 = NaN.
_NEVER_DIVERGES = 1e300


class _StopEarly(Exception):
    """Raised by the callback to end the run (torch-lr-finder's stop rule); caught here."""


class LRFinder:
    """torch-lr-finder's ``LRFinder(model, optimizer, criterion, device=None, ...)``.

    ``device``: where the test runs (the model is moved there and back). ``memory_cache=False``
    keeps the snapshots in files in ``cache_dir`` (default: the temp folder). ``amp_backend=
    "torch"`` runs forward and criterion under ``torch.autocast(**amp_config)`` and needs a
    ``grad_scaler`` (a ``torch.amp.GradScaler``); ``"apex"`` is not supported.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: Any,
                 device: str | torch.device | None = None, memory_cache: bool = True,
                 cache_dir: str | None = None, amp_backend: str | None = None,
                 amp_config: dict[str, Any] | None = None, grad_scaler: Any | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise InputTypeError(f"LRFinder: model must be a torch nn.Module, not "
                                 f"{type(model).__name__}")
        if amp_backend == "torch" and grad_scaler is None:
            raise InputError("`grad_scaler` is required when using `torch.amp`")
        if amp_backend == "apex":
            raise InputError("amp_backend='apex' is not supported by lrscope; use "
                             "amp_backend='torch' with a torch.amp.GradScaler")
        if amp_backend not in (None, "torch"):
            raise InputError(f"Unknown amp backend: {amp_backend}")
        if not memory_cache:
            cache_dir = tempfile.gettempdir() if cache_dir is None else cache_dir
            if not os.path.isdir(cache_dir):
                raise InputError("Given `cache_dir` is not a valid directory.")
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.history: dict[str, list[float]] = {"lr": [], "loss": []}
        self.best_loss: float | None = None
        self.memory_cache, self.cache_dir = memory_cache, cache_dir
        self.amp_backend, self.amp_config, self.grad_scaler = amp_backend, amp_config, grad_scaler
        first = next(model.parameters(), None)
        self.model_device = first.device if first is not None else torch.device("cpu")
        self.device = device if device else self.model_device
        self.result: RangeTestResult | None = None
        # reset() goes back to the state at construction, as torch-lr-finder's does.
        self._initial = snapshot(model, optimizer)
        self._initial_file: Path | None = None
        if not memory_cache:
            assert cache_dir is not None
            self._initial_file = snapshot_to_disk(self._initial, Path(cache_dir))
            weakref.finalize(self, self._initial_file.unlink, missing_ok=True)

    def reset(self) -> None:
        """Restore the model and optimizer to their state when this finder was made (the
        global RNGs are left as they are)."""
        initial = self._initial
        if self._initial_file is not None:
            initial = snapshot_from_disk(initial, self._initial_file)
        restore(replace(initial, rng=RngState.capture()), self.model, self.optimizer)

    def range_test(self, train_loader: Any, val_loader: Any = None,
                   start_lr: float | list[float] | None = None, end_lr: float = 10,
                   num_iter: int = 100, step_mode: str = "exp", smooth_f: float = 0.05,
                   diverge_th: float = 5, accumulation_steps: int = 1,
                   non_blocking_transfer: bool = True) -> None:
        """Run the range test; read ``history`` (and ``result``) afterwards.

        ``train_loader``/``val_loader``: DataLoaders, or TrainDataLoaderIter/ValDataLoaderIter
        (subclasses) for other batches. ``non_blocking_transfer`` is accepted; batches are
        always moved with ``non_blocking=True``. The model and optimizer are restored after.
        """
        self.history, self.best_loss = {"lr": [], "loss": []}, None
        mode = step_mode.lower() if isinstance(step_mode, str) else step_mode
        if mode not in ("exp", "linear"):
            raise InputError(f"expected one of (exp, linear), got {step_mode}")
        if isinstance(num_iter, bool) or not isinstance(num_iter, int):
            raise InputTypeError(f"`num_iter` must be an integer, not {num_iter!r}")
        if num_iter <= 1:
            raise InputError("`num_iter` must be larger than 1")
        check_number("range_test", "smooth_f", smooth_f)
        if not 0 <= smooth_f < 1:
            raise InputError("smooth_f is outside the range [0, 1[")
        check_number("range_test", "end_lr", end_lr)
        check_number("range_test", "diverge_th", diverge_th)
        train_iter, val_iter = train_iter_for(train_loader), val_iter_for(val_loader)
        run = _Run(self, _lr_table(self._start_lrs(start_lr), float(end_lr), num_iter, mode),
                   val_iter, smooth_f, diverge_th)
        self.history = run.history  # filled as the run goes, kept when it stops or fails
        started = time.perf_counter()
        cache_dir = None if self.memory_cache else self.cache_dir
        with self._on_device(cache_dir), contextlib.suppress(_StopEarly):
            lrscope_range_test(
                self.model, self.optimizer, None, train_iter, start_lr=run.table[0][0],
                end_lr=float(end_lr), num_steps=num_iter, mode=mode, step_fn=run.score,
                beta=run.beta, diverge_th=_NEVER_DIVERGES, accumulation_steps=accumulation_steps,
                callback=run.record, cache_dir=cache_dir, _set_lrs=run.set_lrs,
                grad_scaler=self.grad_scaler if self.amp_backend == "torch" else None)
        self.best_loss = run.best
        self.result = run.result(float(end_lr), mode, float(diverge_th), accumulation_steps,
                                 time.perf_counter() - started)

    def plot(self, skip_start: int = 10, skip_end: int = 5, log_lr: bool = True,
             show_lr: float | None = None, ax: Any | None = None,
             suggest_lr: bool = True) -> Any:
        """Loss against LR without the first ``skip_start`` and last ``skip_end`` points; the
        axes, or ``(axes, suggested_lr)`` with ``suggest_lr`` (the steepest plotted point).
        Without ``ax`` a new figure is made and shown."""
        return plot_history(self.history, skip_start, skip_end, log_lr, show_lr, ax, suggest_lr)

    def _start_lrs(self, start_lr: Any) -> list[float]:
        groups = self.optimizer.param_groups
        if start_lr is None:
            return [float(group["lr"]) for group in groups]
        if isinstance(start_lr, (list, tuple)):
            if len(start_lr) != len(groups):
                raise InputError("Length of `new_lrs` is not equal to the number of parameter "
                                 "groups in the given optimizer")
            return [float(lr) for lr in start_lr]
        check_number("range_test", "start_lr", start_lr)
        return [float(start_lr)] * len(groups)

    @contextlib.contextmanager
    def _on_device(self, cache_dir: str | None) -> Iterator[None]:
        """Move the model to ``self.device`` for the test and back after (with everything
        else, restored from a snapshot taken before the move)."""
        target = torch.empty(0, device=self.device).device  # "cuda" -> cuda:0
        if all(p.device == target for p in self.model.parameters()):
            yield
            return
        with preserved(self.model, self.optimizer, cache_dir=cache_dir):
            self.model.to(target)
            for state in self.optimizer.state.values():  # momentum etc. follow the parameters
                for key, value in state.items():
                    if torch.is_tensor(value) and key != "step":
                        state[key] = value.to(target)
            yield


def _lr_table(starts: list[float], end: float, num_iter: int, mode: str) -> list[list[float]]:
    """Each step's LR for each group: from its start to ``end`` over ``num_iter`` points."""
    rows = []
    for step in range(num_iter):
        r = step / (num_iter - 1)
        if mode == "linear":
            rows.append([start + r * (end - start) for start in starts])
        else:  # a group at LR 0 stays there (torch-lr-finder divides by it)
            rows.append([start * (end / start) ** r if start > 0 else start for start in starts])
    return rows


class _Run:
    """One range test's LR setter, step function and callback, and what they record."""

    def __init__(self, finder: LRFinder, table: list[list[float]],
                 val_iter: ValDataLoaderIter | None, smooth_f: float, diverge_th: float) -> None:
        self.finder, self.table, self.val_iter = finder, table, val_iter
        self.smooth_f, self.diverge_th = smooth_f, diverge_th
        self.beta = 1.0 - smooth_f if smooth_f > 0 else 0.0  # lrscope's EMA of the same weight
        self.history: dict[str, list[float]] = {"lr": [], "loss": []}
        self.best: float | None = None
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.val_losses: list[float] = []
        self.stopped = False
        self.batch_size: int | None = None
        self.amp_config: dict[str, Any] | None = None
        if finder.amp_backend == "torch":
            self.amp_config = finder.amp_config or {"device_type": torch.device(finder.device).type}

    def set_lrs(self, step: int) -> float:
        """Step ``step``'s LRs, torch-lr-finder's: every group on its own ramp (the range
        test's LR hook); group 0's is the one recorded."""
        row = self.table[step]
        for group, lr in zip(self.finder.optimizer.param_groups, row, strict=True):
            group["lr"] = lr
        return row[0]

    def score(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """One micro-batch's loss, as torch-lr-finder computes it (train mode, autocast)."""
        if self.batch_size is None:
            self.batch_size = examples_in(batch)
        inputs, labels = batch
        model.train()
        with (contextlib.nullcontext() if self.amp_config is None
              else torch.autocast(**self.amp_config)):
            loss: torch.Tensor = self.finder.criterion(model(inputs), labels)
        return loss

    def record(self, step: int, lr: float, loss: float, smoothed: float) -> None:
        """After each step: torch-lr-finder's smoothing and stop rule on its loss."""
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        value = loss
        if self.val_iter is not None:
            finder = self.finder
            value = evaluate_pairs(finder.model, self.val_iter, finder.criterion,
                                   torch.device(finder.device))[0]
            self.val_losses.append(value)
        if self.best is None:
            self.best = value
        else:
            if self.smooth_f > 0:
                value = self.smooth_f * value + (1 - self.smooth_f) * self.history["loss"][-1]
            if value < self.best:
                self.best = value
        self.history["lr"].append(self.table[step][0])
        self.history["loss"].append(value)
        if not math.isfinite(value) or value > self.diverge_th * self.best:
            self.stopped = True
            raise _StopEarly

    def result(self, end_lr: float, mode: str, diverge_th: float, accumulation: int,
               elapsed: float) -> RangeTestResult:
        num_iter = len(self.table)
        lrs = self.history["lr"]
        return RangeTestResult.from_curve(
            lrs, self.losses, self.smoothed, diverged=self.stopped or len(lrs) < num_iter,
            val_losses=None if self.val_iter is None else np.array(self.val_losses),
            start_lr=self.table[0][0], end_lr=end_lr, num_steps=num_iter, mode=mode,
            beta=self.beta, diverge_th=diverge_th, accumulation_steps=accumulation,
            batch_size=self.batch_size, engine="local", world_size=1, elapsed_s=elapsed)


__all__ = ["DataLoaderIter", "LRFinder", "TrainDataLoaderIter", "ValDataLoaderIter"]
