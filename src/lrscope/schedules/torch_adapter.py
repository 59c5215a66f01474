"""The edge where a schedule meets a torch optimizer.

Two ways in, both keeping each param group's LR ratio to the first group (a model whose head
trains at 10x the body's LR keeps that ratio at every step):

* :func:`apply_schedule` sets lr (and momentum) for an explicit step: what lrscope's own loops
  use, timm-style, with no hidden step counter.
* :class:`ScheduleLR` is a ``torch.optim.lr_scheduler.LRScheduler`` for code that expects one.
"""

from __future__ import annotations

from typing import Any

import torch

from lrscope.schedules.base import Schedule


def group_ratios(optimizer: torch.optim.Optimizer, key: str = "lr") -> list[float]:
    """Each param group's ``key`` divided by the first group's (1.0 for the first group)."""
    reference = float(optimizer.param_groups[0][key])
    if reference == 0:
        return [1.0 for _ in optimizer.param_groups]
    return [float(group[key]) / reference for group in optimizer.param_groups]


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
