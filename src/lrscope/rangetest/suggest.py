"""Which learning rate to use, read off a range-test curve: one pure function per rule.

Every rule takes the LRs (positive, strictly increasing) and the smoothed losses of a range
test and returns an LR or ``None`` when the curve does not support an answer. Rules read only
the finite prefix of the curve (everything before the first NaN/inf), so a blown-up loss can
never become a suggestion.

* :func:`steepest` -- where the smoothed loss falls fastest against log10(LR), after trimming
  the ramp's ends (torch-lr-finder's rule).
* :func:`valley` -- fastai's "valley": about halfway along the longest stretch of descending
  loss (at 1/3 + 1/6 of its length, as fastai reads it).
* :func:`minimum` -- fastai's ``lr_min``: the LR of the lowest loss, divided by 10.
* :func:`divergence` -- where the run blew up: the LR at which the range test stopped, or the
  first LR after the minimum where the loss rose ``factor`` x above it. An upper bound (a
  schedule's max LR), never a training LR, so it is never the headline.

:func:`suggest` runs them all and picks the headline (see its docstring for the precedence).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import numpy as np

from lrscope.errors import InputError, did_you_mean
from lrscope.rangetest.smoothing import has_diverged

Curve = Sequence[float] | np.ndarray
RULES = ("steepest", "valley", "minimum", "divergence")
# Headline precedence: the first rule that gives an answer wins.
HEADLINE_ORDER = ("steepest", "valley", "minimum")
# torch-lr-finder trims 10 points at the start and 5 at the end; short runs trim in proportion.
SKIP_START, SKIP_END = 10, 5


def finite_prefix(lrs: Curve, losses: Curve) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to (not including) its first non-finite loss or LR.

    >>> finite_prefix([1e-3, 1e-2, 1e-1], [2.0, float("nan"), 1.0])
    (array([0.001]), array([2.]))
    """
    x = np.asarray(lrs, dtype=float)
    y = np.asarray(losses, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"suggest: lrs and losses must be 1-D and equally long; got shapes "
                         f"{x.shape} and {y.shape}")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    end = int(np.argmax(bad)) if bad.any() else len(x)
    x, y = x[:end], y[:end]
    if (x <= 0).any() or (np.diff(x) <= 0).any():
        raise InputError("suggest: lrs must be positive and strictly increasing")
    return x, y


def default_skips(n: int) -> tuple[int, int]:
    """torch-lr-finder's 10/5 trimmed points, in proportion (10% / 5%) for runs under 100.

    >>> default_skips(200), default_skips(40), default_skips(5)
    ((10, 5), (4, 2), (0, 0))
    """
    return min(SKIP_START, n // 10), min(SKIP_END, n // 20)


def trim(lrs: Curve, losses: Curve, skip_start: int | None = None,
         skip_end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The finite prefix without its first ``skip_start`` and last ``skip_end`` points."""
    x, y = finite_prefix(lrs, losses)
    default_start, default_end = default_skips(len(x))
    start = default_start if skip_start is None else skip_start
    end = default_end if skip_end is None else skip_end
    return x[start:len(x) - end], y[start:len(y) - end]


def steepest(lrs: Curve, losses: Curve, skip_start: int | None = None,
             skip_end: int | None = None) -> float | None:
    """The LR where the loss falls fastest against log10(LR), before its lowest point; None if
    it never falls.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))      # falls fastest at 1e-2
    >>> float(steepest(lrs, losses))
    0.01
    """
    x, y = trim(lrs, losses, skip_start, skip_end)
    # Only the descent up to the lowest loss counts. Past it a collapsing net can dip again
    # (a spike down on its way to a dead plateau, seen on LeNet-5 / Fashion-MNIST), and no LR
    # should be read off that.
    stop = int(np.argmin(y)) + 1 if len(y) else 0
    x, y = x[:stop], y[:stop]
    if len(x) < 3:
        return None
    slope = np.gradient(y, np.log10(x))
    i = int(np.argmin(slope))
    return float(x[i]) if slope[i] < 0 else None


def valley(lrs: Curve, losses: Curve, skip_start: int | None = None,
           skip_end: int | None = None) -> float | None:
    """fastai's valley rule: the longest descending run, read at 1/3 + 1/6 of its length.

    "Descending run" is a longest strictly decreasing subsequence of the loss; the rule
    returns None when the loss never decreases.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))
    >>> 1e-3 < valley(lrs, losses) < 1e-1
    True
    """
    x, y = trim(lrs, losses, skip_start, skip_end)
    n = len(y)
    if n < 2:
        return None
    lengths = descent_lengths(y)
    end = int(np.argmax(lengths))  # first index of the longest run's end
    if lengths[end] < 2:
        return None
    start = end - int(lengths[end]) + 1
    sections = (end - start) / 3
    return float(x[start + int(sections) + int(sections / 2)])


def descent_lengths(losses: np.ndarray) -> np.ndarray:
    """Length of the longest strictly decreasing subsequence ending at each point.

    Patience sorting on the negated losses (O(n log n)); fastai's double loop gives the same
    lengths in O(n^2).

    >>> descent_lengths(np.array([3.0, 1.0, 2.0, 0.5, 0.5])).tolist()
    [1, 2, 2, 3, 3]
    """
    tails: list[float] = []  # tails[k]: smallest tail of an increasing run of length k + 1
    lengths = np.empty(len(losses), dtype=int)
    for i, value in enumerate((-losses).tolist()):
        position = bisect.bisect_left(tails, value)
        if position == len(tails):
            tails.append(value)
        else:
            tails[position] = value
        lengths[i] = position + 1
    return lengths


def minimum(lrs: Curve, losses: Curve) -> float | None:
    """fastai's ``lr_min``: a tenth of the LR at the lowest (finite) loss.

    >>> minimum([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0])
    0.001
    """
    x, y = finite_prefix(lrs, losses)
    if len(x) == 0:
        return None
    return float(x[int(np.argmin(y))]) / 10


def divergence(lrs: Curve, losses: Curve, diverged_at: float | None = None,
               factor: float = 4.0) -> float | None:
    """Where the run blew up: ``diverged_at`` when the range test stopped there, else the
    first LR after the minimum whose loss rose ``factor`` x above it (the rule of
    :func:`lrscope.rangetest.smoothing.has_diverged`, so it also reads negative losses); None if
    none.

    >>> divergence([1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.0, 3.0, 9.0])
    1.0
    >>> divergence([1e-3, 1e-2], [2.0, 1.0], diverged_at=0.5)
    0.5
    """
    if diverged_at is not None:
        return float(diverged_at)
    x, y = finite_prefix(lrs, losses)
    if len(x) == 0:
        return None
    low = int(np.argmin(y))
    for i in range(low + 1, len(y)):
        if has_diverged(float(y[i]), best=float(y[low]), reference=float(y[0]), factor=factor):
            return float(x[i])
    return None


RuleFn = Callable[[Curve, Curve], float | None]
RULE_FUNCTIONS: dict[str, RuleFn] = {"steepest": steepest, "valley": valley, "minimum": minimum}


def suggest(
    lrs: Curve, losses: Curve, diverged_at: float | None = None, prefer: str = "steepest"
) -> tuple[float | None, str | None, dict[str, float | None]]:
    """All rules' answers and the headline: ``(headline_lr, headline_rule, {rule: lr})``.

    The headline is ``prefer``'s answer (steepest by default); when that rule has none
    (too few finite points, or a loss that never falls) the first answer in the order
    steepest, valley, minimum is used; ``(None, None, ...)`` when no rule answers. The
    divergence point is reported but never the headline: it is where training breaks.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))
    >>> lr, rule, every = suggest(lrs, losses)
    >>> rule, float(lr), sorted(every)
    ('steepest', 0.01, ['divergence', 'minimum', 'steepest', 'valley'])
    """
    if prefer not in RULE_FUNCTIONS:
        raise InputError(f"suggest: prefer={prefer!r} is not one of "
                         f"{', '.join(RULE_FUNCTIONS)}{did_you_mean(prefer, RULE_FUNCTIONS)}")
    every: dict[str, float | None] = {name: fn(lrs, losses) for name, fn in RULE_FUNCTIONS.items()}
    every["divergence"] = divergence(lrs, losses, diverged_at)
    for name in (prefer, *HEADLINE_ORDER):
        if every[name] is not None:
            return every[name], name, every
    return None, None, every
