"""A fair peak LR per schedule: each base schedule at its best LR scale.

A study run with ``lr_scales`` trains every schedule of its suite at several multiples of its
peak LR; each trial stores ``{"lr_scale": k, "base": <unscaled label>}`` in its config. The
leaderboard has one row per base schedule, at its best scale: the scale whose trials rank best
by the leaderboard's own rule (:func:`~lrscope.study.stats.leaderboard.rank_key` on the ranking
metric: the median final value over all seeds, validation when the trials measured one, a seed
that did not finish counting as worst). The sensitivity table shows every scale by the same
rule, with how many seeds finished. Results group by the base label, never by family (the two
exponentials of a suite share one).

>>> from lrscope.study.stats.leaderboard import TrialOutcome, summarize
>>> from lrscope.study.stats.ranking import RankingMetric
>>> outcomes = [TrialOutcome(label, "constant", 0, "finished", loss, loss, None, None, (), 1.0,
...                          final_val_loss=loss)
...             for label, loss in (("c(lr=1)", 0.5), ("c(lr=3)", 0.2), ("c(lr=0.3)", 0.9))]
>>> origins = {"c(lr=1)": ("c(lr=1)", 1.0), "c(lr=3)": ("c(lr=1)", 3.0),
...            "c(lr=0.3)": ("c(lr=1)", 0.3)}
>>> rows = summarize(outcomes, origins=origins)
>>> [(r.label, r.lr_scale) for r in rows]
[('c(lr=3)', 3.0)]
>>> best_scale_line(best_scales(rows, origins)[0])
'c(lr=1): best at x3 (val loss 0.2)'
>>> cell = sensitivity(outcomes, origins, rows[0].metric)["c(lr=1)"][3.0]
>>> cell.text(rows[0].metric)
'0.2 (1/1)'
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from lrscope.study.stats.leaderboard import (
    LeaderboardRow,
    Origins,
    TrialOutcome,
    final_score,
    origins,
    rank_key,
)
from lrscope.study.stats.ranking import RankingMetric


class BestScale(NamedTuple):
    base: str          # the unscaled schedule's label
    label: str         # the label of its best scale
    scale: float
    rank_loss: float   # the leaderboard's ranking value at that scale, lower-better (+inf: none
    metric: RankingMetric  # finished); what it ranks on

    @property
    def ranked_on(self) -> str:
        return self.metric.stored


@dataclass(frozen=True)
class ScaleCell:
    """One (base, scale) of the sensitivity table: its trials ranked as leaderboard rows are."""

    rank_loss: float   # median over all seeds, lower-better, unfinished = +inf (rank_key's)
    finished: int
    total: int

    def text(self, metric: RankingMetric, digits: int = 4) -> str:
        """``'0.95 (2/3)'``: the median in the metric's own direction, finished/total seeds."""
        return f"{metric.text(self.rank_loss, digits)} ({self.finished}/{self.total})"


def scales_of(found: Origins) -> list[float]:
    """The distinct scales that ran, smallest first."""
    return sorted({scale for _, scale in found.values()})


def best_scales(rows: Sequence[LeaderboardRow], trials: Iterable[Any] | Origins
                ) -> list[BestScale]:
    """One entry per base schedule, at the scale its leaderboard row was chosen at, best base
    first.

    ``trials`` is the run's stored trials (their configs name base and scale) or the mapping
    :func:`origins` reads from them.
    """
    found = trials if isinstance(trials, Mapping) else origins(trials)
    best: dict[str, BestScale] = {}
    for row in rows:  # rows come ranked, best first: the first row of a base is its best
        if not row.measured:  # a prediction has no scale measured
            continue
        base, scale = found.get(row.label, (row.label, 1.0))
        if base not in best:
            best[base] = BestScale(base, row.label, scale, row.rank_loss, row.metric)
    return list(best.values())


def best_scale_line(best: BestScale) -> str:
    """``'onecycle(max_lr=0.6): best at x3 (val loss 0.12)'``, the value in the metric's own
    direction (``val accuracy 0.95``)."""
    if not math.isfinite(best.rank_loss):
        return f"{best.base}: no scale finished most of its seeds"
    return (f"{best.base}: best at x{best.scale:g} "
            f"({best.metric.label} {best.metric.shown(best.rank_loss):.3g})")


def sensitivity(outcomes: Sequence[TrialOutcome], found: Origins, metric: RankingMetric
                ) -> dict[str, dict[float, ScaleCell]]:
    """base -> scale -> the cell: the ranking metric's median over all seeds (a seed that did
    not finish counting as worst, as on the leaderboard) and how many seeds finished."""
    values: dict[str, dict[float, list[TrialOutcome]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        base, scale = found.get(o.label, (o.label, 1.0))
        values[base][scale].append(o)
    return {base: {scale: ScaleCell(rank_key([final_score(o, metric) for o in trials])[0],
                                    sum(o.status == "finished" for o in trials), len(trials))
                   for scale, trials in sorted(by_scale.items())}
            for base, by_scale in values.items()}
