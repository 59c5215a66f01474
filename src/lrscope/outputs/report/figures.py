"""The report's schedule figures: LR, train loss and test loss against step, side by side.

Each line is one schedule label: the mean over its seeds, with the min-max band over seeds
shaded where there is more than one. Figures are built on the Agg canvas without pyplot (no
global state) and saved as PNG. Labels are drawn as plain text: ``$`` is escaped so that a
schedule name never turns into mathtext, and a leading ``_`` cannot hide a legend entry.

>>> import numpy as np, tempfile, pathlib
>>> from lrscope.outputs.report.data import Curve, LabelCurves
>>> steps = np.arange(5)
>>> c = Curve(steps, np.linspace(1, 0.2, 5), np.linspace(0.9, 0.1, 5), np.linspace(1.1, 0.3, 5), 3)
>>> lc = LabelCurves("run", "a", "step", 3, "", {"lr": c, "train_loss": c, "test_loss": c})
>>> out = pathlib.Path(tempfile.mkdtemp()) / "f.png"
>>> save(comparison_figure([Line(lc, "a", "tab:blue")], "demo"), out).stat().st_size > 0
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lrscope.outputs.report.data import Curve, LabelCurves
from lrscope.outputs.report.document import FigureRef

PANELS = {"lr": "learning rate", "train_loss": "train loss (moving average)",
          "test_loss": "test loss", "test_accuracy": "test accuracy"}
DEFAULT_PANELS = ("lr", "train_loss", "test_loss")
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
REFERENCE_COLOR = "black"
DPI = 100
LEGEND_COLUMNS = 3


@dataclass(frozen=True)
class Line:
    """One label as drawn: its curves, legend text, colour and line style."""

    curves: LabelCurves
    name: str
    color: str
    style: str = "-"


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def plain_text(text: str) -> str:
    """Text that matplotlib draws literally.

    >>> plain_text("$x$ costs $5"), plain_text("_hidden")
    ('\\\\$x\\\\$ costs \\\\$5', ' _hidden')
    """
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


LEGEND_ROW_INCHES = 0.22  # one row of legend text below the plots


def legend_below_figure(width: float, plot_inches: float, legend_rows: int, *, left: float,
                        right: float, top_inches: float, bottom_inches: float,
                        **adjust: float) -> Figure:
    """A figure ``width`` inches wide: ``plot_inches`` for the plots (titles and tick labels
    within ``top_inches`` above and ``bottom_inches`` below them) over ``legend_rows`` rows of
    legend. A fixed layout: constrained layout measures every tick label twice and costs more
    than the drawing itself."""
    height = plot_inches + LEGEND_ROW_INCHES * legend_rows
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=left, right=right, top=1 - top_inches / height,
                           bottom=(bottom_inches + LEGEND_ROW_INCHES * legend_rows) / height,
                           **adjust)
    return figure


def comparison_figure(lines: Sequence[Line], title: str,
                      panels: Sequence[str] = DEFAULT_PANELS) -> Figure:
    """One panel per metric (LR, train loss, test loss), every line in each, legend below."""
    legend_rows = -(-len(lines) // LEGEND_COLUMNS)
    figure = legend_below_figure(5.0 * len(panels), 3.4, legend_rows, left=0.05, right=0.99,
                                 top_inches=0.65, bottom_inches=0.55, wspace=0.22)
    axes_row = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, metric in zip(axes_row, panels, strict=True):
        drawn = [(line, line.curves.curves.get(metric)) for line in lines]
        drawn_curves = [(line, c) for line, c in drawn if c is not None and not c.empty]
        for line, curve in drawn_curves:
            _draw(axes, line, curve, sparse=metric.startswith("test_"))
        _scale(axes, [c for _, c in drawn_curves], metric)
        axes.set_title(PANELS.get(metric, metric))
        axes.set_xlabel("step")
        axes.grid(True, alpha=0.3)
        if not drawn_curves:
            axes.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axes.transAxes)
    handles, names = axes_row[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="lower center", ncols=min(len(handles), LEGEND_COLUMNS),
                      fontsize="small", frameon=False)
    figure.suptitle(plain_text(title))
    return figure


def _draw(axes: Axes, line: Line, curve: Curve, sparse: bool) -> None:
    name = plain_text(line.name)
    if line.curves.note:
        name += f" ({line.curves.note})"
    marker = "o" if sparse and len(curve.steps) <= 50 else None
    axes.plot(curve.steps, curve.mean, color=line.color, linestyle=line.style, marker=marker,
              markersize=3, linewidth=1.4, label=name)
    if curve.n > 1:
        axes.fill_between(curve.steps, curve.low, curve.high, color=line.color, alpha=0.15,
                          linewidth=0)


def _scale(axes: Axes, curves: Sequence[Curve], metric: str) -> None:
    """Log y for LRs spanning two decades or more and for positive losses."""
    if not curves or metric == "test_accuracy":
        return
    values = np.concatenate([np.concatenate([c.low, c.high]) for c in curves])
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.min() <= 0:
        return
    if metric != "lr" or values.max() / values.min() >= 100:
        axes.set_yscale("log")


def save(figure: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI)
    return out


FIGURE_PREFIX = "report-"


class FigureWriter:
    """Saves figures under ``directory/figures`` with names unique within one report."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.folder = directory / "figures"
        self.count = 0

    def clear_old(self) -> None:
        for old in self.folder.glob(f"{FIGURE_PREFIX}*.png"):
            old.unlink()

    def path(self, run_id: int, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "figure"
        return self.folder / f"{FIGURE_PREFIX}r{run_id}-{self.count:02d}-{slug}.png"

    def ref(self, path: Path, caption: str, alt: str = "") -> FigureRef:
        return FigureRef(path.relative_to(self.directory), caption, alt)
