"""A constant LR, optionally after a linear warmup: the no-schedule reference."""

from __future__ import annotations

from dataclasses import dataclass

from lrscope._checks import check_positive
from lrscope.schedules.base import register
from lrscope.schedules.warmup import BuiltInWarmup, check_warmup


@register
@dataclass(frozen=True)
class Constant(BuiltInWarmup):
    """``lr`` at every step, after ``warmup_steps`` of linear warmup (none by default).

    >>> Constant(lr=0.1)(1000)
    0.1
    >>> [Constant(lr=1.0, warmup_steps=3)(step) for step in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    family = "constant"
    lr_fields = ("lr",)
    lr: float
    warmup_steps: int = 0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_warmup(self.family, self.warmup_steps, None)

    def lr_without_warmup(self, step: int) -> float:
        return float(self.lr)
