"""compress(schedule, factor=k): the schedule's whole shape in 1/k of its steps (issue 18's
compressed-horizon probes, benchmarks/schedule_prediction_probes.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope import schedules as S
from lrscope.errors import InputError

SHAPES = [
    "cosine(lr=0.5, total_steps=400, warmup_steps=20)",
    "wsd(lr=0.5, total_steps=400, warmup_steps=20, decay_steps=80)",
    "onecycle(max_lr=0.6, total_steps=400)",
    "step(lr=0.3, step_size=60, gamma=0.5)",
    "cyclic(base_lr=0.01, max_lr=0.3, step_size_up=40)",
    "exponential(lr=0.2, gamma=0.99)",
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SHAPES), st.sampled_from([2, 4, 8, 400 / 38]), st.integers(0, 60))
def test_step_t_is_the_schedules_step_t_times_k(spec: str, factor: float, step: int) -> None:
    inner = S.parse(spec)
    compressed = S.parse(f"compress({spec}, factor={factor})")
    at = math.floor(step * factor + 1e-9)
    assert compressed(step) == inner(at)
    assert compressed.momentum(step) == inner.momentum(at)
    assert S.parse(compressed.spec()) == compressed  # the spec reads back


def test_total_steps_shrink_by_the_factor_and_the_last_step_lands_on_the_decay() -> None:
    compressed = S.parse("compress(cosine(lr=1.0, total_steps=300), factor=7.89474)")
    assert compressed.require_total_steps() == 38  # ceil(300 / 7.89474)
    inner = S.parse("cosine(lr=1.0, total_steps=300)")
    assert compressed(37) == inner(292) and compressed(37) < 0.01
    # a schedule left without total steps gets them from the compressed run's length
    filled = S.parse("compress(cosine(lr=1.0), factor=4)", total_steps=50)
    assert filled.schedule.require_total_steps() == 200 and filled.require_total_steps() == 50


def test_scaled_multiplies_the_inner_lrs_and_keeps_the_factor() -> None:
    compressed = S.parse("compress(onecycle(max_lr=0.6, total_steps=100), factor=4)")
    tripled = compressed.scaled(3, digits=6)
    assert tripled.spec() == "compress(onecycle(max_lr=1.8, total_steps=100), factor=4)"
    assert all(math.isclose(tripled(t), 3 * compressed(t)) for t in range(25))


@pytest.mark.parametrize(("spec", "message"), [
    ("compress(cosine(lr=1.0, total_steps=10), factor=0)", "compress: factor=0 must be a "
     "positive number"),
    ("compress(cosine(lr=1.0, total_steps=10), factor=True)", "compress: factor=True must be"),
    ("compress(factor=2, schedule=3)", "compress: schedule=3 is not a schedule"),
])
def test_bad_arguments_name_the_field(spec: str, message: str) -> None:
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(")):
        S.parse(spec)


def test_the_api_refuses_a_schedule_that_is_not_one() -> None:
    with pytest.raises(TypeError, match=r"^compress: schedule=0\.1 must be one schedule"):
        S.Compress(schedule=0.1, factor=2)  # type: ignore[arg-type]
