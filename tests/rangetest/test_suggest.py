"""Suggestion rules (lrscope.rangetest.suggest) on synthetic curves with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.errors import InputError
from lrscope.rangetest.suggest import (
    default_skips,
    descent_lengths,
    divergence,
    finite_prefix,
    minimum,
    steepest,
    suggest,
    valley,
)

SETTINGS = settings(max_examples=60, deadline=None)


def log_grid(n: int, low: float = -6.0, high: float = 1.0) -> np.ndarray:
    return np.logspace(low, high, n)


@SETTINGS
@given(n=st.integers(60, 300), center=st.floats(-4.5, -0.5), sharpness=st.floats(1.5, 8.0),
       drop=st.floats(0.2, 5.0), floor=st.floats(-120.0, 3.0))
def test_steepest_finds_the_inflection_of_a_sigmoid(n: int, center: float, sharpness: float,
                                                    drop: float, floor: float) -> None:
    lrs = log_grid(n)
    u = np.log10(lrs)
    losses = floor + drop / (1 + np.exp(sharpness * (u - center)))
    lr = steepest(lrs, losses)
    assert lr is not None
    spacing = 7.0 / (n - 1)
    assert abs(math.log10(lr) - center) <= spacing + 1e-9


@SETTINGS
@given(n=st.integers(40, 300), start=st.floats(-5.0, -3.0), width=st.floats(1.0, 3.0),
       high=st.floats(-50.0, 10.0), drop=st.floats(0.1, 5.0), rise=st.floats(0.5, 50.0))
def test_valley_lies_inside_the_descent(n: int, start: float, width: float, high: float,
                                        drop: float, rise: float) -> None:
    # Flat, then a straight descent over [start, end] in log10(lr), then a blow-up.
    lrs = log_grid(n)
    u = np.log10(lrs)
    end = start + width
    t = np.clip((u - start) / width, 0.0, 1.0)
    losses = high - drop * t + rise * np.clip(u - end, 0.0, None) ** 2
    lr = valley(lrs, losses)
    assert lr is not None
    assert 10 ** start - 1e-15 <= lr <= 10 ** end * (1 + 1e-12)


@SETTINGS
@given(values=st.lists(st.floats(-1e3, 1e3) | st.sampled_from([math.nan, math.inf, -math.inf]),
                       min_size=1, max_size=80))
def test_minimum_is_a_tenth_of_the_finite_argmin_and_nan_never_suggested(
        values: list[float]) -> None:
    losses = np.array(values)
    lrs = log_grid(len(losses), -5, 0)
    bad = ~np.isfinite(losses)
    usable = int(np.argmax(bad)) if bad.any() else len(losses)
    got = minimum(lrs, losses)
    if usable == 0:
        assert got is None
    else:
        assert got == lrs[int(np.argmin(losses[:usable]))] / 10
    # No rule ever answers from a point at or after the first non-finite loss.
    _, _, every = suggest(lrs, losses)
    for rule, lr in every.items():
        if lr is not None:
            point = lr * 10 if rule == "minimum" else lr
            assert np.isclose(lrs[:usable], point, rtol=1e-12, atol=0).any()


@SETTINGS
@given(values=st.lists(st.floats(-100.0, 100.0, allow_subnormal=False), min_size=3,
                    max_size=120),
       power=st.integers(-4, 4))
def test_rules_do_not_depend_on_the_loss_unit(values: list[float], power: int) -> None:
    # Scaling by a power of two is exact in floating point: every comparison stays the same.
    lrs = log_grid(len(values), -4, 1)
    losses = np.array(values)
    assert suggest(lrs, losses)[2] == suggest(lrs, losses * 2.0 ** power)[2]


@SETTINGS
@given(values=st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_descent_lengths_match_fastais_double_loop(values: list[int]) -> None:
    # Small integers make ties (equal losses) common: a tie does not extend a descent.
    y = np.array(values, dtype=float)
    expected = [1] * len(y)
    for i in range(1, len(y)):
        for j in range(i):
            if y[i] < y[j] and expected[i] < expected[j] + 1:
                expected[i] = expected[j] + 1
    assert descent_lengths(y).tolist() == expected


def test_rules_give_none_on_a_curve_that_never_falls() -> None:
    lrs = log_grid(50)
    rising = np.linspace(1.0, 2.0, 50)
    assert steepest(lrs, rising) is None and valley(lrs, rising) is None
    headline, rule, every = suggest(lrs, rising)
    # Falls back to minimum/10: the first point is the lowest.
    assert rule == "minimum" and headline == lrs[0] / 10 == every["minimum"]


def test_headline_precedence_and_fallback() -> None:
    lrs = log_grid(50)
    losses = 2.0 - np.tanh(np.log10(lrs) + 3)
    assert suggest(lrs, losses)[1] == "steepest"
    assert suggest(lrs, losses, prefer="valley")[1] == "valley"
    # Two finite points: too few for a slope, enough for valley.
    short = np.array([2.0, 1.0, math.nan, 0.5])
    headline, rule, every = suggest(lrs[:4], short)
    assert every["steepest"] is None and rule == "valley" and headline == lrs[0]
    assert suggest(lrs[:2], [math.nan, 1.0]) == (None, None, {
        "steepest": None, "valley": None, "minimum": None, "divergence": None})
    with pytest.raises(InputError, match=r"prefer='steep'.*did you mean 'steepest'"):
        suggest(lrs, losses, prefer="steep")


def test_divergence_point() -> None:
    lrs = log_grid(6, -3, 2)
    losses = np.array([2.0, 1.0, 0.5, 1.5, 2.6, 9.0])
    # 4x above the minimum of 0.5 (the rise exceeding 3 x 0.5 + tolerance) first at 2.6.
    assert divergence(lrs, losses) == lrs[4]
    assert divergence(lrs, losses, diverged_at=0.3) == 0.3
    assert divergence(lrs, losses - 100.0) is None  # same wiggles far below zero: no blow-up
    assert divergence(lrs, [2.0, 1.0, 0.9, 0.8, 0.7, 0.6]) is None
    assert suggest(lrs, losses)[1] != "divergence"


def test_skips_and_input_checks() -> None:
    assert default_skips(100) == (10, 5) and default_skips(1000) == (10, 5)
    assert default_skips(30) == (3, 1)
    lrs, losses = finite_prefix([1e-3, 1e-2, 1e-1], [1.0, 2.0, math.inf])
    assert lrs.tolist() == [1e-3, 1e-2] and losses.tolist() == [1.0, 2.0]
    with pytest.raises(InputError, match="strictly increasing"):
        steepest([1e-2, 1e-3, 1e-1], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="equally long"):
        valley([1e-3, 1e-2], [1.0])


def test_steepest_ignores_a_dip_after_the_lowest_loss():
    # A net that learns, then collapses: the loss falls to its minimum near 1e-2, climbs to a
    # plateau and dips sharply once more on the way (never as low). The steepest descent is
    # read before the minimum, never off the later dip.
    lrs = np.logspace(-5, 1, 301)
    x = np.log10(lrs)
    losses = 2.3 - 1.5 * np.exp(-((x + 2) ** 2) / 0.5)
    losses = np.where(x > -2, np.maximum(losses, 2.3 - 1.2 * np.exp(-((x + 2) ** 2) / 0.1)),
                      losses)
    losses[240:244] = [2.2, 1.2, 1.1, 2.2]  # a sharp late dip, above the minimum of 0.8
    lr = steepest(lrs, losses)
    assert lr is not None and lr < lrs[int(np.argmin(losses))]
