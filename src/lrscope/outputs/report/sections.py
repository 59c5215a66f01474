"""The seed study's sections, built for one run from the store (figures written as PNG).

Per run: the range test (LR vs step, loss vs LR with the suggestions) when the run has one;
the leaderboard; then per schedule family the family's best variant against a reference
schedule (LR, train loss, test loss), and its variants compared when it has several; the best
three side by side; the recipe and configuration. The reference is the run's
``config["reference"]`` when that is one of its labels, else the best schedule (for the best
schedule's own family, the best of another family). Imported TensorBoard runs of the same
family are drawn dashed beside a study's schedules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from lrscope.outputs.report.data import LabelCurves, RunView
from lrscope.outputs.report.document import Code, Paragraph, Section, Table
from lrscope.outputs.report.figures import (
    REFERENCE_COLOR,
    FigureWriter,
    Line,
    color_for,
    comparison_figure,
    save,
)
from lrscope.outputs.report.leaderboard_output import (
    NOTHING_FINISHED_NOTE,
    nothing_finished,
    shown_rows,
    single_value_note,
)
from lrscope.outputs.report.loss_scale import loss_scale_note
from lrscope.outputs.report.predicted import PREDICTED_NOTE, prediction_section
from lrscope.outputs.report.scales import sensitivity_section
from lrscope.rangetest import figures as range_figures
from lrscope.rangetest.smoothing import smooth
from lrscope.study.stats.confirmation import OPTIMISM_NOTE, Confirmation
from lrscope.study.stats.leaderboard import ranking_note
from lrscope.study.stats.ranking import TEST_LOSS, RankingMetric, ranked_on_text
from lrscope.study.stats.uncertainty import versus_rule

BAND_NOTE = ("Lines are the mean over seeds; the shaded band spans the lowest to the highest "
             "seed. Train loss is a trailing moving average over 1% of the steps.")


def run_sections(view: RunView, writer: FigureWriter,
                 overlays: Sequence[LabelCurves] = (),
                 confirmation: Confirmation | None = None) -> list[Section]:
    run = view.run
    finished = sum(t.status == "finished" for t in view.trials)
    diverged = sum(t.status == "diverged" for t in view.trials)
    head = Section(f"Run {run.name} ({run.kind})", 2).add(Paragraph(
        f"{len(view.labels)} schedules, {len(view.trials)} trials: {finished} finished, "
        f"{diverged} diverged, {len(view.trials) - finished - diverged} failed or unfinished. "
        f"Created {run.created}."))
    sections = [head]
    if view.range_test is not None:
        sections.append(range_test_section(view, writer))
    sections.append(leaderboard_section(view))
    if confirmation is not None:
        sections.append(confirmation_section(confirmation))
    if view.prediction is not None:  # a predict study: the law beside the measurements
        sections.append(prediction_section(view.rows, view.prediction, view.measured, writer,
                                           run.id, run.name))
    if view.scales:  # the run tried more than one peak-LR scale
        sections.append(sensitivity_section(view, writer))
    colors = {label: color_for(i) for i, label in enumerate(view.labels)}
    for family in view.families():
        sections.append(family_section(view, family, writer, colors, overlays))
    if view.ranked:
        top = view.ranked[:3]
        path = writer.path(run.id, "best-three")
        metric = view.rows[0].metric
        save(comparison_figure([Line(view.labels[lb], lb, colors[lb]) for lb in top],
                               f"{run.name}: the {len(top)} ranked best on {metric.label}"),
             path)
        sections.append(Section("The best three side by side", 3).add(
            writer.ref(path, best_three_caption(top, metric), "the best three")))
    sections.append(recipe_section(view))
    return sections


def best_three_caption(top: Sequence[str], metric: RankingMetric) -> str:
    """What the "best three" figure truly shows: the schedules ranked best (on what), drawn as
    LR, train loss and test loss over steps, over their finished seeds (issue 19 item 7)."""
    ranked = (f"the {metric.label} they were ranked on is the leaderboard's column"
              if (metric.split, metric.name) != ("test", "loss") else "the ranked metric")
    return (f"The {len(top)} schedules ranked best by the {ranked_on_text(metric, 'short')}: "
            f"{', '.join(top)}. Drawn against step: their learning rate, train loss and test "
            f"loss ({ranked}). Lines are the mean over each schedule's finished seeds; the "
            "shaded band spans the lowest to the highest of them. Train loss is a trailing "
            "moving average over 1% of the steps.")


def range_test_section(view: RunView, writer: FigureWriter) -> Section:
    rt = view.range_test
    assert rt is not None
    smoothed = rt.smoothed if rt.smoothed is not None else smooth(rt.losses)
    headline = next((rule for rule, lr in rt.suggestions.items() if lr == rt.suggestion), None)
    lr_path = range_figures.plot_lr_vs_step(rt.lrs, writer.path(view.run.id, "range-lr"))
    loss_path = range_figures.plot_loss_vs_lr(
        rt.lrs, rt.losses, smoothed, rt.suggestions, writer.path(view.run.id, "range-loss"),
        val_losses=rt.val_losses, headline=headline)
    rules = [[rule, f"{lr:.3g}", "headline" if rule == headline else ""]
             for rule, lr in rt.suggestions.items()]
    span = f"{rt.lrs[0]:.3g} to {rt.lrs[-1]:.3g}" if len(rt.lrs) else "no steps"
    return Section("Range test", 3).add(
        Paragraph(f"{len(rt.lrs)} steps, LR {span}; the run {rt.stopped}."),
        Table(["rule", "suggested LR", ""], rules) if rules else Paragraph("No suggestion."),
        writer.ref(lr_path, "Learning rate at each step of the range test.", "range test LR"),
        writer.ref(loss_path, "Loss against learning rate (raw and smoothed) with the "
                              "suggested learning rates.", "range test loss vs LR"))


def leaderboard_section(view: RunView) -> Section:
    header, cells = shown_rows(view.rows)
    target = next((r.target_accuracy for r in view.rows if r.target_accuracy is not None), None)
    paired = view.run.kind == "study"
    compared = view.rows[0].versus_on if view.rows else TEST_LOSS
    notes = [NOTHING_FINISHED_NOTE] if nothing_finished(view.rows) else []
    single = single_value_note(view.rows)  # one footnote, not "(n=1)" in every cell
    notes += [single] if single else []
    notes += [f"Mean ± 95% Student t interval over seeds, kept within the metric's range (a loss "
              f"never below 0; one seed: no interval), its half-width "
              f"to 2 significant digits. {ranking_note(view.rows)} A schedule that failed on half "
              "its seeds or more thus ranks below every one that finished most of them.",
              f"{versus_rule(paired)} It compares final {compared.label}; a diverged, failed or "
              f"unfinished seed counts as the run's worst {compared.label} (the worst any "
              "finished trial showed at any evaluation)."]
    if paired:
        notes.append(OPTIMISM_NOTE)
    if target is not None:
        notes.append(f"Target accuracy {target:.2%}: mean steps over the seeds that reached it "
                     "(reached/finished in brackets).")
    predicted = tuple(i for i, row in enumerate(view.rows) if not row.measured)
    if predicted:
        notes.insert(0, PREDICTED_NOTE.format(metric=view.rows[0].metric.label))
    return Section("Leaderboard", 3).add(Table(header, cells, predicted),
                                         *(Paragraph(n) for n in notes))


def confirmation_section(confirmation: Confirmation) -> Section:
    """The best and its inseparable rivals at fresh seeds, beside the study's own numbers."""
    metric = confirmation.metric_text()
    accuracy = any(c.fresh_accuracy.mean is not None for c in confirmation.schedules)
    header = ["schedule", f"{metric}, fresh seeds", f"{metric}, in the study"]
    header += ["test acc, fresh seeds", "test acc, in the study"] if accuracy else []
    header += ["finished / diverged / other"]
    cells = []
    for c in confirmation.schedules:
        line = [c.label, c.fresh.text(), c.in_sample.text()]
        line += [c.fresh_accuracy.text(), c.in_sample_accuracy.text()] if accuracy else []
        cells.append([*line, f"{c.n_finished} / {c.n_diverged} / {c.n_other}"])
    return Section("Confirmation at fresh seeds", 3).add(
        Table(header, cells), Paragraph(confirmation.note() + " Mean ± 95% Student t interval "
                                        "over the finished seeds."))


def family_section(view: RunView, family: str, writer: FigureWriter, colors: dict[str, str],
                   overlays: Sequence[LabelCurves]) -> Section:
    labels = view.family_labels(family)
    ranked = [lb for lb in view.ranked if lb in labels]
    best = ranked[0] if ranked else labels[0]
    reference = view.reference(exclude_family=family)
    section = Section(f"Family: {family}", 3)
    lines = []
    for label in labels:
        row = next(r for r in view.rows if r.label == label)
        lines.append(f"{label}: {row.n_finished} finished, {row.n_diverged} diverged of "
                     f"{row.n_trials}")
    section.add(Paragraph("; ".join(lines) + "."))
    imported = [c for c in overlays if c.family == family]
    drawn = [Line(view.labels[best], best, colors[best])]
    if reference is not None:
        drawn.append(Line(view.labels[reference], f"{reference} (reference)", REFERENCE_COLOR))
    drawn += [Line(c, f"{c.run_name}: {c.label} (imported)", color_for(i + 3), "--")
              for i, c in enumerate(imported)]
    if len(drawn) > 1 or len(labels) == 1:
        versus = f" vs {reference}" if reference is not None else ""
        path = writer.path(view.run.id, f"{family}-vs-reference")
        save(comparison_figure(drawn, f"{family}: {best}{versus}"), path)
        caption = f"{best} (best of the {family} family)"
        if reference is not None:
            caption += f" against the reference {reference}"
        if imported:
            caption += "; dashed: imported TensorBoard runs of the same family, as logged"
            caption += loss_scale_note(view.labels.values(), overlays)
        section.add(writer.ref(path, caption + ". " + BAND_NOTE, f"{family} vs reference"))
    if len(labels) > 1:
        path = writer.path(view.run.id, f"{family}-variants")
        save(comparison_figure([Line(view.labels[lb], lb, colors[lb]) for lb in labels],
                               f"{family}: variants compared"), path)
        section.add(writer.ref(path, f"The {len(labels)} {family} variants compared. "
                                     + BAND_NOTE, f"{family} variants"))
    return section


def recipe_section(view: RunView) -> Section:
    section = Section("Recipe and configuration", 3)
    if view.run.recipe:
        section.add(Paragraph("How the schedules were chosen:"), Code(view.run.recipe))
    else:
        section.add(Paragraph("No recipe stored with this run (schedules listed explicitly "
                              "or imported)."))
    specs = sorted({t.spec for t in view.trials if t.spec})
    if specs:
        section.add(Paragraph("Schedule specs:"), Code("\n".join(specs)))
    return section.add(Paragraph("Configuration:"),
                       Code(json.dumps(view.shown_config(), indent=2, sort_keys=True)))
