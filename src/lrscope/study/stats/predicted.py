"""The leaderboard of a ``strategy="predict"`` study: measured rows, and predicted ones below
the best.

A predict study trains some candidates and predicts the others from a loss-curve law
(:mod:`lrscope.study.predict`). :func:`with_predictions` returns the measured rows, ranked as
:func:`~lrscope.study.stats.leaderboard.summarize` ranks them, with a row for every candidate
the study did not train merged in by its predicted value. The first row is always measured
(the best is a trained candidate, whatever the law predicts), and rank numbers run on over the
merged list. A predicted row holds no measurement at all: no trials, no metric columns, no
"vs best" test, ``rank_loss`` +inf (so any code that ranks rows by measurements sees it as
holding none); its only number is its :class:`~lrscope.study.store.predictions.Prediction`
(value and interval in the metric's own direction). When the law failed its self-check (the
study fell back to training), or there is no record (a full study), nothing is added.

>>> from lrscope.study.store.predictions import Cost, Prediction, PredictionRecord
>>> from lrscope.study.stats.leaderboard import TrialOutcome, summarize
>>> outcomes = [TrialOutcome(label, "", 0, "finished", loss, loss, None, None, (), 1.0)
...             for label, loss in (("a", 0.3), ("b", 0.5))]
>>> record = PredictionRecord("multi_power", ("a/seed0",), {
...     "a": Prediction(0.31, 0.28, 0.34, trained=True), "b": Prediction(0.52, 0.4, 0.6, True),
...     "c": Prediction(0.2, 0.15, 0.25), "d": Prediction(0.4, 0.35, 0.45)},
...     Cost(300, 1000, 100, 100, 0.3))
>>> rows = with_predictions(summarize(outcomes), record)
>>> [(r.rank, r.label, r.status) for r in rows]
[(1, 'a', 'measured'), (2, 'c', 'predicted'), (3, 'd', 'predicted'), (4, 'b', 'measured')]
>>> predicted_text(rows[1])
'0.2 [0.15, 0.25], predicted, not trained'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from lrscope.errors import InputError
from lrscope.schedules import parse
from lrscope.study.stats.leaderboard import LeaderboardRow
from lrscope.study.stats.uncertainty import Comparison, Estimate
from lrscope.study.store.predictions import Prediction, PredictionRecord

PREDICTED = "predicted"
MEASURED = "measured"
NOT_TRAINED = "predicted, not trained"
NO_VALUE = Estimate(None, None, None, 0)
# what a predicted row shows for "vs best": it was never trained, so never tested
NOT_TESTED = Comparison(NOT_TRAINED, 0, None, None, None, None)


def fell_back(record: PredictionRecord) -> bool:
    """Whether the study stopped trusting the law (self-check failed, or no law could be
    fitted) and trained instead: then no prediction is ranked."""
    check = record.self_check
    return record.stopped == "fallback" or (check is not None and not check.passed)


def with_predictions(rows: Sequence[LeaderboardRow],
                     record: PredictionRecord | None) -> list[LeaderboardRow]:
    """``rows`` (measured, best first) with a predicted row for every candidate of ``record``
    the study did not train, merged by predicted value below the first row (see the module
    docstring); ``rows`` as they are without a record, after a fallback or without a measured
    row."""
    rows = list(rows)
    if record is None or fell_back(record) or not rows:
        return rows
    shown = {row.label for row in rows}
    first, metric = rows[0], rows[0].metric
    predicted = [predicted_row(label, p, first) for label, p in record.candidates.items()
                 if not p.trained and label not in shown]
    predicted.sort(key=lambda row: (_order(row), row.label))
    merged, rest = [first], rows[1:]
    for row in predicted:  # a measured row comes before a prediction of the same value
        while rest and rest[0].rank_loss <= _order(row):
            merged.append(rest.pop(0))
        merged.append(row)
    merged += rest
    assert merged[0].status == MEASURED and metric == merged[0].metric
    return [replace(row, rank=rank) for rank, row in enumerate(merged, start=1)]


def measured_rows(rows: Sequence[LeaderboardRow]) -> list[LeaderboardRow]:
    """The rows that hold trained trials (what any statistic over measurements reads)."""
    return [row for row in rows if row.status == MEASURED]


def predicted_row(label: str, prediction: Prediction, best: LeaderboardRow) -> LeaderboardRow:
    """A row for an untrained candidate: its prediction and nothing measured."""
    return LeaderboardRow(
        rank=0, label=label, family=_family(label), n_trials=0, n_finished=0, n_diverged=0,
        n_other=0, final_test_loss=NO_VALUE, best_test_loss=NO_VALUE,
        final_test_accuracy=NO_VALUE, best_test_accuracy=NO_VALUE,
        target_accuracy=best.target_accuracy, steps_to_target=NO_VALUE, reached_target=0,
        wall_time=None, vs_best=NOT_TESTED, rank_loss=math.inf, metric=best.metric,
        versus_on=best.versus_on, status=PREDICTED, prediction=prediction)


def interval_text(value: float, low: float, high: float, digits: int = 3) -> str:
    """A prediction and its 95% interval, ``'0.412 [0.39, 0.43]'``; an infinite interval (the
    schedule lies outside what the law can say) is said in words; ``'—'`` for no value.

    >>> interval_text(0.4123, 0.39, 0.43), interval_text(-0.2, -math.inf, math.inf)
    ('0.412 [0.39, 0.43]', "-0.2 (no interval: outside the law's range)")
    """
    if not math.isfinite(value):
        return "—"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}g} (no interval: outside the law's range)"
    return f"{value:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def predicted_text(row: LeaderboardRow, digits: int = 3) -> str:
    """``'0.412 [0.39, 0.43], predicted, not trained'``: a predicted row's ranked cell (the
    interval is the prediction's 95% one); empty for a measured row."""
    p = row.prediction
    if row.status != PREDICTED or p is None:
        return ""
    return f"{interval_text(p.value, p.low, p.high, digits)}, {NOT_TRAINED}"


def _order(row: LeaderboardRow) -> float:
    """Where a predicted row goes among measured ones: its value, lower-is-better."""
    p = row.prediction
    value = row.metric.sign * p.value if p is not None else math.inf
    return value if math.isfinite(value) else math.inf


def _family(label: str) -> str:
    """The schedule family a candidate's label names (its spec), "" when it is not a spec."""
    try:
        return parse(label).family
    except (InputError, TypeError, ValueError):
        return ""
