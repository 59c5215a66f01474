"""What range_test tells about its suggestion: the rules read the raw losses (zero-lag), the
reason and warnings, and the LR axis of a run whose param groups have different LRs."""

from __future__ import annotations

import numpy as np
import torch
from rangetest_support import BATCHES, CE, mlp

import lrscope
from lrscope.rangetest.suggest import HEADLINE, advise


def test_rules_read_the_raw_losses_not_the_causal_ema() -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lrscope.range_test(model, opt, CE, BATCHES, start_lr=1e-4, end_lr=10.0,
                                num_steps=40)
    expected = advise(result.lrs, result.losses, result.diverged_at, planned_steps=40)
    assert result.suggestions == expected.suggestions and result.rule == HEADLINE
    assert (result.reason, result.warnings) == (expected.reason, expected.warnings)
    finite = np.isfinite(result.losses)
    assert np.isfinite(result.zero_lag_smoothed[finite]).all()


def test_the_lr_axis_is_the_reference_groups_lr() -> None:
    # The first group is frozen at LR 0, so the reference is the second group; the third keeps
    # its ratio of 10 to it. result.lrs (and so every suggestion) is the reference group's LR.
    model = mlp()
    first, second = model[0], model[2]
    opt = torch.optim.SGD([{"params": first.weight, "lr": 0.0},
                           {"params": first.bias, "lr": 0.01},
                           {"params": second.parameters(), "lr": 0.1}], lr=0.01)
    seen: list[list[float]] = []
    result = lrscope.range_test(
        model, opt, CE, BATCHES, start_lr=1e-4, end_lr=1.0, num_steps=30,
        callback=lambda *_: seen.append([g["lr"] for g in opt.param_groups]))
    groups = np.array(seen)
    assert (groups[:, 0] == 0).all()
    assert np.array_equal(groups[:, 1], result.lrs)
    assert np.allclose(groups[:, 2] / groups[:, 1], 10.0, rtol=1e-12)
    lr = result.suggestion
    assert lr is not None and result.lrs[0] <= lr <= result.lrs[-1]
