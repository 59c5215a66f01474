"""Range-test figures (lrscope.rangetest.figures) from plain arrays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import to_hex

from lrscope.rangetest.figures import (
    loss_vs_lr_figure,
    lr_vs_step_figure,
    plot_loss_vs_lr,
    plot_lr_vs_step,
)
from lrscope.rangetest.suggest import RULE_REGISTRY, suggest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def curve(n: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lrs = np.logspace(-5, 1, n)
    u = np.log10(lrs)
    smoothed = 2.3 - 2.0 * np.tanh(np.clip(u + 3, 0, None)) + 5 * np.clip(u, 0, None) ** 2
    noise = np.random.default_rng(0).normal(0, 0.05, n)
    raw = smoothed + noise
    raw[-1] = math.nan  # a run that ended on a NaN loss
    smoothed = smoothed.copy()
    smoothed[-1] = math.inf
    return lrs, raw, smoothed


def test_every_rule_is_a_labelled_vertical_line_at_its_lr() -> None:
    lrs, raw, smoothed = curve()
    _, rule, suggestions = suggest(lrs, smoothed, diverged_at=float(lrs[-1]))
    suggestions["valley"] = None  # a rule without an answer is left out
    figure = loss_vs_lr_figure(lrs, raw, smoothed, suggestions, headline=rule)
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    vertical = {line.get_label(): line for line in axes.get_lines()
                if len(set(np.asarray(line.get_xdata(), dtype=float))) == 1
                and line.get_gid() != "lowest"}
    assert len(vertical) == 5
    for name in ("steepest", "minimum", "midpoint", "below_minimum", "divergence"):
        (label, line), = ((k, v) for k, v in vertical.items() if k.startswith(name + ":"))
        assert float(np.asarray(line.get_xdata(), dtype=float)[0]) == suggestions[name]
        assert to_hex(line.get_color()) == to_hex(RULE_REGISTRY[name].style[0])
        assert label.endswith("(suggested)") == (name == rule)
    labels = [line.get_label() for line in axes.get_lines()]
    assert "loss" in labels and "zero-lag smoothed loss (read by the rules)" in labels
    # The y range shows the descent, not the blow-up at the end.
    low, high = axes.get_ylim()
    assert low < np.nanmin(smoothed[np.isfinite(smoothed)]) and high < 10


def test_validation_points_are_drawn_where_measured() -> None:
    lrs, raw, smoothed = curve()
    val = np.full(len(lrs), math.nan)
    val[9::10] = 1.0
    axes = loss_vs_lr_figure(lrs, raw, smoothed, {}, val_losses=val).axes[0]
    (line,) = [ln for ln in axes.get_lines() if ln.get_label() == "validation loss"]
    assert len(line.get_xdata()) == len(val[9::10])


def test_plots_write_png_files(tmp_path: Path) -> None:
    lrs, raw, smoothed = curve()
    out = plot_loss_vs_lr(lrs, raw, smoothed, suggest(lrs, smoothed)[2], tmp_path / "a" / "l.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    out = plot_lr_vs_step(lrs, tmp_path / "lr.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_lr_vs_step_has_one_point_per_step_on_log_axis() -> None:
    lrs = np.logspace(-4, 0, 25)
    axes = lr_vs_step_figure(lrs).axes[0]
    (line,) = axes.get_lines()
    assert axes.get_yscale() == "log"
    assert np.array_equal(line.get_xdata(), np.arange(25))
    assert np.array_equal(line.get_ydata(), lrs)


def test_degenerate_curves_still_draw(tmp_path: Path) -> None:
    flat = np.ones(3)
    assert plot_loss_vs_lr([1e-3, 1e-2, 1e-1], flat, flat, {"steepest": None},
                           tmp_path / "flat.png").exists()
    assert plot_loss_vs_lr([1e-3], [math.nan], [math.nan], {}, tmp_path / "nan.png").exists()


def test_issue19_item11_the_figure_draws_the_curve_the_headline_reads() -> None:
    """The thick curve is the zero-lag smoothing the rules read, its lowest point is marked, and
    the headline (below_minimum) sits at half that LR; every rule line is named as in the rule
    table (the names of lrscope.rangetest.suggest.RULES)."""
    from rangetest_support import BATCHES, CE, setup

    import lrscope
    from lrscope.rangetest.suggest import RULES

    model, opt = setup("sgd")
    result = lrscope.range_test(model, opt, CE, BATCHES * 4, start_lr=1e-4, end_lr=10.0,
                                num_steps=60)
    assert result.rule == "below_minimum"
    axes, _ = result.plot()
    (read,) = [line for line in axes.get_lines() if line.get_gid() == "zero-lag"]
    drawn = np.asarray(read.get_ydata(), dtype=float)
    expected = result.zero_lag_smoothed
    shown = np.isfinite(drawn)
    assert shown.sum() > 10 and np.allclose(drawn[shown], expected[shown])
    (lowest,) = [line for line in axes.get_lines() if line.get_gid() == "lowest"]
    lowest_lr = float(np.asarray(lowest.get_xdata())[0])
    assert lowest_lr == float(result.lrs[int(np.nanargmin(drawn))])
    assert result.suggestion == lowest_lr / 2  # visibly half of the drawn minimum
    rule_lines = [line.get_label() for line in axes.get_lines()
                  if line.get_label().split(":")[0] in RULES]
    named = {label.split(":")[0] for label in rule_lines}
    assert named == {rule for rule, lr in result.suggestions.items() if lr is not None}
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert any(t.startswith("below_minimum: ") and t.endswith("(suggested)") for t in legend)
    assert not any(t.startswith("minimum/10") for t in legend)
