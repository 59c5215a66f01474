"""Snapshot and restore of model, optimizer and RNG state (lrscope.rangetest.state)."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from rangetest_support import assert_same
from torch import nn

from lrscope.rangetest.state import preserved, restore, snapshot, to_cpu_copy


class WithBuffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(8, 3)
        self.register_buffer("calls", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(self.body(x))


def train_steps(model: nn.Module, opt: torch.optim.Optimizer, n: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(n):
        x = torch.randn(16, 6, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def make(opt_name: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = WithBuffers()
    params = [{"params": model.body.parameters(), "lr": 0.01},
              {"params": model.head.parameters(), "lr": 0.1}]
    if opt_name == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9,
                                                     weight_decay=1e-4)
    else:
        opt = torch.optim.Adam(params, lr=0.05, betas=(0.8, 0.95))
    train_steps(model, opt, 3, seed=1)
    return model, opt


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_restore_undoes_training_bitwise(opt_name: str) -> None:
    model, opt = make(opt_name)
    model.head.eval()  # a mixed training/eval tree must come back as it was
    model_before = copy.deepcopy(model.state_dict())
    opt_before = copy.deepcopy(opt.state_dict())
    grads_before = [p.grad.clone() for p in model.parameters()]
    calls_before = model.calls.clone()

    snap = snapshot(model, opt)
    train_steps(model, opt, 4, seed=2)
    opt.param_groups[1]["lr"] = 3.0
    model.train()
    assert not torch.equal(model.body[1].running_mean, model_before["body.1.running_mean"])
    restore(snap, model, opt)

    assert_same(model.state_dict(), model_before)
    assert_same(opt.state_dict(), opt_before)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads_before,
                                                       strict=True))
    assert torch.equal(model.calls, calls_before)
    assert model.training and model.body.training and not model.head.training


def test_snapshot_survives_later_training_and_restores_twice() -> None:
    model, opt = make("adam")
    before = copy.deepcopy(opt.state_dict())
    snap = snapshot(model, opt)
    restore(snap, model, opt)
    train_steps(model, opt, 2, seed=3)  # must not write into the snapshot
    restore(snap, model, opt)
    assert_same(opt.state_dict(), before)


def test_restore_of_fresh_optimizer_drops_new_state_and_grads() -> None:
    torch.manual_seed(0)
    model = WithBuffers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    snap = snapshot(model, opt)
    train_steps(model, opt, 2)
    assert len(opt.state) > 0
    restore(snap, model, opt)
    assert len(opt.state_dict()["state"]) == 0
    assert all(p.grad is None for p in model.parameters())


def test_rng_states_restored() -> None:
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with preserved(model, opt):
        torch.rand(5), np.random.rand(5), random.random()
    after = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    nn.Linear(2, 2)  # the same draws as building ``model`` above
    expected = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(after[0], expected[0])
    assert np.array_equal(after[1], expected[1])
    assert after[2] == expected[2]


def test_preserved_restores_when_the_body_raises() -> None:
    model, opt = make("sgd")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(RuntimeError, match="boom"), preserved(model, opt):
        train_steps(model, opt, 1)
        raise RuntimeError("boom")
    assert_same(model.state_dict(), before)


def test_to_cpu_copy_is_independent() -> None:
    t = torch.arange(3.0)
    tree = {"a": [t, {"b": (t, 2)}], "c": "text"}
    copied = to_cpu_copy(tree)
    t.add_(1)
    assert copied["a"][0].tolist() == [0.0, 1.0, 2.0]
    assert copied["a"][1]["b"][1] == 2 and copied["c"] == "text"
