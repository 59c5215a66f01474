"""The linear warmup shared by cosine, linear, polynomial, inverse_sqrt, wsd and constant.

Over the first ``warmup_steps`` steps the LR climbs linearly towards the value the schedule has
at step ``warmup_steps`` (its peak): ``peak * (step + 1) / (warmup_steps + 1)``. Starting at
``peak / (warmup_steps + 1)`` rather than 0 means no optimizer step is wasted at LR 0, and the
climb is strictly increasing right into the peak (nanoGPT's form).
"""

from __future__ import annotations

from lrscope._checks import check_int
from lrscope.errors import InputError


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
