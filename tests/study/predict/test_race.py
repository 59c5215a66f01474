"""Issue 18, ``strategy="predict"``: the race's pure rules (budget in trial steps, the gap, the
self-check rule, the contenders, the seed rounds) and the fit-run choice. Fast: no training."""

from __future__ import annotations

import math
from types import SimpleNamespace as Row

import numpy as np
import pytest

from lrscope.errors import InputError, InputTypeError
from lrscope.study.predict.choice import annealed, fit_runs, lr_sequences
from lrscope.study.predict.race import (
    Budget,
    check_fails,
    contenders,
    gap,
    race_stop,
    seed_round,
)
from lrscope.study.recipes import Anchors, explicit, smith, with_lr_scales
from lrscope.study.stats.uncertainty import BEST, Comparison
from lrscope.study.strategies import check_strategy, default_budget


def test_issue18_budget_counts_the_range_test_and_whole_trials():
    """Full cost = K * seeds * T + R; the budget buys whole trials of T steps after what is
    spent; the default is a sixth (a twelfth with lr_scales)."""
    budget = Budget.of(candidates=8, seeds=3, run_steps=100, range_test_steps=60,
                       fraction=1 / 6)
    assert budget.full_steps == 8 * 3 * 100 + 60
    assert budget.limit == math.floor((8 * 3 * 100 + 60) / 6)  # 410
    assert budget.affordable(spent=60, count=9) == 3  # 350 steps left: 3 whole trials
    assert budget.affordable(spent=360, count=9) == 0
    assert budget.affordable(spent=60, count=2) == 2
    exact = Budget.of(candidates=6, seeds=1, run_steps=10, range_test_steps=0, fraction=1 / 6)
    assert exact.limit == 10  # float rounding never costs a whole trial
    assert default_budget(None) == pytest.approx(1 / 6)
    assert default_budget((0.3, 1.0, 3.0)) == pytest.approx(1 / 12)


@pytest.mark.parametrize(("strategy", "budget", "error", "field"), [
    ("fast", None, InputError, "strategy="), (None, None, InputError, "strategy="),
    ("predict", 0, InputError, "budget=0"), ("predict", 1.2, InputError, "budget=1.2"),
    ("predict", -0.1, InputError, "budget=-0.1"), ("predict", math.nan, InputError, "budget=nan"),
    ("predict", "0.2", InputTypeError, "budget='0.2'"), ("predict", True, InputTypeError, "budget"),
    ("full", 0.5, InputError, "budget=0.5"),
])
def test_issue18_bad_strategy_or_budget_is_one_line_naming_the_field(strategy, budget, error,
                                                                     field):
    with pytest.raises(error) as caught:
        check_strategy("compare", strategy, budget)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("compare: ") and field in text


def test_issue18_good_strategy_and_budget_pass():
    assert check_strategy("compare", "predict", 1) == ("predict", 1.0)
    assert check_strategy("compare", "predict", 0.05) == ("predict", 0.05)
    assert check_strategy("compare", "full", None) == ("full", None)


def test_issue18_gap_is_the_median_distance_from_the_best_prediction():
    # over the better half of the candidates: the ones the study has to tell apart
    assert gap({"a": 1.0, "b": 1.1, "c": 1.3}) == pytest.approx(0.1)
    assert gap({"a": 1.0, "b": 1.5, "c": 1.2, "d": 1.9}) == pytest.approx(0.2)
    assert gap({"a": 1.0, "b": 1.1}) == pytest.approx(0.1)
    assert gap({"a": 1.0}) == 0.0
    # candidates far behind (diverging at 3x their peak) do not widen it
    near = {"a": 1.0, "b": 1.1, "c": 1.2, "d": 1.3}
    assert gap({**near, "e": 50.0, "f": 90.0}) == pytest.approx(0.15) == gap(
        {**near, "e": 1.4, "f": 1.5})


def test_issue18_self_check_fails_on_error_beyond_the_gap_or_outside_the_claim():
    assert check_fails((0.40, 0.35, 0.45), 0.42, 0.05) == ""
    assert "larger than the 0.03 gap" in check_fails((0.40, 0.35, 0.45), 0.45, 0.03)
    # within the gap, but far outside what the law claimed (twice [0.399, 0.401])
    assert "outside twice the claimed interval" in check_fails((0.40, 0.399, 0.401), 0.41, 0.5)
    assert "did not finish" in check_fails((0.40, 0.35, 0.45), math.inf, 1.0)


def test_issue18_contenders_reach_the_best_measured_value_most_promising_first():
    predicted = {"a": (0.30, 0.25, 0.35), "b": (0.33, 0.29, 0.37), "c": (0.31, 0.28, 0.34),
                 "d": (0.60, 0.55, 0.65)}
    assert contenders(predicted, trained={"a"}, best_measured=0.30) == ["c", "b"]
    assert contenders(predicted, trained={"a", "b", "c"}, best_measured=0.30) == []
    # before anything is measured: whose interval reaches the best prediction
    assert contenders(predicted, trained=set(), best_measured=None) == ["a", "c", "b"]


def _row(label, p=None, difference=None, finished=1):
    versus = BEST if p is None else Comparison("paired t", 3, difference, None, None, p)
    return Row(label=label, n_finished=finished, vs_best=versus)


def test_issue18_seed_rounds_give_the_next_seed_to_the_unseparated_best_first():
    rows = [_row("a"), _row("b", 0.4, 0.01), _row("c", 0.001, 0.2), _row("d", 0.3, 0.02)]
    done = {"a/seed0", "b/seed0", "c/seed0", "d/seed0", "a/seed1"}
    assert seed_round(rows, [0, 1, 2], done) == (1, ["b", "d"])  # c is separated
    done |= {"b/seed1", "d/seed1"}
    assert seed_round(rows, [0, 1, 2], done) == (2, ["a", "b", "d"])
    done |= {"a/seed2", "b/seed2", "d/seed2"}
    assert seed_round(rows, [0, 1, 2], done) == (None, [])
    assert race_stop(rows) == "all trained"
    separated = [_row("a"), _row("b", 0.001, 0.1)]
    assert seed_round(separated, [0, 1], {"a/seed0", "b/seed0"}) == (None, [])
    assert race_stop(separated) == "separated"


def test_issue18_fit_runs_least_and_most_annealed_with_the_largest_area():
    suite = smith(Anchors(suggestion=0.05, lr_at_min_loss=0.1), total_steps=400)
    lrs = lr_sequences(suite, 400)
    chosen = fit_runs(lrs, suite.origins)
    assert chosen[0] == "constant(lr=0.05)"
    # WSD and cosine both end at 0; WSD's stable phase gives it the larger LR area
    assert chosen[1].startswith("wsd(") and annealed(lrs[chosen[1]]) == pytest.approx(1.0)
    assert len(chosen) == 2


def test_issue18_fit_runs_with_lr_scales_add_the_lowest_and_highest_scale():
    suite = with_lr_scales(explicit(["linear(lr=0.1)", "cosine(lr=0.1)",
                                     "constant(lr=0.1)"], 50), [0.3, 1, 3], 50)
    assert fit_runs(lr_sequences(suite, 50), suite.origins) == (
        "constant(lr=0.1)", "cosine(lr=0.1)", "constant(lr=0.03)", "constant(lr=0.3)")


def test_issue18_fit_runs_without_a_constant_take_the_least_annealed():
    suite = explicit(["cosine(lr=0.1)", "step(lr=0.1, step_size=20, gamma=0.5)"], 50)
    lrs = lr_sequences(suite, 50)
    assert annealed(lrs["step(lr=0.1, step_size=20, gamma=0.5)"]) == pytest.approx(0.75)
    assert fit_runs(lrs, suite.origins) == ("step(lr=0.1, step_size=20, gamma=0.5)",
                                            "cosine(lr=0.1)")
    assert np.all(np.isfinite(lrs["cosine(lr=0.1)"]))
