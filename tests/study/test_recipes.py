"""Recipes: the rules produce the schedules they say they do."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.errors import InputError
from lrscope.study.recipes import (
    SEED_SPECS,
    Anchors,
    build_suite,
    explicit,
    seed,
    smith,
    with_lr_scales,
)


@settings(max_examples=30, deadline=None)
@given(lr_min=st.floats(1e-4, 5.0), steps=st.integers(20, 5000))
def test_smith_rules(lr_min, steps):
    suite = smith(Anchors(suggestion=lr_min / 10, lr_at_min_loss=lr_min), total_steps=steps)
    by_family = {}
    for _, schedule in suite.schedules:
        by_family.setdefault(schedule.family, []).append(schedule)
    top = by_family["onecycle"][0].max_lr
    assert math.isclose(top, lr_min / 10, rel_tol=5e-3)  # the headline, to 3 significant digits
    cyclic = by_family["cyclic"][0]
    assert math.isclose(cyclic.base_lr, top / 4, rel_tol=5e-3) and cyclic.max_lr == top
    # step and exponential decays start at max_lr; exponential ends ~100x and ~1000x lower
    assert by_family["step"][0](0) == top
    ends = sorted(s(steps) / s(0) for s in by_family["exponential"])
    assert ends[0] == pytest.approx(1e-3, rel=0.05) and ends[1] == pytest.approx(1e-2, rel=0.05)
    assert all(s(0) == pytest.approx(top) for s in by_family["exponential"])
    assert by_family["constant"][0](0) == pytest.approx(lr_min / 10, rel=5e-3)
    assert str(top) in suite.rules


@settings(max_examples=20, deadline=None)
@given(headline=st.floats(1e-4, 5.0), lr_min=st.floats(1e-4, 50.0), steps=st.integers(20, 3000))
def test_issue19_item2_every_family_peaks_at_the_headline(headline, lr_min, steps):
    """The suite compares shapes at one LR: every schedule's peak (constant included) is the
    range test's headline, whatever the lowest-loss LR, and the rules say so."""
    suite = smith(Anchors(suggestion=headline, lr_at_min_loss=lr_min), total_steps=steps)
    top = float(f"{headline:.3g}")
    assert len({schedule.family for _, schedule in suite.schedules}) == 7
    for label, schedule in suite.schedules:
        nominal = getattr(schedule, "max_lr", None) or schedule.lr  # type: ignore[attr-defined]
        assert nominal == top, label
        # sampled once per step, a one-cycle peak falls between steps: it never passes top
        assert top * 0.95 < max(schedule(step) for step in range(steps)) <= top * (1 + 1e-9)
    assert f"Every schedule peaks at the same LR, max_lr = {top}, the range test's headline" \
        in suite.rules
    scaled = with_lr_scales(suite, [0.5, 1, 2], steps)
    assert "each is ranked at its own best scale" in scaled.rules


def test_issue19_item2_find_and_compare_run_the_same_ramp_by_default(tmp_path):
    """`lrscope find`, `lrscope compare` (TOML and flags) and `lrscope.compare` share one
    default ramp, so the same task gives the same headline in both."""
    import torch

    import lrscope
    from lrscope.config.find import FindConfig
    from lrscope.config.study import StudyConfig
    from lrscope.rangetest.settings import RangeTestSettings
    from lrscope.study.plan import StudyPlan
    from lrscope.study.store.sqlite import Store

    ramp = FindConfig().range_test.settings()
    assert StudyConfig().range_test.settings() == ramp == RangeTestSettings()
    plan = StudyPlan(name="s", task=None, config={}, seeds=(0,), steps=2, eval_every=1)
    assert plan.range_test == ramp
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x.sum(1) > 0).long()
    lrscope.compare(lambda: torch.nn.Linear(4, 2), lambda p: torch.optim.SGD(p, lr=0.1),
                    lambda seed: [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)],
                    loss_fn=torch.nn.functional.cross_entropy, schedules=["constant(lr=0.1)"],
                    steps=2, seeds=1, out=tmp_path, quiet=True, parallel="none")
    with Store.in_dir(tmp_path, create=False) as store:
        saved = store.range_test(store.find_run("study").id)
    assert saved is not None and saved.lrs[0] == pytest.approx(ramp.start)
    assert saved.config == ramp.to_dict()


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
