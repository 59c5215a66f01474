"""The linear warmup, written once: the ``warmup()`` combinator and the families' own
``warmup_steps`` (cosine, linear, polynomial, inverse_sqrt, wsd, constant), built on it.

Over the first ``warmup_steps`` steps the LR climbs linearly towards its peak, reached at step
``warmup_steps``: ``peak * (step + 1) / (warmup_steps + 1)``. Starting at
``peak / (warmup_steps + 1)`` rather than 0 means no optimizer step is wasted at LR 0, and the
climb is strictly increasing right into the peak (nanoGPT's form).

A family with ``warmup_steps=W`` over ``T`` steps is ``warmup(family over T - W steps,
steps=W)``: :class:`BuiltInWarmup` builds exactly that :class:`Warmup`, so the ramp and the
shift of the clock after it live here alone.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from lrscope._checks import check_int, check_positive
from lrscope.errors import InputError, InputTypeError
from lrscope.schedules.base import AroundOne, Schedule, _format_value, register


def warmup_lr(peak: float, step: int, warmup_steps: int) -> float:
    """LR at ``step`` (< ``warmup_steps``) of a linear warmup towards ``peak``.

    >>> [warmup_lr(1.0, step, 3) for step in range(3)]
    [0.25, 0.5, 0.75]
    """
    return peak * (step + 1) / (warmup_steps + 1)


def check_warmup(family: str, warmup_steps: int, total_steps: int | None) -> None:
    """``warmup_steps`` is an integer >= 0 that leaves at least one step after the warmup."""
    check_int(family, "warmup_steps", warmup_steps, minimum=0)
    if total_steps is not None and warmup_steps >= total_steps:
        raise InputError(
            f"{family}: warmup_steps={warmup_steps} must be less than total_steps={total_steps}; "
            "shorten the warmup or lengthen the run"
        )


@register
@dataclass(frozen=True)
class Warmup(AroundOne):
    """A linear warmup over the first ``steps`` steps, then ``schedule(step - steps)``.

    The warmup climbs to the schedule's first LR, ``peak = schedule(0)``, which is reached at
    step ``steps``. With ``start_lr`` left out it is the built-in warmup of cosine, wsd and the
    others, ``peak * (step + 1) / (steps + 1)``: no step at LR 0. With ``start_lr`` the LR is
    exactly ``start_lr`` at step 0 and rises linearly, ``start_lr + (peak - start_lr) * step /
    steps`` (timm's ``warmup_lr_init``, optax's ``init_value``).

    After the warmup the schedule's milestones and ``total_steps`` count from the warmup's end,
    as in torch's ``SequentialLR([LinearLR(...), scheduler], milestones=[steps])``. Momentum is
    the schedule's at its step 0 during the warmup, then shifted likewise. The whole run lasts
    ``steps`` plus the schedule's ``total_steps``: :meth:`with_total_steps` gives it the rest.

    >>> from lrscope.schedules import Cosine, MultiStepDecay
    >>> s = Warmup(MultiStepDecay(lr=1.0, milestones=(2,), gamma=0.5), steps=3)
    >>> [s(step) for step in range(7)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.5]
    >>> s.spec()
    'warmup(multistep(lr=1.0, milestones=[2], gamma=0.5), steps=3)'
    >>> Warmup(Cosine(lr=1.0), steps=10).with_total_steps(100).spec()
    'warmup(cosine(lr=1.0, total_steps=90), steps=10)'
    """

    family = "warmup"
    schedule_args = ("schedule",)
    lr_fields = ("start_lr",)
    schedule: Schedule
    steps: int
    start_lr: float | None = None

    def validate(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise InputTypeError(
                f"warmup: schedule={_format_value(self.schedule)} must be one schedule, "
                "e.g. warmup(cosine(lr=0.5), steps=100)"
            )
        check_int(self.family, "steps", self.steps, minimum=0)
        if self.start_lr is not None:
            check_positive(self.family, "start_lr", self.start_lr, allow_zero=True)

    def peak(self) -> float:
        """The LR the warmup climbs to, reached at step ``steps``: the schedule's first."""
        return self.schedule(0)

    def lr_at(self, step: int) -> float:
        if step >= self.steps:
            return float(self.schedule(step - self.steps))
        peak = self.peak()
        if self.start_lr is None:
            return warmup_lr(peak, step, self.steps)
        return float(self.start_lr + (peak - self.start_lr) * step / self.steps)

    def momentum(self, step: int) -> float | None:
        return self.schedule.momentum(max(step - self.steps, 0))

    def require_total_steps(self) -> int:
        return self.steps + self.schedule.require_total_steps()

    def with_total_steps(self, total_steps: int) -> Warmup:
        """A copy whose schedule gets ``total_steps - steps`` when it was left without."""
        if not self.needs_total_steps():
            return self
        check_int(self.family, "total_steps", total_steps, minimum=1)
        if total_steps <= self.steps:
            raise InputError(
                f"warmup: steps={self.steps} must be less than total_steps={total_steps}; "
                "shorten the warmup or lengthen the run"
            )
        return dataclasses.replace(
            self, schedule=self.schedule.with_total_steps(total_steps - self.steps)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "schedule": self.schedule.to_dict(), "steps": self.steps,
                "start_lr": self.start_lr}


@dataclass(frozen=True)
class _WarmupToPeak(Warmup):
    """A family's own warmup: the combinator climbing to the family's ``lr`` (``to``), which
    the schedule after it need not start at to the bit (wsd's cooldown may begin right after
    the warmup; ``min_lr + (lr - min_lr)`` may round). Never parsed, never shown."""

    to: float = 0.0

    def peak(self) -> float:
        return self.to


class BuiltInWarmup(Schedule):
    """A family with a ``warmup_steps`` field (declared by the family's dataclass).

    Its LR is ``warmup(self.after_warmup(), steps=warmup_steps)``'s, climbing to
    :attr:`warmup_peak`; the family writes only its LR without a warmup
    (:meth:`lr_without_warmup`).
    """

    warmup_steps: int

    def lr_without_warmup(self, step: int) -> float:
        """The family's LR at ``step`` when ``warmup_steps`` is 0."""
        raise NotImplementedError

    def after_warmup(self) -> Schedule:
        """What runs from step ``warmup_steps`` on, on its own clock: this family with no
        warmup over the steps left (``total_steps - warmup_steps``)."""
        changes: dict[str, Any] = {"warmup_steps": 0}
        total = getattr(self, "total_steps", None)
        if total is not None:
            changes["total_steps"] = total - self.warmup_steps
        return dataclasses.replace(self, **changes)

    @property
    def warmup_peak(self) -> float:
        """The LR the warmup climbs to: the family's ``lr``."""
        return float(self.lr)  # type: ignore[attr-defined]

    @functools.cached_property
    def as_warmup(self) -> Warmup:
        """This schedule as the ``warmup()`` combinator builds it (computed once per value)."""
        return _WarmupToPeak(self.after_warmup(), self.warmup_steps, to=self.warmup_peak)

    def lr_at(self, step: int) -> float:
        if self.needs_total_steps():
            self.require_total_steps()  # one error at every step, the warmup's included
        if not self.warmup_steps:
            return self.lr_without_warmup(step)
        return self.as_warmup.lr_at(step)
