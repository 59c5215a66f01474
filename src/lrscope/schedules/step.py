"""Multiplicative decays: step, multistep and exponential (torch's StepLR, MultiStepLR,
ExponentialLR, in their closed forms)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from lrscope._checks import check_int, check_positive
from lrscope.errors import InputError, InputTypeError
from lrscope.schedules.base import Schedule, register


@register
@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr * gamma ** (step // step_size)``: torch's ``StepLR(step_size, gamma)``.

    >>> s = StepDecay(lr=1.0, step_size=100, gamma=0.5)
    >>> s(0), s(99), s(100), s(250)
    (1.0, 1.0, 0.5, 0.25)
    """

    family = "step"
    lr_fields = ("lr",)
    lr: float
    step_size: int
    gamma: float = 0.1

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_int(self.family, "step_size", self.step_size, minimum=1)
        check_positive(self.family, "gamma", self.gamma)

    def lr_at(self, step: int) -> float:
        return float(self.lr * self.gamma ** (step // self.step_size))


@register
@dataclass(frozen=True)
class MultiStepDecay(Schedule):
    """``lr * gamma ** (number of milestones <= step)``: torch's ``MultiStepLR``.

    >>> s = MultiStepDecay(lr=1.0, milestones=(10, 30), gamma=0.1)
    >>> s(9), s(10), round(s(30), 12)
    (1.0, 0.1, 0.01)
    """

    family = "multistep"
    lr_fields = ("lr",)
    lr: float
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def __post_init__(self) -> None:
        # A list from the spec becomes a tuple: the schedule stays hashable and immutable.
        if isinstance(self.milestones, list):
            object.__setattr__(self, "milestones", tuple(self.milestones))
        super().__post_init__()

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_positive(self.family, "gamma", self.gamma)
        if not isinstance(self.milestones, tuple) or not self.milestones:
            raise InputTypeError(
                f"multistep: milestones={self.milestones!r} must be a non-empty list of steps, "
                "e.g. milestones=[100, 200]"
            )
        for milestone in self.milestones:
            check_int(self.family, "milestones", milestone, minimum=1)
        if list(self.milestones) != sorted(self.milestones):
            raise InputError(
                f"multistep: milestones={list(self.milestones)!r} must be in increasing order"
            )

    def lr_at(self, step: int) -> float:
        return float(self.lr * self.gamma ** bisect.bisect_right(self.milestones, step))


@register
@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """``lr * gamma ** step``: torch's ``ExponentialLR(gamma)``.

    >>> s = ExponentialDecay(lr=1.0, gamma=0.5)
    >>> s(0), s(3)
    (1.0, 0.125)
    """

    family = "exponential"
    lr_fields = ("lr",)
    lr: float
    gamma: float

    def validate(self) -> None:
        check_positive(self.family, "lr", self.lr)
        check_positive(self.family, "gamma", self.gamma)

    def lr_at(self, step: int) -> float:
        return float(self.lr * self.gamma**step)
