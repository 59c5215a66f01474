"""Smoothing a noisy loss curve, and the rule that says when it has diverged.

Two smoothings, for two jobs:

* While the range test runs, it watches a debiased exponential moving average (beta 0.98, as
  fastai and torch-lr-finder do) to decide when to STOP: the raw per-batch loss is too noisy to
  stop on, and the bias correction keeps the first steps from being pulled towards zero. This
  average is causal, so it lags the ramp by about ``beta / (1 - beta)`` steps; read after the
  run it moves every feature of the curve to higher LRs (the steepest fall up to ~4x, the
  lowest loss ~2x on a noise-free 100-step curve).
* The suggestion rules run after the run, so they read :func:`zero_lag`: a two-sided Gaussian
  smoothing of the finished curve, which averages as much noise without moving anything.

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
# The zero-lag Gaussian's standard deviation, as a fraction of the curve's length (at least one
# step). A symmetric kernel does not move a symmetric feature (the inflection of a sigmoid-like
# descent, the bottom of a valley) however wide it is, so it can be wider than a lag-bound causal
# average would dare: 1/25 of the run averages ~14% of its points (100 steps: sigma 4).
ZERO_LAG_WIDTH = 1 / 25


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


def zero_lag_sigma(length: int) -> float:
    """The Gaussian's standard deviation, in steps, for a curve of ``length`` finite points.

    >>> zero_lag_sigma(100), zero_lag_sigma(10)
    (4.0, 1.0)
    """
    return max(1.0, length * ZERO_LAG_WIDTH)


def zero_lag(values: Sequence[float] | np.ndarray, clip: bool = True) -> np.ndarray:
    """The two-sided (zero-lag) smoothing of a finished curve, read by the suggestion rules.

    Only the finite prefix is smoothed (everything before the first NaN/inf, which stays NaN from
    there on). Why a Gaussian in index space rather than a forward-backward EMA or a
    Savitzky-Golay filter: it has no lag and no overshoot (an EMA run both ways has a
    sharp-peaked kernel that keeps more noise; Savitzky-Golay's polynomial rings on a blow-up),
    and its width follows the run's length (:data:`ZERO_LAG_WIDTH`), like the rules' notion of
    "a few points". Two guards for the ends of a range test:

    * values above the start level (the highest loss of the first tenth) are clipped to it, so a
      blow-up to 1e6 just before the run stopped cannot leak into the minimum next to it;
    * the ends are mirrored (``mode="reflect"``), so the curve is flat at its ends: a slope is
      never read off a one-sided average of the first or last few noisy points.

    Shifting the loss, or scaling it by a positive factor, shifts or scales the result the same
    way (the clipping included). ``clip=False`` skips the ceiling (the divergence rule reads the
    blow-up itself).

    >>> zero_lag([1.0, 1.0, 1.0, float("nan")]).round(12).tolist()
    [1.0, 1.0, 1.0, nan]
    >>> curve = zero_lag(np.r_[np.linspace(2.0, 0.0, 50), np.linspace(0.0, 2.0, 50)])
    >>> int(np.argmin(curve)) in (49, 50)   # the bottom stays where it was: no lag
    True
    """
    y = np.asarray(values, dtype=float)
    out = np.full(y.shape, np.nan)
    bad = ~np.isfinite(y)
    end = int(np.argmax(bad)) if bad.any() else len(y)
    if end == 0:
        return out
    prefix = y[:end]
    if clip:
        prefix = np.minimum(prefix, prefix[:max(1, end // 10)].max())
    out[:end] = gaussian_filter(prefix, zero_lag_sigma(end))
    return out


def gaussian_filter(values: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d(values, sigma, mode="reflect") (to 1e-15) in numpy:
    importing scipy.ndimage costs ~0.85 s at the first range test of a process (``lrscope find``
    pays it), this costs nothing. Same kernel (truncated at 4 sigma) and the same mirrored ends.

    >>> gaussian_filter(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 1.0).round(3).tolist()
    [0.175, 0.726, 1.197, 0.726, 0.175]
    """
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    padded = np.pad(values, radius, mode="symmetric")  # scipy's "reflect": d c b a | a b c d
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")
