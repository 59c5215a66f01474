"""How sure we are: a mean with its 95% interval, and each schedule against the best over seeds.

Rules (they are printed with the leaderboard, so a reader can check them):

* **Mean and 95% interval**: the Student t interval ``mean +/- t(0.975, n-1) * sd / sqrt(n)``,
  kept inside the values the metric can take (:func:`metric_range`: a loss or a step count is
  never below 0, an accuracy stays in [0, 1]). The true mean of a non-negative loss cannot be
  below 0, so cutting the interval there drops only values it cannot be: the interval covers
  the mean exactly as often as the t interval does, and the printed mean stays the arithmetic
  mean (a t interval on the log scale would be one for the geometric mean, and with 20
  dispersed seeds can exclude the printed mean; a bootstrap under-covers badly at 3 seeds).
  A clipped interval prints as ``0.011 [0.000, 0.052]``, a symmetric one as ``0.108 ± 0.017``
  (half-width to 2 significant digits, the mean to the same decimal place). With one value
  the interval is undefined: the value prints alone (``0.1235``, never ``± 0``) and the table
  says once, under it, :data:`ONE_VALUE_NOTE`.
* **Against the best** (:func:`compare_with_best`): the best is picked by looking at these
  very numbers, so any pair of schedules could have been the one shown. Every pair
  is compared with a paired t-test over every seed both were run at (a study: every schedule
  sees the same data order at the same seed, so the seed effect cancels), a seed that did not
  finish counting as the worst outcome (the caller passes the run's worst test loss for it,
  see :mod:`lrscope.study.stats.leaderboard`); fewer than 3 pairs: "not enough seeds". The
  p-values are Bonferroni-adjusted over the ``m`` pairs of schedules that have a test
  (``p = min(1, m * p_raw)``) and the intervals are the matching simultaneous ones
  (``difference +/- t(1 - 0.05 / (2 m), n - 1) * se``): an interval excludes 0 exactly when
  ``p < 0.05``, and all of them hold at once with 95% confidence whichever schedule the data
  made best. Imported runs (attempts that share no seeds) use Welch's t the same way.

  Why this rule (``benchmarks/vs_best_simulation.py``, table in docs/benchmarks.md; 2000
  simulated studies per cell, a shared seed effect plus noise, the best picked by the
  leaderboard's median): with identical schedules it flags a loser in 0.2-2.4% of studies at
  every n from 3 to 20 seeds, for 8 and for 24 candidates (exact 95% upper bounds at most
  3.0%); with every other schedule worse by 20x the noise it flags one in 100% of studies
  from 4 seeds on (at 3 seeds: 98% with 8 candidates, 80% with 24). Its power only grows with
  seeds: the t quantile and the standard error both fall as n grows. The rule before it used
  an exact Wilcoxon test from 6 seeds, whose smallest p is 2/2^n: Holm over 28 pairs flagged
  7/7 losers at 5 seeds and 0/7 at 6 to 10. Hsu's MCB (one-sided, over the K-1 comparisons
  with the best) is valid for "is not the best", but a tie counts as "not the best": among
  identical schedules an MCB-type rule flags a loser in 8-15% of studies, too many for a
  column that reads as "worse than the best". The exact critical value of the largest of the
  m paired t statistics (simulated under equal variances) is within about 8% of Bonferroni's
  (8 candidates, 3 seeds: 21.8 against 23.6), so Bonferroni gives up almost nothing and, unlike
  a pooled two-way ANOVA variance (Tukey's HSD), stays valid when one schedule's seeds vary far
  more than the others' (a diverged seed, imputed at the worst loss, would widen every
  comparison of a pooled variance).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lrscope.study.stats.precision import decimal_places, fixed, interval_text

CONFIDENCE = 0.95
MIN_PAIRS = 3
UNBOUNDED = (-math.inf, math.inf)
NON_NEGATIVE = (0.0, math.inf)
FRACTION = (0.0, 1.0)
ONE_VALUE_NOTE = "n=1: no interval (a value printed without one is from a single seed)."
MAX_SEEDS = 10_000  # seeds_to_resolve looks no further


def metric_range(name: str) -> tuple[float, float]:
    """The values the metric ``name`` can take: the one rule every printed interval keeps to.

    >>> metric_range("final_test_loss"), metric_range("val_accuracy"), metric_range("delta")
    ((0.0, inf), (0.0, 1.0), (-inf, inf))
    """
    if "accuracy" in name:
        return FRACTION
    if "loss" in name or "steps" in name:
        return NON_NEGATIVE
    return UNBOUNDED


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values and its interval; ``low``/``high`` are None when undefined."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def single(self) -> bool:
        """One value and so no interval: what :data:`ONE_VALUE_NOTE` explains."""
        return self.mean is not None and self.low is None

    @property
    def half_width(self) -> float | None:
        """The larger distance from the mean to a bound (the two differ when one was clipped)."""
        if self.mean is None or self.high is None or self.low is None:
            return None
        return max(self.high - self.mean, self.mean - self.low)

    def text(self, digits: int = 4) -> str:
        """``'0.123 ± 0.005'``, ``'0.011 [0.000, 0.052]'`` (an interval cut at the metric's
        range), ``'0.1234'`` for one value (the table notes :data:`ONE_VALUE_NOTE` once, under
        it) or ``'—'`` without values.

        The half-width has 2 significant digits and the mean is rounded to the same decimal
        place; ``digits`` (significant) is for a mean without an interval, or one of width 0.

        >>> mean_ci([1.0, 2.0, 3.0]).text()
        '2.0 ± 2.5'
        >>> mean_ci([1.0, 2.0, 3.0], bounds=NON_NEGATIVE).text()
        '2.0 [0.0, 4.5]'
        >>> mean_ci([0.5]).text(), mean_ci([0.5]).single
        ('0.5', True)
        """
        if self.mean is None:
            return "—"
        half = self.half_width
        if half is None or self.low is None or self.high is None:
            return f"{self.mean:.{digits}g}"
        places = decimal_places(half, self.mean)
        symmetric = abs((self.high - self.mean) - (self.mean - self.low)) <= 1e-9 * half
        if places is None or symmetric:
            return interval_text(self.mean, half, digits)
        return (f"{fixed(self.mean, places)} "
                f"[{fixed(self.low, places)}, {fixed(self.high, places)}]")


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE,
            bounds: tuple[float, float] = UNBOUNDED) -> Estimate:
    """Mean and Student t interval of ``values``, cut to ``bounds`` (see :func:`metric_range`).

    >>> e = mean_ci([0.9, 0.92, 0.94])
    >>> round(e.mean, 4), round(e.low, 4), round(e.high, 4)
    (0.92, 0.8703, 0.9697)
    >>> e = mean_ci([0.001, 0.002, 0.03], bounds=metric_range("test_loss"))
    >>> e.low, round(e.high, 3)
    (0.0, 0.052)
    """
    data = np.asarray(list(values), dtype=float)
    n = len(data)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = float(data.mean())
    if n == 1:
        return Estimate(mean, None, None, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * data.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, max(mean - half, bounds[0]), min(mean + half, bounds[1]), n)


@dataclass(frozen=True)
class Comparison:
    """One schedule against the best: ``difference`` is this minus best (lower is better).

    ``low``/``high`` and ``p_value`` are adjusted alike over ``comparisons`` tests (the
    interval excludes 0 exactly when ``p_value`` < 0.05); ``p_raw`` is the single test's.
    """

    method: str                 # best | paired t | welch t | not enough seeds
    n: int                      # pairs (paired) or the smaller side (unpaired)
    difference: float | None
    low: float | None           # simultaneous 95% interval of the difference
    high: float | None
    p_value: float | None       # Bonferroni-adjusted over `comparisons` pairs
    p_raw: float | None = None  # the same test unadjusted
    comparisons: int = 1        # the pairs the adjustment covers (1: none)

    @property
    def sd(self) -> float | None:
        """The standard deviation of the paired differences across seeds, read back from the
        simultaneous interval (``half = critical_t * sd / sqrt(n)``); None for other tests.

        >>> c = compare_paired({0: 1.1, 1: 2.3, 2: 3.2}, {0: 1.0, 1: 2.0, 2: 3.0}, comparisons=3)
        >>> round(c.sd, 6)
        0.1
        """
        if self.method != "paired t" or self.low is None or self.high is None or self.n < 2:
            return None
        half = (self.high - self.low) / 2
        return float(half * math.sqrt(self.n) / critical_t(self.n - 1, self.comparisons))

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
        >>> Comparison("paired t", 6, 0.25, 0.05, 0.45, 0.031, 0.0011, 28).text()
        '+0.25 [+0.05, +0.45], p=0.031 (paired t, n=6; adjusted over 28 pairs)'
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
        family = f"; adjusted over {self.comparisons} pairs" if self.comparisons > 1 else ""
        return (f"{number(self.difference)}{interval}, p={self.p_value:.2g} "
                f"({self.method}, n={self.n}{family})")


BEST = Comparison("best", 0, 0.0, None, None, None)


def versus_rule(paired: bool = True) -> str:
    """The "vs best" rule in one sentence, for the notes printed with a leaderboard."""
    test = (f"a paired t-test over every seed both were run at (fewer than {MIN_PAIRS}: not "
            "enough seeds)" if paired else
            "Welch's t-test (imported attempts share no seeds)")
    return (f"'vs best' is the difference to the best schedule by {test}; as the best was "
            "picked from the same data, its p-value is Bonferroni-adjusted over every pair of "
            "schedules and its 95% interval is the matching simultaneous one (it excludes 0 "
            "exactly when p < 0.05).")


def paired_t(diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of paired differences along the last axis (any leading axes,
    so that a simulation runs thousands of studies at once); a spread of rounding noise
    (1e-12 of the values' size) is a standard error of 0."""
    n = diffs.shape[-1]
    mean = diffs.mean(axis=-1)
    se = diffs.std(axis=-1, ddof=1) / math.sqrt(n)
    scale = np.abs(diffs).max(axis=-1)
    return mean, np.where(se <= 1e-12 * scale, 0.0, se)


def adjusted(mean: np.ndarray, se: np.ndarray, df: np.ndarray | float, comparisons: int,
             confidence: float = CONFIDENCE
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, p_value, p_raw) of t tests of ``mean / se`` at ``df``, adjusted over
    ``comparisons`` tests (Bonferroni): the interval excludes 0 exactly when p < 1 - confidence.
    A standard error of 0 is a certain difference (p = 0), or none at all (p = 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, np.abs(mean) / np.where(se > 0, se, 1.0),
                     np.where(mean != 0, np.inf, 0.0))
    p_raw = np.where(np.isinf(t), 0.0, 2 * stats.t.sf(t, df))
    p_raw = np.where((se == 0) & (mean == 0), 1.0, p_raw)
    half = critical_t(df, comparisons, confidence) * se
    return mean - half, mean + half, np.minimum(1.0, comparisons * p_raw), p_raw


def critical_t(df: np.ndarray | float, comparisons: int = 1,
               confidence: float = CONFIDENCE) -> np.ndarray:
    """The two-sided t quantile "vs best" uses at ``df`` degrees of freedom, Bonferroni-adjusted
    over ``comparisons`` tests: a difference is flagged when it exceeds this many standard errors.

    >>> round(float(critical_t(2)), 3), round(float(critical_t(2, 3)), 3)
    (4.303, 7.649)
    """
    return stats.t.ppf(1 - (1 - confidence) / (2 * comparisons), df)


def seeds_to_resolve(gap: float, sd: float, comparisons: int = 1,
                     confidence: float = CONFIDENCE, limit: int = MAX_SEEDS) -> int | None:
    """About how many seeds the paired "vs best" test needs to flag a difference of ``gap``
    when the paired differences vary by ``sd`` (their standard deviation across seeds), over
    ``comparisons`` adjusted tests: the smallest ``n`` (at least :data:`MIN_PAIRS`) with
    ``|gap| > critical_t(n - 1, comparisons) * sd / sqrt(n)``, the rule of
    :func:`compare_paired`. None when no ``n`` up to ``limit`` does (a gap of 0 never resolves).

    It is a projection from the noise measured so far, not a power calculation: at that ``n``
    a gap and noise like these would be flagged (about half the time, when they are the truth).

    >>> seeds_to_resolve(0.01, 0.02), seeds_to_resolve(0.01, 0.02, comparisons=28)
    (18, 45)
    >>> seeds_to_resolve(0.5, 0.0), seeds_to_resolve(0.0, 0.1), seeds_to_resolve(1e-9, 1.0)
    (3, None, None)
    """
    gap, sd = abs(float(gap)), abs(float(sd))
    if gap == 0 or not (math.isfinite(gap) and math.isfinite(sd)):
        return None
    if sd == 0:
        return MIN_PAIRS
    n = np.arange(MIN_PAIRS, limit + 1)
    flagged = critical_t(n - 1, comparisons, confidence) * sd / np.sqrt(n) < gap
    return int(n[np.argmax(flagged)]) if flagged.any() else None


def compare_paired(this: Mapping[int, float], best: Mapping[int, float],
                   confidence: float = CONFIDENCE, comparisons: int = 1) -> Comparison:
    """This minus best over the seeds both have, adjusted over ``comparisons`` tests.

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
    mean, se = paired_t(diffs)
    low, high, p, p_raw = adjusted(mean, se, n - 1, comparisons, confidence)
    return Comparison("paired t", n, float(mean), float(low), float(high), float(p),
                      float(p_raw), comparisons)


def compare_unpaired(this: Sequence[float], best: Sequence[float],
                     confidence: float = CONFIDENCE, comparisons: int = 1) -> Comparison:
    """Welch's t-test of mean(this) - mean(best), for runs whose attempts are not paired.

    >>> c = compare_unpaired([1.0, 1.2, 1.1], [0.5, 0.7])
    >>> c.method, round(c.difference, 3), 0 <= c.p_value <= 1
    ('welch t', 0.5, True)
    """
    a, b = np.asarray(this, dtype=float), np.asarray(best, dtype=float)
    n = int(min(len(a), len(b)))
    difference = float(a.mean() - b.mean()) if len(a) and len(b) else None
    if n < 2 or difference is None:
        return Comparison("not enough seeds", n, difference, None, None, None)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else 1.0
    low, high, p, p_raw = adjusted(np.array(difference), np.array(se), df, comparisons,
                                   confidence)
    return Comparison("welch t", n, difference, float(low), float(high), float(p),
                      float(p_raw), comparisons)


def tested_pairs(values: Mapping[str, Mapping[int, float]], paired: bool = True) -> int:
    """How many pairs of labels a test can be made for (the family "vs best" adjusts over)."""
    def testable(a: Mapping[int, float], b: Mapping[int, float]) -> bool:
        return (len(set(a) & set(b)) >= MIN_PAIRS if paired
                else min(len(a), len(b)) >= 2)

    return sum(testable(values[a], values[b]) for a, b in itertools.combinations(values, 2))


def compare_with_best(values: Mapping[str, Mapping[int, float]], best: str,
                      paired: bool = True) -> dict[str, Comparison]:
    """Every other label against ``best`` (this minus best): p-values Bonferroni-adjusted over
    every pair of labels that has a test, with the matching simultaneous intervals (see the
    module docstring); ``p_raw`` keeps the unadjusted p-value.

    ``values`` maps label -> seed -> final value (a seed that did not finish already replaced
    by the worst outcome).

    >>> values = {"a": {0: 1.0, 1: 1.1, 2: 1.3}, "b": {0: 2.0, 1: 2.2, 2: 2.3},
    ...           "c": {0: 1.5, 1: 1.5, 2: 1.6}}
    >>> out = compare_with_best(values, "a")
    >>> sorted(out), out["b"].method, out["b"].comparisons, out["b"].p_value >= out["b"].p_raw
    (['b', 'c'], 'paired t', 3, True)
    """
    comparisons = max(1, tested_pairs(values, paired))
    if paired:
        return {label: compare_paired(values[label], values[best], comparisons=comparisons)
                for label in values if label != best}
    return {label: compare_unpaired(list(values[label].values()), list(values[best].values()),
                                    comparisons=comparisons)
            for label in values if label != best}
