"""The ``check_*`` validators: each raises one line naming where, the argument, the value and
the fix (an :class:`~lrscope.errors.InputError`, or :class:`~lrscope.errors.InputTypeError` for
a wrong type). Used by schedules, the range test, trials and the study alike.

>>> check_int("range_test", "num_steps", 0, minimum=2)
Traceback (most recent call last):
...
lrscope.errors.InputError: range_test: num_steps=0 is out of range; it must be >= 2
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from lrscope.errors import InputError, InputTypeError


def check_positive(family: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    check_number(family, name, value)
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(
            f"{family}: {name}={value!r} is out of range; it must be finite and {bound}"
        )


def check_number(family: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{family}: {name}={value!r} must be a number")


def check_int(family: str, name: str, value: Any, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{family}: {name}={value!r} must be an integer")
    if value < minimum:
        raise InputError(f"{family}: {name}={value!r} is out of range; it must be >= {minimum}")


def check_optional_steps(family: str, name: str, value: Any) -> None:
    if value is not None:
        check_int(family, name, value, minimum=1)


def check_choice(family: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        options = ", ".join(choices)
        raise InputError(f"{family}: {name}={value!r} is not one of {options}")


def check_fraction(
    family: str, name: str, value: Any, *, low: float = 0.0, high: float = 1.0
) -> None:
    check_number(family, name, value)
    if not low <= value <= high:
        raise InputError(
            f"{family}: {name}={value!r} is out of range; it must lie in [{low}, {high}]"
        )


def check_bool(family: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InputTypeError(f"{family}: {name}={value!r} must be True or False")


def seconds(given: float | None, env: str, default: float, what: str) -> float:
    """A duration in seconds: ``given``, else ``$env``, else ``default``; it must be > 0.

    >>> seconds(None, "LRSCOPE_UNSET_FOR_THIS_EXAMPLE", 120.0, "lease timeout")
    120.0
    >>> seconds(-1, "X", 1.0, "timeout_s")
    Traceback (most recent call last):
    lrscope.errors.InputError: timeout_s=-1: must be a positive number of seconds
    """
    if given is None:
        text = os.environ.get(env, "").strip()
        if not text:
            return float(default)
        try:
            given = float(text)
        except ValueError:
            raise InputError(f"{env}={text!r}: must be a number of seconds") from None
    if isinstance(given, bool) or not isinstance(given, (int, float)) or not given > 0:
        raise InputError(f"{what}={given!r}: must be a positive number of seconds")
    return float(given)


MAX_SEED = 2**32 - 1  # NumPy's global RNG takes no larger seed


def check_seeds(where: str, seeds: int | Sequence[int]) -> tuple[int, ...]:
    """``seeds`` as distinct seeds: a count N is 0..N-1 (the range test's and the study's rule).

    >>> check_seeds("range_test", 3), check_seeds("compare", [7, 2])
    ((0, 1, 2), (7, 2))
    >>> check_seeds("range_test", 0)
    Traceback (most recent call last):
    lrscope.errors.InputError: range_test: seeds=0 must be at least 1 (a count or a list of seeds)
    """
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)) or isinstance(
            seeds, (str, bytes)):
        raise InputTypeError(f"{where}: seeds={seeds!r} must be a count or a list of seeds")
    if isinstance(seeds, int):
        if seeds < 1:
            raise InputError(f"{where}: seeds={seeds!r} must be at least 1 (a count or a list "
                             "of seeds)")
        return tuple(range(seeds))
    chosen = tuple(seeds)
    if not chosen or len(set(chosen)) != len(chosen) or any(
            isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED
            for s in chosen):
        raise InputError(f"{where}: seeds={seeds!r} must be a count or distinct whole numbers "
                         f"in [0, {MAX_SEED}]")
    return chosen
