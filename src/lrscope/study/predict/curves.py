"""The curves a law is fitted to: a stored trial's selection metric and a schedule's LRs.

``trial_curve`` reads the metric the study ranks on (:class:`RankingMetric`: ``val_loss``,
``val_accuracy``, or the test set's when no validation split was held out) at the evaluation
steps, lower is better: a loss as it is, an accuracy as its error rate ``1 - accuracy``
(positive, so the law can be fitted on logs), any other maximised metric negated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrscope.schedules.base import Schedule
from lrscope.study.predict.law import Curve
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.store.base import ResultsStore


def lower_is_better(metric: RankingMetric, values: np.ndarray) -> np.ndarray:
    """``values`` of ``metric`` oriented lower-is-better (an accuracy as its error rate)."""
    if metric.direction == "min":
        return values
    return 1.0 - values if metric.name == "accuracy" else -values


def lr_sequence(schedule: Schedule, total_steps: int, *, effective: bool = False) -> np.ndarray:
    """The LR at optimizer steps ``0 .. total_steps - 1`` (the schedule given the run's length
    when it needs one). ``effective``: for a schedule that cycles momentum (onecycle, cyclic),
    ``lr / (1 - momentum)``, heavy-ball SGD's step size in the long run, rescaled so that its
    peak is the schedule's peak LR. Off by default: fitted on constant + cosine and predicting
    the other 6 of the smith suite on 3 real studies (``benchmarks/law_check.py``), it made the
    held-out error worse (multi_power's median relative error: fashion-mnist 4.1% -> 6.0%,
    digits 16.4% -> 20.1%, digits/AdamW 4.5% -> 12.1%; Adam's beta1 does not scale the step)."""
    schedule = schedule.with_total_steps(total_steps)
    lrs = np.array(schedule.lrs(total_steps), dtype=float)
    if effective and schedule.cycles_momentum:
        momenta = np.array([schedule.momentum(t) or 0.0 for t in range(total_steps)])
        boosted = lrs / np.maximum(1.0 - momenta, 1e-3)
        lrs = boosted * (lrs.max() / boosted.max()) if boosted.max() > 0 else lrs
    return lrs


def trial_curve(store: ResultsStore, trial: Any, metric: RankingMetric,
                lrs: np.ndarray) -> Curve | None:
    """The selection-metric curve of a stored ``trial`` (a TrialRecord or its id), with the
    LRs it trained with; None when it has no finite evaluation (failed, or diverged before its
    first). The points after a non-finite value are dropped (a diverged run's tail)."""
    trial_id = trial if isinstance(trial, int) else trial.id
    steps, values = store.metric_series(trial_id, metric.stored)
    values = lower_is_better(metric, np.asarray(values, dtype=float))
    bad = np.nonzero(~np.isfinite(values))[0]
    end = int(bad[0]) if bad.size else values.size
    keep = (steps[:end] >= 1) & (steps[:end] <= len(lrs))
    if not np.any(keep):
        return None
    return Curve(lrs=np.asarray(lrs, dtype=float), steps=np.asarray(steps[:end][keep]),
                 values=values[:end][keep])


def final_value(curve: Curve | None) -> float:
    """A curve's last value, lower is better; +inf when there is none or it is not finite.

    >>> final_value(None), final_value(Curve(np.ones(4), np.array([2, 4]), np.array([0.5, 0.3])))
    (inf, 0.3)
    """
    value = float(curve.values[-1]) if curve is not None and len(curve.values) else math.inf
    return value if math.isfinite(value) else math.inf
