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

from lrscope.study.confirm import candidates
from lrscope.study.run import trial_key
from lrscope.study.store.predictions import SelfCheck

Interval = tuple[float, float, float]  # (value, low, high), lower is better


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
    """The gap the study must resolve: the median over the better half of the candidates (the
    best left out) of their predicted distance from the best prediction. 0 with fewer than two
    candidates. The better half only: the gaps to the candidates far behind (a schedule at 3x
    its peak that diverges, say) are not what the study has to tell apart, and counting them
    let a law with a 100-300% error pass its self-check on the benchmark's scaled suites.

    >>> gap({"a": 0.30, "b": 0.31, "c": 0.35, "d": 0.50, "e": 0.9, "f": 2.0})
    0.03
    """
    values = sorted(v for v in predicted.values() if math.isfinite(v))
    values = values[:max(2, -(-len(values) // 2))]
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


TURN_BACK = 0.1  # a curve that gives back more than this share of its improvement overfits


def turns_back(steps: Sequence[int], values: Sequence[float]) -> str:
    """Why a fit run's curve (lower is better) rules the law out ('' when it does not): it ended
    worse than its best by more than :data:`TURN_BACK` of its improvement from the first
    evaluation: a validation metric that rises from overfitting, which no law of the LR area and
    the annealing follows (both only fall as training goes on, at any schedule).

    >>> turns_back([10, 20, 30, 40], [2.0, 1.0, 0.98, 0.99])
    ''
    >>> turns_back([10, 20, 30, 40], [2.0, 1.0, 1.3, 1.5])
    'it ended 0.5 worse than its best (at step 20), more than a tenth of its improvement (1)'
    """
    if len(values) < 3:
        return ""
    best = min(range(len(values)), key=lambda i: (values[i], i))
    rise, improvement = values[-1] - values[best], values[0] - values[best]
    if improvement <= 0 or rise <= TURN_BACK * improvement:
        return ""
    return (f"it ended {rise:.3g} worse than its best (at step {steps[best]}), more than a tenth "
            f"of its improvement ({improvement:.3g})")


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


def rerun_phrase(steps: int, runs: int, run_steps: int, full_steps: int) -> str:
    """How a study that stopped short makes room for ``runs`` more runs beside the ``steps``
    trained: the smallest budget in hundredths of the full study's steps that holds them; where
    even a budget of 1 does not (its probes took a share), how many it holds, and the full
    study, which trains every trial still missing.

    >>> rerun_phrase(520, 1, 100, 2500)[:57]  # 620 / 2500 = 0.248
    'rerun on the same folder with a budget of 0.25 (--budget '
    >>> rerun_phrase(500, 1, 100, 2500)[:57]  # exactly 0.24
    'rerun on the same folder with a budget of 0.24 (--budget '
    >>> print(rerun_phrase(2200, 4, 100, 2500))  # doctest: +NORMALIZE_WHITESPACE
    a rerun on the same folder with the largest budget, 1 (--budget 1, budget=1), has room for 3
    of them, and --strategy full (strategy="full") trains every trial still missing: what is
    trained is kept
    """
    needed = (steps + runs * run_steps) / max(1, full_steps)
    budget = math.ceil(needed * 100 - 1e-9) / 100
    if budget <= 1:
        return (f"rerun on the same folder with a budget of {budget:g} (--budget {budget:g}, "
                f"budget={budget:g}): what is trained is kept")
    room = max(0, full_steps - steps) // max(1, run_steps)
    return (f"a rerun on the same folder with the largest budget, 1 (--budget 1, budget=1), has "
            f"room for {room} of them, and --strategy full (strategy=\"full\") trains every "
            "trial still missing: what is trained is kept")


RACE_ROOM = "predict: to race "  # the line of :func:`race_room_line` opens with it


def race_room_line(rows: Sequence[Any], seeds: Sequence[int], done: Set[str], steps: int,
                   run_steps: int, full_steps: int) -> str | None:
    """When the budget ended the race: the budget with room for every contender still in it
    (the best and those "vs best" cannot separate from it, ``rows`` best first) to have every
    seed; None when the best is separated or every contender has every seed (more seeds than
    the study's: the verdict says how many would resolve the gap)."""
    racing = candidates(rows)
    runs = sum(trial_key(label, seed) not in done for label in racing for seed in seeds)
    if len(racing) <= 1 or runs == 0:
        return None
    return (f"{RACE_ROOM}{racing[0]} and the {len(racing) - 1} not separated from it to "
            f"{len(seeds)} seeds each ({runs} more run{'s' * (runs != 1)}), "
            f"{rerun_phrase(steps, runs, run_steps, full_steps)}")


def check_line(check: SelfCheck) -> str:
    """The self-check in one line, with its numbers (in the metric's own direction).

    >>> print(check_line(SelfCheck("cosine/seed0", 0.41, 0.52, 0.11, 0.03, False,
    ...                            "error 0.11 larger than the 0.03 gap between candidates")))
    ... # doctest: +NORMALIZE_WHITESPACE
    predict: the law's self-check failed: it predicted 0.41 for cosine/seed0, measured 0.52
    (error 0.11 larger than the 0.03 gap between candidates)
    """
    said = (f"it predicted {check.predicted:.3g} for {check.trial}, measured "
            f"{check.measured:.3g}")
    if check.passed:
        return (f"predict: the law's self-check passed: {said} (error {check.error:.3g}, within "
                f"the {check.gap:.3g} gap between candidates and the interval it claimed)")
    if check.why.startswith("it misses"):  # its own fit runs: the held-out run is beside it
        return f"predict: the law's self-check failed: {check.why} between candidates ({said})"
    return f"predict: the law's self-check failed: {said} ({check.why})"
