"""Invariants of every family, checked on random valid arguments (hypothesis)."""

from __future__ import annotations

import itertools
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope import schedules as S
from lrscope.errors import InputError

# Modest and derandomized: the same examples on every run (the suite stays deterministic).
PROPERTY = settings(max_examples=int(os.environ.get("LRSCOPE_MAX_EXAMPLES", "60")),
                    deadline=None, derandomize=True)

lrs = st.floats(1e-6, 10.0)
totals = st.integers(2, 20_000)
fractions = st.floats(0.01, 1.0)
momenta = st.floats(0.0, 1.0)


@st.composite
def warmup_and_total(draw: st.DrawFn) -> tuple[int, int]:
    total = draw(totals)
    return draw(st.integers(0, total - 1)), total


@st.composite
def min_and_peak(draw: st.DrawFn) -> tuple[float, float]:
    peak = draw(lrs)
    return draw(st.one_of(st.just(0.0), st.floats(0.0, peak))), peak


@st.composite
def cosines(draw: st.DrawFn) -> S.Cosine:
    (warmup, total), (low, peak) = draw(warmup_and_total()), draw(min_and_peak())
    return S.Cosine(lr=peak, total_steps=total, warmup_steps=warmup, min_lr=low)


@st.composite
def linears(draw: st.DrawFn) -> S.Linear:
    warmup, total = draw(warmup_and_total())
    return S.Linear(lr=draw(lrs), total_steps=total, start_factor=draw(fractions),
                    end_factor=draw(st.floats(0.0, 1.0)), warmup_steps=warmup)


@st.composite
def polynomials(draw: st.DrawFn) -> S.Polynomial:
    (warmup, total), (low, peak) = draw(warmup_and_total()), draw(min_and_peak())
    return S.Polynomial(lr=peak, total_steps=total, power=draw(st.floats(0.1, 5.0)),
                        min_lr=low, warmup_steps=warmup)


@st.composite
def wsds(draw: st.DrawFn) -> S.WarmupStableDecay:
    total = draw(totals)
    decay = draw(st.integers(1, total))
    warmup = draw(st.integers(0, min(total - decay, total - 1)))
    low, peak = draw(min_and_peak())
    by_fraction = draw(st.booleans())
    return S.WarmupStableDecay(
        lr=peak, total_steps=total, warmup_steps=warmup, min_lr=low,
        cooldown=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        decay_steps=None if by_fraction else decay,
        decay_fraction=decay / total if by_fraction else None,
    )


@st.composite
def cyclics(draw: st.DrawFn) -> S.Cyclic:
    base = draw(lrs)
    return S.Cyclic(
        base_lr=base, max_lr=draw(st.floats(base, 20.0)), step_size_up=draw(st.integers(1, 500)),
        step_size_down=draw(st.one_of(st.none(), st.integers(1, 500))),
        mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
        gamma=draw(st.floats(0.99, 1.0)), cycle_momentum=draw(st.booleans()),
        base_momentum=draw(momenta), max_momentum=draw(momenta),
    )


@st.composite
def onecycles(draw: st.DrawFn) -> S.OneCycle:
    three_phase = draw(st.booleans())
    return S.OneCycle(
        # pct_start up to 0.95: at 1 the warmup is the whole run and never anneals (as in torch)
        max_lr=draw(lrs), total_steps=draw(totals),
        pct_start=draw(st.floats(0.0, 0.5 if three_phase else 0.95)),
        anneal_strategy=draw(st.sampled_from(["cos", "linear"])), three_phase=three_phase,
        div_factor=draw(st.floats(1.0, 1e3)), final_div_factor=draw(st.floats(1.0, 1e5)),
        cycle_momentum=draw(st.booleans()), base_momentum=draw(momenta),
        max_momentum=draw(momenta),
    )


infinite = st.one_of(
    st.builds(S.Constant, lr=lrs, warmup_steps=st.integers(0, 1000)),
    # (gammas and sizes that keep 50,000 steps clear of float underflow)
    st.builds(S.StepDecay, lr=lrs, step_size=st.integers(100, 1000), gamma=st.floats(0.5, 1.0)),
    st.builds(S.MultiStepDecay, lr=lrs, gamma=st.floats(0.01, 1.0),
              milestones=st.lists(st.integers(1, 10_000), min_size=1, max_size=5).map(
                  lambda m: tuple(sorted(m)))),
    st.builds(S.ExponentialDecay, lr=lrs, gamma=st.floats(0.99, 1.0)),
    st.builds(S.CosineRestarts, lr=lrs, T_0=st.integers(1, 500), T_mult=st.integers(1, 3)),
    st.builds(S.InverseSqrt, lr=lrs, warmup_steps=st.integers(0, 1000)),
    cyclics(),
)
finite = st.one_of(
    cosines(), linears(), polynomials(), wsds(), onecycles(),
    st.builds(S.Ramp, start_lr=st.floats(1e-8, 1e-3), end_lr=st.floats(0.01, 10.0),
              total_steps=totals, mode=st.sampled_from(["exp", "linear"])),
)
any_schedule = st.one_of(infinite, finite)
steps = st.integers(0, 50_000)


@PROPERTY
@given(any_schedule)
def test_spec_round_trips_through_parse(schedule: S.Schedule) -> None:
    again = S.parse(schedule.spec())
    assert again == schedule
    assert again.spec() == schedule.spec()
    assert type(again) is type(schedule)


@PROPERTY
@given(infinite, steps)
def test_lr_is_positive_and_finite_at_every_step_of_infinite_schedules(schedule, step) -> None:
    lr = schedule(step)
    assert math.isfinite(lr) and lr > 0


@PROPERTY
@given(finite, st.floats(0.0, 1.0, exclude_max=True))
def test_lr_is_positive_before_the_last_step_of_finite_schedules(schedule, where) -> None:
    total = schedule.require_total_steps()
    # A cooldown to min_lr=0 may reach 0 at the last step (wsd does, by design); not before.
    step = int(where * (total - 1))
    assert math.isfinite(schedule(step)) and schedule(step) > 0


@PROPERTY
@given(st.one_of(cosines(), linears(), polynomials(), wsds(),
                 st.builds(S.InverseSqrt, lr=lrs, warmup_steps=st.integers(1, 2000)),
                 st.builds(S.Constant, lr=lrs, warmup_steps=st.integers(1, 2000))))
def test_warmup_is_monotone_non_decreasing_into_the_peak(schedule: S.Schedule) -> None:
    warmup = schedule.warmup_steps  # type: ignore[attr-defined]
    last = warmup - 1 if isinstance(schedule, S.WarmupStableDecay) else warmup
    values = [schedule(step) for step in range(last + 1)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert all(v > 0 for v in values)


@PROPERTY
@given(wsds())
def test_wsd_phases_sit_at_the_right_steps(schedule: S.WarmupStableDecay) -> None:
    total, start = schedule.require_total_steps(), schedule.decay_start
    assert start == total - schedule.cooldown_steps and start >= schedule.warmup_steps
    stable = range(schedule.warmup_steps, start)
    assert all(schedule(step) == schedule.lr for step in stable[:50])
    assert all(schedule(step) == schedule.lr for step in stable[-50:])
    assert all(schedule(step) < schedule.lr for step in range(schedule.warmup_steps))
    cooldown = [schedule(step) for step in range(start, total)]
    assert all(a >= b for a, b in itertools.pairwise(cooldown))
    if schedule.lr - schedule.min_lr > 1e-9 * schedule.lr:
        assert cooldown[0] < schedule.lr
    assert schedule(total - 1) == schedule.min_lr == schedule(total + 10)


@PROPERTY
@given(cyclics(), st.integers(0, 5000))
def test_cyclic_repeats_every_period_scaled_by_its_mode(schedule: S.Cyclic, t: int) -> None:
    period = schedule.period
    scale = {"triangular": 1.0, "triangular2": 0.5, "exp_range": schedule.gamma**period}
    # Across a period triangular repeats, triangular2 halves the amplitude, exp_range scales
    # it by gamma**period; steps within a cycle are the same position up to rounding.
    factor = scale[schedule.mode]
    here, there = schedule(t) - schedule.base_lr, schedule(t + period) - schedule.base_lr
    assert math.isclose(there, here * factor, rel_tol=1e-9, abs_tol=1e-12 * schedule.max_lr)
    if schedule.cycle_momentum:
        m_here = schedule.max_momentum - schedule.momentum(t)  # type: ignore[operator]
        m_there = schedule.max_momentum - schedule.momentum(t + period)  # type: ignore[operator]
        assert math.isclose(m_there, m_here * factor, rel_tol=1e-9, abs_tol=1e-12)
    assert schedule(t) >= schedule.base_lr * (1 - 1e-12)
    assert schedule(t) <= schedule.max_lr * (1 + 1e-12)


@PROPERTY
@given(onecycles())
def test_onecycle_stays_between_its_floor_and_max_lr(schedule: S.OneCycle) -> None:
    total = schedule.require_total_steps()
    initial = schedule.max_lr / schedule.div_factor
    floor = initial / schedule.final_div_factor
    # torch's linear anneal, (end - start) * pct + start, lands on `end` only up to the
    # rounding of `start` (~1e-16 * max_lr), which is large next to a tiny floor.
    slack = 1e-12 * schedule.max_lr
    for step in {0, total // 3, total // 2, total - 1, total + 5}:
        assert floor - slack <= schedule(step) <= schedule.max_lr + slack
    assert math.isclose(schedule(total - 1), floor, rel_tol=1e-9, abs_tol=slack)
    if schedule.cycle_momentum:
        low, high = sorted((schedule.base_momentum, schedule.max_momentum))
        assert low - 1e-12 <= schedule.momentum(total // 2) <= high + 1e-12  # type: ignore[operator]


@PROPERTY
@given(st.builds(S.CosineRestarts, lr=lrs, T_0=st.integers(1, 200), T_mult=st.integers(1, 3)))
def test_cosine_restarts_restart_at_lr(schedule: S.CosineRestarts) -> None:
    start, length = 0, schedule.T_0
    for _ in range(5):
        assert schedule(start) == schedule.lr
        start, length = start + length, length * schedule.T_mult


nested = st.one_of(
    st.builds(S.Warmup, schedule=any_schedule, steps=st.integers(0, 200),
              start_lr=st.one_of(st.none(), st.floats(0.0, 1e-3))),
    st.builds(lambda a, b, boundary: S.Join((a, b), boundaries=(boundary,)),
              infinite, any_schedule, st.integers(1, 2000)),
)
factors = st.floats(1e-3, 1e3)


@PROPERTY
@given(st.one_of(any_schedule, nested), factors, steps)
def test_scaled_multiplies_every_lr_and_leaves_momentum(schedule: S.Schedule, factor: float,
                                                         step: int) -> None:
    scaled = schedule.scaled(factor)
    assert type(scaled) is type(schedule)
    # (all the strategies' LRs are below 20: rounding of k * a - k * b, never above 1e-12 of it)
    assert math.isclose(scaled(step), factor * schedule(step), rel_tol=1e-9,
                        abs_tol=1e-12 * factor * 20)
    assert scaled.momentum(step) == schedule.momentum(step)
    assert S.parse(scaled.spec()) == scaled  # still a valid, parseable schedule


def test_scaled_names_each_lr_field_and_rounds_for_the_label() -> None:
    s = S.parse("cyclic(base_lr=0.05, max_lr=0.2, step_size_up=10)").scaled(3, digits=6)
    assert s.spec() == "cyclic(base_lr=0.15, max_lr=0.6, step_size_up=10)"
    joined = S.parse("join([constant(lr=0.1), cosine(lr=0.1, min_lr=0.01)], boundaries=[5])")
    assert joined.scaled(0.5).spec() == \
        "join([constant(lr=0.05), cosine(lr=0.05, min_lr=0.005)], boundaries=[5])"
    assert S.parse("ramp(start_lr=1e-4, end_lr=2, total_steps=10)").scaled(10).spec() == \
        "ramp(start_lr=0.001, end_lr=20, total_steps=10)"
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(InputError, match="LR scale"):
            S.parse("constant(lr=0.1)").scaled(bad)
