"""The LR range test: raise the LR step by step, watch the loss, suggest an LR, restore all.

>>> import torch
>>> torch.manual_seed(0) and None
>>> x = torch.randn(256, 4); y = (x.sum(1) > 0).long()
>>> model = torch.nn.Linear(4, 2)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
>>> before = {k: v.clone() for k, v in model.state_dict().items()}
>>> r = range_test(model, opt, torch.nn.functional.cross_entropy, batches,
...                start_lr=1e-4, end_lr=10.0, num_steps=40)
>>> r.steps, r.stopped, r.rule, r.suggestion is not None
(40, 'completed', 'below_minimum', True)
>>> all(torch.equal(before[k], v) for k, v in model.state_dict().items())
True
>>> opt.param_groups[0]["lr"]
0.1
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrscope._checks import check_choice, check_int, check_number, check_positive
from lrscope.data.batching import (
    batch_stream,
    check_iterable,
    examples_in,
    to_device,
)
from lrscope.data.evaluation import Totals, evaluating
from lrscope.data.scoring import LossFn, Scorer, StepFn, make_scorer
from lrscope.engines import get_engine
from lrscope.engines.base import Engine
from lrscope.engines.local import LocalEngine
from lrscope.engines.precision import MixedPrecision
from lrscope.engines.step import optimizer_step, where_to_move
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.result import RangeTestResult, Stopped
from lrscope.rangetest.settings import DEFAULT_NUM_STEPS
from lrscope.rangetest.settings import RANGE_TEST_DEFAULTS as DEFAULTS
from lrscope.rangetest.smoothing import DebiasedEMA, divergence_limit
from lrscope.rangetest.state import preserved
from lrscope.rangetest.suggest import check_prefer
from lrscope.schedules.ramp import Ramp
from lrscope.schedules.torch_adapter import group_ratios, reference_lr

Callback = Callable[[int, float, float, float], None]
SetLrs = Callable[[int], float]  # step -> sets every group's LR of that step; the LR recorded


def range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn | None,
    batches: Iterable[Any],
    start_lr: float | None = DEFAULTS.start,
    end_lr: float = DEFAULTS.end,
    num_steps: int | None = DEFAULTS.steps,
    mode: str = DEFAULTS.mode,
    *,
    epochs: int | None = None,
    step_fn: StepFn | None = None,
    beta: float = DEFAULTS.beta,
    diverge_th: float = DEFAULTS.diverge_th,
    accumulation_steps: int = DEFAULTS.accumulation_steps,
    val_batches: Iterable[Any] | None = None,
    val_every: int | None = DEFAULTS.val_every,
    engine: Engine | str | None = None,
    callback: Callback | None = None,
    prefer: str = DEFAULTS.prefer,
    precision: str | None = None,
    grad_scaler: Any | None = None,
    clip_grad_norm: float | None = None,
    cache_dir: str | Path | None = None,
    seeds: int | Sequence[int] | None = None,
    _restored_by_caller: bool = False,
    _set_lrs: SetLrs | None = None,
) -> RangeTestResult:
    """Run the LR range test on ``model`` and leave model, optimizer and RNGs as they were.

    Each optimizer step ``i`` of ``num_steps`` (default 100) sets the LR to a ramp from
    ``start_lr`` (step 0) to ``end_lr`` (the last step), exponential (``mode="exp"``, the seed
    study's formula) or linear; param groups keep their LR ratio to the first group whose LR
    is not 0, and a group at LR 0 stays at 0 (:func:`lrscope.schedules.group_ratios`). Every
    module trains in the train/eval mode it is in (call ``model.train()`` first, as in your own
    loop; a BatchNorm frozen in eval mode stays frozen). The loss of each step is smoothed with
    a debiased EMA (``beta``); the run stops early ("diverged")
    on a non-finite loss or when the smoothed loss rises ``diverge_th`` x above its best
    (:func:`lrscope.rangetest.smoothing.has_diverged`, which also reads negative losses).

    Args:
        batches: any iterable of batches, iterated again when it runs out (a TensorBatches
            moves on to its next shuffled epoch). By default a batch is ``(inputs, targets)``
            and its loss is ``loss_fn(model(inputs), targets)``, like a torch criterion.
            Tensors are moved to the model's device.
        seeds: N (seeds 0..N-1) or a list of seeds: one range test per seed, all from the
            same starting state, each on its own data order; the result is read off their
            combined (median) curve, with ``runs`` (one result per seed) and ``spread`` (max/min
            of the per-seed headlines). ``batches`` may then also be a callable ``seed ->
            batches``; a plain iterable is drawn after the global RNGs are seeded with the
            seed (a ``DataLoader(shuffle=True)`` shuffles differently per seed). See
            :mod:`lrscope.rangetest.seeds`.
        epochs: instead of ``num_steps``: ``epochs * len(batches) // accumulation_steps``
            optimizer steps, as the seed study ran it.
        step_fn: for other batches (dicts, models that return their own loss): ``batch ->
            loss`` or ``(model, batch) -> loss``; the two-argument form gets the model as the
            engine set it up (needed when the engine wraps it). ``loss_fn`` may then be None.
        accumulation_steps: micro-batches per optimizer step; gradients are their mean.
        val_batches, val_every: a fixed set of batches whose mean loss (model in eval mode,
            no gradients) is measured every ``val_every`` steps (default: every tenth of
            the run). It is recorded, not used for stopping or suggesting.
        engine: how steps run: an Engine or its name (default
            :class:`~lrscope.engines.local.LocalEngine`). The stop
            decision uses ``engine.mean`` of the loss, so every rank stops at the same step.
        callback: ``callback(step, lr, loss, smoothed)`` after every step (a progress bar);
            the loop itself prints nothing.
        start_lr: None starts from the optimizer's current LR (its reference group's, see
            :func:`lrscope.schedules.group_ratios`), as torch-lr-finder does.
        precision: ``"bf16"`` or ``"fp16"`` runs the forward pass under ``torch.autocast``;
            fp16 also scales the loss with a GradScaler (``grad_scaler``, or one made here).
            A ``grad_scaler`` the caller gives is used as it is and its state restored after.
        clip_grad_norm: clip the gradients' global norm before each step (after unscaling).
        cache_dir: keep the snapshot in a file in this folder instead of host memory (for models
            too large to copy twice); the file is removed after the restore.
        prefer: the rule whose answer becomes the headline (default
            :data:`lrscope.rangetest.suggest.HEADLINE`; see
            :func:`lrscope.rangetest.suggest.advise`, which reads the raw losses through a
            zero-lag smoothing; the causal EMA above only decides when to stop).

    ``_set_lrs`` (lrscope's own callers: the torch-lr-finder drop-in) replaces the ramp's LR
    setter (:func:`ramp_lrs`): ``_set_lrs(step)`` sets every param group's LR of step ``step``
    and returns the LR recorded for it.

    The snapshot is taken before and restored in a ``finally``: after NaNs, exceptions from
    the batches or the model, and KeyboardInterrupt alike (the exception then propagates).
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"range_test: model must be a torch nn.Module, not "
                             f"{type(model).__name__}")
    if not hasattr(optimizer, "param_groups") or not hasattr(optimizer, "state_dict"):
        raise InputTypeError(f"range_test: optimizer must be a torch optimizer, not "
                             f"{type(optimizer).__name__}")
    if seeds is not None:
        from lrscope.rangetest.seeds import range_test_seeds  # it calls back into this one

        return range_test_seeds(
            range_test, model, optimizer, loss_fn, batches, seeds, start_lr=start_lr,
            end_lr=end_lr, num_steps=num_steps, mode=mode, epochs=epochs, step_fn=step_fn,
            beta=beta, diverge_th=diverge_th, accumulation_steps=accumulation_steps,
            val_batches=val_batches, val_every=val_every, engine=engine, callback=callback,
            prefer=prefer, precision=precision, grad_scaler=grad_scaler,
            clip_grad_norm=clip_grad_norm, cache_dir=cache_dir)
    check_iterable("range_test", "batches", batches)
    if val_batches is not None:
        check_iterable("range_test", "val_batches", val_batches)
    steps = resolve_steps(num_steps, epochs, batches, accumulation_steps)
    if start_lr is None:
        start_lr = _current_lr(optimizer)
    _check_options(start_lr, end_lr, mode, beta, diverge_th, val_every, prefer)
    ramp = Ramp(start_lr=start_lr, end_lr=end_lr, total_steps=steps - 1, mode=mode)
    score = make_scorer(loss_fn, step_fn)
    if val_batches is not None and val_every is None:
        val_every = max(1, steps // 10)
    if isinstance(engine, str):
        engine = get_engine(engine)
    engine = engine if engine is not None else LocalEngine()
    device = _device_of(model, engine)
    amp = MixedPrecision.make(precision, device, grad_scaler)
    if clip_grad_norm is not None:
        check_positive("range_test", "clip_grad_norm", clip_grad_norm)

    started = time.perf_counter()
    # snapshot now, restore in a finally (the caller's GradScaler too); with seeds, the one
    # snapshot is the caller's (lrscope.rangetest.seeds)
    with (contextlib.nullcontext() if _restored_by_caller
          else preserved(model, optimizer, cache_dir=cache_dir, extra=grad_scaler)):
        train_model, train_opt = engine.setup(model, optimizer)
        try:
            run = _Loop(engine, train_model, train_opt, score, device, amp, clip_grad_norm)
            set_lrs = _set_lrs if _set_lrs is not None else ramp_lrs(train_opt, ramp, steps)
            run.run(set_lrs, steps, batches, accumulation_steps, beta, diverge_th,
                    val_batches, val_every, callback)
        finally:
            engine.teardown(train_model, train_opt)
    elapsed = time.perf_counter() - started

    # The rules read the raw losses through a zero-lag smoothing; the causal EMA only stopped.
    return RangeTestResult.from_curve(
        run.lrs, run.losses, run.smoothed, diverged=run.stopped == "diverged", prefer=prefer,
        val_losses=None if val_batches is None else np.array(run.val_losses),
        start_lr=float(start_lr), end_lr=float(end_lr), num_steps=steps, mode=mode, beta=beta,
        diverge_th=diverge_th, accumulation_steps=accumulation_steps, batch_size=run.batch_size,
        engine=engine.name, world_size=engine.world_size, elapsed_s=elapsed)


def ramp_lrs(optimizer: Any, ramp: Ramp, steps: int) -> SetLrs:
    """The LR setter of a range test: step ``i`` sets every group to ``ramp(i)`` x its ratio
    (:func:`lrscope.schedules.group_ratios`) and returns ``ramp(i)``.

    ``apply_schedule(optimizer, ramp, step, ratios)``, unrolled: the ramp's LRs are computed
    once (a ramp has no momentum to set). On a small model the per-step Python cost is what
    separates the range test from a bare loop.
    """
    groups = list(zip(optimizer.param_groups, group_ratios(optimizer), strict=True))
    table = [ramp(step) for step in range(steps)]

    def set_lrs(step: int) -> float:
        lr = table[step]
        for group, ratio in groups:
            group["lr"] = lr * ratio
        return lr

    return set_lrs


class _Loop:
    """The steps of one range test; what it records is read off its attributes."""

    def __init__(self, engine: Engine, model: nn.Module, optimizer: Any, score: Scorer,
                 device: torch.device, amp: MixedPrecision, clip: float | None) -> None:
        self.engine, self.model, self.optimizer = engine, model, optimizer
        self.score, self.device, self.amp, self.clip = score, device, amp, clip
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.val_losses: list[float] = []
        self.stopped: Stopped = "completed"
        self.batch_size: int | None = None

    def run(self, set_lrs: SetLrs, steps: int, batches: Iterable[Any], accumulation: int,
            beta: float, diverge_th: float, val_batches: Iterable[Any] | None,
            val_every: int | None, callback: Callback | None) -> None:
        lrs, losses, smoothed_losses = self.lrs, self.losses, self.smoothed
        source, move_to = where_to_move(batch_stream(batches, steps * accumulation),
                                        self.engine, self.device)
        options: dict[str, Any] = {"move_to": move_to, "amp": self.amp,
                                   "clip_grad_norm": self.clip, "accumulation": accumulation}
        # The first step also checks the loss (a scalar) and counts the batch's examples.
        first_step = optimizer_step(self.engine, self.model, self.optimizer,
                                    self._checked_score, **options)
        later_step = optimizer_step(self.engine, self.model, self.optimizer, self.score,
                                    **options)
        mean = self.engine.mean
        update = DebiasedEMA(beta).update
        best = reference = limit = math.inf
        # On a small model every call per step shows: the base Engine's mean (one process: the
        # value) is not called.
        one_rank = type(self.engine).mean is Engine.mean
        validate = val_every is not None and val_batches is not None
        # No model.train(): each module keeps the train/eval flag its owner gave it (a BatchNorm
        # frozen in eval mode stays frozen), as in the user's own loop.
        for step in range(steps):
            lr = set_lrs(step)
            # The one host sync per step, after the step is queued.
            local = (later_step if step else first_step)(source).item()
            # the same number on every rank, so all ranks stop together
            value = local if one_rank else mean(local)
            smoothed = update(value)
            if step == 0:
                reference = smoothed
            if smoothed < best:
                best = smoothed
                limit = divergence_limit(best, reference, diverge_th)
            lrs.append(lr)
            losses.append(value)
            smoothed_losses.append(smoothed)
            if validate:
                assert val_every is not None and val_batches is not None
                measure = (step + 1) % val_every == 0
                self.val_losses.append(self._validate(val_batches) if measure else math.nan)
            if callback is not None:
                callback(step, lr, value, smoothed)
            # has_diverged(smoothed, best, reference, diverge_th) with the limit kept up to
            # date above; NaN fails the comparison.
            if not (smoothed <= limit and math.isfinite(value)):
                self.stopped = "diverged"
                break

    def _checked_score(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The score of a batch of the first step, checked: a scalar tensor; its examples
        counted (the result's batch size)."""
        loss = self.score(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise InputTypeError(f"range_test: the loss must be a scalar tensor, got {got}; "
                                 "use a loss_fn with reduction='mean' or a step_fn returning one")
        if self.batch_size is None:
            self.batch_size = examples_in(batch)
        return loss

    @torch.no_grad()
    def _validate(self, val_batches: Iterable[Any]) -> float:
        totals = Totals()
        with evaluating(self.model):
            for raw in val_batches:
                batch = to_device(self.engine.shard(raw), self.device)
                totals.add(float(self.score(self.model, batch)), examples_in(batch) or 1)
        if totals.count == 0:
            raise InputError("range_test: val_batches gave no batches")
        return self.engine.mean(totals.mean_loss())


def resolve_steps(num_steps: int | None, epochs: int | None, batches: Iterable[Any],
                   accumulation: int) -> int:
    check_int("range_test", "accumulation_steps", accumulation, minimum=1)
    if epochs is not None:
        if num_steps is not None:
            raise InputError("range_test: give num_steps or epochs, not both")
        check_int("range_test", "epochs", epochs, minimum=1)
        if not isinstance(batches, Sized):
            raise InputTypeError("range_test: epochs needs batches with a length (len(batches)); "
                                 "give num_steps instead")
        num_steps = epochs * len(batches) // accumulation
        if num_steps < 2:
            raise InputError(f"range_test: epochs={epochs} gives {num_steps} optimizer steps; "
                             "the ramp needs at least 2")
    steps = DEFAULT_NUM_STEPS if num_steps is None else num_steps
    check_int("range_test", "num_steps", steps, minimum=2)
    return steps


def _check_options(start_lr: float, end_lr: float, mode: str, beta: float, diverge_th: float,
                   val_every: int | None, prefer: str) -> None:
    check_positive("range_test", "start_lr", start_lr)
    check_positive("range_test", "end_lr", end_lr)
    if end_lr <= start_lr:
        raise InputError(f"range_test: end_lr={end_lr!r} must be greater than "
                         f"start_lr={start_lr!r}")
    check_choice("range_test", "mode", mode, ("exp", "linear"))
    check_number("range_test", "beta", beta)
    if not 0 <= beta < 1:
        raise InputError(f"range_test: beta={beta!r} is out of range; it must lie in [0, 1)")
    check_number("range_test", "diverge_th", diverge_th)
    if not diverge_th > 1:
        raise InputError(f"range_test: diverge_th={diverge_th!r} must be greater than 1")
    if val_every is not None:
        check_int("range_test", "val_every", val_every, minimum=1)
    check_prefer("range_test", prefer)


def _current_lr(optimizer: Any) -> float:
    """The optimizer's LR as the ramp reads it: the reference group's (first non-zero)."""
    current = reference_lr(optimizer)
    if current is None:
        raise InputError("range_test: start_lr=None takes the optimizer's LR, but every param "
                         "group has lr 0; give start_lr")
    return current


def _device_of(model: nn.Module, engine: Engine) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else engine.device


__all__ = ["RangeTestResult", "range_test"]
