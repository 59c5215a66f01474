"""Cosine annealing: one cosine after an optional warmup (torch's ``CosineAnnealingLR``), and
with warm restarts (torch's ``CosineAnnealingWarmRestarts``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrscope._checks import check_int, check_optional_steps, check_positive
from lrscope.errors import InputError
from lrscope.schedules.base import Schedule, register
from lrscope.schedules.warmup import BuiltInWarmup, check_warmup


def cosine_between(high: float, low: float, t: float, length: float) -> float:
    """``low + (high - low) * (1 + cos(pi * t / length)) / 2``, in torch's order of operations."""
    return low + (high - low) * (1 + math.cos(math.pi * t / length)) / 2


def check_min_lr(family: str, min_lr: float, lr: float) -> None:
    check_positive(family, "min_lr", min_lr, allow_zero=True)
    if min_lr > lr:
        raise InputError(f"{family}: min_lr={min_lr!r} is greater than lr={lr!r}; it must be <= lr")


@register
@dataclass(frozen=True)
class Cosine(BuiltInWarmup):
    """Linear warmup to ``lr``, then one cosine down to ``min_lr`` at ``total_steps``.

    Without warmup this is torch's ``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)``
    up to ``total_steps``; after it the LR stays at ``min_lr`` (torch's would climb again).

    >>> s = Cosine(lr=1.0, total_steps=100, min_lr=0.1)
    >>> s(0), s(50), s(100), s(150)
    (1.0, 0.55, 0.1, 0.1)
    >>> [round(Cosine(lr=1.0, total_steps=10, warmup_steps=3)(i), 3) for i in range(5)]
    [0.25, 0.5, 0.75, 1.0, 0.95]
    """

    family = "cosine"
    lr_fields = ("lr", "min_lr")
    lr: float
    total_steps: int | None = None
    warmup_steps: int = 0
    min_lr: float = 0.0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_optional_steps(self.family, "total_steps", self.total_steps)
        check_warmup(self.family, self.warmup_steps, self.total_steps)
        check_min_lr(self.family, self.min_lr, self.lr)

    def lr_without_warmup(self, step: int) -> float:
        total = self.require_total_steps()
        return float(cosine_between(self.lr, self.min_lr, min(step, total), total))


@register
@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """SGDR: cosines from ``lr`` to ``min_lr`` restarting every ``T_0`` steps, each cycle
    ``T_mult`` times longer than the last: torch's ``CosineAnnealingWarmRestarts(T_0, T_mult,
    eta_min=min_lr)`` stepped once per optimizer step.

    >>> s = CosineRestarts(lr=1.0, T_0=10, T_mult=2)
    >>> s(0), s(5), s(10), s(20), s(30)
    (1.0, 0.5, 1.0, 0.5, 1.0)
    """

    family = "cosine_restarts"
    lr_fields = ("lr", "min_lr")
    lr: float
    T_0: int
    T_mult: int = 1
    min_lr: float = 0.0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_int(self.family, "T_0", self.T_0, minimum=1)
        check_int(self.family, "T_mult", self.T_mult, minimum=1)
        check_min_lr(self.family, self.min_lr, self.lr)

    def cycle_position(self, step: int) -> tuple[int, int]:
        """(T_cur, T_i): steps into the current cycle and its length, in exact integers."""
        if self.T_mult == 1:
            return step % self.T_0, self.T_0
        cycle_length, cycle_start = self.T_0, 0
        # Cycle lengths grow geometrically, so this loop runs O(log step) times.
        while step >= cycle_start + cycle_length:
            cycle_start += cycle_length
            cycle_length *= self.T_mult
        return step - cycle_start, cycle_length

    def lr_at(self, step: int) -> float:
        t_cur, t_i = self.cycle_position(step)
        return float(cosine_between(self.lr, self.min_lr, t_cur, t_i))
