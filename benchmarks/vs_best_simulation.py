"""Issue 16 item 1: does "vs best" flag a loser when it should, and only then, at every n?

Simulated studies (numpy, thousands at once) through the same functions the leaderboard calls
(:func:`~lrscope.study.stats.uncertainty.paired_t` and
:func:`~lrscope.study.stats.uncertainty.adjusted`), the best picked as the leaderboard picks it
(lowest median over seeds, then lowest mean). A study's value for schedule k at seed s is
``0.5 + seed effect[s] + noise[k, s]`` (seed effect N(0, 0.05), noise N(0, 0.01)): the seed
effect is what every schedule shares at a seed (same initial weights and data order).

* null: identical schedules; any flag is false.
* effect: every schedule but one is worse by 20x the noise (0.2) on every seed.

Printed per (candidates, seeds): how often a loser was flagged (p < 0.05) under each, with the
exact (Clopper-Pearson) 95% upper bound of the null rate, and, for comparison, the rate of an
MCB-type rule (one-sided, Bonferroni over the K-1 comparisons with the best only).

    PYTHONPATH=src .venv/bin/python benchmarks/vs_best_simulation.py [--studies 2000]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lrscope.study.stats.uncertainty import adjusted, paired_t

ALPHA = 0.05
NOISE = 0.01
SEED_EFFECT = 0.05
EFFECT = 20 * NOISE
CANDIDATES = (8, 24)
SEEDS = tuple(range(3, 21))


@dataclass(frozen=True)
class Rates:
    candidates: int
    seeds: int
    studies: int
    null_flagged: int    # null studies where any loser was flagged
    effect_flagged: int  # effect studies where a loser was flagged (worse than the best)
    mcb_null_flagged: int

    def upper(self, flagged: int) -> float:
        """Exact one-sided 95% upper bound of a rate measured as flagged/studies."""
        return float(stats.beta.ppf(0.95, flagged + 1, self.studies - flagged))


def studies(rng: np.random.Generator, count: int, candidates: int, seeds: int,
            effect: float) -> np.ndarray:
    """(count, candidates, seeds) final losses; candidate 0 is the truly best one."""
    shift = np.full(candidates, effect)
    shift[0] = 0.0
    return (0.5 + rng.normal(0.0, SEED_EFFECT, (count, 1, seeds))
            + rng.normal(0.0, NOISE, (count, candidates, seeds)) + shift[None, :, None])


def versus_best(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per study, every other candidate against the picked best: (difference, low, p, p_raw),
    each (count, candidates - 1), adjusted as the leaderboard adjusts (every pair)."""
    _, candidates, seeds = values.shape
    order = np.lexsort((values.mean(axis=2), np.median(values, axis=2)), axis=1)
    best, others = order[:, :1], order[:, 1:]
    pick = np.take_along_axis
    diffs = pick(values, others[:, :, None], axis=1) - pick(values, best[:, :, None], axis=1)
    mean, se = paired_t(diffs)
    low, _, p, p_raw = adjusted(mean, se, seeds - 1, candidates * (candidates - 1) // 2)
    return mean, low, p, p_raw


def mcb_flags(values: np.ndarray) -> np.ndarray:
    """Per study: an MCB-type rule flags a loser (one-sided p, Bonferroni over K-1 only)."""
    mean, _, _, p_raw = versus_best(values)
    one_sided = np.where(mean > 0, p_raw / 2, 1 - p_raw / 2)
    return np.any((values.shape[1] - 1) * one_sided < ALPHA, axis=1)


def measure(candidates: int, seeds: int, count: int, seed: int = 20260516) -> Rates:
    rng = np.random.default_rng([seed, candidates, seeds])
    null = studies(rng, count, candidates, seeds, 0.0)
    _, _, p_null, _ = versus_best(null)
    _, low, _, _ = versus_best(studies(rng, count, candidates, seeds, EFFECT))
    return Rates(candidates, seeds, count,
                 null_flagged=int(np.any(p_null < ALPHA, axis=1).sum()),
                 effect_flagged=int(np.any(low > 0, axis=1).sum()),
                 mcb_null_flagged=int(mcb_flags(null).sum()))


def table(count: int) -> list[Rates]:
    return [measure(k, n, count) for k in CANDIDATES for n in SEEDS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--studies", type=int, default=2000, help="studies per cell")
    rows = table(parser.parse_args().studies)
    print("| candidates | seeds | null: flagged (95% upper bound) | effect: flagged "
          "| MCB-type, null |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.candidates} | {r.seeds} | {r.null_flagged / r.studies:.1%} "
              f"({r.upper(r.null_flagged):.1%}) | {r.effect_flagged / r.studies:.1%} "
              f"| {r.mcb_null_flagged / r.studies:.1%} |")
    total = sum(r.null_flagged for r in rows), sum(r.studies for r in rows)
    print(f"\nnull, all cells: {total[0]}/{total[1]} = {total[0] / total[1]:.2%}")


if __name__ == "__main__":
    main()
