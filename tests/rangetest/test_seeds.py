"""range_test(..., seeds=N): several data orders from one starting state, one combined answer."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from rangetest_support import BATCHES, CE, X, Y, assert_same, setup
from torch.utils.data import DataLoader, TensorDataset

import lrscope
from lrscope.data.tensor_batches import TensorBatches
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest import state
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.seeds import combine, common_length
from lrscope.rangetest.suggest import suggest

STEPS = dict(start_lr=1e-4, end_lr=10.0, num_steps=30)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)


def test_three_seeds_give_three_orders_and_a_combined_headline() -> None:
    model, opt = setup("sgd")
    result = lrscope.range_test(model, opt, CE, loader(), seeds=3, prefer="steepest", **STEPS)
    assert result.seeds == (0, 1, 2) and len(result.runs) == 3
    curves = [run.losses for run in result.runs]
    assert not np.array_equal(curves[0], curves[1]) and not np.array_equal(curves[1], curves[2])
    # The headline is the suggestion read off the combined curve, the median of the seeds'.
    assert result.suggestion is not None
    n = result.steps
    assert np.allclose(result.losses, np.median(np.stack([c[:n] for c in curves]), axis=0))
    assert (result.suggestion, result.rule, result.suggestions) == suggest(
        result.lrs, result.losses, result.diverged_at, prefer="steepest")
    assert all(run.runs == () and run.spread is None for run in result.runs)


def test_the_same_seeds_give_the_same_result() -> None:
    model, opt = setup("sgd")
    first = lrscope.range_test(model, opt, CE, loader(), seeds=[4, 7], **STEPS)
    again = lrscope.range_test(model, opt, CE, loader(), seeds=[4, 7], **STEPS)
    assert first.seeds == again.seeds == (4, 7)
    for a, b in zip(first.runs, again.runs, strict=True):
        assert np.array_equal(a.losses, b.losses)
    assert first.suggestion == again.suggestion and first.spread == again.spread


@pytest.mark.parametrize("kind", ["sgd", "adam", "batchnorm"])
def test_model_optimizer_and_global_rngs_come_back_bit_identical(kind: str) -> None:
    model, opt = setup(kind)
    model_before, opt_before = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    torch_rng, numpy_rng, python_rng = (torch.get_rng_state(), np.random.get_state(),
                                        random.getstate())
    lrscope.range_test(model, opt, CE, loader(), seeds=2, **STEPS)
    assert_same(model.state_dict(), model_before, "model")
    assert_same(opt.state_dict(), opt_before, "optimizer")
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert np.array_equal(np.random.get_state()[1], numpy_rng[1])
    assert random.getstate() == python_rng


def test_every_run_starts_from_the_same_state_with_one_snapshot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    taken = []
    real = state.snapshot
    monkeypatch.setattr(state, "snapshot", lambda *a: taken.append(1) or real(*a))
    model, opt = setup("sgd")
    # The same batches for every seed: the same start gives the same curve, bit for bit.
    result = lrscope.range_test(model, opt, CE, lambda seed: BATCHES, seeds=3, **STEPS)
    assert len(taken) == 1
    assert all(np.array_equal(run.losses, result.runs[0].losses) for run in result.runs)
    assert result.spread == 1.0
    assert any("gave the same curve" in warning for warning in result.warnings)


def test_a_callable_gets_each_seed_and_a_tensor_batches_is_reseeded() -> None:
    asked = []

    def batches(seed: int) -> TensorBatches:
        asked.append(seed)
        return TensorBatches(X, Y, batch_size=32, seed=seed)

    model, opt = setup("sgd")
    called = lrscope.range_test(model, opt, CE, batches, seeds=[5, 9], **STEPS)
    assert asked == [5, 9]
    reseeded = lrscope.range_test(model, opt, CE, TensorBatches(X, Y, batch_size=32, seed=0),
                                  seeds=[5, 9], **STEPS)
    for a, b in zip(called.runs, reseeded.runs, strict=True):
        assert np.array_equal(a.losses, b.losses)
    assert not np.array_equal(called.runs[0].losses, called.runs[1].losses)


def test_spread_is_the_largest_headline_over_the_smallest() -> None:
    model, opt = setup("sgd")
    result = lrscope.range_test(model, opt, CE, loader(), seeds=3, **STEPS)
    headlines = [run.suggestion for run in result.runs]
    assert result.spread == pytest.approx(max(headlines) / min(headlines))
    summary = result.to_dict()
    assert summary["spread"] == result.spread and summary["seeds"] == [0, 1, 2]
    assert [s["suggestion"] for s in summary["per_seed_suggestions"]] == headlines
    assert "spread" not in result.runs[0].to_dict()
    rows = result.seed_rows()
    assert [row["seed"] for row in rows] == [s for s, run in zip(result.seeds, result.runs,
                                                                 strict=True)
                                             for _ in range(run.steps)]


def _run(losses: list[float], suggestion: float | None = 0.1) -> RangeTestResult:
    lrs = np.logspace(-3, 0, 10)[:len(losses)]
    return RangeTestResult(lrs=lrs, losses=losses, smoothed=losses, suggestion=suggestion,
                           num_steps=10, start_lr=1e-3, end_lr=1.0)


def test_the_combined_curve_stops_where_fewer_than_half_still_run() -> None:
    full = [3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.7, 0.9, 1.5, 3.0]
    runs = [_run(full), _run([*full[:5], float("nan")]), _run(full[:6], suggestion=0.4)]
    result = combine(runs, [0, 1, 2], prefer="steepest")
    assert common_length([10, 6, 6]) == result.steps == 6
    # Step 5: the values are 0.8, a NaN (counted as +inf) and 0.8: the median is 0.8.
    assert result.losses.tolist() == full[:6]
    assert result.stopped == "diverged" and result.diverged_at == pytest.approx(runs[0].lrs[5])
    assert result.spread == pytest.approx(4.0)


def test_no_spread_and_a_warning_when_a_seed_has_no_suggestion() -> None:
    runs = [_run([1.0, 0.5, 0.2]), _run([1.0, 1.2, 1.5], suggestion=None)]
    result = combine(runs, [3, 8], prefer="steepest")
    assert result.spread is None and result.to_dict()["spread"] is None
    assert ("range_test: no spread: seed 8 gave no suggestion (the loss never fell on that "
            "data order)") in result.warnings


@pytest.mark.parametrize(("seeds", "batches", "error", "fragment"), [
    (0, BATCHES, InputError, "seeds=0 must be at least 1"),
    ([1, 1], BATCHES, InputError, "distinct whole numbers"),
    ("3", BATCHES, InputTypeError, "must be a count or a list of seeds"),
    (2, iter(BATCHES), InputTypeError, "one-shot iterator"),
    (2, 5, InputTypeError, "batches must be an iterable"),
])
def test_bad_seeds_or_batches_fail_before_any_step(seeds: object, batches: object,
                                                   error: type, fragment: str) -> None:
    model, opt = setup("plain")
    with pytest.raises(error, match=fragment):
        lrscope.range_test(model, opt, CE, batches, seeds=seeds, **STEPS)  # type: ignore[arg-type]


def test_the_figure_draws_each_seed_the_band_and_the_combined_curve() -> None:
    model, opt = setup("sgd")
    result = lrscope.range_test(model, opt, CE, loader(), seeds=3, **STEPS)
    ax, _ = result.plot()
    gids = [line.get_gid() for line in ax.lines if line.get_gid()]
    assert sorted(gids) == ["combined", "seed-0", "seed-1", "seed-2"]  # N + 1 curves
    bands = [c for c in ax.collections if c.get_gid() == "band"]
    assert len(bands) == 1
    labels = ax.get_legend_handles_labels()[1]
    assert "min-max across seeds" in labels
    assert "median of 3 seeds, smoothed (read by the rules)" in labels
    assert any(label.endswith("(suggested)") and label.startswith(result.rule)
               for label in labels)
    combined = next(line for line in ax.lines if line.get_gid() == "combined")
    # the curve the rules read: the zero-lag smoothing of the median raw loss
    assert np.allclose(combined.get_ydata(), result.zero_lag_smoothed)
    assert not np.allclose(combined.get_ydata(), result.losses)


def _blowing_up_on_odd_seeds(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Odd seeds scale the inputs 20x, so their range test diverges well before the end."""
    scale = 1.0 if seed % 2 == 0 else 20.0
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    return [(X[order[i:i + 32]] * scale, Y[order[i:i + 32]]) for i in range(0, len(X), 32)]


@pytest.mark.parametrize("count", [2, 4])
def test_issue16_item7_an_even_seed_count_diverges_where_half_the_seeds_stopped(
        count: int) -> None:
    """Once half the seeds have stopped, the median of a loss and +inf is +inf: the combined
    curve ends there (the median stays a measured loss) and the run diverged at the LR where
    the early seeds stopped, not at the end of the ramp."""
    model, opt = setup("sgd")
    result = lrscope.range_test(model, opt, CE, _blowing_up_on_odd_seeds, seeds=count, **STEPS)
    early = [run for seed, run in zip(result.seeds, result.runs, strict=True) if seed % 2]
    assert all(run.stopped == "diverged" and run.steps < 30 for run in early)
    assert any(run.steps == 30 for run in result.runs)  # an even seed ran the whole ramp
    assert np.isfinite(result.losses).all()
    assert result.steps == early[0].steps < STEPS["num_steps"]
    assert result.stopped == "diverged"
    assert early[0].diverged_at is not None and early[0].diverged_at < STEPS["end_lr"]
    assert result.diverged_at == pytest.approx(early[0].diverged_at)
    assert result.suggestions["divergence"] == pytest.approx(early[0].diverged_at)


def test_issue16_item7_common_length_keeps_more_than_half_running() -> None:
    assert common_length([10, 4]) == 4 and common_length([10, 10, 4, 4]) == 4
    assert common_length([10, 10, 10, 4]) == 10 and common_length([10, 7, 4]) == 7
