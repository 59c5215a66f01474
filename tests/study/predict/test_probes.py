"""How much of a predict study's budget its probes spend (:func:`probe_allowance`) and how far
that compresses them (:func:`compression`): invariants over budgets, run lengths and suites."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from lrscope.study.predict.probes import (
    MIN_PROBE_SHARE,
    MIN_STEPS,
    PROBE_SHARE,
    compression,
    probe_allowance,
)

RESTS = st.integers(min_value=0, max_value=200_000)
RUN_STEPS = st.integers(min_value=1, max_value=20_000)


@given(RESTS, RUN_STEPS)
def test_issue18_the_probes_spend_an_eighth_to_a_quarter_of_the_budget(rest, run_steps):
    allowance = probe_allowance(rest, run_steps)
    assert MIN_PROBE_SHARE * rest <= allowance <= PROBE_SHARE * rest


@given(RESTS, RUN_STEPS)
def test_issue18_shorter_probes_leave_room_for_exactly_one_more_full_length_run(rest,
                                                                               run_steps):
    """Never fewer full-length runs than the fixed quarter left; one more where the probes
    were shortened, and then none of the budget a whole run could use is left idle."""
    runs_before = math.floor((rest - PROBE_SHARE * rest) / run_steps)
    allowance = probe_allowance(rest, run_steps)
    runs_after = math.floor((rest - allowance) / run_steps + 1e-9)
    if allowance < PROBE_SHARE * rest:
        assert runs_after == runs_before + 1
        assert rest - allowance - runs_after * run_steps < 1e-9
    else:
        assert runs_after == runs_before


def test_issue18_the_default_suite_on_the_benchmark_gets_a_third_run():
    """digits-mlp on the benchmark: 1/6 of 24 runs of 300 steps and a 96-step range test."""
    limit, range_test, run_steps = 1216, 96, 300
    k = compression(8, run_steps, probe_allowance(limit - range_test, run_steps))
    probes = 8 * math.ceil(run_steps / k)
    assert k == 12 and range_test + probes + 3 * run_steps <= limit
    assert range_test + probes + 4 * run_steps > limit


@given(st.integers(min_value=1, max_value=64), st.integers(min_value=1, max_value=5000),
       st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_issue18_probes_fit_their_allowance_unless_already_as_short_as_allowed(candidates,
                                                                              steps,
                                                                              allowance):
    k = compression(candidates, steps, allowance)
    most = max(1, steps // MIN_STEPS)
    assert 1 <= k <= most
    assert candidates * math.ceil(steps / k) <= allowance or k == most
    if k > 1:  # the smallest such k: one less would not fit
        assert candidates * math.ceil(steps / (k - 1)) > allowance
