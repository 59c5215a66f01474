"""The range-test ramp: from start_lr to end_lr over total_steps, exponential or linear."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrscope._checks import check_choice, check_optional_steps, check_positive
from lrscope.errors import InputError
from lrscope.schedules.base import Schedule, register


@register
@dataclass(frozen=True)
class Ramp(Schedule):
    """Raise the LR from ``start_lr`` (step 0) to ``end_lr`` (step ``total_steps``).

    ``mode="exp"`` is the seed study's LambdaLR formula,
    ``2 ** (log2(start) + (log2(end) - log2(start)) * step / total_steps)``;
    ``mode="linear"`` interpolates linearly. Past ``total_steps`` the LR stays at ``end_lr``.

    >>> r = Ramp(start_lr=1e-5, end_lr=10.0, total_steps=100)
    >>> round(r(0), 12), round(r(50), 6), r(100)
    (1e-05, 0.01, 10.0)
    """

    family = "ramp"
    lr_fields = ("start_lr", "end_lr")
    start_lr: float = 1e-7
    end_lr: float = 10.0
    total_steps: int | None = None
    mode: str = "exp"

    def validate(self) -> None:
        check_positive(self.family, "start_lr", self.start_lr)
        check_positive(self.family, "end_lr", self.end_lr)
        check_optional_steps(self.family, "total_steps", self.total_steps)
        check_choice(self.family, "mode", self.mode, ("exp", "linear"))
        if self.end_lr <= self.start_lr:
            raise InputError(
                f"ramp: end_lr={self.end_lr!r} must be greater than start_lr={self.start_lr!r}"
            )

    def lr_at(self, step: int) -> float:
        total = self.require_total_steps()
        if step >= total:
            return float(self.end_lr)
        frac = step / total
        if self.mode == "linear":
            return self.start_lr + (self.end_lr - self.start_lr) * frac
        low, high = math.log2(self.start_lr), math.log2(self.end_lr)
        return float(2 ** (low + (high - low) * frac))
