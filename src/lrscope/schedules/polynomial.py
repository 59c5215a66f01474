"""Polynomial decay (torch's ``PolynomialLR``) and the inverse square root decay."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrscope._checks import check_optional_steps, check_positive
from lrscope.schedules.base import Schedule, register
from lrscope.schedules.cosine import check_min_lr
from lrscope.schedules.warmup import BuiltInWarmup, check_warmup


@register
@dataclass(frozen=True)
class Polynomial(BuiltInWarmup):
    """``min_lr + (lr - min_lr) * (1 - t / T) ** power`` over ``T = total_steps - warmup_steps``.

    With the defaults (no warmup, ``min_lr=0``) this is torch's ``PolynomialLR(total_iters=
    total_steps, power)``; ``power=1`` is a linear decay to ``min_lr``. After ``total_steps``
    the LR stays at ``min_lr``.

    >>> s = Polynomial(lr=1.0, total_steps=4, power=2.0)
    >>> [s(step) for step in range(5)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0]
    """

    family = "polynomial"
    lr_fields = ("lr", "min_lr")
    lr: float
    total_steps: int | None = None
    power: float = 1.0
    min_lr: float = 0.0
    warmup_steps: int = 0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_optional_steps(self.family, "total_steps", self.total_steps)
        check_positive(self.family, "power", self.power)
        check_min_lr(self.family, self.min_lr, self.lr)
        check_warmup(self.family, self.warmup_steps, self.total_steps)

    def lr_without_warmup(self, step: int) -> float:
        length = self.require_total_steps()
        # torch's closed form, term for term (min_lr=0 adds exactly nothing).
        decay = (1.0 - min(length, step) / length) ** self.power
        return float(self.min_lr + (self.lr - self.min_lr) * decay)


@register
@dataclass(frozen=True)
class InverseSqrt(BuiltInWarmup):
    """Linear warmup to ``lr``, then ``lr * sqrt(warmup_steps / step)`` (fairseq's and the
    Transformer paper's inverse square root); with no warmup, ``lr / sqrt(step)`` from step 1.

    >>> s = InverseSqrt(lr=1.0, warmup_steps=4)
    >>> [s(step) for step in (0, 3, 4, 16, 64)]
    [0.2, 0.8, 1.0, 0.5, 0.25]
    """

    family = "inverse_sqrt"
    lr_fields = ("lr",)
    lr: float
    warmup_steps: int = 0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_warmup(self.family, self.warmup_steps, None)

    def lr_without_warmup(self, step: int) -> float:
        return InverseSqrtDecay(self.lr, since=0)(step)

    def after_warmup(self) -> Schedule:
        """Its decay reads the warmup's length, so what runs after the warmup is not
        ``inverse_sqrt`` without one but :class:`InverseSqrtDecay` from ``warmup_steps``."""
        return InverseSqrtDecay(self.lr, since=self.warmup_steps)


@dataclass(frozen=True)
class InverseSqrtDecay(Schedule):
    """``lr * sqrt(since / (since + t))`` at step ``t`` of its own clock: inverse_sqrt's decay
    after a warmup of ``since`` steps (``lr / sqrt(t)`` from ``t = 1`` when ``since`` is 0).
    Not a family of its own (``inverse_sqrt`` is how a spec asks for it)."""

    lr_fields = ("lr",)
    lr: float
    since: int

    def lr_at(self, step: int) -> float:
        return float(self.lr * math.sqrt(max(self.since, 1) / max(self.since + step, 1)))
