"""Properties of the suggestion rules: fastai's valley exactly, and no suggestion that depends
on the loss's unit or offset."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.rangetest.suggest import advise, descent_lengths, valley

SETTINGS = settings(max_examples=80, deadline=None)


def fastai_valley(lrs: list[float], losses: list[float]) -> float:
    """fastai 2.7's ``valley`` (fastai/callback/schedule.py), restated line by line."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


@SETTINGS
@given(values=st.lists(st.integers(0, 8), min_size=1, max_size=60)
       | st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=60))
def test_valley_is_fastais(values: list[float]) -> None:
    # Small integers make ties common (a tie does not extend a descent); floats make long runs.
    lrs = np.logspace(-6, 0, len(values))
    ours = valley(lrs, np.array(values, dtype=float))
    descends = any(b < a for i, a in enumerate(values) for b in values[i + 1:])
    if descends:
        assert ours == fastai_valley(lrs.tolist(), values)
    else:  # fastai answers lrs[0] for a loss that never decreases; we answer None
        assert ours is None


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300))
def test_valley_is_fastais_on_noisy_range_test_curves(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    u = np.linspace(-7, 1, n)
    losses = 2.0 - np.tanh(u + rng.uniform(1, 5)) + rng.normal(0, rng.uniform(0, 0.3), n)
    lrs = 10 ** u
    assert valley(lrs, losses) == fastai_valley(lrs.tolist(), losses.tolist())


@SETTINGS
@given(values=st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_descent_lengths_match_fastais_double_loop(values: list[int]) -> None:
    y = np.array(values, dtype=float)
    expected = [1] * len(y)
    for i in range(1, len(y)):
        for j in range(i):
            if y[i] < y[j] and expected[i] < expected[j] + 1:
                expected[i] = expected[j] + 1
    assert descent_lengths(y).tolist() == expected


SHIFT_FREE = ("steepest", "valley", "minimum", "midpoint", "below_minimum")


@SETTINGS
@given(values=st.lists(st.integers(-2**20, 2**20), min_size=3, max_size=150),
       power=st.integers(-6, 6), shift=st.integers(-2**20, 2**20))
def test_shifting_or_scaling_the_loss_moves_no_suggestion(values: list[int], power: int,
                                                          shift: int) -> None:
    # Integers times a power of two plus an integer: loss * a + b is exact in floating point, and
    # so every rule must give bit-for-bit the same answer (any curve, ties included).
    lrs = np.logspace(-5, 1, len(values))
    losses = np.array(values, dtype=float)
    base = advise(lrs, losses).suggestions
    moved = advise(lrs, losses * 2.0 ** power + shift).suggestions
    assert {r: moved[r] for r in SHIFT_FREE} == {r: base[r] for r in SHIFT_FREE}
    # divergence reads the loss's level ("factor x the best loss", like the loop's stop rule):
    # it does not move with the unit.
    assert advise(lrs, losses * 2.0 ** power).suggestions["divergence"] == base["divergence"]


@SETTINGS
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_any_positive_scale_and_shift_of_a_noisy_curve(seed: int, scale: float,
                                                       shift: float) -> None:
    rng = np.random.default_rng(seed)
    u = np.linspace(-7, 1, 120)
    losses = 2.0 - np.tanh(u + 3) + 0.5 * np.clip(u + 1, 0, None) ** 2 + rng.normal(0, 0.05, 120)
    lrs = 10 ** u
    base, moved = advise(lrs, losses), advise(lrs, losses * scale + shift)
    assert (moved.rule, moved.warnings) == (base.rule, base.warnings)
    for rule in SHIFT_FREE:
        assert moved.suggestions[rule] == base.suggestions[rule], rule
