"""The report's LR-sensitivity part, for a run with more than one peak-LR scale (lr_scales).

One line per base schedule: its final ranking metric (validation loss when the run measured
one, else test loss) against the scale of its peak LR, on a log axis, as the mean over the
finished seeds with its 95% interval; a table of the same numbers; and a sentence saying at
which scale each base schedule ranks best (:mod:`lrscope.study.stats.scales`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lrscope.outputs.report.data import RunView
from lrscope.outputs.report.document import Paragraph, Section, Table
from lrscope.outputs.report.figures import LEGEND_COLUMNS, color_for, plain_text, save
from lrscope.study.stats.scales import BestScale, best_scale_line, best_scales, metric_name
from lrscope.study.stats.uncertainty import Estimate

if TYPE_CHECKING:
    from lrscope.outputs.report.sections import FigureWriter


def scale_label(scale: float) -> str:
    return f"x{scale:g}"


def sensitivity_figure(series: Mapping[str, Mapping[float, Estimate]], best: Sequence[BestScale],
                       title: str, metric: str) -> Figure:
    """Final ``metric`` against the LR scale (log x), one line per base, error bars from the
    interval over seeds; each base's best scale is ringed."""
    # Long specs get one legend column (side by side they run off the figure).
    columns = 1 if max((len(plain_text(b)) for b in series), default=0) > 40 else LEGEND_COLUMNS
    legend_rows = -(-len(series) // columns)
    height = 3.8 + 0.22 * legend_rows
    figure = Figure(figsize=(7.0, height))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.12, right=0.97, top=1 - 0.6 / height,
                           bottom=(0.75 + 0.22 * legend_rows) / height)
    axes = figure.subplots()
    chosen = {b.base: b.scale for b in best}
    every: set[float] = set()
    means: list[float] = []
    for index, (base, by_scale) in enumerate(series.items()):
        points = [(s, e.mean, e.low, e.high) for s, e in by_scale.items() if e.mean is not None]
        if not points:
            continue
        every.update(p[0] for p in points)
        x = np.array([p[0] for p in points])
        y = np.array([p[1] for p in points], dtype=float)
        means += [float(v) for v in y if np.isfinite(v)]
        # one seed: no interval, no bar
        low = [p[1] - p[2] if p[1] is not None and p[2] is not None else 0.0 for p in points]
        high = [p[3] - p[1] if p[1] is not None and p[3] is not None else 0.0 for p in points]
        color = color_for(index)
        axes.errorbar(x, y, yerr=np.array([low, high]), color=color, marker="o", markersize=4,
                      capsize=3, linewidth=1.4, label=plain_text(base))
        mark = by_scale.get(chosen.get(base, -1.0))
        if mark is not None and mark.mean is not None:
            axes.plot([chosen[base]], [mark.mean], marker="o", markersize=11,
                      markerfacecolor="none", markeredgecolor=color, linestyle="none")
    if means:
        # The means set the view: with 2-3 seeds a t interval can be far wider than the spread
        # of the means, and would flatten every line (the bars run off the top and bottom).
        low_end, high_end = min(means), max(means)
        pad = 0.15 * (high_end - low_end) or 0.1 * abs(high_end) or 0.1
        axes.set_ylim(low_end - pad, high_end + pad)
    axes.set_xscale("log")
    ticks = sorted(every)
    axes.set_xticks(ticks, [scale_label(s) for s in ticks])
    axes.minorticks_off()
    axes.set_xlabel("peak LR scale (multiple of the suite's peak LR)")
    axes.set_ylabel(f"final {metric} (bars: 95% CI over seeds)")
    axes.grid(True, alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="lower center", fontsize="small", frameon=False,
                      ncols=min(len(handles), columns))
    else:
        axes.text(0.5, 0.5, "no finished trials", ha="center", va="center",
                  transform=axes.transAxes)
    figure.suptitle(plain_text(title))
    return figure


def sensitivity_section(view: RunView, writer: FigureWriter) -> Section:
    """The figure, the table and the sentence saying which scale won for each base."""
    best = best_scales(view.rows, view.origins)
    ranked_on = view.rows[0].ranked_on if view.rows else "test_loss"
    metric = metric_name(ranked_on)
    scales = sorted({s for by_scale in view.scales.values() for s in by_scale})
    shown = ", ".join(scale_label(s) for s in scales)
    winners = "; ".join(best_scale_line(b) for b in best)
    section = Section("LR sensitivity: each schedule at its best peak LR", 3).add(Paragraph(
        f"Every schedule ran at {shown} its peak LR (every LR of the schedule multiplied), so "
        "that schedules are compared each at its own best LR rather than at one shared LR. "
        f"Each is ranked at its best scale, chosen on the {metric} (the leaderboard's median "
        f"over seeds): {winners}."))
    chosen = {b.base: b.scale for b in best}
    header = ["schedule (x1)", *(scale_label(s) for s in scales), "best"]
    cells = [[base, *(view.scales[base][s].text() if s in view.scales[base] else "—"
                      for s in scales),
              scale_label(chosen[base]) if base in chosen else "—"]
             for base in [b.base for b in best if b.base in view.scales]]
    section.add(Table(header, cells))
    path = writer.path(view.run.id, "lr-sensitivity")
    ordered = {b.base: view.scales[b.base] for b in best if b.base in view.scales}
    save(sensitivity_figure(ordered, best, f"{view.run.name}: final {metric} against the "
                                           "peak LR scale", metric), path)
    return section.add(writer.ref(
        path, f"Final {metric} against the peak-LR scale (log axis), one line per schedule: "
              "mean over the finished seeds with its 95% Student t interval; a ring marks "
              "each schedule's best scale.", "LR sensitivity"))
