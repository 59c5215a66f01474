"""Regret arithmetic of the suggestion harness: the oracle, trained and interpolated regret, and the
summary statistics the Must-show targets are judged on.

Regret of an LR = mean final test loss at that max_lr (over the training seeds) / oracle - 1,
where the oracle is the best mean of the 12-point log grid. A diverged training (any seed) is
``inf``; a finder that gave no LR is ``None`` and counts as ``inf`` in every statistic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Losses = Mapping[float, Sequence[float]]  # lr -> final loss of each training seed


@dataclass(frozen=True)
class Oracle:
    lrs: list[float]
    means: list[float]  # mean loss per grid LR (inf if any seed diverged)

    @property
    def best(self) -> int:
        return int(np.argmin(self.means))

    @property
    def lr(self) -> float:
        return self.lrs[self.best]

    @property
    def loss(self) -> float:
        return self.means[self.best]

    @property
    def interior(self) -> bool:
        """False when the best grid point is an end of the grid: the span may be too narrow."""
        return 0 < self.best < len(self.lrs) - 1

    def interpolated(self, lr: float | None) -> float | None:
        """Regret at ``lr`` read off the grid: the mean losses interpolated linearly in log LR
        (an LR beyond the grid takes the nearest end's loss; next to a diverged point: inf).

        >>> o = Oracle([0.01, 0.1, 1.0], [2.0, 1.0, math.inf])
        >>> o.interpolated(10 ** -1.5), o.interpolated(0.1), o.interpolated(0.5)
        (0.5, 0.0, inf)
        """
        if lr is None:
            return None
        x = math.log10(lr)
        logs = [math.log10(v) for v in self.lrs]
        if x <= logs[0]:
            return self.means[0] / self.loss - 1
        if x >= logs[-1]:
            return self.means[-1] / self.loss - 1
        i = int(np.searchsorted(logs, x))  # logs[i - 1] < x <= logs[i]
        left, right = self.means[i - 1], self.means[i]
        if x == logs[i]:
            return right / self.loss - 1
        if not (math.isfinite(left) and math.isfinite(right)):
            return math.inf
        w = (x - logs[i - 1]) / (logs[i] - logs[i - 1])
        return (left + w * (right - left)) / self.loss - 1


def mean_loss(losses: Sequence[float]) -> float:
    return math.inf if any(not math.isfinite(v) for v in losses) else float(np.mean(losses))


def make_oracle(grid: Sequence[float], losses: Losses) -> Oracle:
    return Oracle(list(grid), [mean_loss(losses[lr]) for lr in grid])


def trained_regret(oracle: Oracle, losses: Sequence[float] | None) -> float | None:
    return None if losses is None else mean_loss(losses) / oracle.loss - 1


def as_number(regret: float | None) -> float:
    return math.inf if regret is None else regret


def median(values: Iterable[float | None]) -> float:
    numbers = [as_number(v) for v in values]
    return float(np.median(numbers)) if numbers else math.nan


def worst(values: Iterable[float | None]) -> float:
    numbers = [as_number(v) for v in values]
    return max(numbers) if numbers else math.nan


def spread(lrs: Iterable[float | None]) -> float:
    """max / min of the LRs suggested over the seeds (inf when a seed gave none).

    >>> spread([0.1, 0.2, 0.15]), spread([0.1, None])
    (2.0, inf)
    """
    values = list(lrs)
    if not values or any(v is None for v in values):
        return math.inf
    numbers = [float(v) for v in values if v is not None]
    return max(numbers) / min(numbers)


def geometric_mean(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(np.exp(np.mean([math.log(float(v)) for v in values if v is not None])))


def fmt_regret(value: float | None) -> str:
    """``3.2%``, ``diverged`` (inf) or ``no answer`` (None)."""
    if value is None:
        return "no answer"
    if math.isnan(value):
        return "-"
    return "diverged" if math.isinf(value) else f"{100 * value:.1f}%"


def fmt_spread(value: float) -> str:
    return "n/a" if math.isinf(value) else f"{value:.2f}x"
