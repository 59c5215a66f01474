"""The range-test loop (lrscope.range_test): restore whatever happens, divergence, the ramp."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from rangetest_support import BATCHES, CE, run_and_compare, setup
from torch import nn

import lrscope


@pytest.mark.parametrize("kind", ["plain", "batchnorm", "two_groups", "momentum", "adam"])
def test_state_dicts_bitwise_equal_after_range_test(kind: str) -> None:
    result = run_and_compare(kind, start_lr=1e-4, end_lr=1.0, num_steps=30)
    assert result is not None and result.steps == 30


def test_batchnorm_statistics_change_during_the_run_and_come_back() -> None:
    model, opt = setup("batchnorm")
    seen: list[torch.Tensor] = []
    lrscope.range_test(model, opt, CE, BATCHES, num_steps=5,
                       callback=lambda *_: seen.append(model[1].running_mean.clone()))
    assert not torch.equal(seen[-1], model[1].running_mean)  # it did train, then was restored


def test_restored_when_the_loss_turns_nan() -> None:
    calls = {"n": 0}

    def nan_after_ten(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = CE(logits, y)
        return loss * math.nan if calls["n"] > 10 else loss

    result = run_and_compare("adam", loss_fn=nan_after_ten, start_lr=1e-5, end_lr=1e-2,
                             num_steps=40)
    assert result is not None
    assert result.stopped == "diverged" and result.steps == 11
    assert math.isnan(result.losses[-1]) and result.diverged_at == result.lrs[-1]
    for lr in result.suggestions.values():
        assert lr is None or math.isfinite(lr)
    assert json.dumps(result.to_dict(), allow_nan=False)


def test_restored_when_the_batches_raise() -> None:
    def failing() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from BATCHES[:5]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        run_and_compare("momentum", batches=failing(), num_steps=20)


def test_restored_on_keyboard_interrupt_from_the_callback() -> None:
    def interrupt(step: int, *_: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_and_compare("two_groups", num_steps=20, callback=interrupt)


def test_rng_state_restored() -> None:
    model = nn.Sequential(nn.Linear(20, 32), nn.Dropout(0.5), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    lrscope.range_test(model, opt, CE, BATCHES, num_steps=10)
    after = torch.rand(4), np.random.rand(2), random.random()
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    expected = torch.rand(4), np.random.rand(2), random.random()
    assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1])
    assert after[2] == expected[2]


def test_pushed_to_1e3_diverges_early_and_suggests_from_the_finite_part() -> None:
    model, opt = setup("plain")
    result = lrscope.range_test(model, opt, CE, BATCHES, start_lr=1e-4, end_lr=1e3,
                                num_steps=100)
    assert result.stopped == "diverged" and result.steps < 100
    assert result.diverged_at == result.lrs[-1] < 1e3
    assert result.suggestion is not None and result.suggestion < result.diverged_at
    assert result.suggestions["divergence"] == result.diverged_at
    finite = result.lrs[np.isfinite(result.smoothed)]
    every = result.suggestions
    assert every["steepest"] in finite and every["valley"] in finite
    assert every["minimum"] is not None and np.isclose(finite, every["minimum"] * 10).any()


def test_negative_losses_do_not_stop_early() -> None:
    model, opt = setup("plain")
    result = lrscope.range_test(model, opt, lambda out, y: CE(out, y) - 100.0, BATCHES,
                                start_lr=1e-4, end_lr=1.0, num_steps=60)
    assert result.stopped == "completed" and result.steps == 60
    assert (result.losses < 0).all()
    # The plain "smoothed > 5 x best" rule would have stopped at the first rise.
    best = np.minimum.accumulate(result.smoothed)
    assert (result.smoothed > 5 * best).any()


def test_group_ratio_kept_and_ramp_ends_exactly() -> None:
    model, opt = setup("two_groups")
    seen: list[tuple[float, float]] = []
    result = lrscope.range_test(
        model, opt, CE, BATCHES, start_lr=1e-5, end_lr=1.0, num_steps=25,
        callback=lambda *_: seen.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"])))
    group0, group1 = np.array(seen).T
    assert np.allclose(group1 / group0, 10.0, rtol=1e-12)
    assert np.array_equal(group0, result.lrs)
    # The seed study's formula, reaching end_lr at the last step.
    expected = 2 ** (np.log2(1e-5) + (np.log2(1.0) - np.log2(1e-5)) * np.arange(25) / 24)
    assert np.allclose(result.lrs, expected, rtol=1e-12) and result.lrs[-1] == 1.0
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.1


def test_linear_mode_steps_evenly() -> None:
    model, opt = setup("plain")
    result = lrscope.range_test(model, opt, CE, BATCHES, 0.01, 0.5, 11, "linear")
    assert np.allclose(np.diff(result.lrs), 0.049) and result.lrs[-1] == pytest.approx(0.5)
