"""What torch-lr-finder's users rely on, in the native range test: start_lr=None, extras in
batches, mixed precision with a GradScaler, a disk cache for the snapshot, plot(ax=...)."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure
from rangetest_support import assert_same
from torch import nn

import lrscope

matplotlib.use("Agg")
CE = nn.functional.cross_entropy


def _setup(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, list]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 4, generator=g)
    y = (x.sum(1) > 0).long()
    return model, optimizer, [(x[i:i + 16], y[i:i + 16]) for i in range(0, 128, 16)]


def _state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {"model": {k: v.clone() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict()}


def test_start_lr_none_starts_at_the_optimizers_lr():
    model, optimizer, batches = _setup()
    result = lrscope.range_test(model, optimizer, CE, batches, start_lr=None, end_lr=1.0,
                                num_steps=10)
    assert result.start_lr == 0.03 and result.lrs[0] == pytest.approx(0.03)
    assert optimizer.param_groups[0]["lr"] == 0.03


def test_extras_in_a_batch_are_passed_over():
    model, optimizer, batches = _setup()
    plain = lrscope.range_test(model, optimizer, CE, batches, start_lr=1e-3, num_steps=8)
    ids = [(x, y, torch.arange(len(y)), "name") for x, y in batches]
    extras = lrscope.range_test(model, optimizer, CE, ids, start_lr=1e-3, num_steps=8)
    assert extras.losses.tolist() == plain.losses.tolist()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs_and_restores_bitwise(precision):
    model, optimizer, batches = _setup()
    CE(model(batches[0][0]), batches[0][1]).backward()
    optimizer.step()
    before = _state(model, optimizer)
    full = lrscope.range_test(model, optimizer, CE, batches, start_lr=1e-3, num_steps=8)
    mixed = lrscope.range_test(model, optimizer, CE, batches, start_lr=1e-3, num_steps=8,
                               precision=precision)
    assert mixed.steps == 8
    assert mixed.losses.tolist() != full.losses.tolist()  # the forward really ran in low precision
    assert abs(mixed.losses[0] - full.losses[0]) < 0.05  # ... and close to the full one
    after = _state(model, optimizer)
    assert_same(after, before)
    assert all(p.dtype == torch.float32 for p in model.parameters())


class CountingScaler(torch.amp.GradScaler):
    """A real GradScaler that counts its calls (torch-lr-finder's tests count them too)."""

    def __init__(self) -> None:
        super().__init__("cpu", init_scale=2.0**8)
        self.calls = 0

    def scale(self, outputs):  # type: ignore[override]
        self.calls += 1
        return super().scale(outputs)


def test_a_users_grad_scaler_is_used_every_micro_batch_and_its_state_restored():
    model, optimizer, batches = _setup()
    scaler = CountingScaler()
    before = scaler.state_dict()
    result = lrscope.range_test(model, optimizer, CE, batches, start_lr=1e-3, num_steps=6,
                                accumulation_steps=2, grad_scaler=scaler)
    assert result.steps == 6 and scaler.calls == 12
    assert scaler.state_dict() == before


def test_bad_precision_and_scaler_are_one_clear_error():
    model, optimizer, batches = _setup()
    with pytest.raises(ValueError, match="precision='fp8'"):
        lrscope.range_test(model, optimizer, CE, batches, precision="fp8")
    with pytest.raises(TypeError, match=r"grad_scaler must be a torch\.amp\.GradScaler"):
        lrscope.range_test(model, optimizer, CE, batches, grad_scaler=object())


def test_disk_cache_restores_bitwise_and_leaves_no_file(tmp_path):
    model, optimizer, batches = _setup()
    CE(model(batches[0][0]), batches[0][1]).backward()
    optimizer.step()
    before = _state(model, optimizer)
    seen: list[int] = []
    lrscope.range_test(model, optimizer, CE, batches, start_lr=1e-3, end_lr=10.0,
                       num_steps=12, cache_dir=tmp_path / "cache",
                       callback=lambda *a: seen.append(len(list((tmp_path / "cache").iterdir()))))
    assert seen and all(n == 1 for n in seen)  # the snapshot sat on disk during the run
    assert list((tmp_path / "cache").iterdir()) == []
    assert_same(_state(model, optimizer), before)


def test_plot_on_given_axes_returns_them_and_a_new_figure_otherwise(tmp_path):
    model, optimizer, batches = _setup()
    result = lrscope.range_test(model, optimizer, CE, batches, start_lr=1e-4, num_steps=20)
    figure = Figure()
    ax = figure.add_subplot()
    assert result.plot(ax=ax) is ax
    assert ax.get_xscale() == "log" and len(ax.get_lines()) >= 2
    made_ax, made_figure = result.plot(tmp_path / "loss.png")
    assert made_ax.figure is made_figure and (tmp_path / "loss.png").stat().st_size > 0
