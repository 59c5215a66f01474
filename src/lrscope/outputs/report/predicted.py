"""The report's "Predicted, then measured" part, for a ``strategy="predict"`` study.

A predict study trains a few candidates, fits a loss-curve law to them and predicts the rest
(:mod:`lrscope.study.predict`); its record is DIR/predictions.json. This part says which law,
fitted on which runs, how its self-check went and what the study cost, then shows the law beside
the measurements: (a) the ranking metric's curve of every trained candidate at the study's first
seed (the seed the law is fitted and checked at) against the law's predicted curve, and (b) the
predicted final value of every trained candidate, with its 95% interval as an error bar,
against the value measured, beside the line y = x. A full study has no record and no such part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from lrscope.outputs.report.data import Measured
from lrscope.outputs.report.document import Paragraph, Section, Table
from lrscope.outputs.report.figures import (
    FigureWriter,
    color_for,
    legend_below_figure,
    plain_text,
    save,
)
from lrscope.study.predict.strategy import larger_budget_line, summary_lines
from lrscope.study.stats.leaderboard import LeaderboardRow
from lrscope.study.stats.predicted import fell_back, interval_text
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.store.predictions import PredictionRecord

PREDICTED_NOTE = ("Rows in italics are predicted by the loss-curve law, not trained: the value "
                  "is the law's prediction of the final {metric} at the study's first seed with "
                  "its 95% interval (the fit's error and the seed noise of the fit runs); they "
                  "hold no measurement and were never tested against the best, which is always "
                  "a trained candidate.")


def prediction_section(rows: Sequence[LeaderboardRow], record: PredictionRecord,
                       measured: Mapping[str, Measured], writer: FigureWriter, run_id: int,
                       run_name: str) -> Section:
    """The law, its fit runs, the self-check and cost lines, a table of the trained candidates
    (predicted beside measured) and the two figures."""
    metric = rows[0].metric if rows else RankingMetric()
    params = ", ".join(f"{k}={v:.3g}" for k, v in record.law_params.items())
    section = Section("Predicted, then measured", 3).add(Paragraph(
        f"Law: {record.law}" + (f" ({params})" if params else "") + ", fitted on "
        f"{', '.join(record.fit_trials) or 'no run'}"
        + (f" and on every candidate's probe (its schedule compressed into 1/"
           f"{record.probe_factor} of the run, at the first seed)" if record.probe_factor
           else "") + f". Values are the final {metric.label}." if record.candidates else
        "No law was fitted and nothing predicted: every row of the leaderboard is a "
        "measurement."))
    section.add(*(Paragraph(line) for line in summary_lines(record, untrained=False)))
    if fell_back(record) and record.candidates:
        section.add(Paragraph("The law was not trusted (what was trained instead: above): the "
                              "leaderboard holds measurements only; the law's predictions are "
                              "shown here for what they were worth."))
    if record.stopped:
        section.add(Paragraph(f"The race stopped: {record.stopped}."
                              + (f" Not separated from the best: {', '.join(record.tie)}."
                                 if record.tie else "")))
    if not record.candidates:  # nothing predicted to set beside the runs
        return section.add(*untrained_part(record, metric))
    trained = [label for label, p in record.candidates.items() if p.trained]
    cells = []
    for label in trained:
        p, run = record.candidates[label], measured.get(label)
        final = run.final if run is not None else None
        cells.append([label, interval_text(p.value, p.low, p.high),
                      "—" if final is None else f"{final:.4g}",
                      "—" if run is None else run.trial])
    section.add(Table(["trained candidate", f"predicted {metric.label} [95%]",
                       f"measured {metric.label}", "run"], cells))
    section.add(*untrained_part(record, metric))
    path = writer.path(run_id, "predicted-curves")
    save(curves_figure(record, measured, metric, f"{run_name}: predicted and measured curves"),
         path)
    section.add(writer.ref(path, f"The {metric.label} of every trained candidate at the first "
                                 "seed: measured (solid, dots at the evaluations) and predicted "
                                 "by the law (dashed).", "predicted and measured curves"))
    path = writer.path(run_id, "predicted-vs-measured")
    save(scatter_figure(record, measured, metric, f"{run_name}: predicted against measured"),
         path)
    return section.add(writer.ref(
        path, f"Final {metric.label} of each trained candidate: predicted by the law (its 95% "
              "interval as the error bar) against measured at the first seed; on the dotted "
              "line the law was exact.", "predicted against measured"))


def untrained_part(record: PredictionRecord, metric: RankingMetric) -> list[Paragraph | Table]:
    """The candidates not trained, the one the study would train next first, each with its
    probe's value (a compressed run, not the candidate) and the law's prediction."""
    if not record.untrained:
        return []
    by = record.untrained_by
    law = any(label in record.candidates for label in record.untrained)
    header = ["not trained (next first)"]
    if record.probes:
        header.append(f"probe's {metric.label} (1/{record.probe_factor} of the run, first seed)")
    if law:
        header.append("law's prediction [95%]" + (" (not trusted)" if fell_back(record) else ""))
    cells = []
    for label in record.untrained:
        value, p = record.probes.get(label), record.candidates.get(label)
        row = [label]
        if record.probes:
            row.append("—" if value is None else f"{value:.4g}")
        if law:
            row.append("—" if p is None else interval_text(p.value, p.low, p.high))
        cells.append(row)
    said = ("; a probe trains the candidate's whole schedule compressed, so its value is not "
            "the candidate's at full length" if record.probes else "")
    return [Paragraph(f"Not trained, in the order the study would train them next (by {by})"
                      f"{said}."), Table(header, cells), Paragraph(larger_budget_line(record))]


def curves_figure(record: PredictionRecord, measured: Mapping[str, Measured],
                  metric: RankingMetric, title: str) -> Figure:
    """(a) measured and predicted curves, one colour per trained candidate."""
    labels = [label for label, p in record.candidates.items() if p.trained]
    legend_rows = max(len(labels), 1)  # measured and predicted side by side
    figure = legend_below_figure(8.0, 4.0, legend_rows, left=0.1, right=0.97, top_inches=0.6,
                                 bottom_inches=0.95)
    axes = figure.subplots()
    for index, label in enumerate(labels):
        color, p, run = color_for(index), record.candidates[label], measured.get(label)
        if run is not None and len(run.steps):
            axes.plot(run.steps, run.values, color=color, marker="o", markersize=3,
                      linewidth=1.4, label=plain_text(f"{label} (measured)"))
        if p.curve:
            axes.plot(p.curve_steps, p.curve, color=color, linestyle="--", linewidth=1.4,
                      label=plain_text(f"{label} (predicted)"))
    axes.set_xlabel("step")
    axes.set_ylabel(metric.label)
    axes.grid(True, alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="lower center", fontsize="small", frameon=False,
                      ncols=min(len(handles), 2))
    else:
        axes.text(0.5, 0.5, "no curve recorded", ha="center", va="center",
                  transform=axes.transAxes)
    figure.suptitle(plain_text(title))
    return figure


def scatter_figure(record: PredictionRecord, measured: Mapping[str, Measured],
                   metric: RankingMetric, title: str) -> Figure:
    """(b) predicted (x, with its interval) against measured (y), and y = x; each candidate
    named in the legend below (labels beside close points would overlap)."""
    points = []
    for label, p in record.candidates.items():
        run = measured.get(label)
        final = run.final if run is not None else None
        if p.trained and final is not None and math.isfinite(p.value):
            points.append((label, p, final))
    figure = legend_below_figure(6.0, 5.0, len(points) + 1, left=0.14, right=0.96,
                                 top_inches=0.55, bottom_inches=0.75)
    axes = figure.subplots()
    for index, (label, p, final) in enumerate(points):
        bounded = math.isfinite(p.low) and math.isfinite(p.high)  # else: no interval to draw
        axes.errorbar([p.value], [final], xerr=[[p.value - p.low], [p.high - p.value]]
                      if bounded else None, fmt="o", color=color_for(index), capsize=3,
                      markersize=5, label=plain_text(label))
    if points:
        ends = [v for _, p, final in points for v in (p.low, p.high, final)
                if math.isfinite(v)]
        low, high = min(ends), max(ends)
        pad = 0.05 * (high - low or abs(high) or 1.0)
        axes.plot([low - pad, high + pad], [low - pad, high + pad], color="gray",
                  linestyle=":", linewidth=1.2, label="y = x (exact)")
        handles, names = axes.get_legend_handles_labels()
        figure.legend(handles, names, loc="lower center", fontsize="small", frameon=False)
    else:
        axes.text(0.5, 0.5, "no trained candidate with a prediction", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_xlabel(f"predicted final {metric.label}")
    axes.set_ylabel(f"measured final {metric.label} (first seed)")
    axes.grid(True, alpha=0.3)
    figure.suptitle(plain_text(title))
    return figure
