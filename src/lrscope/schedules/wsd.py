"""Warmup-stable-decay (trapezoidal): warm up, hold the LR, cool down over the last steps."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from lrscope._checks import check_choice, check_fraction, check_optional_steps, check_positive
from lrscope.errors import InputError
from lrscope.schedules.base import register
from lrscope.schedules.cosine import check_min_lr
from lrscope.schedules.warmup import BuiltInWarmup, check_warmup

COOLDOWNS = ("linear", "cosine", "1-sqrt")
DEFAULT_DECAY_FRACTION = 0.2


def cooldown_shape(cooldown: str, progress: float) -> float:
    """Fraction of the way from min_lr to lr left at ``progress`` (0..1) into the cooldown."""
    if cooldown == "linear":
        return 1.0 - progress
    if cooldown == "cosine":
        return (1.0 + math.cos(math.pi * progress)) / 2
    return 1.0 - math.sqrt(progress)  # "1-sqrt" (Hägele et al. 2024)


@register
@dataclass(frozen=True)
class WarmupStableDecay(BuiltInWarmup):
    """Linear warmup over ``warmup_steps``, ``lr`` exactly until the cooldown, then a cooldown
    (``linear``, ``cosine`` or ``1-sqrt``) that reaches ``min_lr`` at the last step
    (``total_steps - 1``). The cooldown lasts ``decay_steps``, or ``decay_fraction`` of the
    run (default 0.2); give one of them, not both.

    >>> s = WarmupStableDecay(lr=1.0, total_steps=10, warmup_steps=2, decay_steps=4)
    >>> [round(s(step), 4) for step in range(10)]
    [0.3333, 0.6667, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    """

    family = "wsd"
    lr_fields = ("lr", "min_lr")
    lr: float
    total_steps: int | None = None
    warmup_steps: int = 0
    decay_steps: int | None = None
    decay_fraction: float | None = None
    cooldown: str = "linear"
    min_lr: float = 0.0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_optional_steps(self.family, "total_steps", self.total_steps)
        check_warmup(self.family, self.warmup_steps, self.total_steps)
        check_optional_steps(self.family, "decay_steps", self.decay_steps)
        if self.decay_fraction is not None:
            check_fraction(self.family, "decay_fraction", self.decay_fraction)
            if self.decay_fraction == 0:
                raise InputError("wsd: decay_fraction=0 is out of range; it must lie in (0, 1]")
            if self.decay_steps is not None:
                raise InputError("wsd: give decay_steps or decay_fraction, not both")
        check_choice(self.family, "cooldown", self.cooldown, COOLDOWNS)
        check_min_lr(self.family, self.min_lr, self.lr)
        total = self.total_steps
        if total is not None and self.warmup_steps + self.cooldown_steps > total:
            raise InputError(
                f"wsd: warmup_steps={self.warmup_steps} plus {self.cooldown_steps} decay steps "
                f"exceed total_steps={self.total_steps}; shorten them or lengthen the run"
            )

    @property
    def cooldown_steps(self) -> int:
        """Length of the cooldown in steps (needs ``total_steps`` when given as a fraction)."""
        if self.decay_steps is not None:
            return self.decay_steps
        fraction = DEFAULT_DECAY_FRACTION if self.decay_fraction is None else self.decay_fraction
        return max(1, round(fraction * self.require_total_steps()))

    @property
    def decay_start(self) -> int:
        """First step of the cooldown; steps ``warmup_steps .. decay_start - 1`` are at ``lr``."""
        return self.require_total_steps() - self.cooldown_steps

    def after_warmup(self) -> WarmupStableDecay:
        """The stable phase and the cooldown over the steps left, the cooldown's length kept
        (a ``decay_fraction`` is of the whole run, warmup included)."""
        return dataclasses.replace(self, warmup_steps=0, decay_fraction=None,
                                   decay_steps=self.cooldown_steps,
                                   total_steps=self.require_total_steps() - self.warmup_steps)

    def lr_without_warmup(self, step: int) -> float:
        start, length = self.decay_start, self.cooldown_steps
        if step < start:
            return float(self.lr)
        progress = min(step - start + 1, length) / length
        shape = cooldown_shape(self.cooldown, progress)
        return float(self.min_lr + (self.lr - self.min_lr) * shape)
