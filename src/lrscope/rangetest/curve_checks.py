"""What a finished range-test curve can support: where the net was still learning, whether the
loss fell at all, and the warnings when the curve cannot carry an answer.

All of it reads the normalized raw losses and their zero-lag smoothing
(:func:`lrscope.rangetest.smoothing.zero_lag`), so a shifted or scaled loss gives the same
answers. :func:`lrscope.rangetest.suggest.advise` calls these; nothing else needs to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lrscope.rangetest.smoothing import zero_lag_sigma

# The net has collapsed once the loss, having won at least this fraction of its whole drop,
# gives back this fraction of what it had won: later dips (on the way to a dead plateau) are no
# LR to train at.
COLLAPSE_FRACTION = 0.5
# The loss "fell" when its drop exceeds this many standard errors of the smoothed curve.
FELL_STANDARD_ERRORS = 4.0
# A descent of fewer standard errors than this is weak: the net learned little during the ramp
# (it outran the net, or the noise is large), so the lowest loss's LR is read with a wide margin
# (:func:`lrscope.rangetest.suggest.below_minimum`) and a warning says so.
CLEAR_STANDARD_ERRORS = 25.0
# The lowest loss "is at end_lr" when it lies in this fraction of the last points (at least 2).
END_FRACTION = 0.02


@dataclass(frozen=True)
class Advice:
    """A headline LR (None when no rule answered), the rule that gave it, every rule's answer,
    why the headline was chosen (one line) and the warnings (one line each)."""

    lr: float | None
    rule: str | None
    suggestions: dict[str, float | None]
    reason: str
    warnings: tuple[str, ...] = field(default=())


def learning_part(curve: np.ndarray) -> int:
    """How many leading points of a smoothed ``curve`` come before the net collapsed.

    The net has collapsed at the first point where the loss, having fallen from its start by at
    least :data:`COLLAPSE_FRACTION` of its whole drop, has climbed back by that fraction of what
    it had won. A rise after a small early wiggle (noise on a flat start) does not count.

    >>> learning_part(np.array([2.0, 1.0, 0.5, 1.0, 2.0, 0.2]))   # the late dip is cut off
    4
    >>> learning_part(np.array([2.0, 1.9, 2.0, 1.0, 0.5, 0.6]))   # an early wiggle is not
    6
    """
    if len(curve) == 0:
        return 0
    start = curve[0]
    drop = start - curve.min()
    if not drop > 0:
        return len(curve)
    lowest = np.minimum.accumulate(curve)
    won = start - lowest
    collapsed = (won >= COLLAPSE_FRACTION * drop) & (curve - lowest > COLLAPSE_FRACTION * won)
    return int(np.argmax(collapsed)) if collapsed.any() else len(curve)


def descent_strength(losses: np.ndarray, curve: np.ndarray) -> float:
    """How far the smoothed ``curve`` falls below its start, in standard errors of that curve.

    The noise is the raw ``losses``' scatter from their second differences (a median, so robust
    to spikes; blind to a linear trend, so a short straight descent is not taken for noise); the
    smoothed curve's standard error is that over the square root of the points its Gaussian
    averages. A noise-free descent is ``inf``; a curve of fewer than two points, 0.

    >>> from lrscope.rangetest.smoothing import zero_lag
    >>> line = np.linspace(1, 0, 50)
    >>> descent_strength(line, zero_lag(line))
    inf
    """
    if len(curve) < 2:
        return 0.0
    drop = float(curve[0] - curve.min())
    # For white noise of deviation s, y[i+1] - 2 y[i] + y[i-1] has deviation s * sqrt(6).
    bends = np.abs(np.diff(losses, 2))
    scatter = float(np.median(bends)) * 1.4826 / math.sqrt(6) if len(bends) else 0.0
    averaged = 2 * math.sqrt(math.pi) * zero_lag_sigma(len(losses))
    error = scatter / math.sqrt(averaged)
    span = float(np.ptp(losses))
    if drop <= 1e-9 * span:
        return 0.0
    return drop / error if error > 0 else math.inf


def curve_warnings(ran: int, lrs: np.ndarray, curve: np.ndarray, descended: bool,
                   diverged_at: float | None, planned_steps: int | None,
                   strength: float | None = None) -> tuple[str, ...]:
    """One line per reason the curve cannot support an answer (or only a cautious one).

    ``ran``: steps recorded (finite or not); ``lrs`` / ``curve``: the finite points before the
    collapse; ``descended``: whether the loss fell by more than
    :data:`FELL_STANDARD_ERRORS` (:func:`descent_strength`); ``strength``: :func:`descent_strength`
    (a weak descent, under :data:`CLEAR_STANDARD_ERRORS`, is warned about).

    >>> curve_warnings(5, np.array([1e-7, 1e-6]), np.array([1.0, 2.0]), False, 1e-5, 100)[1]
    'the run diverged at step 4 of 100 (lr 1e-05), within its first tenth: lower --start / \
start_lr'
    """
    if len(lrs) == 0:
        return ("no finite loss at any LR: lower --start / start_lr",)
    warnings = []
    if not descended:
        warnings.append("the loss never fell: widen the ramp (lower --start / start_lr, raise "
                        "--end / end_lr) or add --steps")
    if descended and strength is not None and strength < CLEAR_STANDARD_ERRORS:
        warnings.append(f"the loss fell only {strength:.0f} standard errors of its smoothed "
                        "curve: the net learned little during the ramp, so the headline keeps a "
                        "wide margin below the lowest loss; more --steps or --seeds 3 give a "
                        "firmer answer")
    low = int(np.argmin(curve))
    at_end = low >= ran - max(2, math.ceil(END_FRACTION * ran))
    if descended and diverged_at is None and at_end:
        warnings.append(f"the lowest loss is at the end of the ramp (lr {lrs[low]:.3g}): the "
                        "ramp is too narrow; raise --end / end_lr")
    if diverged_at is not None and planned_steps and ran <= planned_steps / 10:
        warnings.append(f"the run diverged at step {ran - 1} of {planned_steps} (lr "
                        f"{diverged_at:.3g}), within its first tenth: lower --start / start_lr")
    return tuple(warnings)
