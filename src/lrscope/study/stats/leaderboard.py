"""The leaderboard: one row per schedule, its seeds summarised with uncertainty.

Per schedule label: final and best test loss and test accuracy as mean +/- 95% CI over the
seeds, steps to reach a target accuracy (mean over the seeds that reached it, and how many did),
diverged count, mean wall time, and a comparison against the best schedule (lowest mean final
test loss) as described in :mod:`lrscope.study.stats.uncertainty`.

Only *finished* trials enter the means and comparisons: a diverged trial has no meaningful final
loss, so it is counted in ``n_diverged`` and left out (the table says so). Failed or unfinished
trials are counted in ``n_other``.

The target accuracy is the run's ``config["target_accuracy"]`` when set, else
``default_target``: 95% of the best schedule's mean final accuracy, rounded down to 0.01.

>>> outcomes = [TrialOutcome("a", "step", s, "finished", 0.3 + s / 10, 0.3, 0.9, 0.9,
...                          ((100, 0.8), (200, 0.9)), 2.0) for s in range(3)]
>>> row = summarize(outcomes, target_accuracy=0.85)[0]
>>> row.label, round(row.final_test_loss.mean, 3), row.steps_to_target.mean, row.reached_target
('a', 0.4, 200.0, 3)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrscope.study.stats.uncertainty import (
    BEST,
    Comparison,
    Estimate,
    compare_paired,
    compare_unpaired,
    mean_ci,
)
from lrscope.study.store.sqlite import Store

EXCLUSION_NOTE = ("Means and comparisons use finished trials only; diverged trials are counted "
                  "and excluded.")


@dataclass(frozen=True)
class TrialOutcome:
    """One trial reduced to what the leaderboard needs (None where the metric is missing)."""

    label: str
    family: str
    seed: int
    status: str
    final_test_loss: float | None
    best_test_loss: float | None
    final_test_accuracy: float | None
    best_test_accuracy: float | None
    accuracy_curve: tuple[tuple[int, float], ...]
    wall_time: float | None

    def steps_to(self, target: float) -> int | None:
        """First evaluated step whose test accuracy reaches ``target``, or None."""
        return next((step for step, acc in self.accuracy_curve if acc >= target), None)


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int                   # 1 = best; rows without a finished trial come last
    label: str
    family: str
    n_trials: int
    n_finished: int
    n_diverged: int
    n_other: int                # failed or unfinished
    final_test_loss: Estimate
    best_test_loss: Estimate
    final_test_accuracy: Estimate
    best_test_accuracy: Estimate
    target_accuracy: float | None
    steps_to_target: Estimate   # over the seeds that reached the target
    reached_target: int
    wall_time: float | None     # mean seconds over finished trials
    vs_best: Comparison


def outcomes_from_store(store: Store, run_id: int) -> list[TrialOutcome]:
    """Every trial of a run, reduced to its final/best test metrics."""
    outcomes = []
    for trial in store.trials(run_id):
        _, loss = store.metric_series(trial.id, "test_loss")
        steps, acc = store.metric_series(trial.id, "test_accuracy")
        curve = tuple((int(s), float(a)) for s, a in zip(steps, acc, strict=True)
                      if math.isfinite(a))
        outcomes.append(TrialOutcome(
            label=trial.label, family=trial.family, seed=trial.seed, status=trial.status,
            final_test_loss=_last(loss), best_test_loss=_extreme(loss, np.min),
            final_test_accuracy=_last(acc), best_test_accuracy=_extreme(acc, np.max),
            accuracy_curve=curve, wall_time=trial.wall_time))
    return outcomes


def leaderboard(store: Store, run_id: int, target_accuracy: float | None = None) -> list[
        LeaderboardRow]:
    """The leaderboard of one run; paired comparisons for studies, unpaired for imports."""
    run = store.run(run_id)
    if target_accuracy is None and run.config.get("target_accuracy") is not None:
        target_accuracy = float(run.config["target_accuracy"])
    return summarize(outcomes_from_store(store, run_id), target_accuracy=target_accuracy,
                     paired=run.kind == "study")


def default_target(outcomes: Sequence[TrialOutcome]) -> float | None:
    """95% of the best label's mean final test accuracy, rounded down to 0.01.

    >>> default_target([TrialOutcome("a", "", 0, "finished", None, None, 0.9, 0.9, (), None)])
    0.85
    """
    by_label: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        if o.status == "finished" and o.final_test_accuracy is not None:
            by_label[o.label].append(o.final_test_accuracy)
    if not by_label:
        return None
    best = max(float(np.mean(v)) for v in by_label.values())
    return math.floor(0.95 * best * 100 + 1e-9) / 100


def summarize(outcomes: Sequence[TrialOutcome], *, target_accuracy: float | None = None,
              paired: bool = True) -> list[LeaderboardRow]:
    """Rows ranked by mean final test loss (see the module docstring for the rules)."""
    if target_accuracy is None:
        target_accuracy = default_target(outcomes)
    groups: dict[str, list[TrialOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.label].append(o)
    finished = {label: [o for o in group if o.status == "finished"]
                for label, group in groups.items()}
    loss_by_seed = {label: {o.seed: o.final_test_loss for o in group
                            if o.final_test_loss is not None and math.isfinite(o.final_test_loss)}
                    for label, group in finished.items()}
    ranked = sorted(groups, key=lambda label: _rank_key(loss_by_seed[label], label))
    best = ranked[0] if ranked and loss_by_seed[ranked[0]] else None
    rows = []
    for rank, label in enumerate(ranked, start=1):
        group, done = groups[label], finished[label]
        reached = [s for s in (o.steps_to(target_accuracy) for o in done) if s is not None] \
            if target_accuracy is not None else []
        walls = [o.wall_time for o in done if o.wall_time is not None]
        rows.append(LeaderboardRow(
            rank=rank, label=label, family=group[0].family, n_trials=len(group),
            n_finished=len(done), n_diverged=sum(o.status == "diverged" for o in group),
            n_other=sum(o.status not in ("finished", "diverged") for o in group),
            final_test_loss=_estimate(done, "final_test_loss"),
            best_test_loss=_estimate(done, "best_test_loss"),
            final_test_accuracy=_estimate(done, "final_test_accuracy"),
            best_test_accuracy=_estimate(done, "best_test_accuracy"),
            target_accuracy=target_accuracy, steps_to_target=mean_ci([float(s) for s in reached]),
            reached_target=len(reached), wall_time=float(np.mean(walls)) if walls else None,
            vs_best=_versus(label, best, loss_by_seed, paired)))
    return rows


def _versus(label: str, best: str | None, loss_by_seed: dict[str, dict[int, float]],
            paired: bool) -> Comparison:
    if best is None:
        return Comparison("no test loss", 0, None, None, None, None)
    if label == best:
        return BEST
    if paired:
        return compare_paired(loss_by_seed[label], loss_by_seed[best])
    return compare_unpaired(list(loss_by_seed[label].values()),
                            list(loss_by_seed[best].values()))


def _rank_key(losses: dict[int, float], label: str) -> tuple[int, float, str]:
    if not losses:
        return (1, math.inf, label)
    return (0, float(np.mean(list(losses.values()))), label)


def _estimate(outcomes: Sequence[TrialOutcome], field: str) -> Estimate:
    values = [getattr(o, field) for o in outcomes]
    return mean_ci([v for v in values if v is not None and math.isfinite(v)])


def _last(values: np.ndarray) -> float | None:
    return float(values[-1]) if len(values) else None


def _extreme(values: np.ndarray, pick: Callable[[np.ndarray], Any]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(pick(finite)) if len(finite) else None
