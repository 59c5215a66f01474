"""Shared set-up for the range-test tests: a separable 10-class problem, small models and a
bitwise comparison of nested state."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

import lrscope
from lrscope.rangetest.result import RangeTestResult

CE = nn.functional.cross_entropy


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Bitwise equality of nested state (tensors: dtype, shape and every bit)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def blobs(n: int = 512, features: int = 20, classes: int = 10) -> tuple[torch.Tensor, ...]:
    """A linearly separable 10-class problem."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, features, generator=generator)
    y = (x @ torch.randn(features, classes, generator=generator)).argmax(1)
    return x, y


X, Y = blobs()
BATCHES = [(X[i:i + 32], Y[i:i + 32]) for i in range(0, len(X), 32)]


def mlp(batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    norm: list[nn.Module] = [nn.BatchNorm1d(32)] if batchnorm else []
    return nn.Sequential(nn.Linear(20, 32), *norm, nn.ReLU(), nn.Linear(32, 10))


def pretrain(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 3) -> None:
    for x, y in BATCHES[:steps]:
        opt.zero_grad()
        CE(model(x), y).backward()
        opt.step()


def setup(kind: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = mlp(batchnorm=kind == "batchnorm")
    if kind == "two_groups":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            [{"params": model[0].parameters(), "lr": 0.01},
             {"params": model[2].parameters(), "lr": 0.1, "momentum": 0.5}], lr=0.05)
    elif kind == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.85, 0.99))
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if kind != "plain":
        pretrain(model, opt)
    return model, opt


def run_and_compare(kind: str, **kwargs: Any) -> RangeTestResult | None:
    model, opt = setup(kind)
    model_before = copy.deepcopy(model.state_dict())
    opt_before = copy.deepcopy(opt.state_dict())
    result = None
    try:
        result = lrscope.range_test(model, opt, kwargs.pop("loss_fn", CE),
                                    kwargs.pop("batches", BATCHES), **kwargs)
    finally:
        assert_same(model.state_dict(), model_before, "model")
        assert_same(opt.state_dict(), opt_before, "optimizer")
    return result
