"""The edge where a schedule meets a torch optimizer.

Two ways in, both keeping each param group's LR ratio to a reference group (a model whose head
trains at 10x the body's LR keeps that ratio at every step; a frozen group at LR 0 stays at 0):

* :func:`apply_schedule` sets lr (and momentum) for an explicit step: what lrscope's own loops
  use, timm-style, with no hidden step counter.
* :class:`ScheduleLR` is a ``torch.optim.lr_scheduler.LRScheduler`` for code that expects one.
"""

from __future__ import annotations

from typing import Any

import torch

from lrscope.schedules.base import Schedule


def group_ratios(optimizer: torch.optim.Optimizer, key: str = "lr") -> list[float]:
    """Each param group's ``key`` relative to the reference group's: the first group whose
    ``key`` is not zero. The one rule for the range test, trials and the batched runner.

    The schedule's LR is the reference group's; the others keep their ratio to it, and a group
    at 0 (a frozen body) stays at 0. When every group is at 0 there is nothing to keep: all get
    the schedule's LR (ratio 1).

    >>> opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.0},
    ...                        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1},
    ...                        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0}])
    >>> group_ratios(opt)
    [0.0, 1.0, 10.0]
    """
    values = [float(group[key]) for group in optimizer.param_groups]
    reference = reference_lr(optimizer, key)
    if reference is None:
        return [1.0 for _ in values]
    return [value / reference for value in values]


def reference_lr(optimizer: torch.optim.Optimizer, key: str = "lr") -> float | None:
    """The reference group's ``key``: the first that is not 0 (None when every group is at 0).

    The schedule's LR is this group's; :func:`group_ratios` keeps the others' ratios to it.
    """
    return next((float(g[key]) for g in optimizer.param_groups if float(g[key]) != 0), None)


def set_momentum(group: dict[str, Any], momentum: float) -> None:
    """Set SGD/RMSprop ``momentum`` or Adam-style ``betas[0]``, as torch's OneCycleLR does."""
    if "betas" in group:
        group["betas"] = (momentum, *tuple(group["betas"])[1:])
    elif "momentum" in group:
        group["momentum"] = momentum
    else:
        raise ValueError(
            "the schedule cycles momentum but the optimizer has neither 'momentum' nor 'betas'; "
            "use an optimizer with momentum or set cycle_momentum=False"
        )


def apply_schedule(
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    step: int,
    ratios: list[float] | None = None,
) -> float:
    """Set every group's lr to ``schedule(step) * ratio`` (and momentum); return schedule(step)."""
    lr = schedule(step)
    ratios = ratios if ratios is not None else [1.0] * len(optimizer.param_groups)
    momentum = schedule.momentum(step)
    for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
        group["lr"] = lr * ratio
        if momentum is not None:
            set_momentum(group, momentum)
    return lr


class ScheduleLR(torch.optim.lr_scheduler.LRScheduler):
    """A torch LR scheduler driven by a closed-form :class:`Schedule`.

    The first param group gets ``schedule(step)``; the others keep their initial ratio to it.

    >>> import torch
    >>> from lrscope.schedules.ramp import Ramp
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = ScheduleLR(opt, Ramp(start_lr=0.01, end_lr=1.0, total_steps=2))
    >>> round(opt.param_groups[0]["lr"], 6)
    0.01
    >>> opt.step(); sched.step(); round(opt.param_groups[0]["lr"], 6)
    0.1
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, schedule: Schedule, last_epoch: int = -1
    ) -> None:
        if schedule.needs_total_steps():
            schedule.require_total_steps()  # raises: "missing total steps for <family>: ..."
        self.schedule = schedule
        # Ratios of the groups' LRs as given, before the scheduler overwrites them.
        key = "initial_lr" if last_epoch != -1 else "lr"
        self.ratios = group_ratios(optimizer, key)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        step = self.last_epoch
        momentum = self.schedule.momentum(step)
        if momentum is not None:
            for group in self.optimizer.param_groups:
                set_momentum(group, momentum)
        lr = self.schedule(step)
        return [lr * ratio for ratio in self.ratios]
