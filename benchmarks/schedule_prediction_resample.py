"""How firmly the seed orders decide issue 18's targets (benchmarks/schedule_prediction.py).

The first study seed runs the range test, which sets the suite's peak, and it is the one seed
predict trains: each seed order is one draw of both. The table judges the targets on the
medians over the informative problems of each problem's mean over its orders
(:func:`schedule_prediction_table.over_first_seeds`). Here each problem's orders are drawn
again with replacement, the same draw for every strategy of that problem and suite (the
comparisons the targets make stay paired; the default suite may have run more orders), the
means and medians taken again and every target's margin recomputed
(:func:`schedule_prediction_table.margins`: it passes at zero or above). Printed per target: the
margin on the orders that ran, its 90% interval over the draws, and the share of draws in which
it passes. It measures how much a verdict rests on which seeds came first; the problems are
not drawn again (the choice of five problems is a further uncertainty, not in these numbers).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from schedule_prediction_scores import Score
from schedule_prediction_table import margins, medians, over_first_seeds, passes

DRAWS = 2000


@dataclass(frozen=True)
class Firmness:
    """One target's margin on the orders that ran, its interval over the draws, and the share
    of draws in which it passes."""

    target: str
    margin: float | None
    low: float | None
    high: float | None
    passing: float


def firmness(scores: Sequence[Score], draws: int = DRAWS, seed: int = 0,
             level: float = 0.9) -> list[Firmness]:
    """Every target's :class:`Firmness` over ``draws`` redraws of each problem's seed orders
    (``scores``: score_problem's rows, every order; deterministic for a ``seed``).

    >>> rows = [Score("p", s, 8, None, tau, None, r, 4.0, f, first_seed=first)
    ...         for first, tau, r in ((None, 0.7, 0.1), (1, 0.5, 0.3))
    ...         for s, f in (("full", 1.0), ("predict", 0.16))]
    >>> found = {f.target: f for f in firmness(rows, draws=400)}
    >>> [round(v, 2) for v in (found["tau"].margin, found["tau"].low, found["tau"].high)]
    [0.0, -0.1, 0.1]
    >>> 0.6 < found["tau"].passing < 0.9, found["cost"].passing
    (True, 1.0)
    """
    rng = random.Random(seed)
    # the rows of each order a problem ran, per suite (the default suite may hold more orders)
    rows: dict[tuple[str, str], dict[int | None, list[Score]]] = {}
    for s in scores:
        if s.informative and s.strategy != "oracle grid":
            rows.setdefault((s.problem, _suite(s)), {}).setdefault(s.first_seed, []).append(s)
    found: dict[str, list[float]] = {}
    for _ in range(draws):
        drawn = {key: [rng.choice(list(by_first)) for _ in by_first]
                 for key, by_first in rows.items()}
        resampled = [s for key, firsts in drawn.items() for first in firsts
                     for s in rows[key][first]]
        # over_first_seeds keys each problem's mean on its first order's row: one per draw
        for name, margin in margins(medians(over_first_seeds(_as_orders(resampled)))).items():
            if margin is not None:
                found.setdefault(name, []).append(margin)
    here = margins(medians(over_first_seeds(list(scores))))
    tail = (1 - level) / 2 * 100
    return [Firmness(name, here.get(name), *(float(v) for v in np.percentile(
                         values, [tail, 100 - tail], method="lower")),
                     sum(map(passes, values)) / len(values))
            for name, values in found.items()]


def _suite(score: Score) -> str:
    """Which suite a strategy's row scores: its draws are shared with that suite's others."""
    return "+scales" if score.strategy.endswith("+scales") else ""


def _as_orders(rows: list[Score]) -> list[Score]:
    """The drawn rows relabelled as distinct orders (a draw repeats an order): per problem and
    strategy the first row stands as the main one (``first_seed`` None), the rest numbered."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for s in rows:
        n = seen[(s.problem, s.strategy)] = seen.get((s.problem, s.strategy), -1) + 1
        out.append(replace(s, first_seed=None if n == 0 else n))
    return out


def firmness_lines(found: Sequence[Firmness]) -> list[str]:
    """The markdown table of :func:`firmness` (margins in points for regret and cost)."""
    def shown(name: str, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:+.2f}" if name.startswith("tau") else f"{100 * value:+.1f} points"

    lines = ["| target | margin (passes at >= 0) | 90% interval over redrawn seed orders | "
             "passes in |", "|---|---|---|---|"]
    lines += [f"| {f.target} | {shown(f.target, f.margin)} | [{shown(f.target, f.low)}, "
              f"{shown(f.target, f.high)}] | {f.passing:.0%} of draws |" for f in found]
    return lines
