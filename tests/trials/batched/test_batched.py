"""Batched trials equal run_trial's, trial by trial: real training on scikit-learn's digits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrscope.data.tasks import Task, get_task
from lrscope.errors import InputError
from lrscope.schedules import Constant, ExponentialDecay, OneCycle, Schedule
from lrscope.trials.batched.functional_optim import FlatAdam, FlatSGD
from lrscope.trials.batched.run import check_batchable, run_trials_batched
from lrscope.trials.trial import OptimizerFactory, TrialResult, run_trial

RTOL = 1e-5


@pytest.fixture(scope="module")
def mlp_task() -> Task:
    return get_task("digits", model="mlp")


def sgd_schedules() -> list[Schedule]:
    # onecycle cycles SGD's momentum: that path is exercised too.
    return [Constant(lr=0.05), ExponentialDecay(lr=0.3, gamma=0.97), OneCycle(max_lr=0.4)]


def adam_schedules() -> list[Schedule]:
    return [Constant(lr=1e-3), ExponentialDecay(lr=3e-3, gamma=0.98), OneCycle(max_lr=4e-3)]


def one_by_one(task: Task, schedules: list[Schedule], make: OptimizerFactory | None = None,
               **kw: int) -> list[TrialResult]:
    return [run_trial(task, s, make_optimizer=make, **kw) for s in schedules]  # type: ignore[arg-type]


def assert_same_trial(batched: TrialResult, alone: TrialResult) -> None:
    assert batched.status == alone.status
    assert batched.diverged_at_step == alone.diverged_at_step
    assert batched.steps_run == alone.steps_run == len(batched.train_loss)
    np.testing.assert_array_equal(batched.lr, alone.lr)
    np.testing.assert_allclose(batched.train_loss, alone.train_loss, rtol=RTOL, atol=0)
    assert [e.step for e in batched.evaluations] == [e.step for e in alone.evaluations]
    for b, a in zip(batched.evaluations, alone.evaluations, strict=True):
        assert b.loss == pytest.approx(a.loss, rel=1e-4)
        assert abs(b.accuracy - a.accuracy) <= 1 / 360 + 1e-12  # one borderline test image


def adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.99), eps=1e-6,
                             weight_decay=0.05)


def sgd_nesterov(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.8, nesterov=True,
                           weight_decay=1e-3)


def sgd_dampened(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5, dampening=0.3)


@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_default_sgd_equals_run_trial(model: str) -> None:
    task = get_task("digits", model=model)
    kw = {"seed": 1, "steps": 35, "eval_every": 15}
    batched = run_trials_batched(task, sgd_schedules(), **kw)
    for b, a in zip(batched, one_by_one(task, sgd_schedules(), **kw), strict=True):
        assert b.status == "finished"
        assert_same_trial(b, a)
    # The trials really differ: the test would catch K copies of one trial.
    assert len({float(r.train_loss[-1]) for r in batched}) == 3
    assert [e.step for e in batched[0].evaluations] == [15, 30, 35]


@pytest.mark.parametrize("make, schedules", [
    (adam, adam_schedules), (adamw, adam_schedules),
    (sgd_nesterov, sgd_schedules), (sgd_dampened, sgd_schedules),
], ids=["adam", "adamw", "sgd-nesterov-wd", "sgd-dampening"])
def test_optimizers_equal_run_trial(mlp_task: Task, make: OptimizerFactory,
                                    schedules: Callable[[], list[Schedule]]) -> None:
    kw = {"seed": 2, "steps": 30, "eval_every": 30}
    batched = run_trials_batched(mlp_task, schedules(), make_optimizer=make, **kw)
    for b, a in zip(batched, one_by_one(mlp_task, schedules(), make, **kw), strict=True):
        assert_same_trial(b, a)


def test_adam_on_lenet_equals_run_trial() -> None:
    task = get_task("digits", model="lenet")
    kw = {"seed": 0, "steps": 25, "eval_every": 25}
    batched = run_trials_batched(task, adam_schedules(), make_optimizer=adam, **kw)
    for b, a in zip(batched, one_by_one(task, adam_schedules(), adam, **kw), strict=True):
        assert_same_trial(b, a)


@pytest.mark.parametrize("make", [None, adamw], ids=["sgd", "adamw"])
def test_float64_trials_equal_run_trial_to_rounding(mlp_task: Task,
                                                    make: OptimizerFactory | None) -> None:
    # In double precision nothing is left of float32's rounding noise (which long float32
    # runs amplify): any difference in the update formulas would show far above 1e-10.
    task = dataclasses.replace(mlp_task, train_x=mlp_task.train_x.double(),
                               test_x=mlp_task.test_x.double(),
                               make_model=lambda: mlp_task.make_model().double())
    schedules = sgd_schedules() if make is None else adam_schedules()
    kw = {"seed": 0, "steps": 60, "eval_every": 30}
    batched = run_trials_batched(task, schedules, make_optimizer=make, **kw)
    for b, a in zip(batched, one_by_one(task, schedules, make, **kw), strict=True):
        np.testing.assert_allclose(b.train_loss, a.train_loss, rtol=1e-10, atol=0)
        for eb, ea in zip(b.evaluations, a.evaluations, strict=True):
            assert eb.accuracy == ea.accuracy and eb.loss == pytest.approx(ea.loss, rel=1e-10)


def test_param_group_ratios_and_mixed_momentum_states(mlp_task: Task) -> None:
    # Two groups (the head at 5x the body's LR, its own weight decay) and SGD without momentum:
    # onecycle switches momentum on for its trial only, so rows are in different states.
    def grouped(model: nn.Module) -> torch.optim.Optimizer:
        body, head = model[1], model[3]
        return torch.optim.SGD([{"params": body.parameters()},
                                {"params": head.parameters(), "lr": 0.5, "weight_decay": 1e-2}],
                               lr=0.1, momentum=0.0)

    kw = {"seed": 0, "steps": 30, "eval_every": 10}
    schedules = [Constant(lr=0.05), OneCycle(max_lr=0.2), ExponentialDecay(lr=0.1, gamma=0.95)]
    batched = run_trials_batched(mlp_task, schedules, make_optimizer=grouped, **kw)
    for b, a in zip(batched, one_by_one(mlp_task, schedules, grouped, **kw), strict=True):
        assert_same_trial(b, a)


def test_diverging_trial_is_cut_and_leaves_the_others_alone(mlp_task: Task) -> None:
    kw = {"seed": 0, "steps": 40, "eval_every": 10}
    finishing = [Constant(lr=0.05), OneCycle(max_lr=0.4)]
    # The diverging trial comes first, so every later row moves when it leaves the stack.
    schedules = [Constant(lr=100.0), *finishing]
    batched = run_trials_batched(mlp_task, schedules, **kw)
    alone = one_by_one(mlp_task, schedules, **kw)
    assert alone[0].status == "diverged"  # the premise: lr=100 does blow up on its own
    for b, a in zip(batched, alone, strict=True):
        assert_same_trial(b, a)
    assert batched[0].evaluations == []
    assert [r.status for r in batched[1:]] == ["finished", "finished"]
    # Without the diverging neighbour the others come out the same.
    without = run_trials_batched(mlp_task, finishing, **kw)
    for b, w in zip(batched[1:], without, strict=True):
        np.testing.assert_allclose(b.train_loss, w.train_loss, rtol=1e-6, atol=0)
        assert np.isfinite(b.train_loss).all()


def test_nan_in_one_row_stays_in_that_row(mlp_task: Task) -> None:
    # An infinite LR gives NaN weights after the first step; that row keeps computing NaNs
    # until the check at step 20, next to two healthy rows.
    kw = {"seed": 3, "steps": 20, "eval_every": 20}
    healthy = [Constant(lr=0.05), ExponentialDecay(lr=0.2, gamma=0.9)]
    batched = run_trials_batched(mlp_task, [healthy[0], Constant(lr=1e38), healthy[1]], **kw)
    assert batched[1].status == "diverged" and batched[1].diverged_at_step is not None
    for b, a in zip([batched[0], batched[2]], one_by_one(mlp_task, healthy, **kw), strict=True):
        assert_same_trial(b, a)


def test_all_trials_diverging_stops_early(mlp_task: Task) -> None:
    results = run_trials_batched(mlp_task, [Constant(lr=100.0), Constant(lr=300.0)], seed=0,
                                 steps=500, eval_every=5)
    assert [r.status for r in results] == ["diverged", "diverged"]
    assert all(r.steps_run <= 5 for r in results)


def test_on_eval_reports_each_trial_by_index(mlp_task: Task) -> None:
    seen: list[tuple[int, int]] = []
    results = run_trials_batched(mlp_task, [Constant(lr=0.05), Constant(lr=100.0)], seed=0,
                                 steps=12, eval_every=6,
                                 on_eval=lambda i, ev: seen.append((i, ev.step)))
    assert seen == [(0, 6), (0, 12)]
    assert results[0].evaluations[-1].step == 12
    assert sum(r.wall_time for r in results) > 0


def test_unused_parameter_is_skipped_as_torch_does(mlp_task: Task) -> None:
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp_task.make_model()
            self.spare = nn.Linear(3, 3)  # never called: torch.optim leaves it alone

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    task = dataclasses.replace(mlp_task, make_model=WithSpare)

    def decaying(model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)

    kw = {"seed": 0, "steps": 10, "eval_every": 10}
    batched = run_trials_batched(task, [Constant(lr=0.05)], make_optimizer=decaying, **kw)
    assert_same_trial(batched[0], one_by_one(task, [Constant(lr=0.05)], decaying, **kw)[0])


class Normalised(nn.Module):
    """The MLP behind a constant input normalisation kept as a buffer (shared, never written)."""

    def __init__(self, net: nn.Module, write: bool = False) -> None:
        super().__init__()
        self.net, self.write = net, write
        self.register_buffer("mean", torch.full((1, 1, 8, 8), 0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.write:  # a running statistic of its own making
            self.mean.mul_(0.9).add_(0.1 * x.mean())
        return self.net(x - self.mean)


def test_constant_buffer_is_shared_and_equals_run_trial(mlp_task: Task) -> None:
    task = dataclasses.replace(mlp_task, make_model=lambda: Normalised(mlp_task.make_model()))
    kw = {"seed": 0, "steps": 12, "eval_every": 6}
    schedules = [Constant(lr=0.05), OneCycle(max_lr=0.3)]
    batched = run_trials_batched(task, schedules, **kw)
    for b, a in zip(batched, one_by_one(task, schedules, **kw), strict=True):
        assert_same_trial(b, a)


def test_buffer_written_by_forward_is_kept_per_trial(mlp_task: Task) -> None:
    # A running statistic of the model's own making: each trial keeps its own copy, as BatchNorm's.
    task = dataclasses.replace(mlp_task,
                               make_model=lambda: Normalised(mlp_task.make_model(), write=True))
    kw = {"seed": 0, "steps": 12, "eval_every": 6}
    schedules = [Constant(lr=0.05), OneCycle(max_lr=0.3)]
    batched = run_trials_batched(task, schedules, **kw)
    for b, a in zip(batched, one_by_one(task, schedules, **kw), strict=True):
        assert_same_trial(b, a)


# -- refusals: one line saying what is unsupported and what to use instead ---------------------
def test_unsupported_optimizer_is_refused(mlp_task: Task) -> None:
    with pytest.raises(InputError, match=r"SGD, Adam and AdamW, not RMSprop.*--parallel none"):
        run_trials_batched(mlp_task, [Constant(lr=0.01)], seed=0, steps=2, eval_every=2,
                           make_optimizer=lambda m: torch.optim.RMSprop(m.parameters()))
    with pytest.raises(InputError, match="amsgrad"):
        run_trials_batched(mlp_task, [Constant(lr=0.01)], seed=0, steps=2, eval_every=2,
                           make_optimizer=lambda m: torch.optim.Adam(m.parameters(), amsgrad=True))


@pytest.mark.parametrize("layer", [nn.AlphaDropout, nn.FeatureAlphaDropout])
def test_alpha_dropout_is_refused(mlp_task: Task, layer: Callable[[float], nn.Module]) -> None:
    task = dataclasses.replace(mlp_task, make_model=lambda: nn.Sequential(
        mlp_task.make_model(), layer(0.2)))
    word = layer.__name__  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=rf"{word}.*--parallel none\|processes"):
        run_trials_batched(task, [Constant(lr=0.01)], seed=0, steps=2, eval_every=2)
    with pytest.raises(InputError, match=word):
        check_batchable(task.make_model())


def test_random_op_in_forward_is_refused(mlp_task: Task) -> None:
    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp_task.make_model()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.dropout(self.net(x), 0.1, training=self.training)

    task = dataclasses.replace(mlp_task, make_model=Noisy)
    with pytest.raises(InputError, match="random numbers"):
        run_trials_batched(task, [Constant(lr=0.01)], seed=0, steps=2, eval_every=2)


def test_no_schedules_is_refused(mlp_task: Task) -> None:
    with pytest.raises(InputError, match="at least one schedule"):
        run_trials_batched(mlp_task, [], seed=0, steps=2, eval_every=2)


# -- the flat updates themselves: row k equals torch.optim stepping trial k alone --------------
floats = st.floats(min_value=-3, max_value=3, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["sgd", "nesterov", "adam", "adamw"]),
    start=st.lists(floats, min_size=4, max_size=4),
    lrs=st.lists(st.floats(min_value=1e-4, max_value=0.5), min_size=3, max_size=3),
    momenta=st.lists(st.sampled_from([0.0, 0.5, 0.9]), min_size=3, max_size=3),
)
def test_flat_update_rows_equal_torch_optim(kind: str, start: list[float], lrs: list[float],
                                            momenta: list[float]) -> None:
    def torch_optim(p: nn.Parameter) -> torch.optim.Optimizer:
        if kind in ("adam", "adamw"):
            cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
            return cls([p], lr=0.1, weight_decay=0.01)
        return torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01,
                               nesterov=kind == "nesterov")

    template = torch_optim(nn.Parameter(torch.zeros(4))).param_groups[0]
    rule = FlatSGD(template) if kind in ("sgd", "nesterov") else FlatAdam(template)
    flat = torch.tensor(start).repeat(3, 1)
    params = [nn.Parameter(torch.tensor(start)) for _ in range(3)]
    optimizers = [torch_optim(p) for p in params]
    # A per-row momentum that may be 0 (SGD) exercises the mixed-state path; Adam's beta1
    # must stay positive.
    momenta = [m if kind in ("sgd",) else max(m, 0.5) for m in momenta]
    for step in range(4):
        scaled = [lr * (1 + step) for lr in lrs]
        for p, opt, lr, m in zip(params, optimizers, scaled, momenta, strict=True):
            opt.param_groups[0]["lr"] = lr
            if "betas" in opt.param_groups[0]:
                opt.param_groups[0]["betas"] = (m, opt.param_groups[0]["betas"][1])
            else:
                opt.param_groups[0]["momentum"] = m
            p.grad = torch.sin(p.detach() * (step + 1))
            opt.step()
        rule.update(flat, torch.sin(flat * (step + 1)), scaled, momenta)
    for row, p in zip(flat, params, strict=True):
        torch.testing.assert_close(row, p.detach(), rtol=1e-6, atol=1e-7)
