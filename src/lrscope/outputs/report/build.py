"""``lrscope report DIR``: report.md, report.html and leaderboard.csv, from the store only.

Study runs are the main part; imported TensorBoard runs get their own sections and are drawn
dashed beside a study's schedules of the same family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lrscope.outputs.report import html as html_writer
from lrscope.outputs.report import markdown as markdown_writer
from lrscope.outputs.report.data import LabelCurves, RunView, load_run
from lrscope.outputs.report.document import Document, FigureRef, Paragraph, Section
from lrscope.outputs.report.figures import FigureWriter
from lrscope.outputs.report.leaderboard_output import write_csv
from lrscope.outputs.report.sections import run_sections
from lrscope.study.predict.probes import is_probe_run
from lrscope.study.stats.confirmation import Confirmation, confirms, read_confirmation
from lrscope.study.stats.leaderboard import LeaderboardRow
from lrscope.study.stats.verdict import verdict
from lrscope.study.store import STORE_FILENAME, Store
from lrscope.study.store.predictions import load_predictions
from lrscope.study.store.ran import how_it_ran


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    leaderboard_csv: Path
    figures: list[Path]
    leaderboards: list[tuple[str, list[LeaderboardRow]]]   # (run name, rows) per run
    # study name -> its confirmation at fresh seeds (lrscope.study.stats.confirmation)
    confirmations: dict[str, Confirmation] = field(default_factory=dict)


def write_report(directory: str | Path, target_accuracy: float | None = None) -> ReportFiles:
    """(Re)write the report of the store in ``directory``; InputError if there is none."""
    directory = Path(directory)
    with Store.in_dir(directory, create=False) as store:
        # a confirmation run is read into its study's report, never as a run of its own
        # a predict study's record (DIR/predictions.json) adds its predicted rows and section;
        # its probes (a study of their own, lrscope.study.predict.probes) are not a study shown
        views = [load_run(store, run, target_accuracy, load_predictions(directory, run.name))
                 for run in store.runs()
                 if confirms(run) is None and not is_probe_run(run.config)]
        found = {view.run.name: read_confirmation(store, view.run) for view in views}
    confirmations = {name: c for name, c in found.items() if c is not None}
    document, figures = build_document(views, directory, confirmations)
    md_path = directory / "report.md"
    md_path.write_text(markdown_writer.render(document), encoding="utf-8")
    html_path = directory / "report.html"
    html_path.write_text(html_writer.render(document, directory), encoding="utf-8")
    tables = [(v.run.name, v.rows) for v in views]
    csv_path = write_csv(directory / "leaderboard.csv", tables)
    return ReportFiles(md_path, html_path, csv_path, [directory / f.path for f in figures],
                       tables, confirmations)


def build_document(views: list[RunView], directory: Path,
                   confirmations: Mapping[str, Confirmation] | None = None,
                   ) -> tuple[Document, list[FigureRef]]:
    writer = FigureWriter(directory)
    writer.clear_old()
    studies = [v for v in views if v.run.kind == "study"]
    imports = [v for v in views if v.run.kind != "study"]
    document = Document("lrscope report")
    names = ", ".join(f"{v.run.name} ({v.run.kind})" for v in views) or "none"
    document.intro.append(Paragraph(f"From {directory / STORE_FILENAME}. Runs: {names}."))
    for view in studies:  # the answer first, in plain words (issue 19 item 9)
        title = "Verdict" if len(studies) == 1 else f"Verdict: {view.run.name}"
        document.sections.append(Section(title, 2).add(*(Paragraph(sentence) for sentence in
                                 verdict(view.rows, how_it_ran(directory, view.run.name),
                                         view.prediction.tie if view.prediction else ()))))
    overlays = [_best_per_family(v) for v in imports]
    for view in studies:
        document.sections += run_sections(view, writer, [c for o in overlays for c in o],
                                          (confirmations or {}).get(view.run.name))
    for view in imports:
        document.sections += run_sections(view, writer)
    if not views:
        document.intro.append(Paragraph("The store holds no runs yet."))
    return document, document.figures


def _best_per_family(view: RunView) -> list[LabelCurves]:
    """An imported run's best label of each family: what is drawn beside a study."""
    best: dict[str, LabelCurves] = {}
    for label in [*view.ranked, *view.labels]:
        curves = view.labels[label]
        if curves.family not in ("", "other") and curves.family not in best:
            best[curves.family] = curves
    return list(best.values())
