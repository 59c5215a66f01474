"""Which learning rate to use, read off a range-test curve: one pure function per rule.

Every rule takes the LRs (positive, strictly increasing) and a loss curve and returns an LR or
``None`` when the curve does not support an answer. Rules read only the finite prefix of the
curve (everything before the first NaN/inf), so a blown-up loss can never become a suggestion.
:func:`suggest` (and :func:`advise`, which also says why) takes the RAW losses and feeds the
rules their zero-lag smoothing (:func:`lrscope.rangetest.smoothing.zero_lag`), cut where the
net collapsed (:func:`learning_part`); the causal EMA of the loop only decides when to stop.

* :func:`steepest` -- where the loss falls fastest against log10(LR), read only once the loss
  has begun to fall (by :data:`DROP_FRACTION` of its whole drop) and before its lowest point.
* :func:`valley` -- fastai's ``valley``, exactly: about halfway along the longest stretch of
  descending loss.
* :func:`minimum` -- fastai's ``lr_min``: the LR of the lowest loss, divided by 10.
* :func:`midpoint` -- halfway (in log LR) between the steepest fall and the lowest loss: where
  the loss still falls fast, short of where it stops falling.
* :func:`below_minimum` -- half the LR of the lowest loss; a tenth of it (fastai's ``lr_min``)
  when the descent is weak (:data:`lrscope.rangetest.curve_checks.CLEAR_STANDARD_ERRORS`).
* :func:`divergence` -- where the run blew up: the LR at which the range test stopped, or the
  first LR after the minimum where the loss rose ``factor`` x above it. An upper bound (a
  schedule's max LR), never a training LR, so it is never the headline.

The headline is :data:`HEADLINE` (one constant to change; benchmarks/suggestion_quality.py
scores every rule as the ``max_lr`` of a one-cycle run). Shifting the loss or scaling it by a
positive factor moves no suggestion but ``divergence`` (whose "factor x the best loss" reads the
loss's level, as the loop's stop rule does).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from lrscope.errors import InputError, did_you_mean
from lrscope.rangetest.curve_checks import (
    CLEAR_STANDARD_ERRORS,
    FELL_STANDARD_ERRORS,
    Advice,
    curve_warnings,
    descent_strength,
    learning_part,
)
from lrscope.rangetest.smoothing import divergence_limit, zero_lag

Curve = Sequence[float] | np.ndarray
# The headline rule, chosen by benchmarks/suggestion_quality.py (OneCycleLR at the suggested
# max_lr on 7 public tasks, trained regret against a 12-point oracle grid; docs/benchmarks.md):
# "below_minimum", half the LR of the lowest zero-lag loss (a tenth when the descent is weak).
# One-cycle holds max_lr only briefly and the range test's lowest loss is where the loss stops
# falling at one step per LR, so a max_lr a little below it trains fastest; the steepest point
# (and "midpoint", which reads it) is the curve's noisiest feature. Measured (single range test,
# 5 seeds x 7 tasks, momentum-0.9 SGD tasks): median regret 2.2% (midpoint: 10.2%, plain half
# of the lowest LR without the weak-descent margin: 4.4%), worst task 12.2% (midpoint: 896% on
# digits-lenet, whose loss fell only ~10 standard errors: the net barely learned during the
# ramp, and half its lowest LR does not train).
HEADLINE: Final = "below_minimum"
# When the preferred rule has no answer, the first of these that has one is the headline.
HEADLINE_ORDER = ("below_minimum", "midpoint", "steepest", "valley", "minimum")
# steepest ignores the curve until the loss has fallen by this fraction of its whole drop: the
# first points of a range test are its noisiest and a flat start has no slope worth reading.
DROP_FRACTION = 0.1


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


def trim(lrs: Curve, losses: Curve, skip_start: int = 0,
         skip_end: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The finite prefix without its first ``skip_start`` and last ``skip_end`` points."""
    x, y = finite_prefix(lrs, losses)
    return x[skip_start:len(x) - skip_end], y[skip_start:len(y) - skip_end]


def steepest(lrs: Curve, losses: Curve, skip_start: int = 0,
             skip_end: int = 0) -> float | None:
    """The LR where the loss falls fastest against log10(LR), between the point where it has
    fallen by :data:`DROP_FRACTION` of its whole drop and its lowest point; None if it never
    falls.

    Past the lowest point a collapsing net can dip again (a spike down on its way to a dead
    plateau, seen on LeNet-5 / Fashion-MNIST): no LR is read off that. Before the loss has begun
    to fall, a slope is noise (the first points) or nothing (a flat start).

    >>> lrs = np.logspace(-4, 0, 41)
    >>> losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))      # falls fastest at 1e-2
    >>> float(steepest(lrs, losses))
    0.01
    """
    x, y = trim(lrs, losses, skip_start, skip_end)
    if len(x) < 3:
        return None
    low = int(np.argmin(y))
    top = int(np.argmax(y[:low + 1]))
    drop = y[top] - y[low]
    if not drop > 0:
        return None
    slope = np.gradient(y, np.log10(x))
    begun = top + int(np.argmax(y[top:low + 1] <= y[top] - DROP_FRACTION * drop))
    i = begun + int(np.argmin(slope[begun:low + 1]))
    return float(x[i]) if slope[i] < 0 else None


def valley(lrs: Curve, losses: Curve, skip_start: int = 0,
           skip_end: int = 0) -> float | None:
    """fastai's ``valley`` rule, exactly as fastai computes it; None if the loss never falls.

    fastai 2.7 (fastai/callback/schedule.py, ``valley``;
    https://github.com/fastai/fastai/blob/master/fastai/callback/schedule.py, documented at
    https://docs.fast.ai/callback.schedule.html#valley): ``lds[i]`` is the length of the
    longest strictly decreasing subsequence ending at ``i``; ``max_end`` the first index where
    it is longest and ``max_start = max_end - lds[max_end]`` (one before the run's first point,
    as fastai writes it); ``sections = (max_end - max_start) / 3`` and the answer is
    ``lrs[max_start + int(sections) + int(sections / 2)]`` (a Python index, so -1 is the last
    point on a two-point curve, as in fastai). Where fastai answers ``lrs[0]`` for a loss that
    never decreases, this answers None. fastai's ``lr_find`` trims its recorded curve to
    ``[num_it // 10 : -5]`` before calling it: pass ``skip_start`` / ``skip_end`` for that.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))
    >>> 1e-3 < valley(lrs, losses) < 1e-1
    True
    """
    x, y = trim(lrs, losses, skip_start, skip_end)
    if len(y) < 2:
        return None
    lengths = descent_lengths(y)
    max_end = int(np.argmax(lengths))  # fastai keeps the first index of the longest
    if lengths[max_end] < 2:
        return None
    max_start = max_end - int(lengths[max_end])
    sections = (max_end - max_start) / 3
    return float(x[max_start + int(sections) + int(sections / 2)])


def descent_lengths(losses: np.ndarray) -> np.ndarray:
    """Length of the longest strictly decreasing subsequence ending at each point.

    Patience sorting on the negated losses (O(n log n)); fastai's double loop gives the same
    lengths in O(n^2).

    >>> descent_lengths(np.array([3.0, 1.0, 2.0, 0.5, 0.5])).tolist()
    [1, 2, 2, 3, 3]
    """
    tails: list[float] = []  # tails[k]: smallest tail of an increasing run of length k + 1
    lengths: list[int] = []  # a list, not an array: item assignment is slow in this loop
    for value in (-losses).tolist():
        position = bisect.bisect_left(tails, value)
        if position == len(tails):
            tails.append(value)
        else:
            tails[position] = value
        lengths.append(position + 1)
    return np.array(lengths, dtype=int)


def minimum(lrs: Curve, losses: Curve) -> float | None:
    """fastai's ``lr_min``: a tenth of the LR at the lowest (finite) loss.

    >>> minimum([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0])
    0.001
    """
    x, y = finite_prefix(lrs, losses)
    if len(x) == 0:
        return None
    return float(x[int(np.argmin(y))]) / 10


def midpoint(lrs: Curve, losses: Curve) -> float | None:
    """The geometric mean of :func:`steepest` and the LR of the lowest loss; None without a
    steepest point.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> u = np.log10(lrs)
    >>> losses = 1.0 - np.tanh(2 * (u + 3)) + (u + 1) ** 2 / 10   # steepest ~1e-3, lowest ~1e-1
    >>> round(float(np.log10(midpoint(lrs, losses))), 1)
    -2.0
    """
    fastest = steepest(lrs, losses)
    if fastest is None:
        return None
    x, y = finite_prefix(lrs, losses)
    return float(np.sqrt(fastest * x[int(np.argmin(y))]))


def below_minimum(lrs: Curve, losses: Curve, weak: bool = False) -> float | None:
    """Half the LR of the lowest (finite) loss, or a tenth of it when ``weak``; None on an empty
    curve.

    :func:`advise` sets ``weak`` when the loss fell by fewer than
    :data:`~lrscope.rangetest.curve_checks.CLEAR_STANDARD_ERRORS` standard errors of its
    smoothed curve: the net learned little during the ramp, its lowest point is a rough reading
    taken while the LR outran it, and fastai's wider ``lr_min`` margin (a tenth) is the safe one.

    >>> below_minimum([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0])
    0.005
    >>> below_minimum([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0], weak=True)
    0.001
    """
    x, y = finite_prefix(lrs, losses)
    if len(x) == 0:
        return None
    return float(x[int(np.argmin(y))]) / (10 if weak else 2)


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
    # has_diverged(y[i], best=y[low], reference=y[0], factor) for every i past the minimum at
    # once: best and reference are fixed, so is the limit.
    limit = divergence_limit(float(y[low]), float(y[0]), factor)
    after = y[low + 1:]
    hits = np.flatnonzero(~np.isfinite(after) | (after > limit))
    return float(x[low + 1 + hits[0]]) if len(hits) else None


RuleFn = Callable[[Curve, Curve], float | None]


@dataclass(frozen=True)
class Rule:
    """One suggestion rule, as every list of rules reads it: :func:`advise`, the config's
    ``prefer``, the CLI's ``--prefer`` help and rule table, the figures' lines and the
    integrations' ``prefer``. Adding a rule is one entry of :data:`RULE_REGISTRY`."""

    # lrs, zero-lag curve -> LR; None for a rule advise answers itself (divergence, an upper
    # bound that is never the headline)
    answer: RuleFn | None
    note: str  # what it reads, in a few words (the CLI's rule table)
    style: tuple[str, str]  # matplotlib colour and line style of its line on the figures
    # no answer on a curve whose loss never fell (advise leaves it None there)
    reads_descent: bool


RULE_REGISTRY: Final[Mapping[str, Rule]] = MappingProxyType({
    "steepest": Rule(steepest, "fastest fall of the loss against log LR",
                     ("tab:green", "-"), reads_descent=True),
    "valley": Rule(valley, "middle of the longest descent (fastai's valley)",
                   ("tab:purple", "--"), reads_descent=True),
    "minimum": Rule(minimum, "LR of the lowest loss, divided by 10 (fastai's lr_min)",
                    ("tab:orange", "-."), reads_descent=False),
    "midpoint": Rule(midpoint, "halfway (log LR) from the steepest fall to the lowest loss",
                     ("tab:brown", "-"), reads_descent=True),
    "below_minimum": Rule(below_minimum,
                          "half the LR of the lowest loss (a tenth when the descent is weak)",
                          ("tab:blue", "--"), reads_descent=True),
    "divergence": Rule(None, "the loss blows up: an upper bound only", ("tab:red", ":"),
                       reads_descent=False),
})
# Every rule's name, in the order tables and figures list them.
RULES: Final = tuple(RULE_REGISTRY)
# The rules that can be the headline (``prefer``): every rule but an upper bound.
HEADLINE_RULES: Final = tuple(name for name, rule in RULE_REGISTRY.items()
                              if rule.answer is not None)


def prefer_problem(prefer: str) -> str | None:
    """What is wrong with ``prefer`` unless it names a rule that can be the headline (None).

    >>> prefer_problem("steep")
    "is not one of steepest, valley, minimum, midpoint, below_minimum (did you mean 'steepest'?)"
    """
    if prefer in HEADLINE_RULES:
        return None
    return f"is not one of {', '.join(HEADLINE_RULES)}{did_you_mean(prefer, HEADLINE_RULES)}"


def check_prefer(where: str, prefer: str) -> None:
    """InputError unless ``prefer`` names a rule that can be the headline."""
    problem = prefer_problem(prefer)
    if problem is not None:
        raise InputError(f"{where}: prefer={prefer!r} {problem}")


def normalized(losses: np.ndarray) -> np.ndarray:
    """The losses minus the first, over their range: what the rules read, so that a shifted or
    scaled loss gives bit-for-bit the same curve whenever the shift and scale are exact.

    >>> normalized(np.array([3.0, 1.0, 2.0])).tolist()
    [0.0, -1.0, -0.5]
    """
    span = float(losses.max() - losses.min()) if len(losses) else 0.0
    return (losses - losses[0]) / span if span > 0 else np.zeros_like(losses)


def advise(lrs: Curve, losses: Curve, diverged_at: float | None = None,
           prefer: str = HEADLINE, planned_steps: int | None = None) -> Advice:
    """Every rule's answer on the zero-lag curve of the raw ``losses``, the headline, why it was
    chosen, and the warnings (see :mod:`lrscope.rangetest.curve_checks`).

    The headline is ``prefer``'s answer (:data:`HEADLINE` by default); when that rule has none
    the first answer in :data:`HEADLINE_ORDER` is used. ``planned_steps`` (the ramp's length)
    lets the warnings tell an early divergence from a late one.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> a = advise(lrs, 1.0 - np.tanh(2 * (np.log10(lrs) + 2)))
    >>> a.rule, sorted(a.suggestions) == sorted(RULES), a.warnings[0].startswith("the lowest")
    ('below_minimum', True, True)
    """
    check_prefer("suggest", prefer)
    x, y = finite_prefix(lrs, losses)
    every: dict[str, float | None] = dict.fromkeys(RULES)
    every["divergence"] = divergence(x, zero_lag(y, clip=False), diverged_at)
    curve = zero_lag(normalized(y))
    usable = learning_part(curve)
    strength = descent_strength(normalized(y), curve[:usable])
    descended = strength > FELL_STANDARD_ERRORS
    for name, rule in RULE_REGISTRY.items():
        if rule.answer is not None and (descended or not rule.reads_descent):
            every[name] = rule.answer(x[:usable], curve[:usable])
    if descended:  # the one rule that reads how clearly the loss fell
        every["below_minimum"] = below_minimum(x[:usable], curve[:usable],
                                               weak=strength < CLEAR_STANDARD_ERRORS)
    warnings = curve_warnings(len(np.asarray(lrs)), x, curve[:usable], descended, diverged_at,
                              planned_steps, strength)
    for name in (prefer, *HEADLINE_ORDER):
        if every[name] is not None:
            return Advice(every[name], name, every, _reason(name, prefer), warnings)
    return Advice(None, None, every, "no rule could answer: " + (
        "no finite loss" if len(x) == 0 else "too few points or a loss that never fell"),
        warnings)


def _reason(rule: str, prefer: str) -> str:
    how = f"{rule}: {RULE_REGISTRY[rule].note}, on the zero-lag curve"
    if rule == prefer:
        which = "the default headline" if prefer == HEADLINE else "the preferred rule"
        return f"{how} ({which})"
    return f"{how} ({prefer} had no answer on this curve)"


def suggest(
    lrs: Curve, losses: Curve, diverged_at: float | None = None, prefer: str = HEADLINE
) -> tuple[float | None, str | None, dict[str, float | None]]:
    """``(headline_lr, headline_rule, {rule: lr})`` of :func:`advise` on the raw ``losses``.

    >>> lrs = np.logspace(-4, 0, 41)
    >>> lr, rule, every = suggest(lrs, 1.0 - np.tanh(2 * (np.log10(lrs) + 2)))
    >>> rule, sorted(every) == sorted(RULES)
    ('below_minimum', True)
    """
    advice = advise(lrs, losses, diverged_at, prefer)
    return advice.lr, advice.rule, advice.suggestions
