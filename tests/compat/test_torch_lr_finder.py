"""lrscope.compat.torch_lr_finder: torch-lr-finder 0.2.2's API, its history and plot, its input
errors, lrscope's restore; and side by side with the real torch-lr-finder package."""

from __future__ import annotations

import copy
import gc
import math
import random

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lrscope.compat.torch_lr_finder import (
    DataLoaderIter,
    LRFinder,
    TrainDataLoaderIter,
    ValDataLoaderIter,
)
from lrscope.rangetest.result import RangeTestResult

matplotlib.use("Agg")
import matplotlib.pyplot as plt

NEVER = 1e30  # a diverge_th no run reaches: the full num_iter points


def data(n=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def loader(n=96, batch_size=16, shuffle=True, seed=2):
    x, y = data(n)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed))


def make(seed=0, lr=1e-3, momentum=0.9):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


class Counting(nn.Module):
    """MSE, counting its calls and keeping the losses and the outputs' dtypes."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.calls, self.losses, self.dtypes, self.nan_at = 0, [], [], nan_at

    def forward(self, outputs, labels):
        self.calls += 1
        self.dtypes.append(outputs.dtype)
        loss = nn.functional.mse_loss(outputs.float(), labels)
        if self.calls == self.nan_at:
            loss = loss * math.nan
        self.losses.append(loss.item())
        return loss


def tlf_smooth(values, smooth_f):
    out = [values[0]]
    for v in values[1:]:
        out.append(smooth_f * v + (1 - smooth_f) * out[-1] if smooth_f > 0 else v)
    return out


# -- history: length, LR spacing, smoothing, stop rule ------------------------------------------


@pytest.mark.parametrize("mode", ["exp", "linear"])
def test_history_has_num_iter_points_from_start_to_end(mode):
    model, opt = make()
    finder = LRFinder(model, opt, nn.MSELoss())
    finder.range_test(loader(), start_lr=1e-5, end_lr=0.1, num_iter=25, step_mode=mode,
                      diverge_th=NEVER)
    lrs = np.array(finder.history["lr"])
    assert len(finder.history["lr"]) == len(finder.history["loss"]) == 25
    assert lrs[0] == 1e-5 and lrs[-1] == pytest.approx(0.1, rel=1e-12)
    steps = np.diff(np.log(lrs)) if mode == "exp" else np.diff(lrs)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)  # geometric / evenly spaced
    expected = ([1e-5 * (0.1 / 1e-5) ** (i / 24) for i in range(25)] if mode == "exp"
                else [1e-5 + (i / 24) * (0.1 - 1e-5) for i in range(25)])
    assert finder.history["lr"] == expected  # torch-lr-finder's floats


def test_start_lr_none_takes_the_optimizers_lr_and_step_mode_ignores_case():
    model, opt = make(lr=3e-4)
    finder = LRFinder(model, opt, nn.MSELoss())
    finder.range_test(loader(), end_lr=0.1, num_iter=10, step_mode="EXP", diverge_th=NEVER)
    assert finder.history["lr"][0] == 3e-4


@pytest.mark.parametrize("smooth_f", [0.05, 0.5, 0.0])
def test_loss_is_torch_lr_finders_smoothing_of_the_raw_losses(smooth_f):
    model, opt = make()
    criterion = Counting()
    finder = LRFinder(model, opt, criterion)
    finder.range_test(loader(), start_lr=1e-4, end_lr=0.1, num_iter=12, smooth_f=smooth_f,
                      diverge_th=NEVER)
    assert finder.history["loss"] == pytest.approx(tlf_smooth(criterion.losses, smooth_f),
                                                   rel=1e-12)
    assert finder.best_loss == min(finder.history["loss"])
    assert isinstance(finder.result, RangeTestResult) and finder.result.steps == 12
    assert finder.result.suggestion is not None and finder.result.stopped == "completed"
    np.testing.assert_array_equal(finder.result.losses, criterion.losses)  # lrscope's: raw


def test_stops_after_the_first_loss_above_diverge_th_times_the_best():
    model, opt = make()
    criterion = Counting()
    finder = LRFinder(model, opt, criterion)
    finder.range_test(loader(), start_lr=1e-3, end_lr=100.0, num_iter=60, diverge_th=3)
    losses = finder.history["loss"]
    assert 1 < len(losses) < 60 and criterion.calls == len(losses)  # no step past the stop
    assert losses[-1] > 3 * min(losses[:-1])
    assert all(v <= 3 * min(losses[: i + 1]) for i, v in enumerate(losses[:-1]))
    assert finder.result.stopped == "diverged" and finder.result.steps == len(losses)
    assert finder.result.diverged_at == finder.history["lr"][-1]


def test_a_nan_loss_ends_the_run_and_everything_is_restored():
    model, opt = make()
    before = copy.deepcopy(model.state_dict())
    criterion = Counting(nan_at=4)
    finder = LRFinder(model, opt, criterion)
    finder.range_test(loader(), start_lr=1e-4, end_lr=1e-2, num_iter=20)
    assert len(finder.history["loss"]) == 4 and math.isnan(finder.history["loss"][-1])
    assert criterion.calls == 4
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert finder.result.stopped == "diverged"


# -- restore and reset --------------------------------------------------------------------------


def state_of(model, opt):
    return (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
            [m.training for m in model.modules()], torch.get_rng_state(), random.getstate(),
            np.random.get_state()[1].copy())


def assert_same_state(a, b):
    (ms_a, os_a, tr_a, rng_a, py_a, np_a), (ms_b, os_b, tr_b, rng_b, py_b, np_b) = a, b
    assert ms_a.keys() == ms_b.keys()
    assert all(torch.equal(ms_a[k], ms_b[k]) for k in ms_a)
    assert os_a["param_groups"] == os_b["param_groups"]
    assert os_a["state"].keys() == os_b["state"].keys()
    for key in os_a["state"]:
        for name, value in os_a["state"][key].items():
            other = os_b["state"][key][name]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other
    assert tr_a == tr_b and torch.equal(rng_a, rng_b) and py_a == py_b
    assert np.array_equal(np_a, np_b)


def bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = data(16)
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()  # momentum buffers and BatchNorm statistics to restore
    model[1].eval()  # a frozen BatchNorm stays frozen afterwards
    return model, opt


@pytest.mark.parametrize("stop", [False, True])
def test_model_optimizer_and_rngs_are_bitwise_as_before_after_range_test_and_reset(stop):
    model, opt = bn_model()
    group, weight = opt.param_groups[0], model[0].weight
    before = state_of(model, opt)
    finder = LRFinder(model, opt, nn.MSELoss())
    finder.range_test(loader(), start_lr=1e-4, end_lr=50.0 if stop else 0.05, num_iter=30,
                      diverge_th=2 if stop else NEVER)
    assert (len(finder.history["lr"]) < 30) == stop  # the partial history is kept
    assert_same_state(before, state_of(model, opt))
    assert opt.param_groups[0] is group and model[0].weight is weight
    finder.reset()
    assert_same_state(before, state_of(model, opt))


def test_reset_goes_back_to_the_state_at_construction():
    model, opt = bn_model()
    before = state_of(model, opt)
    finder = LRFinder(model, opt, nn.MSELoss())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    opt.param_groups[0]["lr"] = 0.5
    finder.reset()
    assert_same_state(before, state_of(model, opt))


def test_a_second_range_test_needs_no_reset_and_gives_the_same_history():
    model, opt = make()
    finder = LRFinder(model, opt, nn.MSELoss())
    finder.range_test(loader(shuffle=False), end_lr=1.0, num_iter=15)
    first = copy.deepcopy(finder.history)
    finder.range_test(loader(shuffle=False), end_lr=1.0, num_iter=15)
    assert finder.history == first


def test_snapshots_on_disk_with_memory_cache_false(tmp_path):
    model, opt = make()
    before = state_of(model, opt)
    finder = LRFinder(model, opt, nn.MSELoss(), memory_cache=False, cache_dir=str(tmp_path))
    finder.range_test(loader(), end_lr=1.0, num_iter=10)
    assert_same_state(before, state_of(model, opt))
    finder.reset()
    assert_same_state(before, state_of(model, opt))
    assert len(list(tmp_path.iterdir())) == 1  # the construction snapshot, for reset()
    del finder
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_the_model_trains_in_train_mode_and_its_flags_come_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1)).eval()
    seen = []

    def criterion(outputs, labels):
        seen.append(model.training)
        return nn.functional.mse_loss(outputs, labels)

    finder = LRFinder(model, torch.optim.SGD(model.parameters(), lr=1e-3), criterion)
    finder.range_test(loader(), val_loader=loader(32, shuffle=False), num_iter=3)
    assert seen == [True, False, False] * 3  # one train batch, two validation batches per step
    assert not model.training


# -- accumulation, AMP and the GradScaler -------------------------------------------------------


def test_accumulation_calls_the_criterion_accumulation_steps_x_num_iter_times():
    model, opt = make()
    criterion = Counting()
    finder = LRFinder(model, opt, criterion)
    finder.range_test(loader(batch_size=8), end_lr=1.0, num_iter=7, accumulation_steps=3,
                      diverge_th=NEVER)
    assert criterion.calls == 21 and len(finder.history["lr"]) == 7
    means = np.array(criterion.losses).reshape(7, 3).mean(1)
    np.testing.assert_allclose(finder.result.losses, means, rtol=1e-6)


class CountingScaler(torch.amp.GradScaler):
    def __init__(self, device="cpu"):
        super().__init__(device)
        self.scale_calls = 0

    def scale(self, outputs):
        self.scale_calls += 1
        return super().scale(outputs)


def test_torch_amp_uses_autocast_and_scales_every_micro_batch():
    model, opt = make()
    scaler, criterion = CountingScaler(), Counting()
    finder = LRFinder(model, opt, criterion, amp_backend="torch", grad_scaler=scaler,
                      amp_config={"device_type": "cpu", "dtype": torch.bfloat16})
    finder.range_test(loader(batch_size=8), end_lr=1.0, num_iter=5, accumulation_steps=2,
                      diverge_th=NEVER)
    assert scaler.scale_calls == criterion.calls == 10
    assert set(criterion.dtypes) == {torch.bfloat16}
    assert len(finder.history["lr"]) == 5


def test_a_grad_scaler_without_amp_backend_is_not_used():
    model, opt = make()
    scaler = CountingScaler()
    finder = LRFinder(model, opt, nn.MSELoss(), grad_scaler=scaler)
    finder.range_test(loader(), end_lr=1.0, num_iter=4)
    assert scaler.scale_calls == 0


# -- validation and custom loader iterators -----------------------------------------------------


def test_validation_loss_over_the_whole_val_loader_after_every_step():
    model, opt = make()
    criterion = Counting()
    val = loader(40, batch_size=16, shuffle=False)  # 3 batches: 16, 16, 8
    finder = LRFinder(model, opt, criterion)
    finder.range_test(loader(), val_loader=val, end_lr=1.0, num_iter=6, smooth_f=0.5,
                      diverge_th=NEVER)
    assert criterion.calls == 6 * (1 + 3)
    per_step = np.array(criterion.losses).reshape(6, 4)
    val_means = (per_step[:, 1:] * [16, 16, 8]).sum(1) / 40
    np.testing.assert_allclose(finder.result.val_losses, val_means, rtol=1e-12)
    assert finder.history["loss"] == pytest.approx(tlf_smooth(list(val_means), 0.5), rel=1e-12)


class DictData(Dataset):
    def __init__(self, n):
        self.x, self.y = data(n)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"features": self.x[i], "target": self.y[i]}


class DictTrainIter(TrainDataLoaderIter):
    def inputs_labels_from_batch(self, batch_data):
        return batch_data["features"], batch_data["target"]


class DictValIter(ValDataLoaderIter):
    def inputs_labels_from_batch(self, batch_data):
        return batch_data["features"], batch_data["target"]


def test_custom_loader_iterators_read_dict_batches():
    model, opt = make()
    train = DataLoader(DictData(64), batch_size=16, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    val = DataLoader(DictData(32), batch_size=16)
    finder = LRFinder(model, opt, nn.MSELoss())
    finder.range_test(DictTrainIter(train), val_loader=DictValIter(val), end_lr=1.0, num_iter=8,
                      diverge_th=NEVER)
    assert len(finder.history["loss"]) == 8 and all(map(math.isfinite, finder.history["loss"]))
    with pytest.raises(ValueError, match="batch type is not supported"):
        LRFinder(model, opt, nn.MSELoss()).range_test(train, num_iter=3)


def test_loader_iterators_behave_like_torch_lr_finders():
    dl = loader(40, batch_size=16, shuffle=False)
    plain = DataLoaderIter(dl)
    assert iter(plain) is plain and plain.dataset is dl.dataset
    train = TrainDataLoaderIter(dl)
    assert [len(next(train)[0]) for _ in range(4)] == [16, 16, 8, 16]
    val = ValDataLoaderIter(dl)
    assert [len(x) for x, _ in val] == [16, 16, 8] == [len(x) for x, _ in val]
    once = TrainDataLoaderIter(dl, auto_reset=False)
    for _ in range(3):
        next(once)
    with pytest.raises(StopIteration):
        next(once)
    model, opt = make()
    with pytest.raises(ValueError, match="ran out"):  # lrscope's error, not a StopIteration
        LRFinder(model, opt, nn.MSELoss()).range_test(TrainDataLoaderIter(dl, auto_reset=False),
                                                      num_iter=5)


# -- plot ---------------------------------------------------------------------------------------


@pytest.fixture
def finished():
    model, opt = make()
    finder = LRFinder(model, opt, nn.MSELoss())
    finder.range_test(loader(), start_lr=1e-5, end_lr=0.3, num_iter=40, diverge_th=NEVER)
    assert len(finder.history["lr"]) == 40
    yield finder
    plt.close("all")


@pytest.mark.parametrize(("skip_start", "skip_end"), [(10, 5), (3, 0), (0, 0)])
def test_plot_suggests_the_steepest_point_of_the_plotted_curve(finished, skip_start, skip_end):
    _, ax = plt.subplots()
    got = finished.plot(skip_start=skip_start, skip_end=skip_end, ax=ax)
    end = 40 - skip_end
    lrs = finished.history["lr"][skip_start:end]
    losses = finished.history["loss"][skip_start:end]
    assert isinstance(got, tuple) and got[0] is ax
    assert got[1] == lrs[int(np.argmin(np.gradient(losses)))]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), lrs)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), losses)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "Learning rate"


def test_plot_without_suggestion_returns_the_axes(finished, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    ax = finished.plot(suggest_lr=False, log_lr=False, show_lr=0.01)
    assert isinstance(ax, matplotlib.axes.Axes) and shown == [True]  # a new figure is shown
    assert ax.get_xscale() == "linear" and list(ax.lines[1].get_xdata()) == [0.01, 0.01]


def test_plot_checks_its_arguments(finished):
    with pytest.raises(ValueError, match="skip_start"):
        finished.plot(skip_start=-1)
    with pytest.raises(ValueError, match="skip_end"):
        finished.plot(skip_end=-1)
    with pytest.raises(ValueError, match="show_lr"):
        finished.plot(show_lr=1)
    with pytest.raises(RuntimeError, match="Need at least 42 iterations"):
        finished.plot(skip_start=35, skip_end=5)


# -- input errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"num_iter": 1}, ValueError, "larger than 1"),
    ({"num_iter": 0}, ValueError, "larger than 1"),
    ({"num_iter": 2.5}, TypeError, "num_iter"),
    ({"step_mode": "cos"}, ValueError, "expected one of"),
    ({"smooth_f": 1}, ValueError, "smooth_f"),
    ({"smooth_f": -0.1}, ValueError, "smooth_f"),
    ({"start_lr": [1e-3, 1e-2]}, ValueError, "number of parameter groups"),
    ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, "end_lr"),
    ({"accumulation_steps": 0}, ValueError, "accumulation_steps"),
    ({"val_loader": [1, 2]}, ValueError, "val_loader"),
])
def test_range_test_rejects_bad_input(kwargs, error, match):
    model, opt = make()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(error, match=match):
        LRFinder(model, opt, nn.MSELoss()).range_test(loader(), **{"num_iter": 5, **kwargs})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("train_loader", [[(torch.zeros(2, 4), torch.zeros(2, 1))], "iter"])
def test_train_loader_must_be_a_dataloader_or_train_iter(train_loader):
    model, opt = make()
    train_loader = iter(loader()) if train_loader == "iter" else train_loader
    for error in (ValueError, TypeError):
        with pytest.raises(error, match="`train_loader` has unsupported type"):
            LRFinder(model, opt, nn.MSELoss()).range_test(train_loader, num_iter=5)


def test_constructor_rejects_bad_amp_and_cache_settings(tmp_path):
    model, opt = make()
    with pytest.raises(ValueError, match="Unknown amp backend"):
        LRFinder(model, opt, nn.MSELoss(), amp_backend="foo")
    with pytest.raises(ValueError, match="apex"):
        LRFinder(model, opt, nn.MSELoss(), amp_backend="apex")
    with pytest.raises(ValueError, match="grad_scaler"):
        LRFinder(model, opt, nn.MSELoss(), amp_backend="torch")
    with pytest.raises(ValueError, match="cache_dir"):
        LRFinder(model, opt, nn.MSELoss(), memory_cache=False, cache_dir=str(tmp_path / "no"))


# -- side by side with the real torch-lr-finder -------------------------------------------------


def two_groups():
    model, _ = make()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 1e-4},
                           {"params": model[2].parameters(), "lr": 1e-3}], momentum=0.9)
    return model, opt


@pytest.mark.parametrize("case", ["exp", "linear", "accumulation", "validation", "groups"])
def test_same_history_as_torch_lr_finder(case):
    tlf = pytest.importorskip("torch_lr_finder")
    kwargs = {"end_lr": 10.0, "num_iter": 40}
    if case == "linear":
        kwargs.update(end_lr=1.0, step_mode="linear")
    if case == "accumulation":
        kwargs.update(accumulation_steps=2)
    histories = []
    for module in (tlf, None):
        model, opt = two_groups() if case == "groups" else make()
        finder_class = LRFinder if module is None else module.LRFinder
        finder = finder_class(model, opt, nn.MSELoss())
        val = loader(40, shuffle=False) if case == "validation" else None
        finder.range_test(loader(), val_loader=val, **kwargs)
        histories.append(finder.history)
    theirs, ours = histories
    assert ours["lr"] == theirs["lr"]  # the same floats
    # The same float operations in the same order: in practice bitwise equal. The tolerance
    # leaves room for a float32 reduction order that differs between torch builds (the summed
    # micro-batch losses); the history length (the stop rule) must match exactly.
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-6)
    assert 1 < len(ours["lr"]) <= 40


# -- device -------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_moves_the_model_there_for_the_test_and_back():
    model, opt = bn_model()
    before = state_of(model, opt)
    scaler, criterion = CountingScaler("cuda"), Counting()
    finder = LRFinder(model, opt, criterion, device="cuda", amp_backend="torch",
                      grad_scaler=scaler, amp_config={"device_type": "cuda",
                                                      "dtype": torch.float16})
    finder.range_test(loader(), val_loader=loader(32, shuffle=False), end_lr=0.05, num_iter=6,
                      accumulation_steps=2, diverge_th=NEVER)
    assert len(finder.history["lr"]) == 6 and scaler.scale_calls == 12
    assert torch.float16 in criterion.dtypes
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(t.device.type == "cpu" for s in opt.state.values() for t in s.values()
               if torch.is_tensor(t))
    assert_same_state(before, state_of(model, opt))
    finder.reset()
    assert_same_state(before, state_of(model, opt))


# -- the LR hook (issue 17 item 2) --------------------------------------------------------------


def test_issue17_item2_lrs_are_set_by_the_hook_not_by_the_step_function():
    """The drop-in's step function only scores a batch; its LRs go through the range test's
    LR hook (``_Run.set_lrs``), one row of torch-lr-finder's table per step."""
    from lrscope.compat.torch_lr_finder import _lr_table, _Run

    model, opt = two_groups()
    finder = LRFinder(model, opt, nn.MSELoss())
    table = _lr_table([1e-4, 1e-3], 1.0, 5, "exp")
    run = _Run(finder, table, None, 0.05, 5.0)
    batch = next(iter(loader()))
    run.score(model, batch)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]  # scoring set no LR
    assert run.set_lrs(3) == table[3][0]
    assert [g["lr"] for g in opt.param_groups] == table[3]
