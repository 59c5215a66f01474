"""The leaderboard: one row per schedule, its seeds summarised with uncertainty.

Per schedule label: final and best test loss and test accuracy as mean +/- 95% CI over the
seeds, steps to reach a target accuracy (mean over the seeds that reached it, and how many did),
diverged count, mean wall time, and a comparison against the best schedule as described in
:mod:`lrscope.study.stats.uncertainty`.

**Selection on validation.** When the trials measured a validation split (``val_loss``), the
ranking reads the final *validation* loss and the test set only reports: the columns and the
"vs best" comparison are test metrics, of a best picked on other data. Without a split the
ranking reads the final test loss, as below.

**Every seed counts.** A seed that diverged, failed or has not finished (or finished without a
finite final test loss) is the worst outcome, not a missing one:

* *Ranking*: by the median final test loss over all of a schedule's seeds, such a seed counting
  as +inf (worse than any finished one); ties go to more finished seeds, then to the lower mean
  over the finished ones. So a schedule that fails on half its seeds or more ranks below every
  schedule that finished most of its seeds (2 diverged of 3 ranks below any 3 of 3), while one
  bad seed of 3 costs a schedule its best seed rather than everything.
* *vs best*: paired over every seed both schedules were run at, such a seed taking the run's
  worst test loss, the highest any finished trial showed at any evaluation (the test needs a
  number; no finished trial ever did worse, and an early evaluation is typically near the
  untrained loss), with p-values and simultaneous intervals adjusted over every pair of
  schedules because the best was picked from the same data
  (:func:`~lrscope.study.stats.uncertainty.compare_with_best`).

The means and intervals of the metric columns describe the finished trials only (a diverged
trial has no meaningful final loss); ``n_diverged`` and ``n_other`` (failed or unfinished) say
how many are left out of them.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrscope.study.stats.uncertainty import (
    BEST,
    Comparison,
    Estimate,
    compare_with_best,
    mean_ci,
    metric_range,
)
from lrscope.study.store.sqlite import Store

EXCLUSION_NOTE = ("Means and intervals use finished trials only. Ranked by the median final test "
                  "loss over all seeds, a diverged, failed or unfinished seed counting as worse "
                  "than any finished one (ties: more finished seeds, then lower mean).")
VALIDATION_NOTE = ("Means and intervals use finished trials only. Ranked by the median final "
                   "validation loss over all seeds (the split held out of training; the test set "
                   "only reports), a diverged, failed or unfinished seed counting as worse than "
                   "any finished one (ties: more finished seeds, then lower mean).")


def ranking_note(rows: Sequence[LeaderboardRow]) -> str:
    """The one-sentence ranking rule for these rows (on validation or on test)."""
    ranked_on = next((r.ranked_on for r in rows), "test_loss")
    if ranked_on == "test_loss":
        return EXCLUSION_NOTE
    if ranked_on == "val_loss":
        return VALIDATION_NOTE
    name = ranked_on.removeprefix("val_")
    better = "higher" if rows[0].rank_max else "lower"
    return VALIDATION_NOTE.replace("final validation loss",
                                   f"final validation {name} ({better} is better)")


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
    worst_test_loss: float | None = None  # highest finite test loss at any evaluation
    final_val_loss: float | None = None  # with a validation split: what the ranking reads
    # (the rank_by metric's last value, negated when it is maximised: lower is always better)

    def steps_to(self, target: float) -> int | None:
        """First evaluated step whose test accuracy reaches ``target``, or None."""
        return next((step for step, acc in self.accuracy_curve if acc >= target), None)


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int                   # 1 = best, by rank_loss (see the module docstring)
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
    rank_loss: float = math.inf  # median final (val or test) loss over all seeds, unfinished = +inf
    ranked_on: str = "test_loss"  # "val_loss" (or "val_<rank_by>") with a validation split
    rank_max: bool = False  # the ranked metric is maximised (rank_loss holds it negated)


def rank_by_of(config: Mapping[str, Any]) -> tuple[str, str]:
    """The run's ranking metric and direction: its ``rank_by`` setting, else ("loss", "min")."""
    name, direction = config.get("rank_by") or ("loss", "min")
    return str(name), str(direction)


def outcomes_from_store(store: Store, run_id: int,
                        rank_by: tuple[str, str] = ("loss", "min")) -> list[TrialOutcome]:
    """Every trial of a run, reduced to its final/best test metrics and its final selection
    metric (``val_<rank_by>``, negated when maximised)."""
    name, direction = rank_by
    sign = -1.0 if direction == "max" else 1.0
    outcomes = []
    for trial in store.trials(run_id):
        _, loss = store.metric_series(trial.id, "test_loss")
        steps, acc = store.metric_series(trial.id, "test_accuracy")
        _, val = store.metric_series(trial.id, f"val_{name}")
        val = sign * val
        curve = tuple((int(s), float(a)) for s, a in zip(steps, acc, strict=True)
                      if math.isfinite(a))
        outcomes.append(TrialOutcome(
            label=trial.label, family=trial.family, seed=trial.seed, status=trial.status,
            final_test_loss=_last(loss), best_test_loss=_extreme(loss, np.min),
            final_test_accuracy=_last(acc), best_test_accuracy=_extreme(acc, np.max),
            accuracy_curve=curve, wall_time=trial.wall_time,
            worst_test_loss=_extreme(loss, np.max), final_val_loss=_last(val)))
    return outcomes


def leaderboard(store: Store, run_id: int, target_accuracy: float | None = None) -> list[
        LeaderboardRow]:
    """The leaderboard of one run; paired comparisons for studies, unpaired for imports."""
    run = store.run(run_id)
    if target_accuracy is None and run.config.get("target_accuracy") is not None:
        target_accuracy = float(run.config["target_accuracy"])
    rank_by = rank_by_of(run.config)
    return summarize(outcomes_from_store(store, run_id, rank_by), target_accuracy=target_accuracy,
                     paired=run.kind == "study", rank_by=rank_by)


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
              paired: bool = True, rank_by: tuple[str, str] = ("loss", "min"),
              ) -> list[LeaderboardRow]:
    """Rows ranked best first (see the module docstring for the rules)."""
    if target_accuracy is None:
        target_accuracy = default_target(outcomes)
    groups: dict[str, list[TrialOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.label].append(o)
    on_val = any(o.final_val_loss is not None for o in outcomes)
    scores = {label: {o.seed: _score(o, on_val) for o in group}
              for label, group in groups.items()}
    ranked = sorted(groups, key=lambda label: rank_key(scores[label].values(), label))
    versus: dict[str, Comparison] = {}
    worst = worst_loss(outcomes)
    tests = {label: {o.seed: _score(o, False) for o in group} for label, group in groups.items()}
    if worst is not None and any(math.isfinite(v) for s in tests.values() for v in s.values()):
        imputed = {label: {seed: v if math.isfinite(v) else worst for seed, v in by_seed.items()}
                   for label, by_seed in tests.items()}
        versus = {ranked[0]: BEST, **compare_with_best(imputed, ranked[0], paired)}
    rows = []
    for rank, label in enumerate(ranked, start=1):
        group = groups[label]
        done = [o for o in group if o.status == "finished"]
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
            target_accuracy=target_accuracy, steps_to_target=mean_ci([float(s) for s in reached],
                                                              bounds=metric_range("steps")),
            reached_target=len(reached), wall_time=float(np.mean(walls)) if walls else None,
            vs_best=versus.get(label, NO_TEST_LOSS),
            rank_loss=rank_key(scores[label].values(), label)[0],
            ranked_on=f"val_{rank_by[0]}" if on_val else "test_loss",
            rank_max=on_val and rank_by[1] == "max"))
    return rows


NO_TEST_LOSS = Comparison("no test loss", 0, None, None, None, None)


def rank_key(losses: Iterable[float], label: str = "") -> tuple[float, int, float, str]:
    """(median over all seeds, -finished seeds, mean over finished, label): lowest is best.

    ``losses`` has one final test loss per seed, +inf where the seed did not finish.

    >>> rank_key([0.2, math.inf, math.inf]) > rank_key([0.9, 0.9, 0.9])
    True
    >>> rank_key([0.2, 0.3, math.inf])[:3]
    (0.3, -2, 0.25)
    """
    values = list(losses)
    done = [v for v in values if math.isfinite(v)]
    median = float(np.median(values)) if values else math.inf
    return (median, -len(done), float(np.mean(done)) if done else math.inf, label)


def worst_loss(outcomes: Iterable[TrialOutcome]) -> float | None:
    """The run's worst test loss: the highest a finished trial showed at any evaluation.

    >>> worst_loss([TrialOutcome("a", "", 0, "finished", 0.3, 0.3, None, None, (), None, 2.2),
    ...             TrialOutcome("b", "", 0, "diverged", 9.0, 9.0, None, None, (), None, 99.0)])
    2.2
    """
    seen = [v for o in outcomes if o.status == "finished"
            for v in (o.final_test_loss, o.worst_test_loss) if v is not None and math.isfinite(v)]
    return max(seen) if seen else None


def _score(outcome: TrialOutcome, on_val: bool = False) -> float:
    """The final test (``on_val``: validation) loss of a finished trial; +inf for any other
    (the worst outcome)."""
    loss = outcome.final_val_loss if on_val else outcome.final_test_loss
    if outcome.status != "finished" or loss is None or not math.isfinite(loss):
        return math.inf
    return float(loss)


def _estimate(outcomes: Sequence[TrialOutcome], field: str) -> Estimate:
    values = [getattr(o, field) for o in outcomes]
    return mean_ci([v for v in values if v is not None and math.isfinite(v)],
                   bounds=metric_range(field))


def _last(values: np.ndarray) -> float | None:
    return float(values[-1]) if len(values) else None


def _extreme(values: np.ndarray, pick: Callable[[np.ndarray], Any]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(pick(finite)) if len(finite) else None
