"""The trial loop's divergence checks: losses recorded into a device buffer and checked every
``check_every`` steps give the same result as a check after every step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.data.tasks import get_task
from lrscope.errors import InputError
from lrscope.schedules import parse
from lrscope.trials.trial import CHECK_EVERY, TrialResult, run_trial

# The LR grows 10% a step: the MLP diverges at step 44 (checked below), after two evaluations.
GROWING = "exponential(lr=0.05, gamma=1.1)"
STEPS = 80


@pytest.fixture(scope="module")
def task():
    return get_task("digits", model="mlp")


def trial(task, spec: str, check_every: int, eval_every: int = 20) -> TrialResult:
    return run_trial(task, parse(spec), seed=0, steps=STEPS, eval_every=eval_every,
                     check_every=check_every)


def assert_same(a: TrialResult, b: TrialResult) -> None:
    assert (a.status, a.steps_run, a.diverged_at_step) == \
        (b.status, b.steps_run, b.diverged_at_step)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)  # NaN == NaN here
    np.testing.assert_array_equal(a.lr, b.lr)
    assert a.evaluations == b.evaluations


@pytest.fixture(scope="module")
def every_step(task):
    return {every: trial(task, GROWING, check_every=1, eval_every=every) for every in (7, 20, 80)}


def test_the_reference_diverges_at_a_known_step(every_step):
    result = every_step[20]
    assert result.status == "diverged" and result.diverged_at_step == 44
    assert [e.step for e in result.evaluations] == [20, 40]  # none after the diverged step
    assert len(result.train_loss) == 45


@pytest.mark.parametrize("check_every", [43, 44, 45, 46, 22, 15, CHECK_EVERY, 1000])
def test_check_aligned_or_not_with_the_diverged_step(task, every_step, check_every):
    # step 44 is the 45th loss: intervals 45 and 15 check right at it, 44 and 22 just before it
    assert_same(trial(task, GROWING, check_every), every_step[20])


@settings(max_examples=12, deadline=None)
@given(check_every=st.integers(1, STEPS + 10), eval_every=st.sampled_from([7, 20, 80]))
def test_any_interval_gives_the_same_result(task, every_step, check_every, eval_every):
    assert_same(trial(task, GROWING, check_every, eval_every), every_step[eval_every])


def test_a_finished_trial_is_the_same_for_any_interval(task):
    a = trial(task, "constant(lr=0.05)", check_every=1)
    b = trial(task, "constant(lr=0.05)", check_every=13)
    assert a.status == "finished"
    assert_same(a, b)


def test_check_every_must_be_a_positive_whole_number(task):
    with pytest.raises(InputError, match="check_every"):
        trial(task, GROWING, check_every=0)


def test_the_task_is_not_moved_when_it_is_already_on_the_device(task):
    # run_trial moves a Task to the engine's device once; on the CPU that is the same tensors,
    # and the caller's task keeps them.
    before = task.train_x
    trial(task, "constant(lr=0.05)", check_every=CHECK_EVERY)
    assert task.train_x is before and task.to(torch.device("cpu")) is task
