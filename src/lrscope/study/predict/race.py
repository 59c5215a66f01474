"""The race of a ``strategy="predict"`` study: which trials to train next, and when to stop.

Everything here is a pure function of what is already known (the law's predictions, the
trials measured so far, the budget), so a rerun on the same store makes the same decisions and
trains nothing new. Values are "lower is better" (a maximised metric negated), as the law and
the leaderboard's ``rank_loss`` read them.

irace's F-race is the anchor: candidates stay in the race while the study's own "vs best" rule
(:func:`lrscope.study.confirm.candidates`) cannot separate them from the best; each round gives
the next seed to those still in it, the best first, while the budget allows.

>>> budget = Budget.of(candidates=8, seeds=3, run_steps=100, range_test_steps=50, fraction=1/6)
>>> budget.full_steps, budget.limit, budget.affordable(spent=350, count=5)
(2450, 408, 0)
>>> preds = {"a": (0.30, 0.25, 0.35), "b": (0.40, 0.33, 0.47), "c": (0.60, 0.55, 0.65)}
>>> contenders(preds, trained={"a"}, best_measured=0.34)
['b']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from lrscope.errors import InputError, InputTypeError
from lrscope.study.confirm import candidates
from lrscope.study.run import trial_key

STRATEGIES = ("full", "predict")
# The default budget, as a fraction of the full study's trial steps: a sixth for the default
# suite, a twelfth with lr_scales (three times the candidates, and the law covers the scales).
DEFAULT_BUDGET = 1 / 6
DEFAULT_BUDGET_SCALED = 1 / 12

Interval = tuple[float, float, float]  # (value, low, high), lower is better


def check_strategy(where: str, strategy: object, budget: object) -> tuple[str, float | None]:
    """``(strategy, budget)`` checked: one InputError line naming the field, before any work.

    >>> check_strategy("compare", "predict", 0.2), check_strategy("compare", "full", None)
    (('predict', 0.2), ('full', None))
    >>> check_strategy("compare", "predict", 1.5)
    Traceback (most recent call last):
    lrscope.errors.InputError: compare: budget=1.5 must be a fraction of the full study's \
trial steps, 0 < budget <= 1 (e.g. 0.17), or None for the default
    """
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise InputError(f"{where}: strategy={strategy!r} must be one of "
                         f"{', '.join(map(repr, STRATEGIES))}")
    if budget is None:
        return strategy, None
    message = (f"{where}: budget={budget!r} must be a fraction of the full study's trial steps, "
               "0 < budget <= 1 (e.g. 0.17), or None for the default")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise InputTypeError(message)
    if not (math.isfinite(budget) and 0 < budget <= 1):
        raise InputError(message)
    if strategy == "full" and budget != 1:
        raise InputError(f"{where}: budget={budget!r} only applies to strategy='predict' (the "
                         "full study trains every trial); leave it out or add "
                         "strategy='predict'")
    return strategy, float(budget)


def default_budget(lr_scales: Sequence[float] | None) -> float:
    """The budget when none is given (see :data:`DEFAULT_BUDGET`)."""
    return DEFAULT_BUDGET_SCALED if lr_scales else DEFAULT_BUDGET


@dataclass(frozen=True)
class Budget:
    """The study's budget in trial steps: ``limit`` of the full study's ``full_steps`` (every
    candidate at every seed, plus the range test), counted in trials of ``run_steps``."""

    full_steps: int
    limit: int
    run_steps: int
    range_test_steps: int
    fraction: float

    @classmethod
    def of(cls, *, candidates: int, seeds: int, run_steps: int, range_test_steps: int,
           fraction: float) -> Budget:
        full = candidates * seeds * run_steps + range_test_steps
        # a hair of slack so that 1/6 of 24 runs is 4 runs, not 3 after float rounding
        return cls(full, math.floor(fraction * full + 1e-9), run_steps, range_test_steps,
                   fraction)

    def affordable(self, spent: int, count: int) -> int:
        """How many of ``count`` more trials fit the budget once ``spent`` steps are trained."""
        if self.run_steps <= 0:
            return 0
        return max(0, min(count, (self.limit - spent) // self.run_steps))


def gap(predicted: Mapping[str, float]) -> float:
    """The gap the study must resolve: the median over the candidates (the best left out) of
    their predicted distance from the best prediction. 0 with fewer than two candidates.

    >>> gap({"a": 0.30, "b": 0.31, "c": 0.35, "d": 0.50})
    0.05
    """
    values = sorted(v for v in predicted.values() if math.isfinite(v))
    if len(values) < 2:
        return 0.0
    distances = [v - values[0] for v in values[1:]]
    middle = len(distances) // 2
    found = distances[middle] if len(distances) % 2 else (distances[middle - 1]
                                                          + distances[middle]) / 2
    return round(found, 12)


def check_fails(predicted: Interval, measured: float, gap_: float) -> str:
    """Why the law fails its self-check ('' when it passes): the error is larger than the gap
    between the candidates (the law cannot rank them), or the measurement falls outside the
    claimed interval widened to twice its size (the law claims too much).

    >>> check_fails((0.40, 0.38, 0.42), 0.41, 0.05)
    ''
    >>> check_fails((0.40, 0.38, 0.42), 0.52, 0.03)
    'error 0.12 larger than the 0.03 gap between candidates'
    >>> check_fails((0.40, 0.399, 0.401), 0.41, 0.05)
    '0.41 outside twice the claimed interval [0.398, 0.402]'
    """
    value, low, high = predicted
    if not math.isfinite(measured):
        return "the run did not finish with a finite value"
    error = abs(measured - value)
    if error > gap_:
        return f"error {error:.3g} larger than the {gap_:.3g} gap between candidates"
    wide_low, wide_high = value - 2 * (value - low), value + 2 * (high - value)
    if not wide_low <= measured <= wide_high:
        return (f"{measured:.3g} outside twice the claimed interval "
                f"[{wide_low:.3g}, {wide_high:.3g}]")
    return ""


def fit_fails(misses: Mapping[str, float], gap_: float) -> str:
    """Why the law fails on the runs it was fitted on ('' when it does not): a law that misses
    one of its own fit runs' final values by more than the gap between candidates cannot rank
    them (a validation loss that rises from overfitting, say, which no law of the LR area and
    the annealing follows), whatever it says of a run it has not seen.

    >>> fit_fails({"constant": 0.02, "cosine": 0.01}, 0.05)
    ''
    >>> fit_fails({"constant": 0.85, "cosine": 0.01}, 0.66)
    "it misses its own fit run constant's final value by 0.85, more than the 0.66 gap"
    """
    if not misses:
        return ""
    label = max(misses, key=lambda name: (misses[name], name))
    if misses[label] <= gap_:
        return ""
    return (f"it misses its own fit run {label}'s final value by {misses[label]:.3g}, more "
            f"than the {gap_:.3g} gap")


def contenders(predicted: Mapping[str, Interval], trained: Set[str],
               best_measured: float | None) -> list[str]:
    """The untrained candidates still in contention, most promising first: their predicted
    interval reaches the best measured value (or, before any, the best prediction)."""
    if not predicted:
        return []
    reference = best_measured if best_measured is not None and math.isfinite(best_measured) \
        else min(value for value, _, _ in predicted.values())
    found = [label for label, (_, low, _) in predicted.items()
             if label not in trained and low <= reference]
    return sorted(found, key=lambda label: (predicted[label][0], label))


def seed_round(rows: Sequence[Any], seeds: Sequence[int],
               done: Set[str]) -> tuple[int | None, list[str]]:
    """The next round of the race: (its seed, the labels to give it, best first), from the
    measured leaderboard ``rows`` (best first) and the trial keys ``done``; ``(None, [])`` when
    the best is separated from every rival or every contender has every seed."""
    racing = candidates(rows)
    if len(racing) <= 1:
        return None, []
    for seed in seeds:
        lacking = [label for label in racing if trial_key(label, seed) not in done]
        if lacking:
            return seed, lacking
    return None, []


def race_stop(rows: Sequence[Any]) -> str:
    """Why the race ended when no round is left: "separated" when the best stands alone, else
    "all trained" (every contender has every seed)."""
    return "separated" if len(candidates(rows)) <= 1 else "all trained"
