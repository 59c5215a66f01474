"""Issue 19 item 9: the verdict (best, tie group, what more seeds would resolve, how it ran),
and the seeds-to-resolve projection against the very test "vs best" runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrscope.study.stats.leaderboard import TrialOutcome, summarize
from lrscope.study.stats.uncertainty import compare_paired, seeds_to_resolve
from lrscope.study.stats.verdict import NOTHING_FINISHED, tie_group, verdict

RAN = {"mode": "processes", "workers": 2, "threads": 1, "device": "cpu",
       "torch_version": "2.13.0", "lrscope_version": "0.1.0", "study_wall_s": 771.4}


def trial(label: str, seed: int, loss: float | None, status: str = "finished") -> TrialOutcome:
    return TrialOutcome(label, "f", seed, status, loss, loss, None, None, (), 1.0, loss)


def diffs_with(gap: float, sd: float, n: int) -> np.ndarray:
    """``n`` paired differences whose mean is exactly ``gap`` and standard deviation ``sd``."""
    z = np.linspace(-1.0, 1.0, n)
    return gap + sd * (z - z.mean()) / z.std(ddof=1)


def test_issue19_item9_seeds_to_resolve_against_hand_computed_t_quantiles() -> None:
    # t(0.975, 17) = 2.1098: 2.1098 * 0.02 / sqrt(18) = 0.00995 < 0.01 (flagged);
    # t(0.975, 16) = 2.1199: 2.1199 * 0.02 / sqrt(17) = 0.01028 > 0.01 (not yet)
    assert seeds_to_resolve(0.01, 0.02) == 18
    assert seeds_to_resolve(-0.01, 0.02) == 18  # the gap's sign does not matter
    assert seeds_to_resolve(0.01, 0.02, comparisons=28) > 18  # adjusted: more seeds
    assert seeds_to_resolve(0.0, 0.02) is None and seeds_to_resolve(1e-9, 1.0) is None
    assert seeds_to_resolve(0.3, 0.0) == 3


@pytest.mark.parametrize("gap, sd, comparisons", [(0.01, 0.02, 1), (0.05, 0.04, 3),
                                                  (0.2, 0.5, 28), (0.003, 0.001, 276)])
def test_issue19_item9_seeds_to_resolve_is_where_the_vs_best_test_flags_the_gap(
        gap: float, sd: float, comparisons: int) -> None:
    n = seeds_to_resolve(gap, sd, comparisons)
    assert n is not None and n >= 3

    def p_value(seeds: int) -> float:
        d = diffs_with(gap, sd, seeds)
        found = compare_paired(dict(enumerate(d + 1.0)), dict.fromkeys(range(seeds), 1.0),
                               comparisons=comparisons)
        assert found.sd == pytest.approx(sd)  # the noise is read back from the interval
        assert found.p_value is not None
        return found.p_value

    assert p_value(n) < 0.05
    if n > 3:
        assert p_value(n - 1) >= 0.05


def test_issue19_item9_the_verdict_names_best_tie_and_what_seeds_would_resolve() -> None:
    best = (0.30, 0.31, 0.32)
    close = (0.32, 0.305, 0.33)          # within the noise of the best
    far = tuple(v + 1.0 for v in best)   # 1.0 worse on every seed: separated
    rows = summarize([trial(label, s, v) for label, values in
                      (("a", best), ("b", close), ("c", far)) for s, v in enumerate(values)])
    assert [r.label for r in rows] == ["a", "b", "c"]
    assert tie_group(rows) == ("b",)
    text = " ".join(verdict(rows, RAN))
    assert text.startswith("No winner: a ranks first, by the median final test loss over all "
                           "seeds (lower is better): 0.31, but the study cannot separate it from "
                           "the rest of its tie group.")
    assert ("1 of 2 other schedules differs from the best at 3 seeds; the rest do not: b is not "
            "separated") in text
    d = np.array(close) - np.array(best)
    needed = seeds_to_resolve(d.mean(), d.std(ddof=1), rows[1].vs_best.comparisons)
    assert needed is not None and needed > 3
    assert f"about {needed} seeds would resolve the gap of {d.mean():.2g}" in text
    assert ("Ran in 12 min 51 s on cpu, parallel processes (2 workers x 1 torch thread), "
            "torch 2.13.0, lrscope 0.1.0.") in text


def test_issue19_item9_separated_too_few_seeds_and_nothing_finished() -> None:
    rows = summarize([trial("a", s, 0.3 + 0.01 * s) for s in range(3)]
                     + [trial("b", s, 1.3 + 0.011 * s) for s in range(3)])
    assert tie_group(rows) == ()
    assert "Every other schedule differs from it at 3 seeds" in " ".join(verdict(rows, RAN))
    assert verdict(rows, RAN)[0].startswith("Best: a, by the median final test loss")

    two = summarize([trial("a", s, 0.3 + 0.01 * s) for s in range(2)]
                    + [trial("b", s, 1.3) for s in range(2)])
    assert tie_group(two) == ("b",)  # not enough seeds to test: not separated
    assert "fewer than 3 seeds" in " ".join(verdict(two, {}))

    dead = summarize([trial("a", s, math.inf, "diverged") for s in range(3)])
    assert tie_group(dead) == ()
    said = verdict(dead, {})
    assert said[0] == NOTHING_FINISHED and "not recorded" in said[1]
