"""Cyclical learning rates: torch's ``CyclicLR``, in closed form, momentum included."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrscope._checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_optional_steps,
    check_positive,
)
from lrscope.errors import InputError
from lrscope.schedules.base import Schedule, register

MODES = ("triangular", "triangular2", "exp_range")


@register
@dataclass(frozen=True)
class Cyclic(Schedule):
    """torch's ``CyclicLR`` with the same arguments, defaults and arithmetic.

    The LR climbs from ``base_lr`` to ``max_lr`` over ``step_size_up`` steps and falls back
    over ``step_size_down`` (default: the same). ``triangular2`` halves the amplitude every
    cycle; ``exp_range`` scales it by ``gamma ** step``. Momentum moves the opposite way
    between ``max_momentum`` and ``base_momentum`` unless ``cycle_momentum=False``.

    >>> s = Cyclic(base_lr=0.01, max_lr=1.0, step_size_up=50, step_size_down=100)
    >>> [round(s(step), 6) for step in (0, 50, 100, 150)]
    [0.01, 1.0, 0.505, 0.01]
    >>> s.momentum(0), s.momentum(50)
    (0.9, 0.8)
    """

    family = "cyclic"
    lr_fields = ("base_lr", "max_lr")
    base_lr: float
    max_lr: float
    step_size_up: int = 2000
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    cycle_momentum: bool = True
    base_momentum: float = 0.8
    max_momentum: float = 0.9

    def validate(self) -> None:
        check_positive(self.family, "base_lr", self.base_lr)
        check_positive(self.family, "max_lr", self.max_lr)
        if self.max_lr < self.base_lr:
            raise InputError(
                f"cyclic: max_lr={self.max_lr!r} is less than base_lr={self.base_lr!r}; "
                "max_lr must be >= base_lr"
            )
        check_int(self.family, "step_size_up", self.step_size_up, minimum=1)
        check_optional_steps(self.family, "step_size_down", self.step_size_down)
        check_choice(self.family, "mode", self.mode, MODES)
        check_positive(self.family, "gamma", self.gamma)
        check_fraction(self.family, "gamma", self.gamma)
        check_bool(self.family, "cycle_momentum", self.cycle_momentum)
        check_fraction(self.family, "base_momentum", self.base_momentum)
        check_fraction(self.family, "max_momentum", self.max_momentum)

    @property
    def period(self) -> int:
        """Steps in one cycle: ``step_size_up + step_size_down``."""
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        return self.step_size_up + down

    def _position(self, step: int) -> tuple[float, float]:
        """(scale_factor, amplitude scale) at ``step``, computed as torch computes them."""
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total_size = up + down
        step_ratio = up / total_size
        cycle = math.floor(1 + step / total_size)
        x = 1.0 + step / total_size - cycle
        scale_factor = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
        if self.mode == "triangular":
            amplitude = 1.0
        elif self.mode == "triangular2":
            # = 1 / 2.0 ** (cycle - 1), as torch, but fading to 0 instead of overflowing
            # after 1024 cycles.
            amplitude = math.ldexp(1.0, 1 - cycle)
        else:
            amplitude = self.gamma**step
        return scale_factor, amplitude

    def lr_at(self, step: int) -> float:
        scale_factor, amplitude = self._position(step)
        base_height = (self.max_lr - self.base_lr) * scale_factor
        return float(self.base_lr + base_height * amplitude)

    def momentum(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        scale_factor, amplitude = self._position(step)
        base_height = (self.max_momentum - self.base_momentum) * scale_factor
        return float(self.max_momentum - base_height * amplitude)
