"""Linear change of the LR: torch's ``LinearLR`` (a linear warmup or a linear decay)."""

from __future__ import annotations

from dataclasses import dataclass

from lrscope._checks import check_fraction, check_optional_steps, check_positive
from lrscope.errors import InputError
from lrscope.schedules.base import register
from lrscope.schedules.warmup import BuiltInWarmup, check_warmup


@register
@dataclass(frozen=True)
class Linear(BuiltInWarmup):
    """``lr`` times a factor moving linearly from ``start_factor`` to ``end_factor``.

    Without warmup this is torch's ``LinearLR(start_factor, end_factor,
    total_iters=total_steps)``, defaults included (1/3 up to 1); a linear decay to zero is
    ``start_factor=1, end_factor=0``. With ``warmup_steps`` the LR first warms up linearly to
    ``lr * start_factor`` and the line spans the remaining steps. After ``total_steps`` the LR
    stays at ``lr * end_factor``.

    >>> s = Linear(lr=1.0, total_steps=4, start_factor=1.0, end_factor=0.0)
    >>> [s(step) for step in range(6)]
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """

    family = "linear"
    lr_fields = ("lr",)
    lr: float
    total_steps: int | None = None
    start_factor: float = 1.0 / 3
    end_factor: float = 1.0
    warmup_steps: int = 0

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_optional_steps(self.family, "total_steps", self.total_steps)
        check_fraction(self.family, "start_factor", self.start_factor)
        if self.start_factor == 0:
            raise InputError(
                "linear: start_factor=0 is out of range; it must lie in (0, 1] "
                "(use warmup_steps for a warmup from near zero)"
            )
        check_fraction(self.family, "end_factor", self.end_factor)
        check_warmup(self.family, self.warmup_steps, self.total_steps)

    @property
    def warmup_peak(self) -> float:
        """The warmup climbs to where the line starts, ``lr * start_factor``."""
        return float(self.lr * self.start_factor)

    def lr_without_warmup(self, step: int) -> float:
        length = self.require_total_steps()
        # torch's closed form, term for term, so the two agree to the last bit.
        slope = self.end_factor - self.start_factor
        return float(self.lr * (self.start_factor + slope * min(length, step) / length))
