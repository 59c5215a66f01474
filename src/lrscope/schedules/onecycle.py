"""The 1cycle policy: torch's ``OneCycleLR``, in closed form, momentum included."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrscope._checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_optional_steps,
    check_positive,
)
from lrscope.errors import InputError
from lrscope.schedules.base import Schedule, register


def anneal(start: float, end: float, pct: float, strategy: str) -> float:
    """From ``start`` (pct 0) to ``end`` (pct 1), as torch's ``_annealing_cos`` / ``_linear``."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


@register
@dataclass(frozen=True)
class OneCycle(Schedule):
    """torch's ``OneCycleLR`` with the same arguments, defaults and arithmetic.

    The LR warms up from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the run,
    then anneals to ``max_lr / div_factor / final_div_factor`` at the last step
    (``total_steps - 1``; later steps stay there, where torch would raise). With
    ``three_phase`` it comes back down to the initial LR before the final anneal, as in
    Smith's paper. Momentum moves the opposite way between ``max_momentum`` and
    ``base_momentum`` unless ``cycle_momentum=False``.

    >>> s = OneCycle(max_lr=1.0, total_steps=100)
    >>> round(s(0), 12), s(29), s(99)
    (0.04, 1.0, 4e-06)
    >>> s.momentum(0), s.momentum(29)
    (0.95, 0.85)
    """

    family = "onecycle"
    lr_fields = ("max_lr",)
    max_lr: float
    total_steps: int | None = None
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def validate(self) -> None:
        check_positive(self.family, "max_lr", self.max_lr)
        check_optional_steps(self.family, "total_steps", self.total_steps)
        check_fraction(self.family, "pct_start", self.pct_start)
        check_choice(self.family, "anneal_strategy", self.anneal_strategy, ("cos", "linear"))
        check_positive(self.family, "div_factor", self.div_factor)
        check_positive(self.family, "final_div_factor", self.final_div_factor)
        check_bool(self.family, "three_phase", self.three_phase)
        check_bool(self.family, "cycle_momentum", self.cycle_momentum)
        check_fraction(self.family, "base_momentum", self.base_momentum)
        check_fraction(self.family, "max_momentum", self.max_momentum)
        if self.three_phase and self.pct_start > 0.5:
            raise InputError(
                f"onecycle: pct_start={self.pct_start!r} is too large for three_phase=True; "
                "the warmup and its mirror take 2 * pct_start of the run, so it must be <= 0.5"
            )

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        """(end_step, start_lr, end_lr, start_momentum, end_momentum), exactly as torch."""
        total = self.require_total_steps()
        warm_end = float(self.pct_start * total) - 1
        if self.three_phase:
            return [
                (warm_end, "initial", "max", "max_momentum", "base_momentum"),
                (float(2 * self.pct_start * total) - 2, "max", "initial",
                 "base_momentum", "max_momentum"),
                (total - 1, "initial", "min", "max_momentum", "max_momentum"),
            ]
        return [
            (warm_end, "initial", "max", "max_momentum", "base_momentum"),
            (total - 1, "max", "min", "base_momentum", "max_momentum"),
        ]

    def _locate(self, step: int) -> tuple[tuple[float, str, str, str, str], float]:
        """The phase holding ``step`` and how far into it ``step`` is (torch's ``pct``)."""
        phases = self._phases()
        step = min(step, self.require_total_steps() - 1)
        start = 0.0
        for i, phase in enumerate(phases):
            end = phase[0]
            if step <= end or i == len(phases) - 1:
                # A phase of zero length is at its end value (torch divides by zero there).
                pct = 1.0 if end == start else (step - start) / (end - start)
                return phase, pct
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    def _lr_levels(self) -> dict[str, float]:
        initial = self.max_lr / self.div_factor
        return {"initial": initial, "max": self.max_lr, "min": initial / self.final_div_factor}

    def lr_at(self, step: int) -> float:
        phase, pct = self._locate(step)
        levels = self._lr_levels()
        return float(anneal(levels[phase[1]], levels[phase[2]], pct, self.anneal_strategy))

    def momentum(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        phase, pct = self._locate(step)
        levels = {"base_momentum": self.base_momentum, "max_momentum": self.max_momentum}
        return float(anneal(levels[phase[3]], levels[phase[4]], pct, self.anneal_strategy))
