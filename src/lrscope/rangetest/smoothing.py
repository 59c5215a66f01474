"""Smoothing a noisy loss curve, and the rule that says when it has diverged.

The range test reads its curve through a debiased exponential moving average (beta 0.98, as
fastai and torch-lr-finder do): the raw per-batch loss is too noisy to read a slope from, and
the bias correction keeps the first steps from being pulled towards zero.

The divergence rule generalises the classic "smoothed loss above ``factor`` x the best loss"
(``smoothed > factor * best``, i.e. ``smoothed - best > (factor - 1) * best``) to losses that
may be zero or negative: the run has diverged when

    smoothed - best > (factor - 1) * |best| + tolerance * |reference|

where ``reference`` is the first loss of the run. For positive losses with ``tolerance = 0``
this is exactly the classic rule. The ``|best|`` keeps a loss shifted below zero (e.g. a loss
minus 100) from stopping at the first wiggle, and the small ``tolerance * |reference|`` term
keeps a loss that reached (nearly) zero from "diverging" on noise of a size that the classic
rule would read as a 5x blow-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_BETA = 0.98
DEFAULT_DIVERGE_FACTOR = 5.0
# Fraction of the first loss that a rise above the best must also exceed to count as divergence.
DIVERGE_TOLERANCE = 0.05


class DebiasedEMA:
    """Debiased exponential moving average, fed one value at a time.

    >>> ema = DebiasedEMA(beta=0.5)
    >>> [round(ema.update(v), 6) for v in (2.0, 4.0)]
    [2.0, 3.333333]
    """

    __slots__ = ("_average", "_correction", "beta")

    def __init__(self, beta: float = DEFAULT_BETA) -> None:
        self.beta = beta
        self._average = 0.0
        self._correction = 1.0  # beta ** steps seen so far

    def update(self, value: float) -> float:
        """Add one value; return the debiased average including it."""
        self._average = self.beta * self._average + (1.0 - self.beta) * value
        self._correction *= self.beta
        return self._average / (1.0 - self._correction)


def smooth(values: Sequence[float] | np.ndarray, beta: float = DEFAULT_BETA) -> np.ndarray:
    """The debiased EMA of a whole curve (what the range test records step by step).

    A non-finite value makes every later smoothed value non-finite, as in the live loop.

    >>> smooth([1.0, 1.0, 1.0]).round(12).tolist()
    [1.0, 1.0, 1.0]
    >>> smooth([2.0, 4.0], beta=0.5).round(4).tolist()
    [2.0, 3.3333]
    """
    ema = DebiasedEMA(beta)
    return np.array([ema.update(float(v)) for v in values], dtype=float)


def has_diverged(
    smoothed: float,
    best: float,
    reference: float,
    factor: float = DEFAULT_DIVERGE_FACTOR,
    tolerance: float = DIVERGE_TOLERANCE,
) -> bool:
    """True when ``smoothed`` has risen above ``best`` by the factor rule (see module doc).

    A non-finite ``smoothed`` has always diverged.

    >>> has_diverged(6.0, best=1.0, reference=2.0)       # 6 > 5 x 1 (+ 0.1)
    True
    >>> has_diverged(4.0, best=1.0, reference=2.0)
    False
    >>> has_diverged(-97.0, best=-100.0, reference=-98.0)  # negative losses: no early stop
    False
    >>> has_diverged(float("nan"), best=1.0, reference=2.0)
    True
    """
    if not math.isfinite(smoothed):
        return True
    return smoothed > divergence_limit(best, reference, factor, tolerance)


def divergence_limit(
    best: float,
    reference: float,
    factor: float = DEFAULT_DIVERGE_FACTOR,
    tolerance: float = DIVERGE_TOLERANCE,
) -> float:
    """The smoothed loss above which :func:`has_diverged` says yes, for this best/reference.

    The range test computes it only when the best loss changes and then compares one float
    per step.

    >>> divergence_limit(1.0, reference=2.0)
    5.1
    """
    return best + (factor - 1.0) * abs(best) + tolerance * abs(reference)
