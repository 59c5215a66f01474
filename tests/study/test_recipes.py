"""Recipes: the rules produce the schedules they say they do."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.errors import InputError
from lrscope.study.recipes import SEED_SPECS, Anchors, build_suite, explicit, seed, smith


@settings(max_examples=30, deadline=None)
@given(lr_min=st.floats(1e-4, 5.0), steps=st.integers(20, 5000))
def test_smith_rules(lr_min, steps):
    suite = smith(Anchors(suggestion=lr_min / 10, lr_at_min_loss=lr_min), total_steps=steps)
    by_family = {}
    for _, schedule in suite.schedules:
        by_family.setdefault(schedule.family, []).append(schedule)
    top = by_family["onecycle"][0].max_lr
    assert math.isclose(top, lr_min / 3, rel_tol=5e-3)  # rounded to 3 significant digits
    cyclic = by_family["cyclic"][0]
    assert math.isclose(cyclic.base_lr, top / 4, rel_tol=5e-3) and cyclic.max_lr == top
    # step and exponential decays start at max_lr; exponential ends ~100x and ~1000x lower
    assert by_family["step"][0](0) == top
    ends = sorted(s(steps) / s(0) for s in by_family["exponential"])
    assert ends[0] == pytest.approx(1e-3, rel=0.05) and ends[1] == pytest.approx(1e-2, rel=0.05)
    assert all(s(0) == pytest.approx(top) for s in by_family["exponential"])
    assert by_family["constant"][0](0) == pytest.approx(lr_min / 10, rel=5e-3)
    assert str(top) in suite.rules


def test_smith_falls_back_to_divergence_point():
    anchors = Anchors(suggestion=0.01, lr_at_min_loss=None, diverged_lr=3.0)
    assert anchors.max_lr == pytest.approx(0.3)


def test_seed_recipe_is_the_seed_study():
    suite = seed(None, 2345)
    assert suite.labels() == list(SEED_SPECS)
    onecycle = dict(suite.schedules)["onecycle(max_lr=1.1)"]
    assert onecycle.total_steps == 2345


def test_explicit_rejects_duplicates_and_bad_specs():
    with pytest.raises(InputError, match="listed twice"):
        explicit(["constant(lr=0.1)", "constant(lr=0.1)"], 100)
    with pytest.raises(InputError, match="onecycl"):
        explicit(["onecycl(max_lr=1)"], 100)


def test_unknown_recipe_and_smith_without_range_test():
    with pytest.raises(InputError, match="did you mean 'smith'"):
        build_suite("smit", Anchors(0.1), 100)
    with pytest.raises(InputError, match="needs a range test"):
        build_suite("smith", None, 100)


def test_a_range_test_whose_minimum_is_at_its_end_is_flagged():
    # issue 10 item 7: the ramp never reached the minimum, so max_lr is a guess from below
    from lrscope.study.run import anchors_from_curve

    lrs = np.logspace(-5, 1, 60)
    falling = np.linspace(2.0, 0.5, 60)
    anchors = anchors_from_curve(lrs, falling, suggestion=0.01)
    suite = smith(anchors, total_steps=200)
    assert anchors.min_at_end and len(suite.warnings) == 1
    assert "never reached its minimum" in suite.warnings[0] and "--range-end" in suite.warnings[0]
    assert "Warning:" in suite.rules
    valley = np.concatenate([falling[:40], np.linspace(0.9, 3.0, 20)])
    assert smith(anchors_from_curve(lrs, valley, 0.01), total_steps=200).warnings == ()
