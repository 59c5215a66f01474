"""How sure we are: a mean with its 95% interval, and one schedule against another over seeds.

Rules (they are printed with the leaderboard, so a reader can check them):

* **Mean +/- CI**: Student t interval, ``mean +/- t(0.975, n-1) * sd / sqrt(n)``. With one value
  the interval is undefined and is reported as such, never as +/- 0.
* **Paired comparison** (a study: every schedule sees the same data order at the same seed):
  the differences ``this - best`` over the seeds both finished. Fewer than 3 pairs: "not enough
  seeds" (no p-value). 3 to 5 pairs: paired t-test, p-value and the t interval of the mean
  difference. 6 or more: Wilcoxon signed-rank p-value (no normality assumed; below 6 pairs its
  smallest two-sided p-value is 2/2^n >= 0.0625, so it could never flag anything) with the same
  t interval for the size of the difference. All differences zero: p = 1.
* **Unpaired comparison** (imported runs, whose attempts share nothing but a name): Welch's
  t-test and its interval for the difference of means, when both sides have 2 or more values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

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
        """``'0.1234 ± 0.0050'``, ``'0.1234 (n=1, no CI)'`` or ``'—'`` without values.

        >>> mean_ci([1.0, 2.0, 3.0]).text(3)
        '2 ± 2.48'
        >>> mean_ci([0.5]).text()
        '0.5 (n=1, no CI)'
        """
        if self.mean is None:
            return "—"
        if self.half_width is None:
            return f"{self.mean:.{digits}g} (n={self.n}, no CI)"
        return f"{self.mean:.{digits}g} ± {self.half_width:.{digits}g}"


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
    p_value: float | None

    def text(self, digits: int = 3, short: bool = False) -> str:
        """One cell for a table; ``short`` leaves out the interval and the method.

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
        if short:
            return f"{self.difference:+.{digits}g}, p={self.p_value:.2g}"
        interval = ""
        if self.low is not None and self.high is not None:
            interval = f" [{self.low:+.{digits}g}, {self.high:+.{digits}g}]"
        return (f"{self.difference:+.{digits}g}{interval}, p={self.p_value:.2g} "
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


def _constant(values: np.ndarray) -> bool:
    """All equal up to rounding (a spread of 1e-12 of the values' size or less)."""
    scale = float(np.abs(values).max()) if len(values) else 0.0
    return float(np.ptp(values)) <= 1e-12 * scale if len(values) else True


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    estimate = mean_ci(values.tolist(), confidence)
    return estimate.low, estimate.high
