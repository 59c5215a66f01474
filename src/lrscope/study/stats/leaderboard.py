"""The leaderboard: one row per schedule, its seeds summarised with uncertainty.

Per schedule label: final and best test loss and test accuracy as mean +/- 95% CI over the
seeds, steps to reach a target accuracy (mean over the seeds that reached it, and how many did),
diverged count, mean wall time, and a comparison against the best schedule as described in
:mod:`lrscope.study.stats.uncertainty`.

**What is ranked** is a :class:`~lrscope.study.stats.ranking.RankingMetric` (the run's
``rank_by``, else the loss). When the trials measured a validation split, the ranking reads that
metric's final *validation* value and the test set only reports: the columns and the "vs best"
comparison are test metrics, of a best picked on other data. Without a split the ranking reads
the metric on the test set. Without a test set, "vs best" compares on the ranking metric.

**One row per schedule.** A study run at several peak-LR scales (``lr_scales``) ranks each base
schedule at its best scale: the scale whose trials rank best by the same rule as the rows, on
the ranking metric (validation when measured); the other scales are the sensitivity section's
(:mod:`lrscope.study.stats.scales`).

**Every seed counts.** A seed that diverged, failed or has not finished (or finished without a
finite final test loss) is the worst outcome, not a missing one:

* *Ranking*: by the median final ranking metric over all of a schedule's seeds, such a seed counting
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lrscope.study.stats.ranking import TEST_LOSS, RankingMetric, ranked_on_text
from lrscope.study.stats.uncertainty import (
    BEST,
    Comparison,
    Estimate,
    compare_with_best,
    mean_ci,
    metric_range,
)
from lrscope.study.store import ResultsStore

if TYPE_CHECKING:  # the record's types only: the predict package runs studies, above stats
    from lrscope.study.store.predictions import Prediction

Origins = Mapping[str, tuple[str, float]]  # label -> (base label, LR scale)


def ranking_note(rows: Sequence[LeaderboardRow]) -> str:
    """The ranking rule for these rows (:func:`~lrscope.study.stats.ranking.ranked_on_text`)."""
    metric = rows[0].metric if rows else TEST_LOSS
    return "Means and intervals use finished trials only. " + ranked_on_text(metric)


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
    worst_val_loss: float | None = None  # the same metric's worst (highest) at any evaluation

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
    # median final ranking metric over all seeds, unfinished = +inf, lower is better (the
    # metric's sign applied: metric.shown(rank_loss) is the value in its own direction)
    rank_loss: float = math.inf
    metric: RankingMetric = TEST_LOSS  # what the rank follows
    versus_on: RankingMetric = TEST_LOSS  # what "vs best" compares (test loss when measured)
    lr_scale: float | None = None  # with lr_scales: the peak-LR scale this row was chosen at
    # "measured" (trained), or "predicted": a strategy="predict" study's untrained candidate,
    # whose only number is ``prediction`` (lrscope.study.stats.predicted); never a measurement
    status: str = "measured"
    prediction: Prediction | None = None

    @property
    def measured(self) -> bool:
        """Whether the row holds trained trials (else a prediction, never a measurement)."""
        return self.status == "measured"

    @property
    def ranked_on(self) -> str:
        """The ranked metric's stored name: ``val_loss``, ``test_loss``, ``val_accuracy``..."""
        return self.metric.stored

    @property
    def rank_max(self) -> bool:
        return self.metric.direction == "max"

    @property
    def rank_value(self) -> float:
        """The rank statistic in the metric's own direction (an accuracy reads 0.95)."""
        return self.metric.shown(self.rank_loss)


def outcomes_from_store(store: ResultsStore, run_id: int,
                        rank_by: RankingMetric | tuple[str, str] = TEST_LOSS
                        ) -> list[TrialOutcome]:
    """Every trial of a run, reduced to its final/best test metrics and its final selection
    metric (``val_<rank_by>``, negated when maximised)."""
    metric = RankingMetric.parse(rank_by)
    outcomes = []
    for trial in store.trials(run_id):
        _, loss = store.metric_series(trial.id, "test_loss")
        steps, acc = store.metric_series(trial.id, "test_accuracy")
        _, val = store.metric_series(trial.id, f"val_{metric.name}")
        val = metric.sign * val
        curve = tuple((int(s), float(a)) for s, a in zip(steps, acc, strict=True)
                      if math.isfinite(a))
        outcomes.append(TrialOutcome(
            label=trial.label, family=trial.family, seed=trial.seed, status=trial.status,
            final_test_loss=_last(loss), best_test_loss=_extreme(loss, np.min),
            final_test_accuracy=_last(acc), best_test_accuracy=_extreme(acc, np.max),
            accuracy_curve=curve, wall_time=trial.wall_time,
            worst_test_loss=_extreme(loss, np.max), final_val_loss=_last(val),
            worst_val_loss=_extreme(val, np.max)))
    return outcomes


def run_metric(store: ResultsStore, run_id: int) -> RankingMetric:
    """What a stored run ranks on: its ``rank_by`` on the validation split when any of its
    trials measured one (any ``val_*`` metric), else on the test set."""
    validated = any(name.startswith("val_") for trial in store.trials(run_id)
                    for name in store.metric_names(trial.id))
    return RankingMetric.of_run(store.run(run_id).config, validated)


def origins(trials: Iterable[Any]) -> dict[str, tuple[str, float]]:
    """label -> (base, scale) from stored trials (anything with ``label`` and ``config``); a
    trial without them is its own base at scale 1."""
    found: dict[str, tuple[str, float]] = {}
    for trial in trials:
        config = trial.config or {}
        found[trial.label] = (str(config.get("base", trial.label)),
                              float(config.get("lr_scale", 1.0)))
    return found


def leaderboard(store: ResultsStore, run_id: int, target_accuracy: float | None = None) -> list[
        LeaderboardRow]:
    """The leaderboard of one run; paired comparisons for studies, unpaired for imports; one
    row per base schedule, at its best scale, when the run tried several LR scales."""
    run = store.run(run_id)
    if target_accuracy is None and run.config.get("target_accuracy") is not None:
        target_accuracy = float(run.config["target_accuracy"])
    metric = run_metric(store, run_id)
    return summarize(outcomes_from_store(store, run_id, metric), target_accuracy=target_accuracy,
                     paired=run.kind == "study", metric=metric,
                     origins=origins(store.trials(run_id)))


def default_target(outcomes: Sequence[TrialOutcome]) -> float | None:
    """95% of the best label's mean final test accuracy, rounded down to 0.01.

    >>> default_target([TrialOutcome("a", "", 0, "finished", None, None, 0.9, 0.9, (), None)])
    0.85
    """
    by_label: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        # a NaN accuracy (a model that output NaN yet "finished") says nothing about the target
        if o.status == "finished" and o.final_test_accuracy is not None \
                and math.isfinite(o.final_test_accuracy):
            by_label[o.label].append(o.final_test_accuracy)
    if not by_label:
        return None
    best = max(float(np.mean(v)) for v in by_label.values())
    return math.floor(0.95 * best * 100 + 1e-9) / 100


def summarize(outcomes: Sequence[TrialOutcome], *, target_accuracy: float | None = None,
              paired: bool = True, metric: RankingMetric | None = None,
              origins: Origins | None = None,
              ) -> list[LeaderboardRow]:
    """Rows ranked best first (see the module docstring for the rules).

    ``metric``: what to rank on (None: the loss, on validation when any outcome has a
    validation value, else on test); ``origins``: label -> (base label, LR scale), for a run
    at several scales (one row per base, at its best scale).
    """
    if target_accuracy is None:
        target_accuracy = default_target(outcomes)
    if metric is None:
        validated = any(o.final_val_loss is not None for o in outcomes)
        metric = RankingMetric().on("val" if validated else "test")
    groups: dict[str, list[TrialOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.label].append(o)
    scores = {label: {o.seed: final_score(o, metric) for o in group}
              for label, group in groups.items()}
    keys = {label: rank_key(scores[label].values(), label) for label in groups}
    scale_of = {label: found[1] for label, found in (origins or {}).items()}
    if len(set(scale_of.values())) > 1:  # one row per base schedule, at its best scale
        chosen = best_label_per_base(keys, origins or {})
        groups = {label: groups[label] for label in chosen}
    ranked = sorted(groups, key=keys.__getitem__)
    versus, versus_on = _versus(groups, ranked, metric, paired)
    nothing = not any(o.status == "finished" for g in groups.values() for o in g)
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
            vs_best=versus.get(label, NOTHING_FINISHED if nothing else NO_TEST_LOSS),
            rank_loss=keys[label][0], metric=metric, versus_on=versus_on,
            lr_scale=scale_of.get(label) if len(set(scale_of.values())) > 1 else None))
    return rows


def best_label_per_base(keys: Mapping[str, tuple[float, int, float, str]],
                        origins: Origins) -> list[str]:
    """Per base schedule, the label (one scale of it) with the best :func:`rank_key`.

    >>> keys = {"c1": (0.5, -3, 0.5, "c1"), "c3": (0.2, -1, 0.2, "c3"), "d": (0.4, -3, 0.4, "d")}
    >>> best_label_per_base(keys, {"c1": ("c1", 1.0), "c3": ("c1", 3.0), "d": ("d", 1.0)})
    ['c3', 'd']
    """
    best: dict[str, str] = {}
    for label, key in keys.items():
        base = origins.get(label, (label, 1.0))[0]
        if base not in best or key < keys[best[base]]:
            best[base] = label
    return list(best.values())


def _versus(groups: Mapping[str, Sequence[TrialOutcome]], ranked: Sequence[str],
            metric: RankingMetric, paired: bool) -> tuple[dict[str, Comparison], RankingMetric]:
    """Each label against the best, on the final test loss when there is a test set, else on
    the ranking metric (in its own direction), a seed that did not finish taking the worst
    value any finished trial showed; and the metric compared."""
    outcomes = [o for group in groups.values() for o in group]
    compared = TEST_LOSS
    tests = {label: {o.seed: final_score(o, compared) for o in group}
             for label, group in groups.items()}
    worst = worst_loss(outcomes)
    if not any(math.isfinite(v) for s in tests.values() for v in s.values()):
        compared = metric  # no test set: compare on what was ranked, and say so
        tests = {label: {o.seed: final_score(o, metric) for o in group}
                 for label, group in groups.items()}
        worst = _worst_ranked(outcomes, metric)
    if worst is None or not any(math.isfinite(v) for s in tests.values() for v in s.values()):
        return {}, compared
    imputed = {label: {seed: v if math.isfinite(v) else worst for seed, v in by_seed.items()}
               for label, by_seed in tests.items()}
    found = compare_with_best(imputed, ranked[0], paired)
    if compared.direction == "max":  # differences in the metric's own direction
        found = {label: replace(c, difference=_negated(c.difference), low=_negated(c.high),
                                high=_negated(c.low)) for label, c in found.items()}
    return {ranked[0]: BEST, **found}, compared


def _negated(value: float | None) -> float | None:
    return None if value is None else -value


def _worst_ranked(outcomes: Iterable[TrialOutcome], metric: RankingMetric) -> float | None:
    """The worst value of the ranking metric (lower-better) a finished trial showed."""
    seen = [v for o in outcomes if o.status == "finished"
            for v in (final_score(o, metric), o.worst_val_loss if metric.split == "val" else None)
            if v is not None and math.isfinite(v)]
    return max(seen) if seen else None


NO_TEST_LOSS = Comparison("no test loss", 0, None, None, None, None)
NOTHING_FINISHED = Comparison("nothing finished", 0, None, None, None, None)


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


def final_score(outcome: TrialOutcome, metric: RankingMetric = TEST_LOSS) -> float:
    """The final value of ``metric`` (lower is better) of a finished trial; +inf for any other
    (the worst outcome)."""
    if metric.split == "val":
        value = outcome.final_val_loss
    elif metric.name == "accuracy":
        value = None if outcome.final_test_accuracy is None \
            else metric.sign * outcome.final_test_accuracy
    else:  # the test set measures the loss (and accuracy) only
        value = outcome.final_test_loss if metric.name == "loss" else None
    if outcome.status != "finished" or value is None or not math.isfinite(value):
        return math.inf
    return float(value)


def _estimate(outcomes: Sequence[TrialOutcome], field: str) -> Estimate:
    values = [getattr(o, field) for o in outcomes]
    return mean_ci([v for v in values if v is not None and math.isfinite(v)],
                   bounds=metric_range(field))


def _last(values: np.ndarray) -> float | None:
    return float(values[-1]) if len(values) else None


def _extreme(values: np.ndarray, pick: Callable[[np.ndarray], Any]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(pick(finite)) if len(finite) else None
