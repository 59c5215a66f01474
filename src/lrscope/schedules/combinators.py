"""Schedules users write: optax-style combinators of other schedules, still in closed form.

* ``warmup(schedule, steps=N)`` puts a linear warmup in front of any schedule, which then runs
  on its own clock from 0: ``schedule(step - N)`` (defined in :mod:`lrscope.schedules.warmup`
  beside the families' own ``warmup_steps``, which are built on it).
* ``join([s0, s1, ...], boundaries=[b1, ...])`` is ``optax.join_schedules``: schedule ``i``
  runs on steps ``[b_i, b_{i+1})`` with its own step counter restarting at 0 at its boundary.

Both match torch's ``SequentialLR(schedulers, milestones)``, which restarts each scheduler at
its milestone the same way. In a spec the inner schedules come first, unnamed:
``warmup(multistep(lr=0.1, milestones=[100, 200]), steps=50)``.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from typing import Any

from lrscope._checks import check_int
from lrscope.errors import InputError, InputTypeError
from lrscope.schedules.base import Schedule, _format_value, register
from lrscope.schedules.warmup import Warmup

__all__ = ["Join", "Warmup"]


@register
@dataclass(frozen=True)
class Join(Schedule):
    """``optax.join_schedules``: ``schedules[i]`` runs on ``[boundaries[i-1], boundaries[i])``
    (the first from step 0, the last for ever), at step ``step - boundaries[i-1]`` of its own.

    A finite schedule before the last one left without ``total_steps`` gets its segment's
    length; :meth:`with_total_steps` gives the last one the steps after the last boundary.
    Momentum is the running schedule's; one that leaves momentum alone keeps what the schedule
    before it left (the optimizer keeps it too).

    >>> from lrscope.schedules import Constant, ExponentialDecay
    >>> s = Join((Constant(lr=0.1), ExponentialDecay(lr=1.0, gamma=0.5)), boundaries=(2,))
    >>> [s(step) for step in range(5)]
    [0.1, 0.1, 1.0, 0.5, 0.25]
    >>> s.spec()
    'join([constant(lr=0.1), exponential(lr=1.0, gamma=0.5)], boundaries=[2])'
    """

    family = "join"
    schedule_args = ("schedules",)
    schedules: tuple[Schedule, ...]
    boundaries: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Lists from the spec or the caller become tuples: the schedule stays hashable.
        for name in ("schedules", "boundaries"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        super().__post_init__()
        *before, last = self.schedules
        lengths = [end - start for start, end in zip(self.starts, self.boundaries, strict=False)]
        filled = [s.with_total_steps(n) for s, n in zip(before, lengths, strict=True)]
        object.__setattr__(self, "schedules", (*filled, last))

    def validate(self) -> None:
        if (not isinstance(self.schedules, tuple) or not self.schedules
                or not all(isinstance(s, Schedule) for s in self.schedules)):
            raise InputTypeError(
                f"join: schedules={_format_value(self.schedules)} must be a non-empty list of "
                "schedules, e.g. join([constant(lr=0.1), cosine(lr=0.1)], boundaries=[100])"
            )
        if not isinstance(self.boundaries, tuple):
            raise InputTypeError(
                f"join: boundaries={_format_value(self.boundaries)} must be a list of steps, "
                "e.g. boundaries=[100]"
            )
        for boundary in self.boundaries:
            check_int(self.family, "boundaries", boundary, minimum=1)
        count, need = len(self.schedules), len(self.schedules) - 1
        if len(self.boundaries) != need:
            schedules = "1 schedule needs" if count == 1 else f"{count} schedules need"
            boundaries = "boundary" if need == 1 else "boundaries"
            raise InputError(
                f"join: {schedules} {need} {boundaries}, got {len(self.boundaries)} "
                f"(boundaries={list(self.boundaries)!r})"
            )
        if any(b <= a for a, b in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise InputError(f"join: boundaries={list(self.boundaries)!r} must increase")

    @property
    def starts(self) -> tuple[int, ...]:
        """The first step of each schedule: 0, then the boundaries."""
        return (0, *self.boundaries)

    def _locate(self, step: int) -> tuple[int, int]:
        """(index of the schedule running at ``step``, ``step`` on that schedule's clock)."""
        index = bisect.bisect_right(self.boundaries, step)
        return index, step - self.starts[index]

    def lr_at(self, step: int) -> float:
        index, local = self._locate(step)
        return float(self.schedules[index](local))

    def momentum(self, step: int) -> float | None:
        index, local = self._locate(step)
        for i in range(index, -1, -1):
            at = local if i == index else self.boundaries[i] - self.starts[i] - 1
            momentum = self.schedules[i].momentum(at)
            if momentum is not None:
                return momentum
        return None

    @property
    def cycles_momentum(self) -> bool:
        return any(s.cycles_momentum for s in self.schedules)

    @property
    def is_finite(self) -> bool:
        return self.schedules[-1].is_finite

    def needs_total_steps(self) -> bool:
        return self.schedules[-1].needs_total_steps()

    def require_total_steps(self) -> int:
        return self.starts[-1] + self.schedules[-1].require_total_steps()

    def with_total_steps(self, total_steps: int) -> Join:
        """A copy whose last schedule gets the steps after the last boundary, when unset."""
        if not self.needs_total_steps():
            return self
        check_int(self.family, "total_steps", total_steps, minimum=1)
        start = self.starts[-1]
        if total_steps <= start:
            raise InputError(
                f"join: total_steps={total_steps} must be greater than the last boundary "
                f"{start}; the last schedule needs at least one step"
            )
        last = self.schedules[-1].with_total_steps(total_steps - start)
        return dataclasses.replace(self, schedules=(*self.schedules[:-1], last))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "schedules": [s.to_dict() for s in self.schedules],
                "boundaries": list(self.boundaries)}
