"""Our schedules on a real torch optimizer: ScheduleLR and apply_schedule against torch's own
schedulers, with two param groups (the second at a tenth of the first's LR) and momentum."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

from lrscope import schedules as S
from lrscope.errors import InputError

STEPS = 2345
RTOL = 1e-9


def two_group_optimizer(kind: str) -> torch.optim.Optimizer:
    """Body at lr 1.0 and head at lr 0.1: the ratio the adapters must keep."""
    body, head = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    body.grad, head.grad = torch.zeros(1), torch.zeros(1)
    groups = [{"params": [body], "lr": 1.0}, {"params": [head], "lr": 0.1}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=1.0)
    return torch.optim.SGD(groups, lr=1.0, momentum=0.9)


def momentum_of(group: dict) -> float:
    return float(group["betas"][0] if "betas" in group else group["momentum"])


def record(opt: torch.optim.Optimizer, step_fn: Callable[[int], None]) -> np.ndarray:
    """(steps, groups, 2) array of (lr, momentum) as applied at each optimizer step."""
    out = np.empty((STEPS, len(opt.param_groups), 2))
    for step in range(STEPS):
        step_fn(step)
        out[step] = [[g["lr"], momentum_of(g)] for g in opt.param_groups]
        opt.step()
    return out


Make = Callable[[torch.optim.Optimizer], L.LRScheduler]


def torch_reference(kind: str, make: Make) -> np.ndarray:
    opt = two_group_optimizer(kind)
    scheduler = make(opt)
    # The torch scheduler steps after each optimizer step, so it is stepped before the next read.
    return record(opt, lambda step: scheduler.step() if step else None)


CASES = [
    ("sgd", lambda o: L.ExponentialLR(o, 0.999), S.ExponentialDecay(lr=1.0, gamma=0.999)),
    ("sgd", lambda o: L.StepLR(o, 100, 0.5), S.StepDecay(lr=1.0, step_size=100, gamma=0.5)),
    ("sgd", lambda o: L.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=STEPS),
     S.OneCycle(max_lr=1.0, total_steps=STEPS)),
    ("adam", lambda o: L.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=STEPS, three_phase=True),
     S.OneCycle(max_lr=1.0, total_steps=STEPS, three_phase=True)),
    ("adam", lambda o: L.CyclicLR(o, base_lr=[0.01, 0.001], max_lr=[1.0, 0.1], step_size_up=50,
                                  step_size_down=100),
     S.Cyclic(base_lr=0.01, max_lr=1.0, step_size_up=50, step_size_down=100)),
]
IDS = ["exponential", "step", "onecycle-sgd", "onecycle-adam-3phase", "cyclic-adam"]


@pytest.mark.parametrize(("kind", "make", "schedule"), CASES, ids=IDS)
def test_schedule_lr_matches_torch_with_two_groups(kind, make, schedule) -> None:
    expected = torch_reference(kind, make)
    opt = two_group_optimizer(kind)
    adapter = S.ScheduleLR(opt, schedule)
    got = record(opt, lambda step: adapter.step() if step else None)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=0.0)
    np.testing.assert_allclose(got[:, 1, 0] / got[:, 0, 0], 0.1, rtol=RTOL)


@pytest.mark.parametrize(("kind", "make", "schedule"), CASES, ids=IDS)
def test_apply_schedule_matches_torch_with_two_groups(kind, make, schedule) -> None:
    expected = torch_reference(kind, make)
    opt = two_group_optimizer(kind)
    ratios = S.group_ratios(opt)
    assert ratios == [1.0, pytest.approx(0.1)]
    got = record(opt, lambda step: S.apply_schedule(opt, schedule, step, ratios))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=0.0)


def test_apply_schedule_returns_the_schedules_lr() -> None:
    opt = two_group_optimizer("sgd")
    schedule = S.Cosine(lr=0.5, total_steps=100, warmup_steps=10)
    assert S.apply_schedule(opt, schedule, 40, [1.0, 0.1]) == schedule(40)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * schedule(40), rel=1e-15)
    assert opt.param_groups[0]["momentum"] == 0.9  # cosine leaves momentum alone


def test_schedule_lr_needs_total_steps() -> None:
    opt = two_group_optimizer("sgd")
    with pytest.raises(InputError, match=r"^missing total steps for onecycle: "):
        S.ScheduleLR(opt, S.parse("onecycle(max_lr=1)"))
    S.ScheduleLR(opt, S.parse("onecycle(max_lr=1)").with_total_steps(10))


def test_momentum_cycling_needs_an_optimizer_with_momentum() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adagrad([param], lr=0.1)
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        S.apply_schedule(opt, S.OneCycle(max_lr=1.0, total_steps=10), 0)
    S.apply_schedule(opt, S.OneCycle(max_lr=1.0, total_steps=10, cycle_momentum=False), 0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.04)
