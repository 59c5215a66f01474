"""Range-test figures, drawn from plain arrays (a live result or stored history alike).

``*_figure`` functions build a matplotlib :class:`~matplotlib.figure.Figure` (Agg canvas, no
pyplot, no global state); ``plot_*`` functions save one to a path and return the path.

>>> import numpy as np, tempfile, pathlib
>>> lrs = np.logspace(-4, 0, 30); smoothed = 1 - np.tanh(np.log10(lrs) + 2)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "loss.png"
>>> plot_loss_vs_lr(lrs, smoothed + 0.01, smoothed, {"steepest": 1e-2}, out).stat().st_size > 0
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lrscope.rangetest.curve_checks import learning_part
from lrscope.rangetest.smoothing import zero_lag
from lrscope.rangetest.suggest import RULE_REGISTRY

Curve = Sequence[float] | np.ndarray


def _finite(values: Curve) -> np.ndarray:
    array = np.asarray(values, dtype=float).copy()
    array[~np.isfinite(array)] = np.nan  # matplotlib leaves NaN out; inf would wreck limits
    return array


def _loss_limits(losses: np.ndarray, smoothed: np.ndarray) -> tuple[float, float] | None:
    """Y limits that show the descent: from the lowest loss to a little above the start.

    A run that blew up would otherwise squash the interesting part against the x axis.
    """
    finite = np.isfinite(smoothed)
    if finite.sum() < 2:
        return None
    curve = smoothed[finite]
    lowest = int(np.argmin(curve))
    raw = losses[np.isfinite(losses)]
    low = min(float(curve.min()), float(np.percentile(raw, 1)) if len(raw) else np.inf)
    high = float(curve[: lowest + 1].max())
    span = high - low
    if not span > 0:
        return None
    return low - 0.05 * span, high + 0.3 * span


def loss_vs_lr_figure(lrs: Curve, losses: Curve, smoothed: Curve,
                      suggestions: Mapping[str, float | None], **options: Any) -> Figure:
    """Loss against LR (log x): raw, the zero-lag smoothing the rules read (its lowest point
    marked, so a headline at half that LR shows as such), the loop's causal EMA
    (``smoothed``, which only decides when to stop), and a labelled vertical line per rule, on
    a new figure; ``options`` (``val_losses``, ``headline``, ``title``) as for
    :func:`draw_loss_vs_lr`. Rules without an answer (None) are left out; the ``headline``
    rule's label says so.
    """
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    draw_loss_vs_lr(figure.add_subplot(), lrs, losses, smoothed, suggestions, **options)
    return figure


def draw_loss_vs_lr(
    axes: Any,
    lrs: Curve,
    losses: Curve,
    smoothed: Curve,
    suggestions: Mapping[str, float | None],
    *,
    val_losses: Curve | None = None,
    headline: str | None = None,
    title: str = "LR range test",
) -> Any:
    """:func:`loss_vs_lr_figure`'s drawing, onto the matplotlib ``axes`` given; returns them."""
    x, raw, smooth = _finite(lrs), _finite(losses), _finite(smoothed)
    axes.plot(x, raw, color="tab:blue", alpha=0.3, linewidth=1, label="loss")
    axes.plot(x, smooth, color="tab:gray", linewidth=1, linestyle="--",
              label="smoothed loss (EMA: stops the run)", gid="ema")
    read = rules_curve(raw)
    axes.plot(x, read, color="tab:blue", linewidth=2,
              label="zero-lag smoothed loss (read by the rules)", gid="zero-lag")
    usable = np.isfinite(read)
    if usable.any():
        lowest = int(np.nanargmin(read))
        axes.plot([x[lowest]], [read[lowest]], "o", color="black", markersize=5,
                  label=f"lowest zero-lag loss: LR {x[lowest]:.3g}", gid="lowest")
    if val_losses is not None:
        val = _finite(val_losses)
        measured = np.isfinite(val)
        if measured.any():
            axes.plot(x[measured], val[measured], "o-", color="tab:gray", markersize=3,
                      linewidth=1, label="validation loss")
    draw_rule_lines(axes, suggestions, headline)
    axes.set_xscale("log")
    limits = _loss_limits(raw, smooth)
    if limits is not None:
        axes.set_ylim(*limits)
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return axes


def rules_curve(losses: Curve) -> np.ndarray:
    """The zero-lag smoothing of the raw ``losses`` as the suggestion rules read it: NaN after
    the first non-finite loss and from where the net collapsed
    (:func:`lrscope.rangetest.curve_checks.learning_part`) on.

    >>> np.isnan(rules_curve([2.0, 1.0, 0.5, 1.0, float("nan")])).tolist()
    [False, False, False, False, True]
    """
    y = np.asarray(losses, dtype=float)
    curve = zero_lag(y)
    finite = np.isfinite(curve)
    end = int(np.argmax(~finite)) if (~finite).any() else len(curve)
    usable = learning_part(curve[:end])
    curve[usable:] = np.nan
    return curve


def lr_vs_step_figure(lrs: Curve, *, title: str = "LR range test: learning rate") -> Figure:
    """The LR of each step (log y), to check the ramp that ran."""
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    values = _finite(lrs)
    axes.plot(np.arange(len(values)), values, color="tab:blue", label="LR/train")
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("learning rate")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return out


def plot_loss_vs_lr(
    lrs: Curve,
    losses: Curve,
    smoothed: Curve,
    suggestions: Mapping[str, float | None],
    path: str | Path,
    *,
    val_losses: Curve | None = None,
    headline: str | None = None,
    title: str = "LR range test",
) -> Path:
    """Save :func:`loss_vs_lr_figure` to ``path`` (format from the suffix); return the path."""
    figure = loss_vs_lr_figure(lrs, losses, smoothed, suggestions, val_losses=val_losses,
                               headline=headline, title=title)
    return _save(figure, path)


def plot_lr_vs_step(lrs: Curve, path: str | Path, *,
                    title: str = "LR range test: learning rate") -> Path:
    """Save :func:`lr_vs_step_figure` to ``path``; return the path."""
    return _save(lr_vs_step_figure(lrs, title=title), path)


def new_figure() -> Figure:
    """An empty loss-vs-LR sized figure on an Agg canvas (no pyplot)."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def seed_band(combined_steps: int, seed_losses: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """Per step of the combined curve, the lowest and highest finite loss over the seeds that
    ran that step (NaN where none did).

    >>> low, high = seed_band(3, [[1.0, 2.0, float("nan")], [3.0, 1.0]])
    >>> low.tolist(), high.tolist()
    ([1.0, 1.0, nan], [3.0, 2.0, nan])
    """
    matrix = np.full((len(seed_losses), combined_steps), np.nan)
    for row, losses in zip(matrix, seed_losses, strict=True):
        values = _finite(losses)[:combined_steps]
        row[:len(values)] = values
    ran = np.isfinite(matrix).any(axis=0)
    low, high = np.full(combined_steps, np.nan), np.full(combined_steps, np.nan)
    low[ran] = np.nanmin(matrix[:, ran], axis=0)
    high[ran] = np.nanmax(matrix[:, ran], axis=0)
    return low, high


def draw_rule_lines(axes: Any, suggestions: Mapping[str, float | None],
                    headline: str | None) -> None:
    """A vertical line per rule that has an answer, in its style
    (:data:`lrscope.rangetest.suggest.RULE_REGISTRY`), the headline's marked; the legend names
    each rule as the rule table, ``result.suggestions`` and ``--prefer`` do."""
    for rule, lr in suggestions.items():
        if lr is None or not np.isfinite(lr):
            continue
        known = RULE_REGISTRY.get(rule)
        color, style = known.style if known is not None else ("black", "-")
        mark = " (suggested)" if rule == headline else ""
        axes.axvline(lr, color=color, linestyle=style, linewidth=1.5,
                     label=f"{rule}: {lr:.3g}{mark}")


def draw_seed_curves(
    axes: Any,
    lrs: Curve,
    losses: Curve,
    seed_curves: Sequence[tuple[Curve, Curve]],
    seeds: Sequence[int],
    suggestions: Mapping[str, float | None],
    *,
    headline: str | None = None,
    title: str = "LR range test",
) -> Any:
    """Several seeds' range tests on ``axes``: each seed's raw loss (thin, ``gid`` "seed-S"),
    the min-max band across them (``gid`` "band"), the combined curve ``lrs``/``losses`` (thick,
    ``gid`` "combined"; the result passes the zero-lag smoothing of the median, which the rules
    read) and a vertical line per rule of the combined suggestions, the
    ``headline`` rule's marked. ``seed_curves`` is one ``(lrs, losses)`` per seed."""
    x, combined = _finite(lrs), _finite(losses)
    names = ", ".join(str(s) for s in seeds)
    for i, (seed, (seed_lrs, seed_losses)) in enumerate(zip(seeds, seed_curves, strict=True)):
        # One legend entry for all of them; matplotlib leaves "_"-labels out of the legend.
        label = f"each seed ({names})" if i == 0 else f"_seed {seed}"
        axes.plot(_finite(seed_lrs), _finite(seed_losses), linewidth=0.8, alpha=0.6,
                  color="tab:gray", label=label, gid=f"seed-{seed}")
    low, high = seed_band(len(x), [curve for _, curve in seed_curves])
    axes.fill_between(x, low, high, color="tab:blue", alpha=0.15, linewidth=0,
                      label="min-max across seeds", gid="band")
    axes.plot(x, combined, color="tab:blue", linewidth=2,
              label=f"median of {len(seeds)} seeds, smoothed (read by the rules)", gid="combined")
    draw_rule_lines(axes, suggestions, headline)
    axes.set_xscale("log")
    limits = _loss_limits(np.concatenate([low, high]), combined)
    if limits is not None:
        axes.set_ylim(*limits)
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_title(f"{title}: {len(seeds)} seeds")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return axes
