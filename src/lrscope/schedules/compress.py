"""``compress(schedule, factor=k)``: the same schedule run ``k`` times faster.

Step ``t`` of the compressed schedule is step ``floor(t * k)`` of the original, so a schedule
written for ``T`` steps plays its whole shape (warmup, plateaus, cycles, decay) in ``T / k``.
A ``strategy="predict"`` study trains every candidate compressed this way to rank the
candidates it cannot afford to train at full length (:mod:`lrscope.study.predict.probes`).

>>> from lrscope.schedules import parse
>>> s = parse("compress(step(lr=1.0, step_size=4, gamma=0.5), factor=2)")
>>> [s(t) for t in range(5)]
[1.0, 1.0, 0.5, 0.5, 0.25]
>>> c = parse("compress(cosine(lr=1.0, total_steps=100), factor=4)")
>>> c.require_total_steps(), c(25) == 0.0
(25, True)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from lrscope.errors import InputError, InputTypeError
from lrscope.schedules.base import AroundOne, Schedule, _format_value, register

__all__ = ["Compress"]


@register
@dataclass(frozen=True)
class Compress(AroundOne):
    """``schedule`` at ``factor`` times its speed: ``lr(t) = schedule(floor(t * factor))``
    (momentum likewise). ``total_steps`` is the schedule's divided by ``factor``, rounded up;
    one left without gets ``total_steps * factor`` from :meth:`with_total_steps`."""

    family = "compress"
    schedule_args = ("schedule",)
    schedule: Schedule
    factor: float

    def validate(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise InputTypeError(
                f"compress: schedule={_format_value(self.schedule)} must be one schedule, "
                "e.g. compress(cosine(lr=0.5, total_steps=1000), factor=8)"
            )
        factor = self.factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                or not math.isfinite(factor) or factor <= 0:
            raise InputError(f"compress: factor={_format_value(factor)} must be a positive "
                             "number (how many times faster the schedule runs), e.g. factor=8")

    def _inner(self, step: int) -> int:
        # a hair of slack: 50 steps at factor 400/50 land on step 400, not 399 from rounding
        return math.floor(step * self.factor + 1e-9)

    def lr_at(self, step: int) -> float:
        return float(self.schedule(self._inner(step)))

    def momentum(self, step: int) -> float | None:
        return self.schedule.momentum(self._inner(step))

    def require_total_steps(self) -> int:
        return math.ceil(self.schedule.require_total_steps() / self.factor - 1e-9)

    def with_total_steps(self, total_steps: int) -> Compress:
        """A copy whose schedule gets ``total_steps * factor`` steps when it was left without."""
        if not self.needs_total_steps():
            return self
        inner = max(1, round(total_steps * self.factor))
        return dataclasses.replace(self, schedule=self.schedule.with_total_steps(inner))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "schedule": self.schedule.to_dict(),
                "factor": self.factor}
