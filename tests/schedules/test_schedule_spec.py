"""The spec language: what parses, to what, and how specs round-trip."""

from __future__ import annotations

import pytest

from lrscope import schedules as S


def test_design_examples_parse_to_the_documented_schedules() -> None:
    assert S.parse("step(lr=1, step_size=100, gamma=0.5)") == S.StepDecay(1.0, 100, 0.5)
    assert S.parse("exponential(lr=1, gamma=0.999)") == S.ExponentialDecay(lr=1.0, gamma=0.999)
    assert S.parse("onecycle(max_lr=1.1, total_steps=2345)") == S.OneCycle(1.1, 2345)
    assert S.parse("cosine(lr=0.5, total_steps=2345, warmup_steps=100)") == S.Cosine(
        lr=0.5, total_steps=2345, warmup_steps=100)
    assert S.parse("ramp(start_lr=1e-5, end_lr=10, total_steps=2345, mode=exp)") == S.Ramp(
        start_lr=1e-5, end_lr=10.0, total_steps=2345, mode="exp")
    assert S.parse("cyclic(base_lr=0.01,max_lr=1,step_size_up=50,step_size_down=100)") == (
        S.Cyclic(base_lr=0.01, max_lr=1.0, step_size_up=50, step_size_down=100))


def test_every_family_is_registered_under_its_design_name() -> None:
    assert set(S.REGISTRY) == {
        "constant", "step", "multistep", "exponential", "onecycle", "cyclic", "cosine",
        "cosine_restarts", "linear", "polynomial", "inverse_sqrt", "wsd", "ramp",
        "warmup", "join",  # the combinators
        "compress",  # a third combinator, beyond the design's two (issue 18's probes)
    }


@pytest.mark.parametrize(
    "spec",
    [
        "onecycle(max_lr=1, anneal_strategy=linear, three_phase=True)",
        "onecycle(max_lr=1, anneal_strategy='linear', three_phase=True)",
        'onecycle(max_lr=1, anneal_strategy="linear", three_phase=True)',
        "  onecycle( max_lr = 1 , anneal_strategy=linear,three_phase=True )  ",
    ],
)
def test_bare_names_and_quoted_strings_are_the_same(spec: str) -> None:
    assert S.parse(spec) == S.OneCycle(max_lr=1.0, anneal_strategy="linear", three_phase=True)


def test_lists_negative_numbers_and_none() -> None:
    assert S.parse("multistep(lr=0.1, milestones=[30, 80])").milestones == (30, 80)
    assert S.parse("multistep(lr=0.1, milestones=(30,))").milestones == (30,)
    assert S.parse("cosine(lr=0.1, total_steps=None)").total_steps is None
    assert S.parse("constant(lr=+0.1)").lr == 0.1
    assert S.parse("wsd(lr=1, cooldown='1-sqrt')").cooldown == "1-sqrt"


def test_total_steps_fills_only_finite_schedules_left_without_it() -> None:
    assert S.parse("onecycle(max_lr=1)", total_steps=500).total_steps == 500
    assert S.parse("onecycle(max_lr=1, total_steps=100)", total_steps=500).total_steps == 100
    assert S.parse("exponential(lr=1, gamma=0.9)", total_steps=500) == S.ExponentialDecay(1, 0.9)
    assert S.parse("wsd(lr=1, decay_fraction=0.1)", total_steps=500).decay_start == 450


def test_spec_omits_defaults_and_quotes_only_what_needs_it() -> None:
    assert S.OneCycle(max_lr=1.1, total_steps=2345).spec() == (
        "onecycle(max_lr=1.1, total_steps=2345)")
    assert S.Ramp(1e-5, 10.0, 100, "linear").spec() == (
        "ramp(start_lr=1e-05, total_steps=100, mode=linear)")
    assert S.WarmupStableDecay(lr=1, cooldown="1-sqrt").spec() == "wsd(lr=1, cooldown='1-sqrt')"
    assert S.MultiStepDecay(0.1, (3, 5)).spec() == "multistep(lr=0.1, milestones=[3, 5])"
    assert str(S.Constant(lr=0.5)) == "constant(lr=0.5)"


def test_schedules_are_immutable_and_hashable() -> None:
    schedule = S.parse("multistep(lr=0.1, milestones=[30, 80])")
    with pytest.raises(AttributeError):
        schedule.lr = 1.0  # type: ignore[misc]
    assert len({schedule, S.parse("multistep(lr=0.1, milestones=[30, 80])")}) == 1


def test_with_total_steps_revalidates() -> None:
    schedule = S.parse("cosine(lr=1, warmup_steps=100)")
    assert schedule.needs_total_steps() and schedule.is_finite
    with pytest.raises(ValueError, match="warmup_steps=100 must be less than total_steps=50"):
        schedule.with_total_steps(50)
    assert not S.parse("exponential(lr=1, gamma=0.9)").is_finite


def test_seed_specs_all_parse() -> None:
    schedules = [S.parse(spec, total_steps=S.SEED_TOTAL_STEPS) for spec in S.SEED_SPECS]
    assert [s.family for s in schedules] == [
        "step", "exponential", "exponential", "exponential", "onecycle", "onecycle", "cyclic",
        "cyclic",
        "ramp"]
    assert all(s(0) > 0 for s in schedules)
