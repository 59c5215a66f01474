"""Every trial of a batched run equals the same trial run alone (run_trial), to 1e-5: the loss
at every step and the final weights and buffers. Optimizers, BatchNorm, dropout, divergence."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from lrscope.data.tasks import Task, get_task
from lrscope.schedules import Constant, ExponentialDecay, OneCycle, Schedule
from lrscope.trials.batched.run import run_trials_batched
from lrscope.trials.trial import OptimizerFactory, TrialResult, run_trial, sgd

State = dict[str, torch.Tensor]
TOL = 1e-5
# BatchNorm's running statistics average 40 steps of batch statistics of activations that the
# vmapped and the lone model round differently in float32: on an AMD EPYC (2026-12-07) one
# running_mean element of 16 differed by 3.4e-5 relative (2.3e-5 absolute) while every loss,
# evaluation and weight agreed within TOL.
BUFFER_TOL = 1e-4


@pytest.fixture(scope="module")
def digits() -> Task:
    return get_task("digits", model="mlp", limit_train=512, limit_test=128)


def alone(task: Task, schedule: Schedule, make: OptimizerFactory,
          **kw: int) -> tuple[TrialResult, State]:
    """run_trial, and the trained model it leaves behind (caught in the optimizer factory)."""
    models: list[nn.Module] = []

    def catching(model: nn.Module) -> torch.optim.Optimizer:
        models.append(model)
        return make(model)

    result = run_trial(task, schedule, make_optimizer=catching, **kw)  # type: ignore[arg-type]
    named = itertools.chain(models[0].named_parameters(), models[0].named_buffers())
    return result, {n: t.detach().clone() for n, t in named}


def batched(task: Task, schedules: list[Schedule], make: OptimizerFactory,
            **kw: int) -> tuple[list[TrialResult], dict[int, State]]:
    states: dict[int, State] = {}
    results = run_trials_batched(task, schedules, make_optimizer=make,
                                 on_finish=states.__setitem__, **kw)  # type: ignore[arg-type]
    return results, states


def assert_equal_to_alone(task: Task, schedules: list[Schedule], make: OptimizerFactory,
                          **kw: int) -> list[TrialResult]:
    results, states = batched(task, schedules, make, **kw)
    for i, schedule in enumerate(schedules):
        one, weights = alone(task, schedule, make, **kw)
        got = results[i]
        assert (got.status, got.diverged_at_step, got.steps_run) == \
               (one.status, one.diverged_at_step, one.steps_run)
        np.testing.assert_array_equal(got.lr, one.lr)
        np.testing.assert_allclose(got.train_loss, one.train_loss, rtol=TOL, atol=0)
        # Evaluations in eval mode: BatchNorm reads the trial's own statistics, no dropout.
        assert [e.step for e in got.evaluations] == [e.step for e in one.evaluations]
        for b, a in zip(got.evaluations, one.evaluations, strict=True):
            assert b.loss == pytest.approx(a.loss, rel=TOL)
            assert abs(b.accuracy - a.accuracy) <= 1 / 128 + 1e-12  # one borderline image
        if one.status == "finished":
            assert states[i].keys() == weights.keys()
            for name, tensor in weights.items():
                tol = BUFFER_TOL if ".running_" in name else TOL
                torch.testing.assert_close(states[i][name], tensor, rtol=tol, atol=tol,
                                           msg=lambda m, n=name: f"{n}: {m}")  # type: ignore[misc]
    # The trials really differ: K copies of one trial would pass the checks above too.
    assert len({float(r.train_loss[-1]) for r in results}) == len(schedules)
    return results


def sgd_schedules() -> list[Schedule]:
    return [Constant(lr=0.05), ExponentialDecay(lr=0.2, gamma=0.95), OneCycle(max_lr=0.3)]


def adam_schedules() -> list[Schedule]:
    return [Constant(lr=1e-3), ExponentialDecay(lr=3e-3, gamma=0.97), OneCycle(max_lr=4e-3)]


def nesterov(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                           weight_decay=5e-3)


def adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)


OPTIMIZERS: dict[str, tuple[OptimizerFactory, Callable[[], list[Schedule]]]] = {
    "sgd-momentum": (sgd(momentum=0.9), sgd_schedules),
    "sgd-nesterov-wd": (nesterov, sgd_schedules),
    "adam": (adam, adam_schedules),
    "adamw": (adamw, adam_schedules),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers(digits: Task, name: str) -> None:
    make, schedules = OPTIMIZERS[name]
    assert_equal_to_alone(digits, schedules(), make, seed=1, steps=30, eval_every=10)


# No bias before a BatchNorm (as usual): its gradient is zero up to rounding, and Adam would
# scale that rounding noise up to full steps, in the batched run and alone alike.
def bn_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),  # 4x3x3
        nn.Flatten(), nn.Linear(36, 16, bias=False), nn.BatchNorm1d(16, momentum=None),
        nn.ReLU(), nn.Linear(16, 10))


def dropout_mlp() -> nn.Module:
    # Dropout on the shared input (before any parameter) and on a hidden layer.
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 32), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(32, 10))


def bn_dropout_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout2d(0.2),
                         nn.Flatten(), nn.Linear(144, 10))


def frozen_bn() -> nn.Module:
    net = bn_cnn()
    net[1].eval()  # the user froze this one: it reads its statistics and never writes them
    return net


@pytest.mark.parametrize("make_model", [bn_cnn, dropout_mlp, bn_dropout_cnn, frozen_bn])
@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adamw"])
def test_batchnorm_and_dropout(digits: Task, make_model: Callable[[], nn.Module],
                               optimizer: str) -> None:
    task = dataclasses.replace(digits, make_model=make_model)
    make, schedules = OPTIMIZERS[optimizer]
    # 40 steps of 64 cross an epoch of 512 examples: epoch boundaries and evaluations between.
    assert_equal_to_alone(task, schedules(), make, seed=3, steps=40, eval_every=15)


def test_batchnorm_statistics_are_each_trials_own(digits: Task) -> None:
    task = dataclasses.replace(digits, make_model=bn_cnn)
    _, states = batched(task, [Constant(lr=0.01), Constant(lr=0.3)], sgd(), seed=0, steps=10,
                        eval_every=10)
    means = [states[i]["1.running_mean"] for i in (0, 1)]
    assert not torch.equal(*means)  # two trials, two sets of statistics
    assert int(states[0]["1.num_batches_tracked"]) == 10
    assert task.make_model()[1].running_mean.abs().sum() == 0  # the template stays as built


def test_dropout_draws_leave_the_caller_rng_alone(digits: Task) -> None:
    task = dataclasses.replace(digits, make_model=dropout_mlp)
    before = torch.get_rng_state()
    run_trials_batched(task, sgd_schedules(), seed=0, steps=5, eval_every=5)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("make_model", [None, bn_dropout_cnn], ids=["mlp", "bn-dropout"])
def test_diverged_trial_leaves_the_others_bit_identical(digits: Task,
                                                        make_model: Callable[[], nn.Module] | None,
                                                        ) -> None:
    task = digits if make_model is None else dataclasses.replace(digits, make_model=make_model)
    kw = {"seed": 0, "steps": 30, "eval_every": 10}
    finishing = [Constant(lr=0.05), OneCycle(max_lr=0.3)]
    # The diverging trial sits between the others, so a row after it moves when it leaves.
    with_it, states = batched(task, [finishing[0], Constant(lr=1e4), finishing[1]], sgd(), **kw)
    without, states_without = batched(task, finishing, sgd(), **kw)
    assert with_it[1].status == "diverged" and with_it[1].diverged_at_step is not None
    assert 1 not in states
    for got, want, i in ((with_it[0], without[0], 0), (with_it[2], without[1], 2)):
        np.testing.assert_array_equal(got.train_loss, want.train_loss)
        assert got.evaluations == want.evaluations
        j = 0 if i == 0 else 1
        for name, tensor in states_without[j].items():
            assert torch.equal(states[i][name], tensor), name
