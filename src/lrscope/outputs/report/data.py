"""What the report draws, read from the store: curves over seeds, grouped by run and family.

A :class:`LabelCurves` is one schedule label of one run: for each metric, the mean over its
seeds with a min-max band (how far apart the seeds ended up, which with 2-5 seeds is more
honest than a t band). Only finished trials enter a curve; a label whose trials all diverged
is drawn from those instead (up to where they stopped) and says so, as does a label whose
trials are still running or failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrscope.resolved_config import laid_over
from lrscope.study.stats.leaderboard import (
    LeaderboardRow,
    leaderboard,
    origins,
    outcomes_from_store,
    run_metric,
)
from lrscope.study.stats.predicted import with_predictions
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.stats.scales import ScaleCell, scales_of, sensitivity
from lrscope.study.store import (
    METRIC_NAMES,
    RangeTestRecord,
    ResultsStore,
    RunRecord,
    TrialRecord,
)
from lrscope.study.store.predictions import PredictionRecord

METRICS = METRIC_NAMES
# Families in the seed study's order; any other family follows, alphabetically.
FAMILY_ORDER = ("ramp", "constant", "step", "multistep", "exponential", "onecycle", "cyclic",
                "cosine", "cosine_restarts", "linear", "polynomial", "inverse_sqrt", "wsd")
TRAIN_SMOOTHING_FRACTION = 0.01  # moving-average window for train loss, as a share of the steps


@dataclass(frozen=True, eq=False)
class Curve:
    """Mean over seeds and the min-max band, at the union of the seeds' steps."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int

    @property
    def empty(self) -> bool:
        return len(self.steps) == 0


@dataclass(frozen=True, eq=False)
class LabelCurves:
    run_name: str
    label: str
    family: str
    n_seeds: int
    note: str          # "" when drawn from finished trials, else why not: "diverged", ...
    curves: dict[str, Curve] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class RunView:
    """One run, ready to draw: records, leaderboard, per-label curves, range test."""

    run: RunRecord
    trials: list[TrialRecord]
    rows: list[LeaderboardRow]
    labels: dict[str, LabelCurves]        # in leaderboard order
    range_test: RangeTestRecord | None
    # label -> (base label, LR scale), and with more than one scale: base -> scale -> the
    # final ranking metric over seeds (lrscope.study.stats.scales)
    origins: dict[str, tuple[str, float]] = field(default_factory=dict)
    scales: dict[str, dict[float, ScaleCell]] = field(default_factory=dict)
    # a strategy="predict" study's record (DIR/predictions.json; None for a full study): its
    # untrained candidates are predicted rows of ``rows`` (lrscope.study.stats.predicted)
    prediction: PredictionRecord | None = None
    # with a record: each trained candidate's run at the first seed (what the law predicted)
    measured: dict[str, Measured] = field(default_factory=dict)

    @property
    def ranked(self) -> list[str]:
        """Labels with at least one finished trial, best first."""
        return [r.label for r in self.rows if r.n_finished > 0]

    def families(self) -> list[str]:
        present = {c.family for c in self.labels.values()}
        known = [f for f in FAMILY_ORDER if f in present]
        return known + sorted(present - set(known))

    def family_labels(self, family: str) -> list[str]:
        return [label for label, c in self.labels.items() if c.family == family]

    def shown_config(self) -> dict[str, Any]:
        """The run's config as it ran: each setting left to a default shows the value used
        (the config's ``resolved``, stored by lrscope compare), the target accuracy the one
        the leaderboard used (issue 19 item 10)."""
        config = {k: v for k, v in self.run.config.items() if k != "resolved"}
        shown = laid_over(config, self.run.config.get("resolved") or {})
        target = next((r.target_accuracy for r in self.rows if r.target_accuracy is not None),
                      None)
        if shown.get("target_accuracy") is None and target is not None:
            shown["target_accuracy"] = target
        return shown

    def reference(self, exclude_family: str | None = None) -> str | None:
        """The label others are drawn against: config "reference", else the best schedule.

        For the reference's own family the best schedule of another family is used instead.
        """
        wanted = self.run.config.get("reference")
        candidates = ([wanted] if wanted in self.labels else []) + self.ranked
        for label in candidates:
            if exclude_family is None or self.labels[label].family != exclude_family:
                return label
        return None


@dataclass(frozen=True, eq=False)
class Measured:
    """A trained candidate's run at the first seed: its ranking-metric curve (in the metric's
    own direction) and final value; ``trial`` is its key."""

    trial: str
    steps: np.ndarray
    values: np.ndarray

    @property
    def final(self) -> float | None:
        finite = np.isfinite(self.values)
        return float(self.values[finite][-1]) if finite.any() else None


def first_seed(record: PredictionRecord) -> int | None:
    """The seed the law was fitted at: its fit runs' (``<label>/seed<k>``)."""
    for key in (*record.fit_trials, *([record.self_check.trial] if record.self_check else [])):
        _, _, seed = key.rpartition("/seed")
        if seed.isdigit():
            return int(seed)
    return None


def measured_runs(store: ResultsStore, trials: Sequence[TrialRecord], record: PredictionRecord,
                  metric: RankingMetric) -> dict[str, Measured]:
    """label -> its run at the first seed, for every candidate of ``record`` that has one."""
    seed = first_seed(record)
    found: dict[str, Measured] = {}
    for trial in trials:
        if trial.label in record.candidates and (seed is None or trial.seed == seed) \
                and trial.label not in found:
            steps, values = store.metric_series(trial.id, metric.stored)
            found[trial.label] = Measured(trial.key, steps, values)
    return found


def load_run(store: ResultsStore, run: RunRecord, target_accuracy: float | None = None,
             prediction: PredictionRecord | None = None) -> RunView:
    trials = store.trials(run.id)
    rows = leaderboard(store, run.id, target_accuracy)
    by_label: dict[str, list[TrialRecord]] = {}
    for trial in trials:
        by_label.setdefault(trial.label, []).append(trial)
    labels = {row.label: label_curves(store, run.name, by_label[row.label]) for row in rows}
    found = origins(trials)
    scales: dict[str, dict[float, ScaleCell]] = {}
    if len(scales_of(found)) > 1:
        metric = run_metric(store, run.id)
        scales = sensitivity(outcomes_from_store(store, run.id, metric), found, metric)
    measured = {} if prediction is None or not rows else \
        measured_runs(store, trials, prediction, rows[0].metric)
    return RunView(run, trials, with_predictions(rows, prediction), labels,
                   store.range_test(run.id), found, scales, prediction, measured)


def label_curves(store: ResultsStore, run_name: str,
                 trials: Sequence[TrialRecord]) -> LabelCurves:
    finished = [t for t in trials if t.status == "finished"]
    drawn = finished or list(trials)
    curves = {}
    for metric in METRICS:
        series = [store.metric_series(t.id, metric) for t in drawn]
        curve = aggregate(series)
        if metric == "train_loss":
            curve = moving_average(curve, max(1, int(len(curve.steps) * TRAIN_SMOOTHING_FRACTION)))
        curves[metric] = curve
    return LabelCurves(run_name=run_name, label=trials[0].label, family=trials[0].family or "other",
                       n_seeds=len(drawn), note=_note(trials, finished), curves=curves)


def _note(trials: Sequence[TrialRecord], finished: Sequence[TrialRecord]) -> str:
    if finished:
        return ""
    if all(t.status == "diverged" for t in trials):
        return "diverged"
    return "unfinished"


def aggregate(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> Curve:
    """Mean, min and max over seeds at every step any seed logged (non-finite left out).

    >>> c = aggregate([(np.array([0, 1]), np.array([1.0, 3.0])),
    ...                (np.array([1, 2]), np.array([5.0, 7.0]))])
    >>> c.steps.tolist(), c.mean.tolist(), c.low.tolist(), c.high.tolist(), c.n
    ([0, 1, 2], [1.0, 4.0, 7.0], [1.0, 3.0, 7.0], [1.0, 5.0, 7.0], 2)
    """
    present = [(s, v) for s, v in series if len(s)]
    if not present:
        empty = np.zeros(0)
        return Curve(empty.astype(np.int64), empty, empty, empty, 0)
    steps = np.unique(np.concatenate([s for s, _ in present]))
    grid = np.full((len(present), len(steps)), np.nan)
    for row, (s, v) in enumerate(present):
        grid[row, np.searchsorted(steps, s)] = np.where(np.isfinite(v), v, np.nan)
    keep = ~np.all(np.isnan(grid), axis=0)
    grid, steps = grid[:, keep], steps[keep]
    return Curve(steps, np.nanmean(grid, axis=0), np.nanmin(grid, axis=0),
                 np.nanmax(grid, axis=0), len(present))


def moving_average(curve: Curve, window: int) -> Curve:
    """Trailing moving average of mean and band (window 1 leaves the curve as it is).

    >>> c = moving_average(Curve(np.arange(4), np.array([0., 2., 4., 6.]), np.zeros(4),
    ...                          np.zeros(4), 1), 2)
    >>> c.mean.tolist()
    [0.0, 1.0, 3.0, 5.0]
    """
    if window <= 1 or curve.empty:
        return curve

    def trailing(values: np.ndarray) -> np.ndarray:
        sums = np.cumsum(np.insert(values, 0, 0.0))
        counts = np.minimum(np.arange(1, len(values) + 1), window)
        return (sums[1:] - sums[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts

    return Curve(curve.steps, trailing(curve.mean), trailing(curve.low), trailing(curve.high),
                 curve.n)
