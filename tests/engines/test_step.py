"""The one optimizer step (issue 17 item 2): lrscope.engines.step, called by the trials and the
range test; plain, accumulated, mixed-precision and clipped."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

import lrscope
from lrscope.engines.local import LocalEngine
from lrscope.engines.precision import MixedPrecision
from lrscope.engines.step import optimizer_step, where_to_move

SRC = Path(lrscope.__file__).parent


def mse(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch[0]), batch[1])


def model_and_data(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    x = torch.randn(32, 3)
    return nn.Linear(3, 1), x, x.sum(1, keepdim=True)


def after_one_step(micro: int, **options: object) -> tuple[torch.Tensor, float]:
    model, x, y = model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    size = len(x) // micro
    batches = iter([(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)])
    step = optimizer_step(LocalEngine(), model, opt, mse, move_to=None, accumulation=micro,
                          **options)  # type: ignore[arg-type]
    loss = step(batches).detach().item()
    assert next(batches, None) is None  # one step read exactly `micro` batches
    return torch.cat([p.detach().flatten() for p in model.parameters()]), loss


def test_issue17_item2_accumulated_step_is_the_full_batch_step():
    whole, whole_loss = after_one_step(1)
    halves, halves_loss = after_one_step(2)
    quarters, quarters_loss = after_one_step(4)
    torch.testing.assert_close(halves, whole)
    torch.testing.assert_close(quarters, whole)
    assert halves_loss == pytest.approx(whole_loss, rel=1e-6)
    assert quarters_loss == pytest.approx(whole_loss, rel=1e-6)


def test_issue17_item2_clipped_step_moves_the_weights_at_most_lr_x_max_norm():
    before = torch.cat([p.detach().flatten() for p in model_and_data()[0].parameters()])
    free, _ = after_one_step(1)
    clipped, _ = after_one_step(2, clip_grad_norm=1e-3)
    assert (free - before).norm() > 1e-2
    assert (clipped - before).norm() <= 0.1 * 1e-3 * (1 + 1e-5)


def test_issue17_item2_mixed_precision_step_runs_under_autocast():
    model, x, y = model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[torch.dtype] = []

    def loss_of(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        out = m(batch[0])
        seen.append(out.dtype)
        return nn.functional.mse_loss(out.float(), batch[1])

    amp = MixedPrecision.make("bf16", torch.device("cpu"))
    step = optimizer_step(LocalEngine(), model, opt, loss_of, move_to=None, amp=amp)
    loss = step(iter([(x, y)]))
    assert seen == [torch.bfloat16] and loss.dtype == torch.float32 and not loss.requires_grad


def test_issue17_item2_the_first_batch_decides_the_move_once():
    _, x, y = model_and_data()
    batches, move_to = where_to_move(iter([(x, y), (x, y)]), LocalEngine(),
                                     torch.device("cpu"))
    assert move_to is None and len(list(batches)) == 2  # the first batch is put back
    if torch.cuda.is_available():
        _, cuda = where_to_move(iter([(x, y)]), LocalEngine(), torch.device("cuda"))
        assert cuda == torch.device("cuda")


def _calls(path: Path) -> set[str]:
    """Names of the functions and methods ``path`` calls."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


@pytest.mark.parametrize("module", ["trials/trial.py", "rangetest/loop.py"])
def test_issue17_item2_trials_and_range_test_call_the_one_step(module):
    """Neither loop writes a step of its own: no backward, zero_grad, optimizer/scaler step,
    autocast, clipping or device check; both call lrscope.engines.step."""
    calls = _calls(SRC / module)
    assert {"optimizer_step", "where_to_move"} <= calls, module
    written_here = calls & {"backward", "zero_grad", "step", "autocast", "scale", "clip",
                            "clip_grad_norm_", "on_device", "unscale_"}
    assert not written_here, (module, sorted(written_here))
