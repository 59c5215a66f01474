"""Suggestion rules (lrscope.rangetest.suggest) on synthetic curves with known answers,
noise-free and with seeded noise, read the way range_test reads them (advise on raw losses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.errors import InputError
from lrscope.rangetest.smoothing import smooth
from lrscope.rangetest.suggest import (
    HEADLINE,
    RULES,
    advise,
    below_minimum,
    divergence,
    finite_prefix,
    midpoint,
    minimum,
    steepest,
    suggest,
    valley,
)

SETTINGS = settings(max_examples=60, deadline=None)


def log_grid(n: int, low: float = -6.0, high: float = 1.0) -> np.ndarray:
    return np.logspace(low, high, n)


def descent(n: int = 200, center: float = -3.0, noise: float = 0.0, seed: int = 0,
            low: float = -7.0, high: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A range-test-like curve: flat, a tanh descent whose steepest point is at log10(lr) =
    ``center``, a floor, then a quadratic blow-up from 1.5 decades past the centre."""
    lrs = np.logspace(low, high, n)
    u = np.log10(lrs)
    losses = (2.3 - (1 + np.tanh(1.5 * (u - center))) + 0.8 * np.clip(u - center - 1.5, 0, None)
              ** 2)
    return lrs, losses + np.random.default_rng(seed).normal(0.0, noise, n)


def decades(lr: float | None, target: float) -> float:
    assert lr is not None
    return abs(math.log10(lr) - target)


@SETTINGS
@given(n=st.integers(60, 300), center=st.floats(-4.5, -0.5), sharpness=st.floats(1.5, 8.0),
       drop=st.floats(0.2, 5.0), floor=st.floats(-120.0, 3.0))
def test_steepest_finds_the_inflection_of_a_sigmoid(n: int, center: float, sharpness: float,
                                                    drop: float, floor: float) -> None:
    lrs = log_grid(n)
    losses = floor + drop / (1 + np.exp(sharpness * (np.log10(lrs) - center)))
    spacing = 7.0 / (n - 1)
    assert decades(steepest(lrs, losses), center) <= spacing + 1e-9
    # Through the zero-lag smoothing the symmetric inflection stays put (a step or two at most,
    # where the mirrored ends meet a sharp descent).
    assert decades(advise(lrs, losses).suggestions["steepest"], center) <= 2 * spacing + 1e-9


@pytest.mark.parametrize("n", [100, 200])
def test_zero_lag_removes_the_lag_of_the_causal_ema(n: int) -> None:
    # True steepest point: 1e-3. Read on the causal EMA (the old rule) it lands ~4x too high.
    lrs, losses = descent(n)
    assert decades(advise(lrs, losses).suggestions["steepest"], -3.0) < 0.05
    old = steepest(lrs[n // 10:], smooth(losses)[n // 10:])
    assert decades(old, -3.0) > 0.5


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("noise", [0.05, 0.2])
def test_rules_on_a_noisy_descent(seed: int, noise: float) -> None:
    lrs, losses = descent(200, noise=noise, seed=seed)
    every = advise(lrs, losses).suggestions
    assert decades(every["steepest"], -3.0) < 0.25
    lowest = math.log10(lrs[int(np.argmin(descent(200)[1]))])
    assert decades(10 * every["minimum"], lowest) < 0.4  # type: ignore[operator]
    assert decades(every["midpoint"], (lowest - 3.0) / 2) < 0.3
    assert decades(2 * every["below_minimum"], lowest) < 0.4  # type: ignore[operator]
    # fastai's valley often starts its longest descent in the flat, noisy start: weak, as known.
    assert 1e-6 < every["valley"] < 10 ** lowest  # type: ignore[operator]


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_start_is_never_read(seed: int) -> None:
    # The first 12 of 200 steps swing wildly (a freshly initialised net; a debiased EMA of a
    # few points): the steepest point must still be the descent's, at 1e-3.
    lrs, losses = descent(200, noise=0.02, seed=seed)
    rng = np.random.default_rng(100 + seed)
    losses[:12] += rng.choice([-1.5, 1.5], 12) * rng.uniform(0.5, 1.0, 12)
    advice = advise(lrs, losses)
    assert decades(advice.suggestions["steepest"], -3.0) < 0.25
    assert advice.lr is not None and advice.lr > lrs[12]


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_a_flat_start_is_never_read(noise: float) -> None:
    # Flat for five decades, with a tiny downward drift and noise: nothing to read there.
    lrs, losses = descent(200, center=-1.5, noise=noise, seed=3)
    losses -= 0.002 * np.arange(200) / 200
    assert decades(advise(lrs, losses).suggestions["steepest"], -1.5) < 0.25


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_minimum_of_a_known_valley(noise: float) -> None:
    lrs = log_grid(150, -5, 1)
    u = np.log10(lrs)
    losses = 1.0 + (u + 2) ** 2 + np.random.default_rng(1).normal(0, noise, 150)
    assert decades(10 * advise(lrs, losses).suggestions["minimum"], -2.0) < 0.1  # type: ignore
    assert minimum(lrs, losses) == lrs[int(np.argmin(losses))] / 10


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_below_minimum_is_half_the_lowest_loss_of_a_clear_descent(noise: float) -> None:
    lrs = log_grid(150, -5, 1)
    u = np.log10(lrs)
    losses = 1.0 + (u + 2) ** 2 + np.random.default_rng(1).normal(0, noise, 150)
    advice = advise(lrs, losses)
    assert decades(2 * advice.suggestions["below_minimum"], -2.0) < 0.1  # type: ignore
    assert advice.rule == HEADLINE == "below_minimum"
    assert not any("standard errors" in w for w in advice.warnings)
    assert below_minimum(lrs, losses) == lrs[int(np.argmin(losses))] / 2
    assert below_minimum(lrs, losses, weak=True) == lrs[int(np.argmin(losses))] / 10
    assert below_minimum([], []) is None


def test_below_minimum_keeps_a_tenth_on_a_weak_descent_and_warns() -> None:
    # The loss falls by ~1% over the last decade under noise of 1%: real (many standard errors
    # of the smoothed curve) but weak, the net learned little: a tenth of the lowest LR.
    lrs = log_grid(100, -7, 1)
    u = np.log10(lrs)
    clean = 2.3 - 0.03 * np.exp(-((u + 0.3) ** 2) / 0.1)
    losses = clean + np.random.default_rng(4).normal(0, 0.01, 100)
    advice = advise(lrs, losses, planned_steps=100)
    assert advice.rule == "below_minimum"
    assert decades(10 * advice.lr, -0.3) < 0.3  # type: ignore[operator]
    assert [w for w in advice.warnings if "standard errors" in w and "--seeds 3" in w]
    # The same curve with a tenth of the noise is a clear descent: half the lowest LR.
    quiet = advise(lrs, clean + (losses - clean) / 10, planned_steps=100)
    assert decades(2 * quiet.lr, -0.3) < 0.3 and quiet.warnings == ()  # type: ignore[operator]


def test_midpoint_is_the_geometric_mean_of_steepest_and_the_lowest_loss() -> None:
    lrs, losses = descent(200)
    fastest = steepest(lrs, losses)
    assert fastest is not None
    assert midpoint(lrs, losses) == pytest.approx(math.sqrt(fastest * lrs[np.argmin(losses)]))
    assert midpoint(lrs, np.linspace(1, 2, 200)) is None


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
    assert 10 ** start / 10 ** (7 / (n - 1)) - 1e-15 <= lr <= 10 ** end * (1 + 1e-12)


def test_late_collapse_is_never_read() -> None:
    # A net that learns (lowest loss near 1e-2), collapses to a dead plateau above its start,
    # and on the way down from a spike dips below its earlier minimum: no rule reads the dip.
    lrs = np.logspace(-5, 1, 301)
    u = np.log10(lrs)
    losses = 2.3 - 1.5 * np.exp(-((u + 2) ** 2) / 0.5)
    losses = np.where(u > -2, np.maximum(losses, 2.3 - 1.2 * np.exp(-((u + 2) ** 2) / 0.1)),
                      losses)
    losses[236:248] = 0.3  # a sharp late dip below the minimum of 0.8
    every = advise(lrs, losses).suggestions
    for rule in ("steepest", "valley", "midpoint"):
        assert every[rule] is not None and every[rule] < 10 ** -1.5, rule  # type: ignore
    # Smoothing moves the bottom of this lopsided valley (steeper on its right) a little left.
    assert decades(10 * every["minimum"], -2.0) < 0.2  # type: ignore[operator]
    # The rule on its own stops at the lowest point too.
    dip_above = losses.copy()
    dip_above[236:248] = 1.1
    assert steepest(lrs, dip_above) < lrs[int(np.argmin(dip_above))]  # type: ignore[operator]


def test_negative_losses_give_the_same_answers() -> None:
    lrs, losses = descent(200, noise=0.05, seed=2)
    positive = advise(lrs, losses).suggestions
    negative = advise(lrs, losses - 100.0).suggestions
    for rule in ("steepest", "valley", "minimum", "midpoint", "below_minimum"):
        assert negative[rule] is not None
        assert negative[rule] == pytest.approx(positive[rule], rel=1e-9), rule


def test_warnings_each_triggered_and_a_good_curve_has_none() -> None:
    lrs, losses = descent(200, noise=0.05, seed=0)
    good = advise(lrs, losses, diverged_at=None, planned_steps=200)
    assert good.warnings == () and good.rule == HEADLINE and good.lr is not None
    assert good.reason.startswith(f"{HEADLINE}: ")
    # The loss never fell: rising, or flat noise.
    for curve in (np.linspace(1.0, 2.0, 200), np.random.default_rng(0).normal(1.0, 0.1, 200)):
        advice = advise(lrs, curve)
        assert any("never fell" in w for w in advice.warnings)
        assert advice.suggestions["steepest"] is None and advice.rule == "minimum"
    # The lowest loss at end_lr: a ramp that stops while the loss still falls.
    short = advise(lrs[:90], losses[:90], planned_steps=90)
    assert [w for w in short.warnings if "raise --end / end_lr" in w]
    assert not any("end_lr" in w for w in advise(lrs[:90], losses[:90], diverged_at=1e-3,
                                                    planned_steps=200).warnings)
    # Diverged within the first tenth.
    early = advise(lrs[:15], np.r_[losses[:14], np.nan], diverged_at=lrs[14], planned_steps=200)
    assert [w for w in early.warnings if "lower --start / start_lr" in w and "first tenth" in w]
    late = advise(lrs[:150], np.r_[losses[:149], np.nan], diverged_at=lrs[149], planned_steps=200)
    assert late.warnings == ()


@SETTINGS
@given(values=st.lists(st.floats(-1e3, 1e3) | st.sampled_from([math.nan, math.inf, -math.inf]),
                       min_size=1, max_size=80))
def test_nan_and_inf_are_never_suggested(values: list[float]) -> None:
    losses = np.array(values)
    lrs = log_grid(len(losses), -5, 0)
    bad = ~np.isfinite(losses)
    usable = int(np.argmax(bad)) if bad.any() else len(losses)
    advice = advise(lrs, losses)
    if usable == 0:
        assert advice.lr is None and advice.warnings
    for rule, lr in advice.suggestions.items():
        if lr is None:
            continue
        # divergence may answer too (a finite loss that rose 4x above its minimum), at an LR
        # of the finite prefix like the others.
        assert math.isfinite(lr)
        point = lr * 10 if rule == "minimum" else lr
        if rule == "below_minimum":  # a half, or a tenth on a weak descent
            half = np.isclose(lrs[:usable], lr * 2, rtol=1e-12, atol=0).any()
            point = lr * 2 if half else lr * 10
        if rule == "midpoint":  # a geometric mean of two finite-prefix LRs
            assert lrs[0] * (1 - 1e-12) <= point <= lrs[usable - 1] * (1 + 1e-12)
        else:
            assert np.isclose(lrs[:usable], point, rtol=1e-12, atol=0).any()


def test_headline_precedence_and_fallback() -> None:
    lrs, losses = descent(200)
    assert suggest(lrs, losses)[1] == HEADLINE
    assert suggest(lrs, losses, prefer="valley")[1] == "valley"
    # Two finite points: too few for a slope, enough for valley and the lowest loss.
    headline, rule, every = suggest(lrs[:4], np.array([2.0, 1.0, math.nan, 0.5]))
    assert every["steepest"] is None and every["valley"] == lrs[1]
    assert rule == "below_minimum" and headline == lrs[1] / 2
    assert suggest(lrs[:4], np.array([2.0, 1.0, math.nan, 0.5]), prefer="midpoint")[1] == \
        "below_minimum"  # midpoint has no answer without a slope: the order's first that has
    assert suggest(lrs[:2], [math.nan, 1.0]) == (None, None, dict.fromkeys(RULES))
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
    lrs, losses = descent(200)
    assert advise(lrs, losses).suggestions["divergence"] is not None  # read off the blow-up


def test_input_checks() -> None:
    lrs, losses = finite_prefix([1e-3, 1e-2, 1e-1], [1.0, 2.0, math.inf])
    assert lrs.tolist() == [1e-3, 1e-2] and losses.tolist() == [1.0, 2.0]
    with pytest.raises(InputError, match="strictly increasing"):
        steepest([1e-2, 1e-3, 1e-1], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="equally long"):
        valley([1e-3, 1e-2], [1.0])


def test_issue17_item3_every_list_of_rules_reads_the_registry() -> None:
    """One list per name: the config's ``prefer``, the CLI's ``--prefer`` help, the figures'
    styles and the integrations' ``prefer`` all read lrscope.rangetest.suggest.RULE_REGISTRY,
    so every rule that can be the headline is offered everywhere (``--prefer`` once lacked
    ``midpoint``) and a name outside it is refused everywhere."""
    from lrscope.cli import build_parser
    from lrscope.config.find import load_config
    from lrscope.errors import InputError
    from lrscope.integrations.lightning import LRScopeFinder
    from lrscope.rangetest.figures import loss_vs_lr_figure
    from lrscope.rangetest.suggest import HEADLINE_RULES, RULE_REGISTRY

    assert set(HEADLINE_RULES) == {"steepest", "valley", "minimum", "midpoint", "below_minimum"}
    help_text = " ".join(build_parser("find")._subparsers._group_actions[0]  # type: ignore
                         .choices["find"].format_help().split())
    prefer_help = help_text[help_text.rindex("--prefer RULE"):]
    for rule in HEADLINE_RULES:
        assert f" {rule}" in prefer_help.split("--quiet")[0]
        assert load_config(overrides={"range_test.prefer": rule}).range_test.prefer == rule
        LRScopeFinder(prefer=rule)
    with pytest.raises(InputError, match="did you mean 'midpoint'"):
        load_config(overrides={"range_test.prefer": "midpont"})
    with pytest.raises(InputError, match="LRScopeFinder: prefer='divergence'"):
        LRScopeFinder(prefer="divergence")
    lrs = np.logspace(-4, 0, 41)
    suggestions = {rule: float(lrs[5 + 5 * i]) for i, rule in enumerate(RULES)}
    figure = loss_vs_lr_figure(lrs, 1.0 - np.tanh(np.log10(lrs) + 2),
                               1.0 - np.tanh(np.log10(lrs) + 2), suggestions,
                               headline=HEADLINE)
    colours = {line.get_label().split(":")[0]: line.get_color()
               for line in figure.axes[0].get_lines()}
    assert {rule: colours[rule] for rule in RULES} == {
        rule: RULE_REGISTRY[rule].style[0] for rule in RULES}
