"""The report's LR-sensitivity part, for a run with more than one peak-LR scale (lr_scales).

One line per base schedule: its final ranking metric (the run's ``rank_by``, on validation when
the run measured it, else on test) against the scale of its peak LR, on a log axis, as the
median over all seeds that the leaderboard ranks by (a seed that did not finish counts as the
worst); a table of the same numbers with how many seeds finished; and a sentence saying at which
scale each base schedule ranks best (:mod:`lrscope.study.stats.scales`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from lrscope.outputs.report.data import RunView
from lrscope.outputs.report.document import Paragraph, Section, Table
from lrscope.outputs.report.figures import (
    LEGEND_COLUMNS,
    FigureWriter,
    color_for,
    legend_below_figure,
    plain_text,
    save,
)
from lrscope.study.stats.ranking import TEST_LOSS, RankingMetric, ranked_on_text
from lrscope.study.stats.scales import BestScale, ScaleCell, best_scale_line, best_scales


def scale_label(scale: float) -> str:
    return f"x{scale:g}"


def sensitivity_figure(series: Mapping[str, Mapping[float, ScaleCell]],
                       best: Sequence[BestScale], title: str, metric: RankingMetric) -> Figure:
    """The final ranking ``metric`` (its median over all seeds, in its own direction) against
    the LR scale (log x), one line per base; a scale where half the seeds or more did not
    finish is left out, one where some did not is labelled finished/total; each base's best
    scale is ringed."""
    # Long specs get one legend column (side by side they run off the figure).
    columns = 1 if max((len(plain_text(b)) for b in series), default=0) > 40 else LEGEND_COLUMNS
    legend_rows = -(-len(series) // columns)
    figure = legend_below_figure(7.0, 3.8, legend_rows, left=0.12, right=0.97, top_inches=0.6,
                                 bottom_inches=0.75)
    axes = figure.subplots()
    chosen = {b.base: b.scale for b in best}
    every: set[float] = set()
    for index, (base, by_scale) in enumerate(series.items()):
        points = [(s, metric.shown(c.rank_loss), c) for s, c in by_scale.items()
                  if math.isfinite(c.rank_loss)]
        if not points:
            continue
        every.update(p[0] for p in points)
        color = color_for(index)
        axes.plot([p[0] for p in points], [p[1] for p in points], color=color, marker="o",
                  markersize=4, linewidth=1.4, label=plain_text(base))
        for scale, value, cell in points:
            if cell.finished < cell.total:
                axes.annotate(f"{cell.finished}/{cell.total}", (scale, value), fontsize="x-small",
                              color=color, textcoords="offset points", xytext=(4, 4))
        mark = by_scale.get(chosen.get(base, -1.0))
        if mark is not None and math.isfinite(mark.rank_loss):
            axes.plot([chosen[base]], [metric.shown(mark.rank_loss)], marker="o", markersize=11,
                      markerfacecolor="none", markeredgecolor=color, linestyle="none")
    axes.set_xscale("log")
    ticks = sorted(every)
    axes.set_xticks(ticks, [scale_label(s) for s in ticks])
    axes.minorticks_off()
    axes.set_xlabel("peak LR scale (multiple of the suite's peak LR)")
    axes.set_ylabel(f"final {metric.label} (median over all seeds)")
    axes.grid(True, alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="lower center", fontsize="small", frameon=False,
                      ncols=min(len(handles), columns))
    else:
        axes.text(0.5, 0.5, "no scale finished most of its seeds", ha="center", va="center",
                  transform=axes.transAxes)
    figure.suptitle(plain_text(title))
    return figure


def sensitivity_section(view: RunView, writer: FigureWriter) -> Section:
    """The figure, the table and the sentence saying which scale won for each base."""
    best = best_scales(view.rows, view.origins)
    metric = view.rows[0].metric if view.rows else TEST_LOSS
    scales = sorted({s for by_scale in view.scales.values() for s in by_scale})
    shown = ", ".join(scale_label(s) for s in scales)
    winners = "; ".join(best_scale_line(b) for b in best)
    section = Section("LR sensitivity: each schedule at its best peak LR", 3).add(Paragraph(
        f"Every schedule ran at {shown} its peak LR (every LR of the schedule multiplied), so "
        "that schedules are compared each at its own best LR rather than at one shared LR; "
        f"{ranked_on_text(metric, 'scale')}: {winners}. The leaderboard shows each schedule at "
        "its best scale. Cells: the median over all seeds (unfinished: half the seeds or more "
        "did not finish) and the seeds that finished of those run."))
    chosen = {b.base: b.scale for b in best}
    header = ["schedule (x1)", *(scale_label(s) for s in scales), "best"]
    cells = [[base, *(view.scales[base][s].text(metric) if s in view.scales[base] else "—"
                      for s in scales),
              scale_label(chosen[base]) if base in chosen else "—"]
             for base in [b.base for b in best if b.base in view.scales]]
    section.add(Table(header, cells))
    path = writer.path(view.run.id, "lr-sensitivity")
    ordered = {b.base: view.scales[b.base] for b in best if b.base in view.scales}
    save(sensitivity_figure(ordered, best, f"{view.run.name}: final {metric.label} against "
                                           "the peak LR scale", metric), path)
    return section.add(writer.ref(
        path, f"Final {metric.label} against the peak-LR scale (log axis), one line per "
              "schedule: the median over all seeds, as the leaderboard ranks; a scale where "
              "half the seeds or more did not finish is left out, and finished/total labels "
              "a point where some did not; a ring marks each schedule's best scale.",
        "LR sensitivity"))
