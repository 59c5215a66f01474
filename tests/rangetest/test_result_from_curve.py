"""A range test's result is made in one place (issue 17 item 2):
RangeTestResult.from_curve, called by the loop, the seeds' combined curve and the
torch-lr-finder drop-in; and the range test's LR hook that the drop-in sets its LRs through."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import lrscope
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.suggest import advise

SRC = Path(lrscope.__file__).parent


def test_issue17_item2_range_test_results_are_built_only_in_result_py():
    builders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RangeTestResult":
                builders.append(str(path.relative_to(SRC)))
    assert builders == [], builders  # result.py builds with cls(...) in from_curve/from_stored


def test_issue17_item2_from_curve_reads_the_suggestions_and_how_it_ran():
    lrs = np.logspace(-4, 0, 41)
    losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))
    r = RangeTestResult.from_curve(lrs, losses, losses, diverged=True, prefer="steepest",
                                   reason_prefix="median of 3 seeds; ", warnings=["extra"],
                                   num_steps=50, batch_size=8, world_size=2,
                                   accumulation_steps=3, engine="local")
    expected = advise(lrs, losses, lrs[-1], prefer="steepest", planned_steps=50)
    assert (r.suggestion, r.rule, r.suggestions) == (expected.lr, "steepest",
                                                     expected.suggestions)
    assert r.reason == "median of 3 seeds; " + expected.reason
    assert r.warnings == (*expected.warnings, "extra")
    assert (r.stopped, r.diverged_at, r.diverged_at_lr) == ("diverged", lrs[-1], lrs[-1])
    assert (r.batch_size, r.effective_batch_size, r.num_steps) == (8, 48, 50)
    done = RangeTestResult.from_curve(lrs, losses, losses, diverged=False)
    assert (done.stopped, done.diverged_at, done.effective_batch_size) == ("completed", None,
                                                                            None)


def test_issue17_item2_the_range_test_sets_lrs_through_its_hook():
    """``_set_lrs`` (the drop-in's hook) replaces the ramp: the optimizer steps at the LRs it
    sets, and the result records the LR it returns."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD([{"params": [model.weight], "lr": 1.0},
                           {"params": [model.bias], "lr": 2.0}])
    x = torch.randn(32, 4)
    table = [(1e-3 * (step + 1), 5e-4) for step in range(6)]
    at_step: list[tuple[float, ...]] = []

    def set_lrs(step: int) -> float:
        for group, lr in zip(opt.param_groups, table[step], strict=True):
            group["lr"] = lr
        return table[step][0]

    def step_fn(batch: torch.Tensor) -> torch.Tensor:
        at_step.append(tuple(g["lr"] for g in opt.param_groups))
        return model(batch).pow(2).mean()

    r = lrscope.range_test(model, opt, None, [x], start_lr=1e-3, end_lr=6e-3, num_steps=6,
                           step_fn=step_fn, _set_lrs=set_lrs)
    assert at_step == table
    assert r.lrs.tolist() == pytest.approx([row[0] for row in table], rel=0, abs=0)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 2.0]  # restored
