"""lrscope with the Hugging Face ``transformers`` :class:`~transformers.Trainer`.

* :func:`find_lr` runs the LR range test the way the Trainer trains: its model, its train
  dataloader (with its data collator), its ``compute_loss`` (a subclass's own loss included),
  its optimizer, gradient accumulation, gradient clipping and bf16/fp16, and leaves the Trainer
  as it found it (weights bitwise, optimizer state, RNGs, train/eval flags, ``trainer.optimizer``).
* :func:`lrscope_scheduler` makes an lrscope schedule a scheduler for
  ``Trainer(optimizers=(optimizer, scheduler))``; the Trainer steps it once per optimizer step,
  so after ``N`` optimizer steps the LR is ``schedule(N)``.

Nothing here imports ``transformers``: the Trainer is used through its public methods
(``get_train_dataloader``, ``compute_loss``, ``create_optimizer``) and ``_prepare_inputs``
where it has one. Tested with transformers 4.51.3 (accelerate 1.15, torch 2.13, CPU); every call
used keeps its form in transformers 5.x: ``compute_loss(model, inputs)`` is called with its two
required arguments only (``return_outputs`` and ``num_items_in_batch`` left to their defaults,
so overrides written for any version work), ``create_optimizer()`` without arguments.

Example (``trainer`` is any Trainer with a ``train_dataset``)::

    from lrscope.integrations.transformers import find_lr, lrscope_scheduler

    result = find_lr(trainer, start_lr=1e-7, end_lr=1.0, num_steps=100)
    print(result.suggestion)
    result.plot()
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrscope._checks import check_int
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.loop import Callback, range_test
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.settings import DEFAULT_NUM_STEPS
from lrscope.rangetest.settings import RANGE_TEST_DEFAULTS as DEFAULTS
from lrscope.rng import preserved_rng
from lrscope.schedules.base import Schedule
from lrscope.schedules.spec import parse
from lrscope.schedules.torch_adapter import ScheduleLR

_MISSING = object()


def find_lr(
    trainer: Any,
    *,
    start_lr: float | None = None,
    end_lr: float = DEFAULTS.end,
    num_steps: int = DEFAULT_NUM_STEPS,
    mode: str = DEFAULTS.mode,
    prefer: str = DEFAULTS.prefer,
    beta: float = DEFAULTS.beta,
    diverge_th: float = DEFAULTS.diverge_th,
    clip_grad: bool = True,
    callback: Callback | None = None,
    cache_dir: str | Path | None = None,
    set_lr: bool = False,
) -> RangeTestResult:
    """Run :func:`lrscope.range_test` on ``trainer``'s model, data, loss and optimizer.

    * Batches come from ``trainer.get_train_dataloader()`` (shuffled, collated, started again
      when it runs out) and go through ``trainer._prepare_inputs`` (to ``args.device``).
    * The loss is ``trainer.compute_loss(model, inputs)``: a Trainer subclass's loss is the
      one tested. Each micro-batch gives its mean loss; with ``args.gradient_accumulation_steps
      = k`` every optimizer step takes ``k`` micro-batches and their mean gradient (the
      Trainer's token-weighted ``num_items_in_batch`` is not used).
    * The optimizer is ``trainer.optimizer`` (one given in ``Trainer(optimizers=(opt, sched))``,
      or accelerate's wrapper around it after ``train()``, unwrapped); when it is None the
      Trainer makes its own with ``trainer.create_optimizer()`` (from ``args.learning_rate``,
      ``args.optim``, weight decay) and ``trainer.optimizer`` is set back to None afterwards.
      The LR scheduler is not stepped or touched.
    * ``clip_grad``: clip the gradient norm to ``args.max_grad_norm`` before each step, as
      the Trainer does (when it is > 0).
    * ``args.bf16`` / ``args.fp16`` run the forward under autocast (``precision="bf16"`` /
      ``"fp16"``, fp16 with a fresh GradScaler).
    * The model trains in train mode (as ``Trainer.training_step`` puts it); every module's
      train/eval flag is put back after, with the weights, optimizer state and global RNGs.

    ``start_lr=None`` starts from the optimizer's current LR (``args.learning_rate`` for one the
    Trainer makes); the other arguments are :func:`lrscope.range_test`'s, with its defaults
    (``prefer``: its headline rule, :data:`lrscope.rangetest.suggest.HEADLINE`, or another of
    :data:`lrscope.rangetest.suggest.HEADLINE_RULES`).
    ``set_lr=True`` writes the suggestion (when there is one) to ``trainer.args.learning_rate``,
    which an optimizer the Trainer creates later (in ``train()``) starts from; an optimizer that
    already exists keeps its own LR (a warning says so). One process only: under ``torchrun``
    it raises InputError.
    """
    _check_trainer(trainer)
    args = trainer.args
    if int(getattr(args, "world_size", 1) or 1) > 1:
        raise InputError("find_lr: the Trainer runs in several processes (world_size="
                         f"{args.world_size}); find_lr supports one process: run it without "
                         "torchrun, then train as usual")
    model = trainer.model
    accumulation = int(getattr(args, "gradient_accumulation_steps", 1) or 1)
    precision = "bf16" if getattr(args, "bf16", False) else (
        "fp16" if getattr(args, "fp16", False) else None)
    created = trainer.optimizer is None
    modes = [module.training for module in model.modules()]
    past = trainer.__dict__.get("_past", _MISSING)
    loader = None
    hook = None
    with preserved_rng():
        try:
            if created:
                trainer.create_optimizer()
            optimizer = _torch_optimizer(trainer.optimizer)
            loader = trainer.get_train_dataloader()
            max_norm = float(getattr(args, "max_grad_norm", 0.0) or 0.0)
            if clip_grad and max_norm > 0:
                hook = optimizer.register_step_pre_hook(_clipper(model, max_norm))
            model.train()
            result = range_test(
                model, optimizer, None, loader, start_lr=start_lr, end_lr=end_lr,
                num_steps=num_steps, mode=mode, step_fn=_trainer_step(trainer),
                beta=beta, diverge_th=diverge_th, accumulation_steps=accumulation,
                callback=callback, prefer=prefer, precision=precision, cache_dir=cache_dir,
            )
        finally:
            if hook is not None:
                hook.remove()
            for module, training in zip(model.modules(), modes, strict=True):
                module.training = training
            if loader is not None:
                _forget_loader(trainer, loader)
            if created:
                trainer.optimizer = None
            if past is not _MISSING:
                trainer._past = past
    if set_lr and result.suggestion is not None:
        if not created:
            warnings.warn("find_lr(set_lr=True): the Trainer already has an optimizer, which "
                          "keeps its own LR; args.learning_rate only sets the LR of one the "
                          "Trainer creates", stacklevel=2)
        _set_learning_rate(trainer, result.suggestion)
    return result


def lrscope_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule | str,
                      num_training_steps: int | None = None) -> ScheduleLR:
    """A torch LR scheduler following ``schedule``, for ``Trainer(optimizers=(opt, sched))``.

    ``schedule`` is a :class:`~lrscope.schedules.Schedule` or a spec (``"cosine(lr=3e-4,
    warmup_steps=100)"``). A finite schedule without ``total_steps`` gets
    ``num_training_steps`` (the Trainer's optimizer steps: ``args.max_steps``, or epochs x
    steps per epoch). The first param group's LR is ``schedule(step)``; the other groups keep
    their ratio to it. The Trainer steps the scheduler once per optimizer step (not per
    micro-batch), so after ``N`` steps the LR is ``schedule(N)``; schedules that cycle momentum
    (onecycle, cyclic) set it too.

    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = lrscope_scheduler(opt, "cosine(lr=0.1)", num_training_steps=10)
    >>> sched.schedule.spec(), opt.param_groups[0]["lr"]
    ('cosine(lr=0.1, total_steps=10)', 0.1)
    """
    optimizer = _torch_optimizer(optimizer)
    if isinstance(schedule, str):
        schedule = parse(schedule)
    if not isinstance(schedule, Schedule):
        raise InputTypeError("lrscope_scheduler: schedule must be an lrscope Schedule or a spec "
                             f"string, not {type(schedule).__name__}")
    if num_training_steps is not None:
        check_int("lrscope_scheduler", "num_training_steps", num_training_steps, minimum=1)
    if schedule.needs_total_steps():
        if num_training_steps is None:
            raise InputError(f"lrscope_scheduler: {schedule.spec()} needs its total steps; give "
                             "num_training_steps (e.g. the Trainer's max_steps) or total_steps "
                             "in the spec")
        schedule = schedule.with_total_steps(num_training_steps)
    return ScheduleLR(optimizer, schedule)


def _check_trainer(trainer: Any) -> None:
    needed = ("model", "args", "optimizer", "compute_loss", "get_train_dataloader",
              "create_optimizer")
    missing = [name for name in needed if not hasattr(trainer, name)]
    if missing:
        raise InputTypeError(f"find_lr: trainer must be a transformers Trainer; a "
                             f"{type(trainer).__name__} has no {', '.join(missing)}")
    if not isinstance(trainer.model, nn.Module):
        raise InputTypeError("find_lr: trainer.model must be a torch nn.Module, not "
                             f"{type(trainer.model).__name__}")


def _torch_optimizer(optimizer: Any) -> Any:
    """The torch optimizer itself: accelerate's AcceleratedOptimizer (what ``trainer.optimizer``
    is after ``train()``) steps only when its gradient state says so, and hides its hooks."""
    inner = getattr(optimizer, "optimizer", None)
    if type(optimizer).__name__ == "AcceleratedOptimizer" and inner is not None:
        return inner
    return optimizer


def _trainer_step(trainer: Any) -> Callable[[nn.Module, Any], torch.Tensor]:
    """``(model, batch) -> loss`` as ``Trainer.training_step`` computes it."""
    prepare = getattr(trainer, "_prepare_inputs", None)

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        inputs = prepare(batch) if callable(prepare) else batch
        loss = trainer.compute_loss(model, inputs)
        # An override that always returns (loss, outputs) still works.
        return loss[0] if isinstance(loss, (tuple, list)) else loss

    return step


def _clipper(model: nn.Module, max_norm: float) -> Callable[..., None]:
    """An optimizer step pre-hook that clips as the Trainer does (after a GradScaler's
    unscale: ``scaler.step`` unscales before it calls ``optimizer.step``)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def clip(optimizer: Any, args: Any, kwargs: Any) -> None:
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    return clip


def _forget_loader(trainer: Any, loader: Any) -> None:
    """Drop accelerate's references to the dataloader find_lr made and left mid-epoch: it
    registers itself in the (process-wide) gradient state when iterated and removes itself only
    at the end of an epoch, and ``accelerator.prepare`` keeps it in ``_dataloaders``."""
    accelerator = getattr(trainer, "accelerator", None)
    state = getattr(accelerator, "gradient_state", None)
    remove = getattr(state, "_remove_dataloader", None)
    if callable(remove):
        remove(loader)
    loaders = getattr(accelerator, "_dataloaders", None)
    if isinstance(loaders, list):
        loaders[:] = [item for item in loaders if item is not loader]


def _set_learning_rate(trainer: Any, lr: float) -> None:
    try:
        trainer.args.learning_rate = lr
    except AttributeError:  # a frozen TrainingArguments
        trainer.args = dataclasses.replace(trainer.args, learning_rate=lr)


__all__ = ["find_lr", "lrscope_scheduler"]
