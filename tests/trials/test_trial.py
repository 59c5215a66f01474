"""One trial: real SGD on digits, paired design, divergence, schedule stepped per step."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lrscope.data.tasks import get_task
from lrscope.schedules import parse
from lrscope.trials.trial import run_trial


@pytest.fixture(scope="module")
def task():
    return get_task("digits", model="mlp")


def test_same_seed_same_start_and_data_for_every_schedule(task):
    # Step 0's loss depends only on the initial weights and the first batch: the paired design.
    a = run_trial(task, parse("constant(lr=0.05)"), seed=3, steps=5, eval_every=5)
    b = run_trial(task, parse("exponential(lr=0.5, gamma=0.9)"), seed=3, steps=5, eval_every=5)
    c = run_trial(task, parse("constant(lr=0.05)"), seed=4, steps=5, eval_every=5)
    assert a.train_loss[0] == b.train_loss[0]
    assert a.train_loss[1] != b.train_loss[1]
    assert a.train_loss[0] != c.train_loss[0]


def test_deterministic(task):
    a = run_trial(task, parse("onecycle(max_lr=0.5)"), seed=0, steps=40, eval_every=20)
    b = run_trial(task, parse("onecycle(max_lr=0.5)"), seed=0, steps=40, eval_every=20)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    assert a.evaluations == b.evaluations


def test_schedule_stepped_once_per_optimizer_step(task):
    schedule = parse("cyclic(base_lr=0.01, max_lr=0.2, step_size_up=5, step_size_down=10)")
    result = run_trial(task, schedule, seed=0, steps=33, eval_every=10)
    np.testing.assert_allclose(result.lr, [schedule(i) for i in range(33)], rtol=0, atol=0)
    # evaluations at 10, 20, 30 and after the last step
    assert [e.step for e in result.evaluations] == [10, 20, 30, 33]
    assert result.status == "finished" and result.diverged_at_step is None


def test_training_learns(task):
    result = run_trial(task, parse("constant(lr=0.1)"), seed=0, steps=150, eval_every=50)
    assert result.final is not None
    assert result.final.accuracy > 0.85
    assert result.train_loss[-10:].mean() < 0.5 * result.train_loss[:5].mean()


def test_diverging_schedule_is_recorded_at_its_step(task):
    result = run_trial(task, parse("constant(lr=100)"), seed=0, steps=60, eval_every=20)
    assert result.status == "diverged"
    assert result.diverged_at_step is not None and result.diverged_at_step < 60
    last = result.train_loss[-1]
    assert not np.isfinite(last) or last > 100 * result.train_loss[0]
    assert (result.train_loss[: result.diverged_at_step] <= 100 * result.train_loss[0]).all()
    assert len(result.lr) == result.steps_run == result.diverged_at_step + 1


def test_issue17_item7_diverged_at_is_a_step_in_trials_an_lr_in_the_range_test(task):
    """A trial names its divergence ``diverged_at_step`` (an optimizer step), a range test
    ``diverged_at_lr`` (an LR; its public ``diverged_at`` stays the same LR)."""
    import torch

    import lrscope

    trial = run_trial(task, parse("constant(lr=100)"), seed=0, steps=60, eval_every=20)
    step = trial.diverged_at_step
    assert isinstance(step, int) and trial.steps_run == step + 1
    assert "diverged_at_step" in {f.name for f in dataclasses.fields(trial)}
    assert "diverged_at" not in {f.name for f in dataclasses.fields(trial)}
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    x = torch.randn(64, 4)
    batches = [(x, (x.sum(1) > 0).long())]
    ranged = lrscope.range_test(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                torch.nn.functional.cross_entropy, batches, start_lr=1e-3,
                                end_lr=1e6, num_steps=60)
    assert ranged.stopped == "diverged"
    assert ranged.diverged_at_lr == ranged.diverged_at == ranged.lrs[-1]
    assert ranged.diverged_at_lr > 1e-3  # an LR on the ramp, not a step count


def test_negative_losses_do_not_count_as_divergence(task):
    # A loss offset far below zero must not trip the blow-up rule (it is relative to |first|).
    import dataclasses

    import torch

    shifted = dataclasses.replace(
        task, loss_fn=lambda out, y: torch.nn.functional.cross_entropy(out, y) - 50.0)
    result = run_trial(shifted, parse("constant(lr=0.1)"), seed=0, steps=30, eval_every=30)
    assert result.status == "finished" and (result.train_loss < 0).all()
