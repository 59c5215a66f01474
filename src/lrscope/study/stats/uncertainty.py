"""How sure we are: a mean with its 95% interval, and one schedule against another over seeds.

Rules (they are printed with the leaderboard, so a reader can check them):

* **Mean +/- CI**: Student t interval, ``mean +/- t(0.975, n-1) * sd / sqrt(n)``. With one value
  the interval is undefined and is reported as such, never as +/- 0. Printed with 2 significant
  digits of the half-width and the mean rounded to the same decimal place (``0.108 ± 0.017``).
* **Paired comparison** (a study: every schedule sees the same data order at the same seed):
  the differences ``this - best`` over every seed both were run at, a seed that did not finish
  counting as the worst outcome (the caller passes the run's worst test loss for it, see
  :mod:`lrscope.study.stats.leaderboard`). Fewer than 3 pairs: "not enough seeds" (no
  p-value). 3 to 5 pairs: paired t-test, p-value and the t interval of the mean difference. 6
  or more: Wilcoxon signed-rank p-value (no normality assumed; below 6 pairs its smallest
  two-sided p-value is 2/2^n >= 0.0625, so it could never flag anything) with the same t
  interval for the size of the difference. All differences zero: p = 1.
* **Unpaired comparison** (imported runs, whose attempts share nothing but a name): Welch's
  t-test and its interval for the difference of means, when both sides have 2 or more values.
* **Against a best picked from the same data**: the best is chosen by looking at these very
  numbers, so its comparisons are not the pre-planned tests a p-value assumes. Simulated with
  8 identical schedules and 3 paired seeds (2000 studies), unadjusted p-values flag a
  "significant" loser in 30-46% of studies, and Holm over only the 7 comparisons with the best
  still in 6.5-8% (the selection biases all 7 the same way). :func:`compare_with_best`
  therefore Holm-adjusts over *every pair* of schedules: any pair could have been the one
  shown, so this bounds the chance of any false flag by 5% whichever schedule ends up best
  (about 2% measured).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from lrscope.study.stats.precision import decimal_places, fixed, interval_text

CONFIDENCE = 0.95
MIN_PAIRS = 3
MIN_PAIRS_WILCOXON = 6


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values and its interval; ``low``/``high`` are None when undefined."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        if self.mean is None or self.high is None:
            return None
        return self.high - self.mean

    def text(self, digits: int = 4) -> str:
        """``'0.123 ± 0.005'``, ``'0.1234 (n=1, no CI)'`` or ``'—'`` without values.

        The half-width has 2 significant digits and the mean is rounded to the same decimal
        place; ``digits`` (significant) is for a mean without an interval, or one of width 0.

        >>> mean_ci([1.0, 2.0, 3.0]).text()
        '2.0 ± 2.5'
        >>> mean_ci([0.5]).text()
        '0.5 (n=1, no CI)'
        """
        if self.mean is None:
            return "—"
        if self.half_width is None:
            return f"{self.mean:.{digits}g} (n={self.n}, no CI)"
        return interval_text(self.mean, self.half_width, digits)


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student t interval of ``values``.

    >>> e = mean_ci([0.9, 0.92, 0.94])
    >>> round(e.mean, 4), round(e.low, 4), round(e.high, 4)
    (0.92, 0.8703, 0.9697)
    """
    data = np.asarray(list(values), dtype=float)
    n = len(data)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = float(data.mean())
    if n == 1:
        return Estimate(mean, None, None, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * data.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class Comparison:
    """One schedule against the best: ``difference`` is this minus best (lower is better)."""

    method: str                 # best | paired t | wilcoxon | welch t | not enough seeds
    n: int                      # pairs (paired) or the smaller side (unpaired)
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None       # against a best picked from the same data, Holm-adjusted
    p_raw: float | None = None  # the same test unadjusted (set by compare_with_best)

    def text(self, digits: int = 3, short: bool = False) -> str:
        """One cell for a table; ``short`` leaves out the interval and the method.

        With an interval, the difference and its bounds are rounded like
        :meth:`Estimate.text` (2 significant digits of the interval's half-width); without
        one, to ``digits`` significant digits.

        >>> Comparison("not enough seeds", 2, 0.1, None, None, None).text()
        'not enough seeds (n=2)'
        >>> c = Comparison("paired t", 3, 0.25, 0.05, 0.45, 0.031)
        >>> c.text(), c.text(short=True)
        ('+0.25 [+0.05, +0.45], p=0.031 (paired t, n=3)', '+0.25, p=0.031')
        """
        if self.method == "best":
            return "best"
        if self.p_value is None or self.difference is None:
            return f"{self.method} (n={self.n})"
        places = (decimal_places((self.high - self.low) / 2, self.difference)
                  if self.low is not None and self.high is not None else None)

        def number(value: float) -> str:
            return f"{value:+.{digits}g}" if places is None else fixed(value, places, sign=True)

        if short:
            return f"{number(self.difference)}, p={self.p_value:.2g}"
        interval = ""
        if places is not None and self.low is not None and self.high is not None:
            interval = f" [{number(self.low)}, {number(self.high)}]"
        return (f"{number(self.difference)}{interval}, p={self.p_value:.2g} "
                f"({self.method}, n={self.n})")


BEST = Comparison("best", 0, 0.0, None, None, None)


def compare_paired(this: Mapping[int, float], best: Mapping[int, float],
                   confidence: float = CONFIDENCE) -> Comparison:
    """Compare two schedules over the seeds both have (see the module docstring).

    >>> c = compare_paired({0: 1.0, 1: 2.0, 2: 3.5}, {0: 0.5, 1: 1.0, 2: 2.0})
    >>> c.method, c.n, c.difference
    ('paired t', 3, 1.0)
    >>> compare_paired({0: 1.0, 1: 2.0}, {0: 0.5, 1: 1.0}).method
    'not enough seeds'
    """
    seeds = sorted(set(this) & set(best))
    diffs = np.array([this[s] - best[s] for s in seeds], dtype=float)
    n = len(diffs)
    if n < MIN_PAIRS:
        return Comparison("not enough seeds", n, float(diffs.mean()) if n else None,
                          None, None, None)
    mean = float(diffs.mean())
    if np.all(diffs == 0):
        return Comparison("paired t" if n < MIN_PAIRS_WILCOXON else "wilcoxon", n, 0.0,
                          0.0, 0.0, 1.0)
    low, high = _t_interval(diffs, confidence)
    if n < MIN_PAIRS_WILCOXON:
        if _constant(diffs):  # a constant nonzero difference: t is infinite
            return Comparison("paired t", n, mean, mean, mean, 0.0)
        p = float(stats.ttest_rel(list(this[s] for s in seeds), [best[s] for s in seeds]).pvalue)
        return Comparison("paired t", n, mean, low, high, p)
    p = float(stats.wilcoxon(diffs, alternative="two-sided").pvalue)
    return Comparison("wilcoxon", n, mean, low, high, p)


def compare_unpaired(this: Sequence[float], best: Sequence[float],
                     confidence: float = CONFIDENCE) -> Comparison:
    """Welch's t-test of mean(this) - mean(best), for runs whose attempts are not paired.

    >>> c = compare_unpaired([1.0, 1.2, 1.1], [0.5, 0.7])
    >>> c.method, round(c.difference, 3), 0 <= c.p_value <= 1
    ('welch t', 0.5, True)
    """
    a, b = np.asarray(this, dtype=float), np.asarray(best, dtype=float)
    n = int(min(len(a), len(b)))
    difference = float(a.mean() - b.mean()) if len(a) and len(b) else None
    if n < 2:
        return Comparison("not enough seeds", n, difference, None, None, None)
    if _constant(a) and _constant(b):
        p = 1.0 if difference == 0 else 0.0
        return Comparison("welch t", n, difference, difference, difference, p)
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(confidence_level=confidence)
    return Comparison("welch t", n, difference, float(interval.low), float(interval.high),
                      float(result.pvalue))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of ``p_values``; None (no test made) stays None.

    The k-th smallest of the m p-values becomes ``max over j <= k of min(1, (m - j + 1) p_j)``.

    >>> [None if p is None else round(p, 6) for p in holm([0.01, 0.04, 0.03, None])]
    [0.03, 0.06, 0.06, None]
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - k) * p))
        adjusted[i] = running
    return adjusted


def compare_with_best(values: Mapping[str, Mapping[int, float]], best: str,
                      paired: bool = True) -> dict[str, Comparison]:
    """Every other label against ``best`` (this minus best), p-values Holm-adjusted over every
    pair of labels (see the module docstring); ``p_raw`` keeps the unadjusted one.

    ``values`` maps label -> seed -> final value (a seed that did not finish already replaced
    by the worst outcome). Pairs with no p-value ("not enough seeds") are not counted.

    >>> values = {"a": {0: 1.0, 1: 1.1, 2: 1.3}, "b": {0: 2.0, 1: 2.2, 2: 2.3},
    ...           "c": {0: 1.5, 1: 1.5, 2: 1.6}}
    >>> out = compare_with_best(values, "a")
    >>> sorted(out), out["b"].method, out["b"].p_value >= out["b"].p_raw
    (['b', 'c'], 'paired t', True)
    """
    def compare(this: str, other: str) -> Comparison:
        if paired:
            return compare_paired(values[this], values[other])
        return compare_unpaired(list(values[this].values()), list(values[other].values()))

    others = [label for label in values if label != best]
    results = {label: compare(label, best) for label in others}
    rest = [compare(a, b).p_value for a, b in itertools.combinations(others, 2)]
    adjusted = holm([results[label].p_value for label in others] + rest)
    return {label: replace(results[label], p_value=adjusted[k], p_raw=results[label].p_value)
            for k, label in enumerate(others)}


def _constant(values: np.ndarray) -> bool:
    """All equal up to rounding (a spread of 1e-12 of the values' size or less)."""
    scale = float(np.abs(values).max()) if len(values) else 0.0
    return float(np.ptp(values)) <= 1e-12 * scale if len(values) else True


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    estimate = mean_ci(values.tolist(), confidence)
    return estimate.low, estimate.high
