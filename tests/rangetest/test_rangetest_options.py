"""Range-test options: accumulation, step_fn, validation, batches, epochs, engine, errors,
and what the result records."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from rangetest_support import BATCHES, CE, X, Y, mlp, run_and_compare, setup
from torch import nn

import lrscope
from lrscope.data.tensor_batches import TensorBatches
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.suggest import HEADLINE, RULES


def test_gradient_accumulation_steps_and_gradients() -> None:
    model, opt = setup("plain")
    reference = copy.deepcopy(model)
    big_x, big_y = X[:32], Y[:32]
    micro = [(big_x[i:i + 8], big_y[i:i + 8]) for i in range(0, 32, 8)]
    grads_at_step: list[list[torch.Tensor]] = []
    hook = opt.register_step_pre_hook(
        lambda *_: grads_at_step.append([p.grad.clone() for p in model.parameters()]))
    try:
        result = lrscope.range_test(model, opt, CE, micro, num_steps=6, accumulation_steps=4)
    finally:
        hook.remove()
    assert len(grads_at_step) == 6 == result.steps
    assert result.batch_size == 8 and result.effective_batch_size == 32
    CE(reference(big_x), big_y).backward()
    for got, param in zip(grads_at_step[0], reference.parameters(), strict=True):
        assert torch.allclose(got, param.grad, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        assert result.losses[0] == pytest.approx(float(CE(reference(big_x), big_y)), rel=1e-5)


def test_step_fn_for_dict_batches_and_models_with_their_own_loss() -> None:
    class OwnLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp()

        def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return CE(self.net(features), labels)

    model = OwnLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dicts = [{"features": x, "labels": y} for x, y in BATCHES]
    one = lrscope.range_test(model, opt, None, dicts, num_steps=12,
                             step_fn=lambda batch: model(**batch))
    two = lrscope.range_test(model, opt, None, dicts, num_steps=12,
                             step_fn=lambda m, batch: m(**batch))
    assert np.array_equal(one.losses, two.losses)
    assert one.batch_size == 32 and one.losses[0] == pytest.approx(math.log(10), rel=0.15)


def test_validation_loss_every_n_steps_in_eval_mode_without_grad() -> None:
    modes: list[tuple[bool, bool]] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            modes.append((self.training, torch.is_grad_enabled()))
            return x

    model = nn.Sequential(nn.Linear(20, 10), Spy())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    val = BATCHES[-3:]
    result = lrscope.range_test(model, opt, CE, BATCHES[:-3], num_steps=12, val_batches=val,
                                val_every=4)
    assert result.val_losses is not None
    measured = np.flatnonzero(np.isfinite(result.val_losses)).tolist()
    assert measured == [3, 7, 11]
    assert modes.count((False, False)) == 3 * len(val) and modes.count((True, True)) == 12
    rows = result.history_rows()
    assert rows[3]["val_loss"] == result.val_losses[3] and rows[0]["val_loss"] is None
    assert 0.5 < result.val_losses[3] < 5.0


def test_batches_are_cycled_and_one_shot_iterators_fail_clearly() -> None:
    model, opt = setup("plain")
    assert lrscope.range_test(model, opt, CE, BATCHES[:3], num_steps=10).steps == 10
    task_batches = TensorBatches(X, Y, batch_size=128, seed=0)
    assert lrscope.range_test(model, opt, CE, task_batches, num_steps=10).steps == 10
    with pytest.raises(InputError, match="ran out after 3 batches"):
        run_and_compare("plain", batches=iter(BATCHES[:3]), num_steps=10)


def test_epochs_instead_of_num_steps() -> None:
    model, opt = setup("plain")
    batches = TensorBatches(X, Y, batch_size=64, seed=0)  # 8 batches per epoch
    assert lrscope.range_test(model, opt, CE, batches, epochs=2).num_steps == 16
    assert lrscope.range_test(model, opt, CE, batches, epochs=2,
                              accumulation_steps=2).num_steps == 8
    with pytest.raises(InputError, match="not both"):
        lrscope.range_test(model, opt, CE, batches, num_steps=5, epochs=1)


class CountingEngine(LocalEngine):
    """A local engine that sees a different mean on "another rank" from step ``spike_at``."""

    name = "counting"

    def __init__(self, spike_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.spike_at = spike_at

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
        self.calls.append("setup")
        return super().setup(model, optimizer)

    def mean(self, value: float) -> float:
        self.calls.append("mean")
        if self.spike_at is not None and self.calls.count("mean") > self.spike_at:
            return value + 1e6
        return value

    def teardown(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.calls.append("teardown")


def test_stop_decision_follows_engine_mean_and_teardown_always_runs() -> None:
    engine = CountingEngine(spike_at=7)
    result = run_and_compare("plain", start_lr=1e-4, end_lr=1e-2, num_steps=30, engine=engine)
    assert result is not None and result.stopped == "diverged" and result.steps == 8
    assert result.engine == "counting" and result.world_size == 1
    model, opt = setup("plain")
    by_name = lrscope.range_test(model, opt, CE, BATCHES, num_steps=3, engine="local")
    assert by_name.engine == "local"
    assert engine.calls[0] == "setup" and engine.calls[-1] == "teardown"
    failing = CountingEngine()
    with pytest.raises(OSError):
        run_and_compare("plain", batches=_raise_after(2), num_steps=5, engine=failing)
    assert failing.calls[-1] == "teardown"


def _raise_after(n: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    yield from BATCHES[:n]
    raise OSError("gone")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"start_lr": 1.0, "end_lr": 0.1}, InputError, "end_lr=0.1 must be greater"),
    ({"mode": "expo"}, InputError, "mode='expo'"),
    ({"num_steps": 1}, InputError, "num_steps=1"),
    ({"diverge_th": 1.0}, InputError, "diverge_th=1.0"),
    ({"beta": 1.0}, InputError, "beta=1.0"),
    ({"accumulation_steps": 0}, InputError, "accumulation_steps=0"),
    ({"prefer": "steep"}, InputError, "did you mean 'steepest'"),
    ({"engine": "locl"}, InputError, "did you mean 'local'"),
    ({"val_batches": BATCHES[:1], "val_every": 0}, InputError, "val_every=0"),
    ({"loss_fn": None}, InputTypeError, "give loss_fn"),
    ({"batches": [torch.zeros(2, 20)]}, InputTypeError,
     r"not an \(inputs, targets, \*extras\) tuple"),
    ({"loss_fn": lambda out, y: CE(out, y, reduction="none")}, InputTypeError, "scalar"),
])
def test_bad_input_is_one_clear_error(kwargs: dict[str, Any], error: type[Exception],
                                      match: str) -> None:
    with pytest.raises(error, match=match):
        run_and_compare("plain", **{"num_steps": 5, **kwargs})


def test_result_records_run_and_serialises() -> None:
    model, opt = setup("plain")
    seen: list[tuple[int, float, float, float]] = []
    result = lrscope.range_test(model, opt, CE, BATCHES, start_lr=1e-3, end_lr=1.0,
                                num_steps=20, callback=lambda *a: seen.append(a))
    assert [s[0] for s in seen] == list(range(20))
    assert np.array_equal([s[2] for s in seen], result.losses)
    assert np.array_equal([s[3] for s in seen], result.smoothed)
    summary = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert summary["stopped"] == "completed" and summary["steps"] == 20
    assert summary["engine"] == "local" and summary["world_size"] == 1
    assert summary["suggestion"] == result.suggestion and summary["rule"] == HEADLINE
    assert set(summary["suggestions"]) == set(RULES)
    assert summary["reason"] == result.reason and summary["reason"].startswith(HEADLINE)
    assert summary["warnings"] == list(result.warnings)
    assert result.elapsed_s > 0 and result.effective_batch_size == 32
    rows = result.history_rows()
    assert [r["step"] for r in rows] == list(range(20)) and "val_loss" not in rows[0]
    back = RangeTestResult.from_stored(summary, rows)
    assert np.array_equal(back.smoothed, result.smoothed) and back.suggestion == result.suggestion
    assert (back.reason, back.warnings) == (result.reason, result.warnings)
    with pytest.raises(ValueError):
        result.lrs[0] = 5.0  # the arrays are read-only, like the dataclass
