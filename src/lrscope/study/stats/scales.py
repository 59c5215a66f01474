"""A fair peak LR per schedule: each base schedule at its best LR scale.

A study run with ``lr_scales`` trains every schedule of its suite at several multiples of its
peak LR; each trial stores ``{"lr_scale": k, "base": <unscaled label>}`` in its config. A base
schedule is ranked at its best scale, the one whose leaderboard row ranks highest, i.e. on the
leaderboard's own metric (``rank_loss``: the median final validation loss when the trials
measured one, else the test loss; a seed that did not finish counts as worst). Results group
by the base label, never by family (the two exponentials of a suite share one).

>>> from lrscope.study.stats.leaderboard import TrialOutcome, summarize
>>> outcomes = [TrialOutcome(label, "constant", 0, "finished", loss, loss, None, None, (), 1.0,
...                          final_val_loss=loss)
...             for label, loss in (("c(lr=1)", 0.5), ("c(lr=3)", 0.2), ("c(lr=0.3)", 0.9))]
>>> origins = {"c(lr=1)": ("c(lr=1)", 1.0), "c(lr=3)": ("c(lr=1)", 3.0),
...            "c(lr=0.3)": ("c(lr=1)", 0.3)}
>>> best = best_scales(summarize(outcomes), origins)
>>> best
[BestScale(base='c(lr=1)', label='c(lr=3)', scale=3.0, rank_loss=0.2, ranked_on='val_loss')]
>>> best_scale_line(best[0])
'c(lr=1): best at x3 (val loss 0.2)'
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from lrscope.study.stats.leaderboard import LeaderboardRow, TrialOutcome
from lrscope.study.stats.uncertainty import Estimate, mean_ci

Origins = Mapping[str, tuple[str, float]]  # label -> (base label, LR scale)


class BestScale(NamedTuple):
    base: str          # the unscaled schedule's label
    label: str         # the label of its best scale
    scale: float
    rank_loss: float   # the leaderboard's ranking loss at that scale (+inf: none finished)
    ranked_on: str     # "val_loss" or "test_loss"


def origins(trials: Iterable[Any]) -> dict[str, tuple[str, float]]:
    """label -> (base, scale) from stored trials (anything with ``label`` and ``config``); a
    trial without them is its own base at scale 1."""
    found: dict[str, tuple[str, float]] = {}
    for trial in trials:
        config = trial.config or {}
        found[trial.label] = (str(config.get("base", trial.label)),
                              float(config.get("lr_scale", 1.0)))
    return found


def scales_of(found: Origins) -> list[float]:
    """The distinct scales that ran, smallest first."""
    return sorted({scale for _, scale in found.values()})


def best_scales(rows: Sequence[LeaderboardRow], trials: Iterable[Any] | Origins
                ) -> list[BestScale]:
    """One entry per base schedule, at the scale whose row ranks best, best base first.

    ``trials`` is the run's stored trials (their configs name base and scale) or the mapping
    :func:`origins` reads from them.
    """
    found = trials if isinstance(trials, Mapping) else origins(trials)
    best: dict[str, BestScale] = {}
    for row in rows:  # rows come ranked, best first: the first row of a base is its best
        base, scale = found.get(row.label, (row.label, 1.0))
        if base not in best:
            best[base] = BestScale(base, row.label, scale, row.rank_loss, row.ranked_on)
    return list(best.values())


def metric_name(ranked_on: str) -> str:
    return "val loss" if ranked_on == "val_loss" else "test loss"


def best_scale_line(best: BestScale) -> str:
    """``'onecycle(max_lr=0.6): best at x3 (val loss 0.12)'``."""
    if not math.isfinite(best.rank_loss):
        return f"{best.base}: no scale finished most of its seeds"
    return (f"{best.base}: best at x{best.scale:g} "
            f"({metric_name(best.ranked_on)} {best.rank_loss:.3g})")


def sensitivity(outcomes: Sequence[TrialOutcome], found: Origins
                ) -> dict[str, dict[float, Estimate]]:
    """base -> scale -> mean and 95% interval over finished seeds of the final ranking
    metric (validation loss when the run measured one, else test loss)."""
    on_val = any(o.final_val_loss is not None for o in outcomes)
    values: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        base, scale = found.get(o.label, (o.label, 1.0))
        loss = o.final_val_loss if on_val else o.final_test_loss
        bucket = values[base][scale]  # a scale where no seed finished still shows, empty
        if o.status == "finished" and loss is not None and math.isfinite(loss):
            bucket.append(loss)
    return {base: {scale: mean_ci(v) for scale, v in sorted(by_scale.items())}
            for base, by_scale in values.items()}
