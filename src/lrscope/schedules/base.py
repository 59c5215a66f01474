"""The contract every schedule keeps.

A schedule is an immutable value mapping an optimizer step (0, 1, 2, ...) to a learning rate,
in closed form: ``s(step)`` (the same as ``s.lr_at(step)``) does not depend on having been
called for earlier steps and never touches an optimizer (the adapters in
:mod:`lrscope.schedules.torch_adapter` do that). Schedules that cycle momentum (onecycle,
cyclic) also answer ``s.momentum(step)``; the others return ``None``.

A finite schedule has a ``total_steps`` field; left as ``None`` it is filled with the run's
length by :meth:`Schedule.with_total_steps` before use.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from lrscope.errors import InputError

# family name -> Schedule subclass, filled by @register.
REGISTRY: dict[str, type[Schedule]] = {}

_S = TypeVar("_S", bound="type[Schedule]")


def register(cls: _S) -> _S:
    """Class decorator: make ``cls`` parseable under its ``family`` name.

    Refuses a family whose ``lr_fields`` names something that is not one of its fields.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [name for name in cls.lr_fields if name not in names]
    if unknown:
        raise TypeError(f"{cls.__name__}.lr_fields names {unknown}, which are not its fields "
                        f"({', '.join(sorted(names))})")
    REGISTRY[cls.family] = cls
    return cls


@dataclass(frozen=True)
class Schedule:
    """Base class: subclasses are frozen dataclasses that implement :meth:`lr_at`."""

    family: ClassVar[str] = ""
    # Fields holding other schedules (the combinators'): the spec gives them first, unnamed,
    # as nested family calls, e.g. warmup(cosine(lr=0.5), steps=100).
    schedule_args: ClassVar[tuple[str, ...]] = ()
    # Fields holding a learning rate: what :meth:`scaled` multiplies. Every family declares
    # its own (tests/schedules check each registered family scales every LR it produces);
    # everything else (steps, factors, gammas, momenta) is left as it is.
    lr_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.validate()

    # -- the contract -------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Learning rate at optimizer step ``step`` (>= 0).

        (Not ``lr``: that is the base-LR argument of most families, as in their specs.)
        """
        raise NotImplementedError

    def momentum(self, step: int) -> float | None:
        """Momentum (or Adam's beta1) at ``step`` for schedules that cycle it, else None."""
        return None

    def validate(self) -> None:
        """Raise InputError naming the argument when a field is out of range."""

    # -- shared behaviour ---------------------------------------------------------------------
    def __call__(self, step: int) -> float:
        return self.lr_at(step)

    @property
    def cycles_momentum(self) -> bool:
        """True for schedules that set momentum too (onecycle, cyclic with cycle_momentum)."""
        return bool(getattr(self, "cycle_momentum", False))

    @property
    def is_finite(self) -> bool:
        """True when the schedule is defined over a fixed number of steps."""
        return any(f.name == "total_steps" for f in dataclasses.fields(self))

    def needs_total_steps(self) -> bool:
        return self.is_finite and getattr(self, "total_steps", None) is None

    def with_total_steps(self, total_steps: int) -> Schedule:
        """A copy with ``total_steps`` filled in when it was left unset; else ``self``."""
        if self.needs_total_steps():
            return dataclasses.replace(self, total_steps=total_steps)  # type: ignore[call-arg]
        return self

    def require_total_steps(self) -> int:
        total = getattr(self, "total_steps", None)
        if total is None:
            raise InputError(
                f"missing total steps for {self.family}: give total_steps=N in the spec "
                "or the run's length (e.g. --steps N)"
            )
        return int(total)

    def scaled(self, factor: float, digits: int | None = None) -> Schedule:
        """A copy with every LR-valued field (:attr:`lr_fields`, nested schedules too)
        multiplied by ``factor``, so ``s.scaled(k)(t) == k * s(t)`` at every step (up to
        rounding) and the momentum is unchanged. ``digits`` rounds each scaled LR to that many
        significant digits, for a readable spec (``0.05 * 3`` is ``0.15``, not
        ``0.15000000000000002``).

        >>> from lrscope.schedules import parse
        >>> parse("warmup(onecycle(max_lr=0.6), steps=5)").scaled(3, digits=6).spec()
        'warmup(onecycle(max_lr=1.8), steps=5)'
        """
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                or not math.isfinite(factor) or factor <= 0:
            raise InputError(f"{self.family}: LR scale {factor!r} must be a positive number")

        def times(value: Any) -> Any:
            if isinstance(value, Schedule):
                return value.scaled(factor, digits)
            if isinstance(value, tuple):
                return tuple(times(v) for v in value)
            product = value * factor
            return float(f"{product:.{digits}g}") if digits is not None else product

        changes = {f.name: times(getattr(self, f.name)) for f in dataclasses.fields(self)
                   if (f.name in self.lr_fields and getattr(self, f.name) is not None)
                   or f.name in self.schedule_args}
        return dataclasses.replace(self, **changes)

    def lrs(self, num_steps: int) -> list[float]:
        """Learning rates at steps ``0 .. num_steps - 1``."""
        return [self.lr_at(step) for step in range(num_steps)]

    def check_finite(self, num_steps: int) -> None:
        """InputError naming the first step of ``0 .. num_steps - 1`` whose LR is not a finite
        number (an ``exponential`` with gamma > 1 overflows): the rule that ``lrscope
        schedules`` and a study's schedules are checked by, before anything runs.

        >>> from lrscope.schedules import parse
        >>> parse("exponential(lr=1, gamma=1.5)").check_finite(2345)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lrscope.errors.InputError: ...: the learning rate overflows at step 1751 of 2345 ...
        """
        for step in range(num_steps):
            try:
                lr = self.lr_at(step)
            except OverflowError:
                lr = math.inf
            if not math.isfinite(lr):
                raise InputError(
                    f"{self.spec()}: the learning rate {'overflows' if lr == lr else 'is NaN'} "
                    f"at step {step} of {num_steps} ({lr!r}); give arguments that keep it "
                    "finite over the run")

    def spec(self) -> str:
        """The spec string that parses back to this schedule."""
        args = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.schedule_args:
                args.append(_format_value(value))
            elif value != f.default or f.default is dataclasses.MISSING:
                args.append(f"{f.name}={_format_value(value)}")
        return f"{self.family}({', '.join(args)})"

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **dataclasses.asdict(self)}

    def __str__(self) -> str:
        return self.spec()


class AroundOne(Schedule):
    """Base of the combinators around one schedule, its ``schedule`` field (warmup, compress):
    whether they cycle momentum, are finite, or still need their total steps is the
    schedule's."""

    schedule: Schedule

    @property
    def cycles_momentum(self) -> bool:
        return self.schedule.cycles_momentum

    @property
    def is_finite(self) -> bool:
        return self.schedule.is_finite

    def needs_total_steps(self) -> bool:
        return self.schedule.needs_total_steps()


def _format_value(value: Any) -> str:
    if isinstance(value, Schedule):  # a combinator's nested schedule
        return value.spec()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, str):
        # Bare names (mode=exp) read best; anything else (cooldown='1-sqrt') must be quoted.
        return value if value.isidentifier() and not keyword.iskeyword(value) else repr(value)
    return str(value)
